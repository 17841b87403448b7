"""Signed evidence: each sealed record as an in-toto Statement (v1) in a DSSE envelope,
signed with Ed25519, verified offline with the public key alone.

- **Statement** (in-toto Attestation Framework, spec v1: ``_type``
  ``https://in-toto.io/Statement/v1``, ``subject`` [{name, digest}], ``predicateType``,
  ``predicate``). The subject is what was deployed: the Vercel deployment (its id, the commit
  it was built from as ``gitCommit``), or the app at its version with the SHA-256 of each
  build shipped (``ship``'s tree digest, the one in the release's manifest on the hosts)
  and the commit of the checkout that released it (an operation that shipped nothing, a
  rollback to the warm color, names the app and version, digested); the migration
  revisions applied are subjects too. The predicate
  (:data:`PREDICATE_TYPE`, this project's own, versioned) carries the outcome, from/to, the
  gates' numbers, the restore time, the migration lint summary, who ran it (user, host, CI run)
  and the record's place in the chain: ``seq``, ``prev_hash`` and the record's own ``hash``.
- **Envelope** (DSSE v1, secure-systems-lab/dsse "envelope.md" and "protocol.md"):
  ``{"payloadType": "application/vnd.in-toto+json", "payload": base64(statement),
  "signatures": [{"keyid": ..., "sig": base64(Ed25519(PAE(payloadType, payload)))}]}`` with
  ``PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body`` (lengths as ASCII
  decimals of byte counts).
- **Keys**: ``DEPLOYER_SIGNING_KEY`` names a file, or ``env:NAME`` a variable holding the PEM;
  an unencrypted PKCS#8 Ed25519 private key, as ``openssl genpkey -algorithm ed25519`` or
  ``deployer evidence keygen`` writes it. Verification takes the SubjectPublicKeyInfo PEM.
  The ``keyid`` is the SHA-256 of the raw 32-byte public key, hex (a hint: verification uses
  the key it is given, never the one a record names).

The envelope is stored in the record (``envelope``), outside the record's own hash (it is
computed from the sealed record): an edit breaks the hash chain, and a forger who re-hashes
the chain cannot re-sign it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import InputError
from deployer.evidence.record import record_hash

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: this project's predicate: a deployment operation's record (documented in docs/evidence.md)
PREDICATE_TYPE = "urn:deployer:predicate:operation-record:v1"
#: the record's fields the predicate carries (besides its place in the chain)
PREDICATE_KEYS = (
    "id", "operation_id", "kind", "app", "environment", "version_from", "version_to",
    "color_from", "color_to", "outcome", "exit_code", "started_at", "ended_at", "duration_s",
    "traffic", "time_to_restore_s", "actor", "ci", "commit", "playbook_digest",
)  # fmt: skip


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (protocol.md)."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def subjects(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What the record says was deployed (or rolled back to), as in-toto subjects."""
    target = record.get("target") if isinstance(record.get("target"), dict) else {}
    commit = record.get("commit") if isinstance(record.get("commit"), dict) else {}
    sha = str((commit or {}).get("sha") or "")
    out: list[dict[str, Any]] = []
    to = (target or {}).get("to")
    if isinstance(to, dict) and to.get("id"):  # Vercel: the deployment, and its commit
        built = str(to.get("commit") or "")
        digest = {"gitCommit": built} if built else {"sha256": _sha(str(to["id"]))}
        out.append({"name": f"vercel:{to['id']}", "digest": digest})
    elif record.get("version_to") or record.get("app"):
        name = f"{record.get('app')}@{record.get('version_to') or '-'}"
        artifacts = [
            a
            for a in (target or {}).get("artifacts") or []
            if isinstance(a, dict) and isinstance(a.get("sha256"), str)
        ]
        for a in artifacts:  # nginx: the content digest of each build shipped
            digest = {"sha256": a["sha256"], **({"gitCommit": sha} if sha else {})}
            label = f"{name}:{a.get('src')}" if len(artifacts) > 1 else name
            out.append({"name": label, "digest": digest})
        if not artifacts:  # nothing shipped (a rollback to a warm color): what it names
            identity = _canonical([record.get("app"), record.get("version_to")])
            digest = {"sha256": hashlib.sha256(identity).hexdigest()}
            if sha:
                digest["gitCommit"] = sha
            out.append({"name": name, "digest": digest})
    migrations = record.get("migrations") if isinstance(record.get("migrations"), dict) else {}
    for rev in (migrations or {}).get("applied") or []:
        text = str(rev)
        out.append({"name": f"migration:{text}", "digest": {"sha256": _sha(text)}})
    return out or [{"name": f"record:{record.get('id')}", "digest": {"sha256": _sha("")}}]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def statement(record: Mapping[str, Any]) -> dict[str, Any]:
    """The in-toto Statement of a sealed record."""
    predicate = {k: record.get(k) for k in PREDICATE_KEYS}
    lint = record.get("lint") if isinstance(record.get("lint"), dict) else None
    predicate["lint"] = {k: lint.get(k) for k in ("errors", "warnings", "files")} if lint else None
    predicate["gates"] = [
        {k: g.get(k) for k in ("name", "passed", "probes", "errors", "p95_ms", "reason")}
        for g in record.get("gates") or []
        if isinstance(g, dict)
    ]
    predicate["chain"] = {k: record.get(k) for k in ("seq", "prev_hash", "hash")}
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(record),
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


@dataclass(frozen=True)
class Signer:
    key: Any  # cryptography's Ed25519PrivateKey
    keyid: str

    def envelope(self, record: Mapping[str, Any]) -> dict[str, Any]:
        payload = _canonical(statement(record))
        sig = self.key.sign(pae(PAYLOAD_TYPE, payload))
        return {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": self.keyid, "sig": base64.b64encode(sig).decode()}],
        }


def keyid(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def load_signer(env: Mapping[str, str] | None = None) -> Signer | None:
    """The signer ``DEPLOYER_SIGNING_KEY`` names, or None when none is configured. A key that
    cannot be read raises InputError (the caller turns it into a warning: signing never
    changes an operation's result)."""
    env = os.environ if env is None else env
    where = env.get("DEPLOYER_SIGNING_KEY", "").strip()
    if not where:
        return None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if where.startswith("env:"):
        text = env.get(where[4:], "")
        if not text:
            raise InputError(f"DEPLOYER_SIGNING_KEY={where}: that variable is empty or unset")
        data = text.encode()
    else:
        try:
            data = Path(where).read_bytes()[:64_000]
        except OSError as exc:
            raise InputError(f"signing key {where}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(
            "signing key: not an unencrypted PEM (PKCS#8) private key "
            f"({str(exc).splitlines()[0][:120]})"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("signing key: not Ed25519 (openssl genpkey -algorithm ed25519)")
    return Signer(key, keyid(key.public_key()))


def load_public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(path.read_bytes()[:64_000])
    except OSError as exc:
        raise InputError(f"public key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError):
        raise InputError(f"public key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"public key {path}: not Ed25519")
    return key


def keygen(folder: Path) -> tuple[Path, Path]:
    """Write a new key pair: ``deployer-signing.pem`` (0600) and ``deployer-signing.pub.pem``;
    never over existing files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = folder / "deployer-signing.pem", folder / "deployer-signing.pub.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        fd = os.open(public, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pub)
    except FileExistsError as exc:
        raise InputError(f"{exc.filename} exists: not overwritten") from None
    except OSError as exc:
        raise InputError(f"cannot write the key pair in {folder}: {exc.strerror}") from None
    return private, public


def check(record: Mapping[str, Any], public_key: Any, *, hash_checked: bool = False) -> str | None:
    """None if ``record``'s envelope is a valid signature by ``public_key`` over a statement
    of exactly this record (its place in the chain and its hash, which commits to every
    field; ``hash_checked``: the caller has recomputed the hash already, as the chain's
    verification does); otherwise what is wrong."""
    from cryptography.exceptions import InvalidSignature

    seq = record.get("seq")
    env = record.get("envelope")
    if not isinstance(env, dict):
        return f"record {seq} is not signed"
    try:
        payload = base64.b64decode(str(env["payload"]), validate=True)
        sigs = [base64.b64decode(str(s["sig"]), validate=True) for s in env["signatures"]]
        kind = str(env["payloadType"])
    except (KeyError, TypeError, ValueError):
        return f"record {seq}: its envelope is malformed"
    good = False
    for sig in sigs:
        try:
            public_key.verify(sig, pae(kind, payload))
            good = True
            break
        except InvalidSignature:
            continue
    if not good:
        return f"record {seq}: not signed by this key (signed by another key, or altered)"
    if kind != PAYLOAD_TYPE:
        return f"record {seq}: payloadType {kind[:60]!r} is not in-toto's"
    # the signed statement names the record by its place and hash; the hash commits to
    # every field of the record, so a record that still has that hash is the one signed
    try:
        signed = json.loads(payload)
        chain = signed["predicate"]["chain"]
        named = (chain["seq"], chain["prev_hash"], chain["hash"])
    except (ValueError, TypeError, KeyError):
        return f"record {seq}: the signed payload is not deployer's statement"
    own = (record.get("seq"), record.get("prev_hash"), record.get("hash"))
    if named != own or (not hash_checked and record_hash(dict(record)) != record.get("hash")):
        return (
            f"record {seq}: the record differs from the statement that was signed "
            "(rewritten and re-hashed?)"
        )
    return None


def unsigned_prefix(records: list[dict[str, Any]]) -> int:
    """How many records at the chain's start carry no envelope: written before signing was
    enabled. They are still covered: the first signed record's statement carries its
    ``prev_hash``, so an edit of any of them (re-hashed or not) breaks that signature."""
    for i, rec in enumerate(records):
        if isinstance(rec.get("envelope"), dict):
            return i
    return len(records)


def first_problem(
    records: list[dict[str, Any]], public_key: Any, *, hash_checked: bool = False
) -> str | None:
    """:func:`check` of every record from the first signed one on (earlier ones: see
    :func:`unsigned_prefix`; none signed at all is a problem), in chunks across the
    machine's cores (Ed25519 verification releases the GIL: 10,000 records take about half
    the time on two cores); the first problem in chain order, or None."""
    from concurrent.futures import ThreadPoolExecutor

    start = unsigned_prefix(records)
    if records and start == len(records):
        return f"none of the {len(records)} records is signed"
    signed = records[start:]
    workers = max(1, min(8, os.cpu_count() or 1))
    size = max(1, -(-len(signed) // workers))
    chunks = [signed[i : i + size] for i in range(0, len(signed), size)]

    def scan(chunk: list[dict[str, Any]]) -> str | None:
        for rec in chunk:
            problem = check(rec, public_key, hash_checked=hash_checked)
            if problem:
                return problem
        return None

    with ThreadPoolExecutor(workers, thread_name_prefix="verify") as pool:
        for problem in pool.map(scan, chunks):
            if problem:
                return problem
    return None


def verify_all(
    records: list[dict[str, Any]], public_key: Any, chain: Callable[[], Any]
) -> tuple[Any, str | None]:
    """(the chain's verdict, the first signature problem or None): the chain is recomputed
    (``chain()``, which checks every record's hash) while the signatures are checked on
    the other cores, so the signature check can rely on the hashes (``hash_checked``) and
    the two take the time of the longer one. Without a key: the chain alone."""
    if public_key is None:
        return chain(), None
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="signatures") as pool:
        signatures = pool.submit(first_problem, records, public_key, hash_checked=True)
        verdict = chain()
        return verdict, signatures.result()


def signer_or_warning(
    env: Mapping[str, str] | None = None,
) -> tuple[Callable[[Mapping[str, Any]], dict[str, Any]] | None, str | None]:
    """(the envelope maker, None), (None, None) when no key is configured, or (None, a
    warning) when the configured key cannot be used."""
    try:
        signer = load_signer(env)
    except InputError as exc:
        return None, f"evidence not signed: {exc}"
    return (signer.envelope if signer else None), None
