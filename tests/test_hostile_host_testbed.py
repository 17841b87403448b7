"""A hostile local user on the host: nobody but root (or deployer's user) steers deployer.

The attacker is a real unprivileged user on the bed. Owning a directory above the app's
root lets her swap what deployer runs, even for `deployer status`; a pid she plants in a
timer file, or a process she names "deployer", must not make deployer signal her choice of
processes or hold its lock forever.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Deploy, demo_playbook, write_playbook
from test_faults_testbed import _attacker

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the attacker can reach (under /tmp, root's, mode 755)."""
    d = Path(tempfile.mkdtemp(prefix="deployer-hostile-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _as(user: str, script: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["runuser", "-u", user, "--", "sh", "-c", script])


def test_a_directory_another_user_owns_above_the_app_is_refused_and_runs_nothing(
    deploy: Deploy, shared_dir: Path
) -> None:
    user = _attacker()
    srv = shared_dir / "srv"
    srv.mkdir()
    root = srv / "app"
    root.mkdir()
    doc = demo_playbook(deploy.bed, root, deploy.path.parent / "journal")
    write_playbook(deploy.path, doc)
    try:
        assert deploy.release("v1").returncode == 0
        # she owns the directory above the app's root: she swaps the root for her own
        shutil.chown(srv, user)
        pwned = srv / "pwned"
        evil = f"{srv}/evil"
        script = (
            f"mkdir -p {evil} && printf '#!/bin/sh\\nid > {pwned}\\n' > {evil}/appctl.sh && "
            f"chmod 755 {evil}/appctl.sh && mv {root} {srv}/app.old && mkdir {root} && "
            f"ln -s {evil} {root}/blue && ln -s {evil} {root}/green && mkdir {root}/state"
        )
        assert _as(user, script).wait(timeout=10) == 0
        status = deploy.run("-o", "json", "status", "-p", str(deploy.path))
        assert status.returncode == 0, status.stderr
        host = json.loads(status.stdout)["hosts"][0]
        uid = os.stat(srv).st_uid
        assert f"{srv}/app/state: owned by uid {uid}" in str(host["health"]), host
        release = deploy.release("v2")
        assert release.returncode == 7, release.stderr
        assert f"owned by uid {uid}" in release.stderr and str(srv) in release.stderr
        assert not pwned.exists()
    finally:
        deploy.bed.stop_app(srv / "app.old")
        deploy.bed.stop_app(root)


def test_a_pid_planted_in_a_timer_file_signals_nothing(deploy: Deploy) -> None:
    user = _attacker()
    assert deploy.release("v1").returncode == 0
    victim = subprocess.Popen(
        ["runuser", "-u", user, "--", "setsid", "sleep", "600"], start_new_session=True
    )
    try:
        time.sleep(0.3)
        pid = subprocess.run(
            ["pgrep", "-u", user, "-x", "sleep", "-n"], capture_output=True, text=True
        ).stdout.strip()
        assert pid.isdigit()
        # the idle color's stop timer is called off by the next release's stop-idle
        (deploy.root / "state" / "green.stop-timer").write_text(f"{pid}\n")
        assert deploy.release("v2").returncode == 0
        os.kill(int(pid), 0)  # still alive: never signalled
        assert not (deploy.root / "state" / "green.stop-timer").exists()
    finally:
        subprocess.run(["pkill", "-u", user, "-x", "sleep"], check=False)
        victim.wait(timeout=10)


def test_a_process_named_deployer_never_holds_the_lock(deploy: Deploy) -> None:
    import socket

    user = _attacker()
    fake = subprocess.Popen(
        ["runuser", "-u", user, "--", "bash", "-c", "exec -a deployer-fake sleep 600"]
    )
    try:
        time.sleep(0.3)
        pid = int(
            subprocess.run(
                ["pgrep", "-u", user, "-f", "deployer-fake"], capture_output=True, text=True
            ).stdout.split()[0]
        )
        lock = deploy.path.parent / "deploy.lock"
        lock.mkdir()
        now = time.time()
        info = {
            "release_id": "20261205T000000-deadbeef",
            "owner": "root",
            "host": socket.gethostname(),
            "pid": pid,
            "acquired_at": now,
            "ttl": 900,
            "renewed_at": now,
            "uid": 0,
            "started": "another-boot:123",
        }
        (lock / "info").write_text(json.dumps(info))
        # a deployer whose pid the attacker's process now has: its process is gone
        proc = deploy.release("v1")
        assert proc.returncode == 0, proc.stderr
        # an old record that does not say which process it is: the TTL decides, and
        # `unlock` is never refused because of a process that merely looks like deployer
        lock.mkdir()
        (lock / "info").write_text(
            json.dumps({k: v for k, v in info.items() if k not in ("uid", "started")})
        )
        refused = deploy.release("v2")
        assert refused.returncode == 5 and "stale after" in refused.stderr, refused.stderr
        ok = deploy.run("unlock", "-p", str(deploy.path), "--reason", "holder is a fake")
        assert ok.returncode == 0, ok.stderr
    finally:
        fake.terminate()
        subprocess.run(["pkill", "-u", user, "-f", "deployer-fake"], check=False)
        fake.wait(timeout=10)
