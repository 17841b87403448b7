"""`deployer drill` on the real bed, and the warm color an aborted release leaves warm.

A drill releases the live version to the idle color, switches, rolls back as a failing gate
would, and must leave every host as it found it; it exits 0 only within its bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Deploy, demo_playbook, write_playbook
from loadgen import Load

pytestmark = pytest.mark.testbed


def _warm_playbook(deploy: Deploy, **drill: Any) -> None:
    """Keep the old color warm for the whole test (its timers are cancelled at the end)."""
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["rollback"] = {"keep_warm": "120s"}
    doc["drill"] = {"broken_vars": {"unhealthy_after": "5"}, "restore_bound": "5s", **drill}
    write_playbook(deploy.path, doc)


@pytest.fixture
def warm(deploy: Deploy) -> Any:
    _warm_playbook(deploy)
    yield deploy
    for timer in (deploy.root / "state").glob("*.stop-timer"):  # no sleeping timer outlives us
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.killpg(int(timer.read_text()), signal.SIGKILL)


def _hosts(deploy: Deploy) -> tuple[Any, Any]:
    doc = json.loads(deploy.run("-o", "json", "status", "-p", str(deploy.path)).stdout)
    return doc["live_version"], doc["hosts"]


def _drill(deploy: Deploy, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = deploy.run("-o", "json", "drill", "-p", str(deploy.path), *args)
    return proc, json.loads(proc.stdout)


def test_a_drill_proves_rollback_and_leaves_everything_as_it_was(warm: Deploy) -> None:
    deploy = warm
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    before = _hosts(deploy)
    assert before[1][0]["colors"]["blue"]["running"]  # v1 warm on blue
    with Load(deploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc, doc = _drill(deploy)
        load.stop.set()
    assert proc.returncode == 0, proc.stderr
    assert doc["kind"] == "drill" and doc["outcome"] == "succeeded", doc["message"]
    drill = doc["drill"]
    # the verdict comes after the post-switch window (1 s at 20/s: its last probe at 0.95 s)
    assert drill["passed"] and drill["restore_s"] < 5 and drill["detection_s"] >= 0.9
    assert drill["traffic"]["while_switched"]["requests"] > 0
    assert drill["traffic"]["errors"] == 0
    names = [s["name"] for s in doc["steps"]]
    assert "check:upload app" in names and "undo stop-idle" in names  # blue v1 warm again
    assert not any(n.startswith("ship:upload") for n in names)  # never uploaded
    # users saw only v2 (the drill released v2 to blue) and no error
    assert load.stats.versions.keys() == {"v2"} and load.stats.server_errors == 0
    assert not load.stats.failures
    assert _hosts(deploy) == before
    assert doc["evidence"]["recorded"]
    shown = json.loads(
        deploy.run("evidence", "show", str(doc["evidence"]["seq"]), "-p", str(deploy.path)).stdout
    )
    assert shown["kind"] == "drill" and shown["time_to_restore_s"] == doc["restore_seconds"]
    assert shown["drill"]["passed"]

    # --broken: the real post-switch gate has to catch the broken build
    proc, doc = _drill(deploy, "--broken")
    assert proc.returncode == 0, doc["message"]
    assert doc["drill"]["verdict_step"] == "post-switch-gate"
    assert doc["drill"]["traffic"]["while_switched"]["versions"].get("v2", 0) >= 1
    assert _hosts(deploy) == before

    # an impossible bound: the drill runs, restores, and fails (exit 8), recorded as failed
    proc, doc = _drill(deploy, "--bound", "1ms")
    assert proc.returncode == 8, doc["message"]
    assert doc["outcome"] == "failed" and "over the bound" in doc["message"]
    assert _hosts(deploy) == before
    listed = deploy.run("-o", "json", "evidence", "list", "-p", str(deploy.path), "--kind", "drill")
    outcomes = [r["outcome"] for r in json.loads(listed.stdout)]
    assert outcomes == ["succeeded", "succeeded", "failed"]
    score = json.loads(deploy.run("-o", "json", "score", "-p", str(deploy.path)).stdout)
    tested = next(i for i in score["items"] if i["id"] == "rollback_tested")
    assert tested["earned"]


def test_a_broken_build_its_gate_misses_fails_the_drill(warm: Deploy) -> None:
    _warm_playbook(warm, broken_vars={"unhealthy_after": "-1"})  # "broken" but healthy
    assert warm.release("v1").returncode == 0
    assert warm.release("v2").returncode == 0
    proc, doc = _drill(warm, "--broken")
    assert proc.returncode == 8
    assert "passed the post-switch gate" in doc["message"]
    assert warm.live()["version"] == "v2"


def test_a_drill_refuses_bad_input_with_one_line(deploy: Deploy, tmp_path: Path) -> None:
    proc = deploy.run("drill", "-p", str(deploy.path), "--bound", "soon")
    assert proc.returncode == 2 and "--bound 'soon'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = deploy.run("drill", "-p", str(deploy.path), "--broken")
    assert proc.returncode == 2 and "drill.broken_vars" in proc.stderr
    proc = deploy.run("drill", "-p", str(deploy.path))  # nothing live yet
    assert proc.returncode == 3 and "nothing is live" in proc.stderr + proc.stdout


def test_an_aborted_release_keeps_the_warm_color_warm(warm: Deploy) -> None:
    deploy = warm
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    failed = deploy.release("v3", "--var", "unhealthy_after=0")  # fails the pre-switch gate
    assert failed.returncode == 3, failed.stderr
    live, hosts = _hosts(deploy)
    assert live == "v2" and hosts[0]["colors"]["blue"] == {
        "version": "v1",
        "running": True,
        "routed": False,
        "live": False,
    }
    rollback = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert rollback.returncode == 0, rollback.stderr
    doc = json.loads(rollback.stdout)
    names = [s["name"] for s in doc["steps"]]
    assert "keep-warm" in names and "start" not in names  # a switch, not a redeploy
    assert doc["restore_seconds"] is not None and 0 < doc["restore_seconds"] < 30
    assert deploy.live()["version"] == "v1"
