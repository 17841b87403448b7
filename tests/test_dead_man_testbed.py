"""Issue 8's safety nets on the real bed: the router's dead-man switch and bounded gates.

A deployer killed (SIGKILL, no cleanup) after the switch of a broken release: with nobody
running `recover`, the router host's timer puts the old color back within the deadline
(window + probe timeout + margin); users' errors are bounded by rate x deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Deploy, demo_playbook, write_playbook
from loadgen import Load

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def _live_version(deploy: Deploy) -> str | None:
    try:
        return str(httpx.get(deploy.url + "/health", timeout=2, trust_env=False).json()["version"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def test_a_killed_broken_release_is_switched_back_by_the_router_alone(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    # a gate slow to judge (2 samples/s, half may fail), so the kill lands while v2 is live
    doc["gates"]["post_switch"].update(
        {"window": "4s", "timeout": "2s", "rate": 2, "max_error_rate": 0.5}
    )
    doc["router"]["dead_man_margin"] = "3s"  # deadline: 4 + 2 + 3 = 9 s after arming
    doc["vars"]["unhealthy_after"] = "4"  # passes the pre-switch gate, then breaks
    write_playbook(deploy.path, doc)
    rate = 100
    with Load(deploy.url + "/", rate=rate, threads=2, seconds=60) as load:
        proc = deploy.spawn("release", "-p", str(deploy.path), "--version", "v2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _live_version(deploy) != "v2":
            time.sleep(0.05)
        switched_at = time.monotonic()
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)  # a reclaimed CI runner: nothing runs after this
        proc.wait(timeout=10)
        back = None
        while time.monotonic() < switched_at + 20:
            if _live_version(deploy) == "v1":
                back = time.monotonic()
                break
            time.sleep(0.05)
        time.sleep(0.5)
        load.stop.set()
    assert back is not None, "the router never switched back by itself"
    exposure = back - switched_at
    errors = load.stats.server_errors + len(load.stats.failures)
    print(f"\nkilled broken release: back on v1 {exposure:.2f}s after the switch, {errors} errors")
    assert exposure <= 9 + 2.5  # the deadline, plus the switch and a reload
    assert errors <= rate * (9 + 2.5)
    rec = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
    assert rec.returncode == 0, rec.stderr
    doc_rec = json.loads(rec.stdout)
    assert doc_rec["outcome"] == "rolled_back" and "dead-man switch had" in doc_rec["message"]
    assert doc_rec["steps"], "recover lists the steps it undid"
    assert _live_version(deploy) == "v1"


def test_a_healthy_release_disarms_the_dead_man_switch(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["router"]["dead_man_margin"] = "1s"  # fires 5 s after arming if not called off
    write_playbook(deploy.path, doc)
    proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 0, proc.stderr
    names = [s["name"] for s in json.loads(proc.stdout)["steps"]]
    assert names.index("arm-dead-man") < names.index("switch") < names.index("commit")
    time.sleep(6)
    assert _live_version(deploy) == "v2"  # nothing switched it back


@pytest.mark.parametrize("delay", ["1.5", "5"])
def test_a_slow_release_is_rolled_back_within_window_plus_timeout(
    deploy: Deploy, delay: str
) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["service"]["start"] += f" 5 {delay}"  # /health slows after 5 checks
    doc["gates"]["post_switch"].update({"window": "10s", "timeout": "2s", "max_p95": "1s"})
    write_playbook(deploy.path, doc)
    started = time.monotonic()
    proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 4, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    gate = next(g for g in result["gates"] if g["name"] == "post_switch")
    assert gate["seconds"] <= 10 + 2 + 0.5, gate
    assert time.monotonic() - started < 60
    assert _live_version(deploy) == "v1"


KILL_POINTS = [
    "observe",
    "stop-idle",
    "upload",  # mid-upload: the staged archive is being written on the host
    "ship-run",
    "start",
    "pre-switch-gate",
    "armed",  # the dead-man timer armed, the switch not begun
    "switch",
    "post-switch-gate",
    "finish",  # committed on the router host, the old color's stop not yet scheduled
]
#: points watched on the host instead of a pause hook: (glob under the app root) or the file
WATCHED = {"upload", "armed", "finish"}


def _router_state(deploy: Deploy) -> str:
    """What the router host shows, for a failure message: the upstream, the timer's marker."""
    up = Path(str(deploy.bed.upstream_file))
    parts = []
    for p in (up, *up.parent.glob(up.name + ".deployer-*"), up.parent / "logs" / "error.log"):
        text = p.read_text(errors="replace") if p.is_file() else "?"
        parts.append(f"{p.name}: {text.strip()[-300:]}")
    return "; ".join(parts)


def _appeared(deploy: Deploy, where: str) -> bool:
    if where == "upload":
        return any(deploy.root.glob("releases/.deployer-upload.*/upload.tar.gz"))
    if where == "armed":
        return Path(str(deploy.bed.upstream_file) + ".deployer-deadman").exists()
    record = deploy.path.parent / "deploy.lock.operation"  # the bed's lock.path + .operation
    return record.exists() and '"committed"' in record.read_text()


@pytest.mark.parametrize("where", KILL_POINTS)
def test_sigkill_anywhere_then_recover_from_a_fresh_checkout(
    deploy: Deploy, tmp_path: Any, where: str
) -> None:
    from test_faults_testbed import _hooked, _wait_for

    assert deploy.release("v1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    mark = {"pre-switch-gate": "start", "post-switch-gate": "switch"}.get(where, where)
    doc = _hooked(
        deploy,
        marks,
        pre={"successes": 12, "interval": "100ms"},
        post={"window": "3s", "timeout": "1s"},
    )
    doc["router"]["dead_man_margin"] = "2s"  # deadline: 3 + 1 + 2 = 6 s after arming
    if where == "upload":  # a build big enough that the kill lands while it is shipped
        build = tmp_path / "build"
        shutil.copytree(
            deploy.bed.playbook(deploy.root, tmp_path)["ship"][0]["upload"]["src"], build
        )
        (build / "blob.bin").write_bytes(os.urandom(16 << 20))
        doc["ship"][0]["upload"]["src"] = str(build)
    for name in {"observe", "stop-idle", "ship-run", "start", "switch"} - {mark}:
        (marks / f"{name}.once").mkdir()
    write_playbook(deploy.path, doc)
    delay = {"pre-switch-gate": 1.8, "post-switch-gate": 2.5}.get(where, 0.3)
    stands = where == "finish"  # committed: the release stands, nothing switches back
    with Load(deploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = deploy.spawn("release", "-p", str(deploy.path), "--version", "v2")
        if where in WATCHED:
            deadline = time.monotonic() + 30
            while not _appeared(deploy, where):
                assert time.monotonic() < deadline and proc.poll() is None, f"{where} not seen"
                time.sleep(0.005)
        else:
            _wait_for(marks / f"{mark}.reached")
            time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at = time.monotonic()
        expected = "v2" if stands else "v1"
        # nobody acts: the router host's timer, if armed, does (and, once fired, stays off)
        while time.monotonic() < killed_at + 12 and _live_version(deploy) != expected:
            time.sleep(0.05)
        if where == "armed":  # the timer fires on the upstream that is live anyway
            time.sleep(max(0.0, killed_at + 7 - time.monotonic()))
        assert _live_version(deploy) == expected, _router_state(deploy)
        load.stop.set()
    if where not in ("switch", "post-switch-gate"):  # users saw no error
        assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    # a new CI runner: a fresh copy of the playbook folder, no journal
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    doc["journal_dir"] = str(fresh / "journal")
    pb = write_playbook(fresh / "demo.yml", doc)
    status = json.loads(deploy.run("-o", "json", "status", "-p", str(pb)).stdout)
    if where != "observe":  # killed after it began: visible from the fresh checkout
        assert status["unfinished"], status
        refused = deploy.run("release", "-p", str(pb), "--version", "v3")
        assert refused.returncode == 6 and "deployer recover" in refused.stderr
    rec = deploy.run("-o", "json", "recover", "-p", str(pb))
    assert rec.returncode == 0, rec.stderr
    status = json.loads(deploy.run("-o", "json", "status", "-p", str(pb)).stdout)
    assert status["unfinished"] is None and status["lock"] is None, status
    if stands:  # recover finished it: the old color's stop scheduled, old builds pruned
        assert "stands" in json.loads(rec.stdout)["message"]
        assert status["live_version"] == "v2"
        deadline = time.monotonic() + 10  # keep_warm 500ms
        while time.monotonic() < deadline and (deploy.root / "blue.pid").exists():
            time.sleep(0.1)
        assert not (deploy.root / "blue.pid").exists()
        return
    assert status["live_version"] == "v1"
    assert not status["hosts"][0]["colors"]["green"]["running"]
    assert not list(deploy.root.glob("releases/.deployer-upload.*"))  # no half upload left
    if where != "post-switch-gate":
        return  # the next release from the fresh checkout: proven once (time budget)
    shutil.rmtree(marks)
    marks.mkdir()
    for name in ("observe", "stop-idle", "ship-run", "start", "switch"):
        (marks / f"{name}.once").mkdir()
    assert deploy.run("release", "-p", str(pb), "--version", "v3").returncode == 0
    assert _live_version(deploy) == "v3"
