"""Signed evidence (deployer/evidence/signing.py): in-toto statements in DSSE envelopes,
Ed25519, checked offline; each forgery named; the format read back by the DSSE reference
implementation (securesystemslib), not only by deployer."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_evidence import rec

from deployer.adapters.evidence import Spool, SqliteStore, append_or_spool
from deployer.errors import InputError
from deployer.evidence import signing
from deployer.evidence.record import seal, verify


def _keys(tmp_path: Path) -> tuple[signing.Signer, Any, Path]:
    private, public = signing.keygen(tmp_path / "keys")
    signer = signing.load_signer({"DEPLOYER_SIGNING_KEY": str(private)})
    assert signer is not None
    return signer, signing.load_public_key(public), public


def _signed_store(tmp_path: Path, signer: signing.Signer, n: int = 4) -> tuple[Path, Path]:
    from test_playbook import GOOD

    journal = tmp_path / "journal"
    pb = tmp_path / "pb.yml"
    pb.write_text(GOOD + f"journal_dir: {journal}\n")
    spool = Spool(journal / "evidence-spool.jsonl")
    for _ in range(n):
        out, problem = append_or_spool(
            lambda: SqliteStore(journal / "evidence.db"), rec(), spool, sign=signer.envelope
        )
        assert problem is None and out is not None and "envelope" in out
    return pb, journal / "evidence.db"


def _cli(*args: str) -> tuple[int, str, str]:
    from deployer.cli.entry import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _rows(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        return [json.loads(b) for (b,) in conn.execute("SELECT body FROM evidence ORDER BY seq")]


def _rewrite(db: Path, records: list[dict[str, Any]]) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM evidence")
        for r in records:
            conn.execute(
                "INSERT INTO evidence (seq, id, kind, body) VALUES (?, ?, ?, ?)",
                (r["seq"], r["id"], r["kind"], json.dumps(r)),
            )
    (db.parent / "evidence.head").unlink(missing_ok=True)  # the forger removes it too


def test_every_record_is_an_intoto_statement_in_a_dsse_envelope(tmp_path: Path) -> None:
    signer, public, _ = _keys(tmp_path)
    sealed = seal(rec(), 1, "0" * 64, signer.envelope)
    env = sealed["envelope"]
    assert env["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(env["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == signing.PREDICATE_TYPE
    assert statement["subject"][0]["name"] == "shop@v2"
    chain = statement["predicate"]["chain"]
    assert chain == {"seq": 1, "prev_hash": "0" * 64, "hash": sealed["hash"]}
    assert statement["predicate"]["outcome"] == "succeeded"
    assert signing.check(sealed, public) is None
    assert verify([sealed]).ok  # the envelope is outside the record's own hash


def test_the_subject_is_what_was_deployed() -> None:
    """nginx: each shipped build's tree digest (the hosts' manifest has the same) with the
    checkout's commit; Vercel: the deployment with the commit it was built from; each
    migration applied."""
    nginx = {**rec(), "commit": {"sha": "a" * 40},
             "target": {"artifacts": [{"src": "/b/app", "sha256": "d" * 64}]},
             "migrations": {"applied": ["0002"]}}  # fmt: skip
    assert signing.subjects(nginx) == [
        {"name": "shop@v2", "digest": {"sha256": "d" * 64, "gitCommit": "a" * 40}},
        {"name": "migration:0002", "digest": {"sha256": signing._sha("0002")}},
    ]
    vercel = {**rec(), "target": {"to": {"id": "dpl_new", "commit": "c" * 40}}}
    assert signing.subjects(vercel) == [
        {"name": "vercel:dpl_new", "digest": {"gitCommit": "c" * 40}}
    ]


def test_verify_with_the_public_key_passes_a_signed_chain(tmp_path: Path) -> None:
    signer, _, public = _keys(tmp_path)
    pb, _ = _signed_store(tmp_path, signer)
    code, out, err = _cli("evidence", "verify", "-p", str(pb), "--public-key", str(public))
    assert code == 0, out + err
    assert "all 4 signatures valid" in out


@pytest.mark.parametrize("forgery", ["rehashed", "other key", "deleted", "reordered", "unsigned"])
def test_each_forgery_is_named(tmp_path: Path, forgery: str) -> None:
    signer, _, public = _keys(tmp_path)
    pb, db = _signed_store(tmp_path, signer)
    rows = _rows(db)
    if forgery == "rehashed":  # record 2's outcome changed, the whole chain re-hashed
        rows[1]["outcome"] = "failed"
        prev = rows[0]["hash"]
        for r in rows[1:]:
            envelope = r.pop("envelope")
            r.update(seal(r, r["seq"], prev))
            r["envelope"] = envelope  # the old signatures kept: the forger has no key
            prev = r["hash"]
        expect = "record 2: the record differs from the statement that was signed"
    elif forgery == "other key":
        other = signing.load_signer(
            {"DEPLOYER_SIGNING_KEY": str(signing.keygen(tmp_path / "other")[0])}
        )
        assert other is not None
        rows[2]["envelope"] = other.envelope(rows[2])
        expect = "record 3: not signed by this key"
    elif forgery == "deleted":
        del rows[1]
        expect = "record 2 is missing"
    elif forgery == "reordered":
        rows[1]["seq"], rows[2]["seq"] = rows[2]["seq"], rows[1]["seq"]
        rows[1], rows[2] = rows[2], rows[1]
        expect = "does not follow record"
    else:  # a signed record's envelope stripped: after signing began, never allowed
        del rows[3]["envelope"]
        expect = "record 4 is not signed"
    _rewrite(db, rows)
    code, out, err = _cli("evidence", "verify", "-p", str(pb), "--public-key", str(public))
    assert code == 1, out + err
    assert expect in out + err, out + err


def test_records_from_before_signing_began_pass_and_an_edit_of_them_does_not(
    tmp_path: Path,
) -> None:
    """Two records written before DEPLOYER_SIGNING_KEY was set, two after: verify passes
    and says so. The unsigned ones are still covered (the first signed statement carries
    their hash): one of them edited and the chain re-hashed fails the first signature. None
    signed at all fails."""
    from test_playbook import GOOD

    signer, _, public = _keys(tmp_path)
    journal = tmp_path / "journal"
    pb = tmp_path / "pb.yml"
    pb.write_text(GOOD + f"journal_dir: {journal}\n")
    spool = Spool(journal / "evidence-spool.jsonl")
    for sign in (None, None, signer.envelope, signer.envelope):
        out, _ = append_or_spool(
            lambda: SqliteStore(journal / "evidence.db"), rec(), spool, sign=sign
        )
        assert out is not None
    code, out, err = _cli("evidence", "verify", "-p", str(pb), "--public-key", str(public))
    assert code == 0 and "(2 older record(s) written before signing began)" in out, out + err
    db = journal / "evidence.db"
    rows = _rows(db)
    rows[0]["outcome"] = "failed"
    prev = "0" * 64
    for r in rows:
        envelope = r.pop("envelope", None)
        r.update(seal(r, r["seq"], prev))
        if envelope:
            r["envelope"] = envelope
        prev = r["hash"]
    _rewrite(db, rows)
    code, out, err = _cli("evidence", "verify", "-p", str(pb), "--public-key", str(public))
    assert code == 1 and "record 3: the record differs" in out + err, out + err
    for r in rows:
        r.pop("envelope", None)
    _rewrite(db, rows)
    code, out, err = _cli("evidence", "verify", "-p", str(pb), "--public-key", str(public))
    assert code == 1 and "none of the 4 records is signed" in out + err, out + err


def test_a_truncated_chain_is_named_by_the_checkpoint(tmp_path: Path) -> None:
    signer, _, public = _keys(tmp_path)
    pb, db = _signed_store(tmp_path, signer)
    rows = _rows(db)
    checkpoint = f"{rows[-1]['seq']}:{rows[-1]['hash']}"
    _rewrite(db, rows[:2])  # every kept signature is still valid
    code, out, err = _cli(
        "evidence", "verify", "-p", str(pb), "--public-key", str(public),
        "--checkpoint", checkpoint,
    )  # fmt: skip
    assert code == 1 and "truncated: the checkpoint is at record 4" in out + err, out + err


def test_keys_come_from_a_file_or_a_variable_and_bad_ones_are_one_line_errors(
    tmp_path: Path,
) -> None:
    private, _ = signing.keygen(tmp_path)
    pem = private.read_text()
    assert signing.load_signer({}) is None  # none configured: unsigned, said by verify
    assert signing.load_signer({"DEPLOYER_SIGNING_KEY": "env:K", "K": pem}) is not None
    with pytest.raises(InputError, match="not overwritten"):
        signing.keygen(tmp_path)
    for env, said in [
        ({"DEPLOYER_SIGNING_KEY": "env:NOPE"}, "empty or unset"),
        ({"DEPLOYER_SIGNING_KEY": str(tmp_path / "missing.pem")}, "No such file"),
        ({"DEPLOYER_SIGNING_KEY": "env:K", "K": "garbage"}, "not an unencrypted PEM"),
    ]:
        with pytest.raises(InputError, match=said):
            signing.load_signer(env)
    _, warning = signing.signer_or_warning({"DEPLOYER_SIGNING_KEY": "env:NOPE"})
    assert warning is not None and warning.startswith("evidence not signed")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_a_key_from_openssl_genpkey_signs(tmp_path: Path) -> None:
    key, pub = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    signer = signing.load_signer({"DEPLOYER_SIGNING_KEY": str(key)})
    assert signer is not None
    sealed = seal(rec(), 1, "0" * 64, signer.envelope)
    assert signing.check(sealed, signing.load_public_key(pub)) is None


def test_the_export_verifies_with_the_dsse_reference_implementation(tmp_path: Path) -> None:
    """`evidence export --format intoto`: each line a DSSE envelope in the standard JSON
    form, verified by securesystemslib's Envelope (the DSSE reference implementation's
    Python port) with the public key, payload read back as the in-toto statement."""
    dsse = pytest.importorskip("securesystemslib.dsse")
    from securesystemslib.signer import SSlibKey

    signer, _, public = _keys(tmp_path)
    pb, _ = _signed_store(tmp_path, signer, n=3)
    code, out, err = _cli("evidence", "export", "--format", "intoto", "-p", str(pb))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3
    from cryptography.hazmat.primitives import serialization

    raw = serialization.load_pem_public_key(public.read_bytes()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = SSlibKey(signer.keyid, "ed25519", "ed25519", {"public": raw.hex()})
    for line in lines:
        envelope = dsse.Envelope.from_dict(json.loads(line))
        accepted = envelope.verify([key], 1)
        assert signer.keyid in accepted
        statement = json.loads(envelope.pae().split(b" ", 4)[4])
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
