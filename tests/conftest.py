"""Fixtures: a real test bed (sshd + nginx, PostgreSQL on demand) on private loopback ports.

The bed is started once per test session in a temporary directory and stopped (by pid) at
the end; every app a test starts is stopped by the test's own teardown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from netns import NetnsFleet, permitted  # noqa: E402
from testbed import Ports, Testbed, clear_stale_shell_locks, write_playbook  # noqa: E402

#: pytest-xdist workers (gw0, gw1, ...) each get their own bed: ports shifted by 100 per worker
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_OFF = 100 * _WORKER
TEST_PORTS = Ports(
    ssh=22229 + _OFF,
    http=18089 + _OFF,
    pg=54339 + _OFF,
    blue=18001 + _OFF,
    green=18002 + _OFF,
    prom=19390 + _OFF,
)


def _need(binary: str) -> None:
    if shutil.which(binary) is None and not Path(binary).exists():
        pytest.fail(f"{binary} is not installed: run `make install` (scripts/install.sh)")


def _stop_abandoned_beds() -> None:
    """Beds a killed test run left behind (its sshd and nginx would hold this worker's
    ports): stopped by their own pid files, only when the pytest that owned them is gone."""
    for old in Path(tempfile.gettempdir()).glob("deployer-bed-*"):
        try:
            owner = int((old / "owner.pid").read_text())
            os.kill(owner, 0)
            continue  # its run is still going (another worker, another run)
        except (OSError, ValueError):
            pass  # no owner record, or the owner is gone
        if not (old / "owner.pid").exists():
            continue  # not made by this fixture (or too old to say): leave it alone
        Testbed(old, TEST_PORTS).down()
        shutil.rmtree(old, ignore_errors=True)


@pytest.fixture(scope="session")
def bed() -> Iterator[Testbed]:
    if os.geteuid() != 0:
        pytest.skip("the test bed needs root (sshd, the postgres user); run `make test` as root")
    for binary in ("/usr/sbin/sshd", "nginx", "ssh-keygen"):
        _need(binary)
    _stop_abandoned_beds()
    clear_stale_shell_locks()
    root = Path(tempfile.mkdtemp(prefix="deployer-bed-"))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    testbed = Testbed(root, TEST_PORTS)
    try:
        testbed.up({"ssh", "nginx"})
        yield testbed
    finally:
        testbed.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_bed(bed: Testbed) -> Testbed:
    bed.up_pg()
    return bed


@pytest.fixture(scope="session")
def prom_bed(bed: Testbed) -> Testbed:
    """The bed with Prometheus scraping both colors (skips when it cannot be installed)."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (scripts/install.sh installs it)")
    bed.up_prometheus()
    return bed


@dataclass
class Deploy:
    """One test's app on the bed: its playbook, and helpers to run deployer on it."""

    bed: Testbed
    path: Path
    root: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "deployer", *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=ROOT,
            check=False,
        )

    def spawn(
        self, *args: str, stdout: Any = subprocess.DEVNULL, stderr: Any = subprocess.DEVNULL
    ) -> subprocess.Popen[str]:
        """`deployer ARGS` in the background, to signal or kill it mid-operation."""
        return subprocess.Popen(
            [sys.executable, "-m", "deployer", *args],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )

    def release(self, version: str, *extra: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("release", "-p", str(self.path), "--version", version, *extra, **kw)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bed.ports.http}"

    def live(self) -> dict[str, Any]:
        import httpx

        return dict(httpx.get(self.url + "/", timeout=5, trust_env=False).json())


def demo_playbook(bed: Testbed, root: Path, journal: Path, **overrides: Any) -> dict[str, Any]:
    return bed.playbook(root, journal, **overrides)


@pytest.fixture
def deploy(bed: Testbed, tmp_path: Path) -> Iterator[Deploy]:
    """A fresh app root and playbook; the router starts from a placeholder upstream, and no
    app from an earlier test holds the colors' ports (one stray app would fail every test
    after it)."""
    clear_stale_shell_locks()
    for port in (bed.ports.blue, bed.ports.green):
        subprocess.run(["pkill", "-f", "--", f"app\\.py .*--port {port} "], check=False)
    bed.reset_router()
    root = tmp_path / "app"
    root.mkdir()
    path = write_playbook(tmp_path / "demo.yml", demo_playbook(bed, root, tmp_path / "journal"))
    d = Deploy(bed, path, root)
    try:
        yield d
    finally:
        bed.stop_app(root)


# ----- three app hosts in network namespaces (test_fleet_testbed, test_lost_hosts_testbed) -----

_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
FLEET_HOSTS = ["web1", "web2", "web3"]


@pytest.fixture(scope="module")
def fleet(bed: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsFleet]:
    why = permitted()
    if why is not None:
        pytest.skip(f"no network namespaces: {why}")
    root = tmp_path_factory.mktemp("fleet")
    subnet, tag = 11 + 50 * _WORKER, f"w{_WORKER}"
    f = NetnsFleet(root, len(FLEET_HOSTS), subnet=subnet, tag=tag, client_key=bed.client_key)
    try:
        f.up()
        yield f
    finally:
        f.down()
        time.sleep(0.3)  # namespace deletion is asynchronous
        assert not f.leftovers(), f.leftovers()


@pytest.fixture
def fdeploy(bed: Any, fleet: NetnsFleet, tmp_path: Path) -> Iterator[Deploy]:
    """The demo playbook on the three namespace hosts, routed by the bed's nginx (the bed's
    own sshd is the router host). Per host and version, a file can make the app misbehave."""
    for h in fleet.hosts:
        fleet.mend(h.name)
        fleet.kill(h.name)
        for f in h.dir.glob("fault-*"):
            f.unlink()
    bed.reset_router()
    doc = bed.playbook(Path("/unused"), tmp_path / "journal")
    router = dict(doc["hosts"][0], name="lb", runs_app=False)
    doc["hosts"] = [router] + [
        {
            "name": h.name,
            "address": h.address,
            "user": "root",
            "key": str(bed.client_key),
            "known_hosts": str(fleet.known_hosts),
        }
        for h in fleet.hosts
    ]
    doc["router"]["host"] = "lb"
    doc["vars"]["root"] = f"{fleet.root}/${{host}}/app"
    # fault-VERSION under a host's dir: the app's extra arguments (unhealthy-after, slow-after,
    # health-delay) for that version only
    doc["service"]["start"] = (
        "APP_HOST=0.0.0.0 ${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} "
        f"$(cat {fleet.root}/${{host}}/fault-${{version}} 2>/dev/null || echo -1)"
    )
    doc["fleet"] = {"connect_timeout": "2s", "connect_attempts": 2}
    doc["gates"]["pre_switch"].update({"budget": "6s", "timeout": "1s"})
    doc["gates"]["post_switch"].update({"window": "3s", "timeout": "1s"})
    path = write_playbook(tmp_path / "fleet.yml", doc)
    d = Deploy(bed, path, fleet.root)
    try:
        yield d
    finally:
        for h in fleet.hosts:
            fleet.mend(h.name)
            fleet.kill(h.name)
