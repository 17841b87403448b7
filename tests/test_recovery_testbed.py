"""Recovery that trusts the router host over a stale local journal, and fences every undo.

Two CI runners share a project: the one that ran a release was killed, another finished the
operation from a fresh checkout (and maybe released again). The first checkout's journal
still holds the operation open. Its `recover` must see that the router host no longer
records it (the record is the truth, the journal a cache), retire the journal and replay
nothing: under load, users see no failed request. An operation still recorded, whose
router was changed by someone else since, is not switched back (exit 6, saying what the
router holds). A recover that leaves the router failing its probes never exits 0.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deploy, write_playbook
from loadgen import Load
from test_dead_man_testbed import _appeared, _live_version
from test_faults_testbed import _hooked, _wait_for

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def _copy(deploy: Deploy, doc: dict[str, Any], where: Path) -> Path:
    """A fresh checkout of the playbook on another runner: its own (empty) journal."""
    where.mkdir()
    return write_playbook(where / "demo.yml", {**doc, "journal_dir": str(where / "journal")})


def _json(proc: Any) -> dict[str, Any]:
    return dict(json.loads(proc.stdout))


def _killed_release(deploy: Deploy, marks: Path, *, at: str) -> dict[str, Any]:
    """A release of v2 killed (SIGKILL) at ``at``: "commit" (the router's record says it
    stands) or "post-switch-gate". Returns the playbook it ran with."""
    doc = _hooked(deploy, marks, post={"window": "3s", "timeout": "1s"})
    # nobody but recover acts in these tests (a dead-man watchdog would switch back the
    # moment the kill closed deployer's session: tests/test_heartbeat_testbed.py)
    doc["router"]["dead_man_margin"] = "0s"
    for name in ("observe", "stop-idle", "ship-run", "start"):
        (marks / f"{name}.once").mkdir()
    if at == "commit":
        (marks / "switch.once").mkdir()
    write_playbook(deploy.path, doc)
    proc = deploy.spawn("release", "-p", str(deploy.path), "--version", "v2")
    try:
        if at == "commit":
            deadline = time.monotonic() + 30
            while not _appeared(deploy, "finish"):
                assert time.monotonic() < deadline and proc.poll() is None, "commit not seen"
                time.sleep(0.002)
        else:
            _wait_for(marks / "switch.reached")
            time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    return doc


def _unfinished_locally(deploy: Deploy) -> bool:
    from deployer.adapters.journal import FileJournal

    journal = deploy.path.parent / "journal" / "demo-test.journal"
    return FileJournal(journal).unfinished() is not None


def test_a_stale_journal_after_a_kill_at_the_commit_is_retired_not_replayed(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    with Load(deploy.url + "/", rate=100, threads=2, seconds=90) as load:
        doc = _killed_release(deploy, marks, at="commit")
        assert _unfinished_locally(deploy)
        copy = _copy(deploy, doc, tmp_path / "runner2")
        finished = deploy.run("-o", "json", "recover", "-p", str(copy))
        assert finished.returncode == 0 and "stands" in _json(finished)["message"]
        time.sleep(1.0)  # the old color's stop (keep_warm 500ms) has run
        stale = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
        time.sleep(1.0)
        load.stop.set()
    assert stale.returncode == 0, stale.stderr
    said = _json(stale)
    assert said["message"].startswith("nothing to recover"), said
    assert any("finished elsewhere" in w and "nothing replayed" in w for w in said["warnings"])
    assert _live_version(deploy) == "v2"
    assert not _unfinished_locally(deploy)  # retired: the next release is not refused
    assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    assert deploy.release("v3").returncode == 0


def test_a_stale_journal_after_a_later_release_elsewhere_is_retired_not_replayed(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    with Load(deploy.url + "/", rate=100, threads=2, seconds=120) as load:
        doc = _killed_release(deploy, marks, at="post-switch-gate")
        copy = _copy(deploy, doc, tmp_path / "runner2")
        undone = deploy.run("-o", "json", "recover", "-p", str(copy))
        assert undone.returncode == 0 and _live_version(deploy) == "v1", undone.stderr
        again = deploy.run("release", "-p", str(copy), "--version", "v3")
        assert again.returncode == 0 and _live_version(deploy) == "v3", again.stderr
        time.sleep(1.0)  # v1's color is stopped now (keep_warm 500ms)
        stale = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
        time.sleep(1.0)
        load.stop.set()
    assert stale.returncode == 0, stale.stderr
    assert _json(stale)["message"].startswith("nothing to recover")
    assert _live_version(deploy) == "v3"
    assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    status = _json(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert status["live_version"] == "v3" and status["unfinished"] is None


def test_an_undo_is_fenced_when_the_router_was_changed_since(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    _killed_release(deploy, marks, at="post-switch-gate")
    upstream = Path(str(deploy.bed.upstream_file))
    # someone put v1 back by hand, under an upstream no operation of this one wrote
    changed = (
        "# deployer: live=blue version=v1\n# deployer: op=by-hand-1\nupstream demo {\n"
        f"    server 127.0.0.1:{deploy.bed.ports.blue} max_fails=0;\n}}\n"
    )
    upstream.write_text(changed)
    deploy.bed.reload_router()
    rec = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
    assert rec.returncode == 6, rec.stderr
    message = _json(rec)["message"]
    assert "now serves blue (v1), written by operation by-hand-1" in message, message
    assert "nothing was switched back" in message
    assert upstream.read_text() == changed  # nothing was written
    assert _live_version(deploy) == "v1"


def test_a_recover_that_leaves_the_router_failing_never_exits_0(
    deploy: Deploy, tmp_path: Path
) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    _killed_release(deploy, marks, at="post-switch-gate")
    deploy.bed.stop_app_color(deploy.root, "blue")  # the color recover switches back to
    rec = deploy.run("-o", "json", "recover", "-p", str(deploy.path), timeout=180)
    assert rec.returncode == 6, rec.stderr
    assert "does not serve blue (v1) healthily" in _json(rec)["message"]


def test_a_hostile_version_marker_never_reaches_a_shell(deploy: Deploy, tmp_path: Path) -> None:
    assert deploy.release("v1").returncode == 0
    pwned = tmp_path / "pwned"
    upstream = Path(str(deploy.bed.upstream_file))
    text = upstream.read_text()
    upstream.write_text(text.replace("version=v1", f"version=$(id>{pwned})"))
    proc = deploy.run("release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 7, proc.stderr
    assert "router bed" in proc.stderr and "live marker" in proc.stderr
    assert not pwned.exists()
    upstream.write_text(text)
    state = deploy.root / "state" / "blue.version"
    state.write_text(f"$(touch {pwned})\n")
    proc = deploy.run("release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 7 and "bed: " in proc.stderr and "blue.version" in proc.stderr
    assert not pwned.exists()
    status = deploy.run("-o", "json", "status", "-p", str(deploy.path))  # shows, never runs
    assert status.returncode == 0 and not pwned.exists()
    assert "blue.version" in json.dumps(_json(status)["hosts"])


def test_a_hostile_operation_record_never_reaches_nginx(deploy: Deploy, tmp_path: Path) -> None:
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    _killed_release(deploy, marks, at="post-switch-gate")
    record = deploy.path.parent / "deploy.lock.operation"
    op = json.loads(record.read_text())
    op["upstream_before"] += (
        f"server {{ listen 127.0.0.1:{deploy.bed.ports.http + 50}; root /; autoindex on; }}\n"
    )
    record.write_text(json.dumps(op))
    before = Path(str(deploy.bed.upstream_file)).read_text()
    rec = deploy.run("recover", "-p", str(deploy.path))
    assert rec.returncode == 7, rec.stderr
    assert "not one deployer may put back" in rec.stderr and "something after" in rec.stderr
    assert Path(str(deploy.bed.upstream_file)).read_text() == before
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{deploy.bed.ports.http + 50}/etc/passwd", timeout=2)
    op["upstream_before"] = op["upstream_before"].split("server {")[0]  # the real one back
    record.write_text(json.dumps(op))
    assert deploy.run("recover", "-p", str(deploy.path)).returncode == 0


def test_a_signal_at_the_commit_still_schedules_the_old_colors_stop(
    deploy: Deploy, tmp_path: Path
) -> None:
    """SIGTERM just as the release reaches its commit point: the release stands (exit 0)
    and its last steps run, so the old color is stopped after keep_warm, not left running."""
    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    doc = _hooked(deploy, marks, post={"window": "2s"})
    for name in ("observe", "stop-idle", "ship-run", "start", "switch"):
        (marks / f"{name}.once").mkdir()
    write_playbook(deploy.path, doc)
    args = ("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    proc = deploy.spawn(*args, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _appeared(deploy, "finish"):
        assert time.monotonic() < deadline and proc.poll() is None, "commit not seen"
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    said = json.loads(out)
    assert said["outcome"] == "succeeded"
    assert any("its last steps ran all the same" in w for w in said["warnings"]), said
    deadline = time.monotonic() + 10  # keep_warm 500ms
    while time.monotonic() < deadline and (deploy.root / "blue.pid").exists():
        time.sleep(0.1)
    assert not (deploy.root / "blue.pid").exists()  # the old color was stopped
    assert _live_version(deploy) == "v2"
