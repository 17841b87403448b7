"""Faults on the real test bed: signals at every step under load, races on the lock, a
reload that fails, hostile host output, a hostile local user, secrets, broken evidence.

After each fault: the exit code is the documented one, traffic is on a color that passes
its gate, the lock is free and `recover` has nothing left to do; where the exit code says
users never saw the new version (3), they got zero errors.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Deploy, demo_playbook, write_playbook
from loadgen import Load

pytestmark = [pytest.mark.testbed, pytest.mark.slow]
PAUSE = str(ROOT / "tests" / "pause.sh")


def _doc(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(proc.stdout))


def _hooked(deploy: Deploy, marks: Path, **gates: Any) -> dict[str, Any]:
    """The demo playbook with a pause hook in each command a step runs first."""
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    hook = f"{PAUSE} {marks}"
    svc, router = doc["service"], doc["router"]
    svc["status"] = f"{hook} observe && {svc['status']}"
    svc["stop"] = f"{hook} stop-idle && {svc['stop']}"
    svc["start"] = f"{hook} start && {svc['start']}"
    doc["ship"][1]["run"] = f"{hook} ship-run && {doc['ship'][1]['run']}"
    router["reload"] = f"{hook} switch && {router['reload']}"
    doc["gates"]["pre_switch"].update(gates.get("pre", {}))
    doc["gates"]["post_switch"].update(gates.get("post", {}))
    return doc


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never reached"
        time.sleep(0.02)


def _healthy_live(deploy: Deploy, version: str) -> None:
    import httpx

    resp = httpx.get(deploy.url + "/health", timeout=5, trust_env=False)
    assert resp.status_code == 200 and resp.json()["version"] == version


# (where, signals, delay after the mark, expected exit code)
MATRIX = [
    ("observe", [signal.SIGTERM], 0.2, 3),  # lock held, nothing begun: released, exit 3
    ("stop-idle", [signal.SIGTERM], 0.2, 3),
    ("ship-run", [signal.SIGTERM], 0.2, 3),
    ("start", [signal.SIGTERM], 0.2, 3),
    ("start", [signal.SIGINT, signal.SIGINT], 0.2, 3),
    ("pre-switch-gate", [signal.SIGTERM], 2.5, 3),
    ("switch", [signal.SIGTERM], 0.2, 4),
    ("post-switch-gate", [signal.SIGTERM, signal.SIGTERM], 3.0, 4),
]


@pytest.mark.parametrize(
    ("where", "signals", "delay", "code"),
    MATRIX,
    ids=[f"{w}-{'+'.join(s.name for s in sigs)}" for w, sigs, _, _ in MATRIX],
)
def test_signal_at_each_step_tells_the_truth_and_leaves_a_clean_state(
    deploy: Deploy, tmp_path: Path, where: str, signals: list[int], delay: float, code: int
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    mark = {"pre-switch-gate": "start", "post-switch-gate": "switch"}.get(where, where)
    doc = _hooked(deploy, marks, pre={"successes": 25, "interval": "100ms"}, post={"window": "4s"})
    write_playbook(deploy.path, doc)
    for name in {"observe", "stop-idle", "ship-run", "start", "switch"} - {mark}:
        (marks / f"{name}.once").mkdir()  # only the step under test pauses
    cmd = ["-o", "json", "release", "-p", str(deploy.path)]
    with Load(deploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = deploy.spawn(*cmd, "--version", "v2", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait_for(marks / f"{mark}.reached")
            time.sleep(delay)
            for sig in signals:
                proc.send_signal(sig)
                time.sleep(0.1)
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
        load.stop.set()
    assert proc.returncode == code, err
    result = json.loads(out)
    if where == "observe":  # before the operation began: the error document
        assert result["error"] == "AbortedError" and "nothing was changed" in result["message"]
    else:
        assert result["outcome"] == "interrupted", result["message"]
    assert "Traceback" not in err
    _healthy_live(deploy, "v1")
    if code == 3:  # nobody may have seen v2, or an error
        assert set(load.stats.versions) == {"v1"}, load.stats.versions
        assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    status = _doc(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert status["lock"] is None and status["unfinished"] is None
    assert not status["hosts"][0]["colors"]["green"]["running"]
    rec = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
    assert rec.returncode == 0 and _doc(rec)["message"] == "nothing to recover"


def _slow_release(deploy: Deploy, marks: Path) -> subprocess.Popen[str]:
    doc = _hooked(deploy, marks, post={"window": "4s"})
    write_playbook(deploy.path, doc)
    args = ("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    return deploy.spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_recover_and_a_second_release_are_refused_while_a_release_runs(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    live = _slow_release(deploy, marks)
    try:
        _wait_for(marks / "switch.reached")
        second = deploy.release("v3")
        assert second.returncode == 5 and "still running" in second.stderr, second.stderr
        rec = deploy.run("recover", "-p", str(deploy.path))
        assert rec.returncode == 5, rec.stderr
        _, err = live.communicate(timeout=90)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, err
    _healthy_live(deploy, "v2")


def test_the_lock_heartbeat_renews_the_holder_record(deploy: Deploy, tmp_path: Path) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    doc = _hooked(deploy, marks, post={"window": "6s"})
    doc["lock"]["ttl"] = "16s"  # heartbeat every 5.3 s; the gates' worst case is 15 s
    write_playbook(deploy.path, doc)
    live = deploy.spawn("release", "-p", str(deploy.path), "--version", "v2")
    try:
        _wait_for(marks / "switch.reached")
        info_path = Path(doc["lock"]["path"]) / "info"
        first = json.loads(info_path.read_text())
        deadline = time.monotonic() + 12
        renewed = first
        while renewed["renewed_at"] == first["renewed_at"] and time.monotonic() < deadline:
            time.sleep(0.2)
            renewed = json.loads(info_path.read_text())
        assert renewed["renewed_at"] > first["renewed_at"]
        assert renewed["acquired_at"] == first["acquired_at"]
    finally:
        live.wait(timeout=90)
    assert live.returncode == 0


@pytest.mark.parametrize("garbage", ["empty", "junk", "file"])
def test_an_unreadable_lock_is_reported_and_broken_only_with_a_reason(
    deploy: Deploy, garbage: str
) -> None:
    lock_path = deploy.path.parent / "deploy.lock"
    if garbage == "file":
        lock_path.write_text("not a lock dir")
    else:
        lock_path.mkdir()
        (lock_path / "info").write_text("" if garbage == "empty" else "{{{ not json")
    proc = deploy.release("v1")
    assert proc.returncode == 5 and "deployer unlock" in proc.stderr, proc.stderr
    status = _doc(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert status["lock"]["state"] == "unreadable"
    refused = deploy.run("unlock", "-p", str(deploy.path), "--reason", "")
    assert refused.returncode == 2
    ok = deploy.run("unlock", "-p", str(deploy.path), "--reason", "stray lock from a test")
    assert ok.returncode == 0, ok.stderr
    assert not lock_path.exists()
    journal = (deploy.path.parent / "journal" / "demo-test.journal").read_text()
    assert '"reason": "stray lock from a test"' in journal
    assert deploy.release("v1").returncode == 0


def test_a_lock_in_a_world_writable_directory_is_refused(deploy: Deploy, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["lock"]["path"] = str(shared / "demo.lock")
    write_playbook(deploy.path, doc)
    proc = deploy.release("v1")
    assert proc.returncode == 7 and "writable by other users (mode 1777)" in proc.stderr
    assert not (deploy.root / "releases").exists()


def test_a_reload_that_fails_never_leaves_the_new_upstream_installed(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    once = tmp_path / "failed-once"
    doc["router"]["reload"] = (
        f"if mkdir {once} 2>/dev/null; then false; else {doc['router']['reload']}; fi"
    )
    write_playbook(deploy.path, doc)
    with Load(deploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
        load.stop.set()
    assert proc.returncode in (3, 4), proc.stderr
    assert "reload failed" in _doc(proc)["message"]
    assert "live=blue" in deploy.bed.upstream_file.read_text()
    _healthy_live(deploy, "v1")
    assert load.stats.server_errors == 0, load.stats.statuses
    assert deploy.release("v3").returncode == 0  # and the serving color was never stopped
    _healthy_live(deploy, "v3")


def test_markup_in_host_output_or_gate_reasons_never_aborts_the_saga(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["gates"]["pre_switch"]["expect_body"] = "[/ready]"
    doc["ship"].append({"name": "[bold]noisy[/]", "run": "echo '[/srv/app/config.yml]' >&2"})
    write_playbook(deploy.path, doc)
    proc = deploy.release("v2")
    assert proc.returncode == 3, proc.stderr
    assert "body lacks '[/ready]'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    listed = _doc(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert not listed["hosts"][0]["colors"]["green"]["running"]
    records = json.loads(
        deploy.run("-o", "json", "evidence", "list", "-p", str(deploy.path)).stdout
    )
    assert records[-1]["outcome"] == "aborted"


def _attacker() -> str:
    name = "deployer-attacker"
    if subprocess.run(["id", name], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", name], check=True)
    return name


def test_a_hostile_local_user_on_the_host_never_gets_code_run(
    deploy: Deploy, tmp_path: Path
) -> None:
    user = _attacker()
    marker = Path("/tmp/deployer-attacker-pwned")
    marker.unlink(missing_ok=True)
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "appctl.sh").write_text(f"#!/bin/sh\nid > {marker}\n")
    (evil / "appctl.sh").chmod(0o755)
    archive = tmp_path / "evil.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(evil), "appctl.sh"], check=True)
    archive.chmod(0o644)
    tmp_path.chmod(0o755)
    # the attacker plants archives and links under every name the old code would have used
    # for the next 30 s, and squats the old default lock path
    script = (
        f"end=$(( $(date +%s) + 30 )); mkdir -p /tmp/deployer-demo-test.lock; "
        f"while [ $(date +%s) -lt $end ]; do ms=$(date +%s%3N); for d in 0 1 2 3 4 5 6 7 8 9; do "
        f"cp {archive} /tmp/deployer-upload-$((ms + d)).tar.gz 2>/dev/null; done; sleep 0.005; done"
    )
    squatter = subprocess.Popen(["runuser", "-u", user, "--", "sh", "-c", script])
    try:
        time.sleep(0.3)
        proc = deploy.release("v1")
    finally:
        squatter.terminate()
        squatter.wait(timeout=10)
        subprocess.run(
            "rm -rf /tmp/deployer-upload-*.tar.gz /tmp/deployer-demo-test.lock",
            shell=True,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    shipped = deploy.root / "releases" / "v1" / "appctl.sh"
    assert shipped.read_bytes() == (ROOT / "examples" / "app" / "appctl.sh").read_bytes()
    assert not marker.exists()
    leftovers = list(Path("/tmp").glob("deployer-upload.*"))
    assert not [p for p in leftovers if p.stat().st_uid == 0], leftovers


def test_secret_canary_appears_nowhere(deploy: Deploy, tmp_path: Path) -> None:
    secret = 'Can4ry-s3cret\'s "quoted" $value'
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    env_ref = "${env:CANARY}"
    doc["vars"]["token"] = env_ref
    doc["ship"].append(
        {
            "name": "echo the secret every way",
            "run": f"echo {env_ref}; printf '%q\\n' {env_ref} >&2; "
            f"python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' {env_ref}; "
            "echo ${token} >&2",
        }
    )
    svc = doc["service"]
    for key in ("start", "stop", "status"):
        svc[key] = f"test -n {env_ref} && {svc[key]}"
    doc["router"]["test"] = f"test -n {env_ref} && {doc['router']['test']}"
    doc["rollback"]["keep_warm"] = "30s"
    doc["gates"]["post_switch"]["expect_status"] = 200
    pb = write_playbook(tmp_path / "canary.yml", doc)
    env = {"CANARY": secret}
    outputs = []
    for version in ("v1", "v2"):
        proc = deploy.run("-o", "json", "release", "-p", str(pb), "--version", version, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    outputs.append(ps)  # the keep-warm timer of blue is waiting now
    bad = write_playbook(
        tmp_path / "bad.yml",
        {
            **doc,
            "gates": {
                **doc["gates"],
                "pre_switch": {**doc["gates"]["pre_switch"], "expect_json": {"version": env_ref}},
            },
        },
    )
    failed = deploy.run("-o", "json", "release", "-p", str(bad), "--version", "v3", env=env)
    assert failed.returncode == 3
    outputs += [failed.stdout, failed.stderr]
    for args in (
        ("plan", "-p", str(pb), "--version", "v9", "--live", "blue"),
        ("-o", "json", "plan", "-p", str(pb), "--version", "v9", "--live", "blue"),
        ("evidence", "export", "-p", str(pb)),
        ("evidence", "export", "--format", "cdevents", "-p", str(pb)),
        ("-o", "json", "status", "-p", str(pb)),
    ):
        proc = deploy.run(*args, env=env)
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
    files = [p for p in (tmp_path / "journal").rglob("*") if p.is_file()]
    files += [p for p in (deploy.root / "state").rglob("*") if p.is_file()]
    blobs = [p.read_bytes() for p in files]
    import shlex

    forms = {secret, shlex.quote(secret), json.dumps(secret)[1:-1], repr(secret)[1:-1]}
    forms.add(
        subprocess.run(
            ["bash", "-c", 'printf %q "$V"'],
            env={"V": secret},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for form in forms:
        for text in outputs:
            assert form not in text, (form, text[:500])
        for path, blob in zip(files, blobs, strict=True):
            assert form.encode() not in blob, (form, path)


def test_broken_evidence_never_changes_a_release_result(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    db = deploy.path.parent / "journal" / "evidence.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE evidence SET body = 'garbage' WHERE seq = (SELECT max(seq) FROM evidence)")
    conn.commit()
    conn.close()
    spool = deploy.path.parent / "journal" / "evidence-spool.jsonl"
    spool.write_bytes(b'{"id": "torn", "ki')
    proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 0, proc.stderr
    doc = _doc(proc)
    assert doc["outcome"] == "succeeded" and doc["evidence"]["recorded"] is False
    assert any("quarantine" in w for w in doc["warnings"]), doc["warnings"]
    verify = deploy.run("evidence", "verify", "-p", str(deploy.path))
    assert verify.returncode == 1 and "record" in verify.stderr


def test_a_traced_or_encoded_secret_appears_nowhere(deploy: Deploy, tmp_path: Path) -> None:
    """A failing ship step whose last line of output is the secret as `set -x` traces it,
    or quote_plus'd, HTML-escaped, base64'd inside a longer text, hex'd and with its tab
    expanded: none of it reaches the output, the JSON, the journal, the evidence, its
    exports or the report (a failing step's last line is what they carry)."""
    import base64
    import html
    from urllib.parse import quote_plus

    secret = "pw'x y\tZ+&<q>-Can4ry"
    ref = "${env:CANARY}"
    py = (
        "import base64,html,sys,urllib.parse as u; s=sys.argv[1]; print(' '.join(["
        "u.quote_plus(s), html.escape(s), s.expandtabs(), "
        "base64.b64encode(('xy'+s).encode()).decode(), s.encode().hex()]), file=sys.stderr)"
    )
    steps = {
        "traced": f"set -x; test -z {ref}",
        "encoded": f"python3 -c {json.dumps(py)} {ref}; false",
    }
    env = {"CANARY": secret}
    outputs: list[str] = []
    for name, run in steps.items():
        doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
        doc["ship"].append({"name": name, "run": run})
        pb = write_playbook(tmp_path / f"{name}.yml", doc)
        proc = deploy.run("-o", "json", "release", "-p", str(pb), "--version", "v1", env=env)
        assert proc.returncode == 3, proc.stderr
        assert "***" in json.loads(proc.stdout)["message"], proc.stdout  # it was there to leak
        outputs += [proc.stdout, proc.stderr]
    report = tmp_path / "report.html"
    for args in (
        ("evidence", "export", "-p", str(pb)),
        ("evidence", "export", "--format", "cdevents", "-p", str(pb)),
        ("report", "-p", str(pb), "-O", str(report)),
    ):
        out = deploy.run(*args, env=env)
        assert out.returncode == 0, out.stderr
        outputs += [out.stdout, out.stderr]
    outputs.append(report.read_text())
    blobs = [
        p.read_bytes().decode(errors="replace")
        for p in (tmp_path / "journal").rglob("*")
        if p.is_file()
    ]
    forms = {
        secret,
        "'pw'\\''x y\tZ+&<q>-Can4ry'",  # bash's set -x
        quote_plus(secret),
        html.escape(secret),
        secret.expandtabs(),
        base64.b64encode(secret[1:].encode()).decode()[:12],  # inside a longer encoding
        secret.encode().hex(),
    }
    for form in forms:
        for text in outputs + blobs:
            assert form not in text, (form, text[:300])
