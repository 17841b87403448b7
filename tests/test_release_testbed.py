"""Releases against the real sshd, nginx and example app (no mocks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx
import pytest
from conftest import Deploy, demo_playbook, write_playbook
from loadgen import Load

pytestmark = pytest.mark.testbed


def _doc(proc: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(proc.stdout)


def _running(deploy: Deploy, color: str) -> bool:
    ctl = deploy.root / color / "appctl.sh"
    return (
        ctl.exists()
        and subprocess.run([str(ctl), "status", str(deploy.root), color]).returncode == 0
    )


def test_successful_release_serves_new_version_and_stops_old_after_window(deploy: Deploy) -> None:
    first = deploy.release("v1")
    assert first.returncode == 0, first.stderr
    assert deploy.live()["version"] == "v1"
    second = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert second.returncode == 0, second.stderr
    doc = _doc(second)
    assert doc["outcome"] == "succeeded" and doc["from_color"] == "blue"
    assert doc["to_color"] == "green" and doc["from_version"] == "v1"
    assert deploy.live() == {**deploy.live(), "version": "v2", "color": "green"}
    assert [s["name"] for s in doc["steps"]][-2:] == ["stop-old-later", "prune-releases"]
    assert all(s["status"] == "ok" for s in doc["steps"])
    assert _running(deploy, "green")
    deadline = time.monotonic() + 10  # keep_warm is 500ms in the test playbook
    while _running(deploy, "blue") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(deploy, "blue")
    gates = {g["name"]: g for g in doc["gates"]}
    assert gates["pre_switch"]["passed"] and gates["post_switch"]["passed"]
    assert gates["post_switch"]["probes"] == 20  # 1 s at 20/s


def test_failed_pre_switch_gate_never_shows_new_version_and_exits_3(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    with Load(deploy.url + "/", rate=100, threads=4, seconds=30) as load:
        proc = deploy.release("v2", "--var", "unhealthy_after=0")
        load.stop.set()
    assert proc.returncode == 3, proc.stderr
    assert "pre-switch gate failed" in proc.stdout + proc.stderr
    assert load.stats.versions.keys() == {"v1"}
    assert load.stats.server_errors == 0 and not load.stats.failures
    assert deploy.live()["version"] == "v1"
    assert not _running(deploy, "green")  # the idle color was stopped again


def test_failed_post_switch_gate_restores_blue_and_exits_4(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    proc = deploy.run(
        "-o",
        "json",
        "release",
        "-p",
        str(deploy.path),
        "--version",
        "v2",
        "--var",
        "unhealthy_after=5",
    )
    assert proc.returncode == 4, proc.stderr
    doc = _doc(proc)
    assert doc["outcome"] == "rolled_back"
    assert deploy.live()["version"] == "v1" and deploy.live()["color"] == "blue"
    assert doc["restore_seconds"] is not None and doc["restore_seconds"] < 5
    names = [s["name"] for s in doc["steps"]]
    assert "undo switch" in names and "undo start" in names
    verify = [g for g in doc["gates"] if g["name"] == "verify"]
    assert verify and verify[0]["passed"]
    assert not _running(deploy, "green")


def test_zero_5xx_under_load_during_release_and_rollback(deploy: Deploy, tmp_path) -> None:
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["rollback"]["keep_warm"] = "60s"
    write_playbook(deploy.path, doc)
    assert deploy.release("v1").returncode == 0
    with Load(deploy.url + "/", rate=300, threads=8, seconds=60) as load:
        release = deploy.release("v2")
        rollback = deploy.run("rollback", "-p", str(deploy.path))
        load.stop.set()
    assert release.returncode == 0, release.stderr
    assert rollback.returncode == 0, rollback.stderr
    stats = load.stats
    assert stats.rate >= 200, f"load too thin to prove anything: {stats.rate:.0f} req/s"
    assert stats.server_errors == 0, stats.statuses
    assert not stats.failures, stats.failures[:5]
    assert {"v1", "v2"} <= set(stats.versions)
    assert deploy.live()["version"] == "v1"


def test_rollback_within_window_only_switches_to_warm_color(deploy: Deploy, tmp_path) -> None:
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["rollback"]["keep_warm"] = "60s"
    write_playbook(deploy.path, doc)
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    assert _running(deploy, "blue")  # warm
    proc = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    result = _doc(proc)
    names = [s["name"] for s in result["steps"]]
    assert "start" not in names and "keep-warm" in names and "switch" in names
    assert deploy.live() == {**deploy.live(), "version": "v1", "color": "blue"}
    timer = deploy.root / "state" / "blue.stop-timer"
    assert not timer.exists()  # blue's stop timer was called off: it stays up
    assert (deploy.root / "state" / "green.stop-timer").exists()


def test_rollback_redeploys_previous_version_when_old_color_was_stopped(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    deadline = time.monotonic() + 10
    while _running(deploy, "blue") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(deploy, "blue")
    proc = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    doc = _doc(proc)
    assert doc["kind"] == "rollback" and doc["version"] == "v1"
    assert "start" in [s["name"] for s in doc["steps"]]  # redeployed, not just switched
    assert deploy.live()["version"] == "v1"


def test_status_shows_live_and_idle_colors(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    proc = deploy.run("-o", "json", "status", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    doc = _doc(proc)
    assert doc["live_color"] == "blue" and doc["live_version"] == "v1"
    assert doc["hosts"][0]["colors"]["blue"] == {
        "version": "v1",
        "running": True,
        "routed": True,
        "live": True,
    }
    assert doc["lock"] is None and doc["unfinished"] is None


def test_second_release_is_refused_with_holder_while_lock_is_held(deploy: Deploy) -> None:
    lock_dir = str(deploy.path.parent / "deploy.lock")
    info = {
        "release_id": "r-other",
        "owner": "alice",
        "host": "ci-7",
        "pid": 4242,
        "acquired_at": time.time(),
        "ttl": 600,
    }
    os.makedirs(lock_dir, exist_ok=False)
    try:
        with open(f"{lock_dir}/info", "w") as fh:
            json.dump(info, fh)
        proc = deploy.release("v1")
        assert proc.returncode == 5
        assert "locked by alice@ci-7 (pid 4242, release r-other)" in proc.stderr
        as_json = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v1")
        doc = _doc(as_json)
        assert doc["exit_code"] == 5 and doc["error"] == "LockHeldError"
        assert not (deploy.root / "releases").exists()  # nothing ran
    finally:
        subprocess.run(["rm", "-rf", lock_dir], check=True)


def test_stale_lock_is_taken_over(deploy: Deploy) -> None:
    lock_dir = str(deploy.path.parent / "deploy.lock")
    os.makedirs(lock_dir, exist_ok=False)
    with open(f"{lock_dir}/info", "w") as fh:
        json.dump(
            {
                "release_id": "old",
                "owner": "bob",
                "host": "h",
                "pid": 1,
                "acquired_at": time.time() - 7200,
                "ttl": 60,
            },
            fh,
        )
    proc = deploy.release("v1")
    assert proc.returncode == 0, proc.stderr
    assert "taking over the lock of bob@h" in proc.stderr
    assert not os.path.exists(lock_dir)


def test_changed_host_key_is_refused(deploy: Deploy, tmp_path) -> None:
    bad = tmp_path / "known_hosts"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True
    )
    kind, key = (tmp_path / "k.pub").read_text().split()[:2]
    bad.write_text(f"[127.0.0.1]:{deploy.bed.ports.ssh} {kind} {key}\n")
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "j")
    doc["hosts"][0]["known_hosts"] = str(bad)
    pb = write_playbook(tmp_path / "bad.yml", doc)
    proc = deploy.run("release", "-p", str(pb), "--version", "v1")
    assert proc.returncode == 7
    assert "host key CHANGED" in proc.stderr and "Traceback" not in proc.stderr
    # --accept-new-host-key never overrides a changed key
    proc = deploy.run("release", "-p", str(pb), "--version", "v1", "--accept-new-host-key")
    assert proc.returncode == 7


def test_unknown_host_key_is_refused_unless_accepted(deploy: Deploy, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "j")
    doc["hosts"][0]["known_hosts"] = str(empty)
    pb = write_playbook(tmp_path / "new.yml", doc)
    proc = deploy.run("status", "-p", str(pb))
    assert proc.returncode == 7
    assert "is not in" in proc.stderr and "--accept-new-host-key" in proc.stderr
    proc = deploy.run("status", "-p", str(pb), "--accept-new-host-key")
    assert proc.returncode == 0, proc.stderr
    assert f"[127.0.0.1]:{deploy.bed.ports.ssh} ssh-ed25519" in empty.read_text()
    assert deploy.run("status", "-p", str(pb)).returncode == 0


@pytest.mark.parametrize(
    "version", ["v1; rm -rf /", "$(touch /tmp/pwned)", "../etc", "-rf", "v 1", "`id`", ""]
)
def test_hostile_versions_are_rejected_before_anything_runs(deploy: Deploy, version: str) -> None:
    proc = deploy.release(version)
    assert proc.returncode == 2
    assert "is not allowed" in proc.stderr
    assert not (deploy.root / "releases").exists()
    assert not os.path.exists("/tmp/pwned")


def test_hostile_var_is_rejected(deploy: Deploy) -> None:
    proc = deploy.release("v1", "--var", "unhealthy_after=1;reboot")
    assert proc.returncode == 2 and "is not allowed" in proc.stderr


def test_secret_values_never_reach_output_or_journal(deploy: Deploy, tmp_path) -> None:
    secret = "s3cr3t-TOKEN-value-42"
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["ship"].append(
        {
            "name": "write token",
            "run": "printf %s ${env:APP_TOKEN} > ${root}/token && echo ${env:APP_TOKEN} >&2",
        }
    )
    pb = write_playbook(tmp_path / "secret.yml", doc)
    proc = deploy.run(
        "-o", "json", "release", "-p", str(pb), "--version", "v1", env={"APP_TOKEN": secret}
    )
    assert proc.returncode == 0, proc.stderr
    assert (deploy.root / "token").read_text() == secret  # it ran with the real value
    plan = deploy.run(
        "plan", "-p", str(pb), "--version", "v2", "--live", "blue", env={"APP_TOKEN": secret}
    )
    assert "printf %s *** >" in plan.stdout
    journal = "".join(p.read_text() for p in (tmp_path / "journal").glob("*.journal"))
    assert secret.encode() not in (tmp_path / "journal" / "evidence.db").read_bytes()
    for text in (proc.stdout, proc.stderr, plan.stdout, plan.stderr, journal):
        assert secret not in text


def test_killed_release_needs_recovery_then_recover_restores_old_color(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["gates"]["post_switch"]["window"] = "30s"
    write_playbook(deploy.path, doc)
    log = deploy.path.parent / "killed-release.log"
    with log.open("w") as out:
        proc = deploy.spawn(
            "release",
            "-p",
            str(deploy.path),
            "--version",
            "v2",
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and deploy.live()["version"] != "v2":
            time.sleep(0.1)
        assert deploy.live()["version"] == "v2", log.read_text()
    finally:
        proc.send_signal(signal.SIGKILL)  # a crash: no cleanup at all
        proc.wait(timeout=10)
    refused = deploy.release("v3")
    assert refused.returncode == 6 and "deployer recover" in refused.stderr
    rec = deploy.run("-o", "json", "recover", "-p", str(deploy.path))
    assert rec.returncode == 0, rec.stderr
    assert _doc(rec)["outcome"] == "rolled_back"
    assert deploy.live()["version"] == "v1"
    doc["gates"]["post_switch"]["window"] = "1s"
    write_playbook(deploy.path, doc)
    assert deploy.release("v3").returncode == 0


def test_sigterm_during_post_switch_gate_rolls_back(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["gates"]["post_switch"]["window"] = "30s"
    write_playbook(deploy.path, doc)
    args = ("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    proc = deploy.spawn(*args, stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and deploy.live()["version"] != "v2":
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert json.loads(out)["outcome"] == "interrupted"
    assert deploy.live()["version"] == "v1"


def test_plan_prints_every_command_and_runs_nothing(deploy: Deploy) -> None:
    proc = deploy.run("plan", "-p", str(deploy.path), "--version", "v9", "--live", "blue")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"ln -sfn {deploy.root}/releases/v9 {deploy.root}/green" in out
    assert "stop-old-later @ bed" in out and "(after 0.5s: if [ -x" in out
    assert not (deploy.root / "releases").exists()
    dry = deploy.run(
        "-o", "json", "release", "-p", str(deploy.path), "--version", "v9", "--dry-run"
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["idle_color"] == "blue"  # asked the router: nothing live
    assert not (deploy.root / "releases").exists()


def test_router_stays_up_when_nginx_rejects_the_switch(deploy: Deploy, tmp_path) -> None:
    assert deploy.release("v1").returncode == 0
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "j")
    # the router's upstream file names another upstream than the playbook: it is not one
    # deployer may put back, so nothing starts (before, nginx rejected the switch)
    doc["router"]["upstream_name"] = "not-the-one-nginx-uses"
    pb = write_playbook(tmp_path / "broken-router.yml", doc)
    proc = deploy.run("release", "-p", str(pb), "--version", "v2")
    assert proc.returncode == 7 and "upstream 'demo', not 'not-the-one" in proc.stderr
    assert httpx.get(deploy.url + "/", trust_env=False).json()["version"] == "v1"
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "j")
    doc["router"]["test"] = "echo 'nginx: [emerg] unknown directive' >&2; false"
    pb = write_playbook(tmp_path / "broken-router.yml", doc)
    proc = deploy.run("release", "-p", str(pb), "--version", "v2")
    assert proc.returncode == 3 and "[emerg] unknown directive" in proc.stderr, proc.stderr
    assert httpx.get(deploy.url + "/", trust_env=False).json()["version"] == "v1"


def test_rollback_after_an_automatic_rollback_never_picks_the_failed_version(
    deploy: Deploy,
) -> None:
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    assert deploy.release("v3", "--var", "unhealthy_after=5").returncode == 4
    status = json.loads(deploy.run("-o", "json", "status", "-p", str(deploy.path)).stdout)
    assert status["idle_version"] == "v1"  # not the failed v3
    proc = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    assert _doc(proc)["version"] == "v1" and deploy.live()["version"] == "v1"
