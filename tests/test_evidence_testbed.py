"""Evidence written by real releases on the test bed, read back through the CLI."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import Deploy, demo_playbook, write_playbook

pytestmark = pytest.mark.testbed


def _json(proc) -> object:  # type: ignore[no-untyped-def]
    return json.loads(proc.stdout)


def test_each_release_outcome_is_recorded_and_the_chain_verifies(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    assert deploy.release("v3", "--var", "unhealthy_after=0").returncode == 3
    assert deploy.release("v4", "--var", "unhealthy_after=5").returncode == 4
    assert deploy.run("rollback", "-p", str(deploy.path)).returncode == 0
    listed = _json(deploy.run("-o", "json", "evidence", "list", "-p", str(deploy.path)))
    assert isinstance(listed, list)
    assert [(r["kind"], r["outcome"], r["version_from"], r["version_to"]) for r in listed] == [
        ("release", "succeeded", None, "v1"),
        ("release", "succeeded", "v1", "v2"),
        ("release", "aborted", "v2", "v3"),
        ("release", "rolled_back", "v2", "v4"),
        ("rollback", "succeeded", "v2", "v1"),
    ]
    _, ok, aborted, rolled, rollback = listed
    assert ok["traffic"]["probes"] == 20 and ok["playbook_digest"]  # 1 s at 20/s
    assert {g["name"] for g in ok["gates"]} == {"pre_switch", "post_switch"}
    assert ok["actor"]["user"] and ok["started_at"].endswith("Z")
    assert aborted["gates"][0]["passed"] is False and aborted["traffic"] is None
    assert rolled["time_to_restore_s"] is not None and rolled["time_to_restore_s"] < 5
    assert rollback["time_to_restore_s"] is not None
    verified = deploy.run("-o", "json", "evidence", "verify", "-p", str(deploy.path))
    assert verified.returncode == 0 and _json(verified)["records"] == 5  # type: ignore[index]
    head = deploy.run("evidence", "checkpoint", "-p", str(deploy.path)).stdout.strip()
    assert head.startswith("5:")

    db = deploy.path.parent / "journal" / "evidence.db"
    with sqlite3.connect(db) as conn:
        body = json.loads(conn.execute("SELECT body FROM evidence WHERE seq = 3").fetchone()[0])
        body["outcome"] = "succeeded"  # make the aborted release look fine
        conn.execute("UPDATE evidence SET body = ? WHERE seq = 3", (json.dumps(body),))
    bad = deploy.run("evidence", "verify", "-p", str(deploy.path))
    assert bad.returncode == 1
    assert "record 3" in bad.stderr and "edited" in bad.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM evidence WHERE seq >= 3")
    cut = deploy.run("evidence", "verify", "-p", str(deploy.path), "--checkpoint", head)
    assert cut.returncode == 1 and "truncated" in cut.stderr


def test_secret_values_never_enter_a_record(deploy: Deploy, tmp_path) -> None:
    secret = "tok-3vidence-s3cret-77"
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["ship"].append(
        {"name": "fail with the token", "run": "echo token ${env:APP_TOKEN} rejected >&2; exit 9"}
    )
    pb = write_playbook(tmp_path / "secret.yml", doc)
    proc = deploy.run(
        "-o", "json", "release", "-p", str(pb), "--version", "v1", env={"APP_TOKEN": secret}
    )
    assert proc.returncode == 3  # the failing step aborts the release
    assert "token *** rejected" in proc.stdout
    raw = (tmp_path / "journal" / "evidence.db").read_bytes()
    exported = deploy.run("evidence", "export", "-p", str(pb)).stdout
    assert secret.encode() not in raw and secret not in exported and secret not in proc.stdout
    assert "***" in exported


def test_unreachable_store_spools_and_only_its_own_store_takes_the_record(
    deploy: Deploy,
) -> None:
    blocker = deploy.path.parent / "blocker"
    blocker.write_text("a file where the store's directory should be")
    url = f"sqlite:///{blocker}/evidence.db"
    proc = deploy.run(
        "-o", "json", "--evidence-url", url, "release", "-p", str(deploy.path), "--version", "v1"
    )
    assert proc.returncode == 0, proc.stderr  # the release itself succeeded
    doc = _json(proc)
    assert doc["evidence"]["recorded"] is False  # type: ignore[index]
    assert any("evidence not stored" in w for w in doc["warnings"])  # type: ignore[index]
    spools = list((deploy.path.parent / "journal").glob("evidence-spool-*.jsonl"))
    assert len(spools) == 1
    # reading the local store neither shows nor swallows a record meant for another store
    listed = _json(deploy.run("-o", "json", "evidence", "list", "-p", str(deploy.path)))
    assert listed == []
    assert spools[0].exists()
    blocker.unlink()
    blocker.mkdir()
    again = deploy.run(
        "-o", "json", "--evidence-url", url, "release", "-p", str(deploy.path), "--version", "v2"
    )
    assert again.returncode == 0, again.stderr
    listed = _json(deploy.run("-o", "json", "--evidence-url", url, "evidence", "list"))
    ids = [r["id"] for r in listed]  # type: ignore[index]
    assert ids[0] == doc["evidence"]["id"] and len(ids) == 2  # type: ignore[index]
    assert not spools[0].exists()


def test_score_and_cdevents_from_real_records(deploy: Deploy) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    assert deploy.run("rollback", "-p", str(deploy.path)).returncode == 0
    proc = deploy.run("-o", "json", "score", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    schema = json.loads(deploy.run("score", "--schema").stdout)
    jsonschema.validate(doc, schema)
    earned = {i["id"] for i in doc["items"] if i["earned"]}  # type: ignore[index]
    assert earned == {"health_gated", "codified", "blue_green", "rollback_tested"}
    text = deploy.run("score", "-p", str(deploy.path)).stdout
    assert "4/5" in text and "migration safety checked" in text
    lines = deploy.run(
        "evidence", "export", "--format", "cdevents", "-p", str(deploy.path)
    ).stdout.splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types[0] == "dev.cdevents.service.deployed.0.3.0"
    assert "dev.cdevents.service.rolledback.0.3.0" in types


def test_a_signed_release_names_the_build_the_hosts_hold(deploy: Deploy, tmp_path) -> None:
    """DEPLOYER_SIGNING_KEY set: the release's record carries a DSSE envelope whose in-toto
    subject digest is the build's digest in the manifest on the host; `verify` with the
    public key passes, with another key names the record; `export --format intoto` writes
    it; a key that cannot be read leaves the release's exit code alone (a warning)."""
    import base64

    keys = deploy.run("evidence", "keygen", "--dir", str(tmp_path / "keys"))
    assert keys.returncode == 0, keys.stderr
    env = {"DEPLOYER_SIGNING_KEY": str(tmp_path / "keys" / "deployer-signing.pem")}
    released = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v1",
                          env=env)  # fmt: skip
    assert released.returncode == 0, released.stdout
    assert json.loads(released.stdout)["evidence"]["signed"] is True
    manifest = next(deploy.root.rglob(".deployer-manifest"))
    shipped = json.loads(manifest.read_text())["digest"]
    out = deploy.run("evidence", "export", "--format", "intoto", "-p", str(deploy.path))
    envelope = json.loads(out.stdout.splitlines()[-1])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["subject"][0]["digest"]["sha256"] == shipped, statement["subject"]
    public = tmp_path / "keys" / "deployer-signing.pub.pem"
    ok = deploy.run("evidence", "verify", "-p", str(deploy.path), "--public-key", str(public))
    assert ok.returncode == 0 and "all 1 signatures valid" in ok.stdout, ok.stdout + ok.stderr
    other = deploy.run("evidence", "keygen", "--dir", str(tmp_path / "other"))
    assert other.returncode == 0
    wrong = deploy.run("evidence", "verify", "-p", str(deploy.path), "--public-key",
                       str(tmp_path / "other" / "deployer-signing.pub.pem"))  # fmt: skip
    assert wrong.returncode == 1 and "record 1: not signed by this key" in wrong.stderr
    broken = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2",
                        env={"DEPLOYER_SIGNING_KEY": str(tmp_path / "missing.pem")})  # fmt: skip
    assert broken.returncode == 0, broken.stdout
    said = json.loads(broken.stdout)
    assert said["evidence"]["signed"] is False
    assert any("evidence not signed" in w for w in said["warnings"]), said["warnings"]
