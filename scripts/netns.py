"""Separate hosts on one machine: a network namespace per app host, each with its own
address in 10.200.0.0/16 (a veth pair to the root namespace) and its own sshd, so a fleet
release crosses real network paths and a host can be cut off like a pulled cable.

Safety first (measured on this kind of machine): taking the root side of a veth down
deletes its route, and traffic for that address would then follow the default route out
of the machine. So an ``unreachable`` guard route for 10.200.0.0/16 goes in before anything
else, hosts are cut by taking the *namespace* side down, and teardown removes namespaces,
veths and the guard route even after a failure (and removes leftovers of a killed run with
the same tag).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from testbed import sshd_config

GUARD = "10.200.0.0/16"
#: per-namespace files `ip netns exec` bind-mounts over /etc (see NetnsFleet._stock_root)
NETNS_ETC = Path("/etc/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def permitted() -> str | None:
    """None when network namespaces can be made here, else why not (for a skip reason)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    name = f"dplprobe{os.getpid() % 100000}"
    try:
        made = _ip("netns", "add", name, check=False)
    except FileNotFoundError:
        return "the ip command (iproute2) is not installed"
    if made.returncode != 0:
        return f"ip netns add is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


@dataclass
class NsHost:
    name: str
    ns: str
    outer: str  # the veth in the root namespace
    inner: str  # its peer, inside the namespace
    address: str  # the host's address (inside)
    gateway: str  # the root side's address
    dir: Path

    @property
    def sshd_pid(self) -> Path:
        return self.dir / "sshd.pid"


class NetnsFleet:
    """``count`` hosts named web1..webN; ``subnet`` picks 10.200.<subnet + i>.0/24 for host
    i (one range per test worker); ``tag`` (a few characters) names the namespaces and
    veths, so two workers never collide."""

    def __init__(self, root: Path, count: int, subnet: int, tag: str, client_key: Path):
        assert subnet >= 1 and subnet + count < 255 and len(tag) <= 6
        self.root, self.tag, self.client_key = root, tag, client_key
        self.metric = 1000 + subnet  # the guard is ours alone: removed without touching others'
        self.hosts = [
            NsHost(
                f"web{i}",
                f"dpl{tag}h{i}",
                f"v{tag}{i}o",
                f"v{tag}{i}i",
                f"10.200.{subnet + i}.2",
                f"10.200.{subnet + i}.1",
                root / f"web{i}",
            )
            for i in range(1, count + 1)
        ]
        self.known_hosts = root / "known_hosts"

    # ----- up -----
    def up(self) -> None:
        self.down()  # leftovers of a killed run with the same tag
        _ip("route", "add", "unreachable", GUARD, "metric", str(self.metric))
        lines = []
        for h in self.hosts:
            h.dir.mkdir(parents=True, exist_ok=True)
            _ip("netns", "add", h.ns)
            _ip("link", "add", h.outer, "type", "veth", "peer", "name", h.inner, "netns", h.ns)
            _ip("addr", "add", f"{h.gateway}/24", "dev", h.outer)
            _ip("link", "set", h.outer, "up")
            _ip("-n", h.ns, "addr", "add", f"{h.address}/24", "dev", h.inner)
            _ip("-n", h.ns, "link", "set", h.inner, "up")
            _ip("-n", h.ns, "link", "set", "lo", "up")
            _ip("-n", h.ns, "route", "add", "default", "via", h.gateway)
            self._stock_root(h)
            lines.append(self._sshd(h))
        self.known_hosts.write_text("".join(lines))
        for h in self.hosts:
            self._wait(h.address, 22)

    def _stock_root(self, h: NsHost) -> None:
        """Root on the host gets a home of its own with Debian's stock rc files
        (/etc/netns/NS/passwd, bind-mounted over /etc/passwd by `ip netns exec`). The hosts
        share this machine's filesystem: its root's ``.bashrc`` runs ``pyenv init``, whose
        rehash takes a lock in the one shared ~/.pyenv, so fifty "hosts" queued on one lock
        (up to 3 s per SSH session), which separate hosts never do."""
        home = h.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        for rc in (".bashrc", ".profile"):
            skel = Path("/etc/skel") / rc
            (home / rc).write_text(skel.read_text() if skel.is_file() else "")
        users = []
        for line in Path("/etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) == 7 and fields[0] == "root":
                fields[5] = str(home)
            users.append(":".join(fields))
        etc = NETNS_ETC / h.ns
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "passwd").write_text("\n".join(users) + "\n")

    def _sshd(self, h: NsHost) -> str:
        key = h.dir / "ssh_host_ed25519_key"
        if not key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        auth = h.dir / "authorized_keys"
        auth.write_text(Path(f"{self.client_key}.pub").read_text())
        auth.chmod(0o600)
        config = h.dir / "sshd_config"
        config.write_text(sshd_config(22, h.address, key, h.sshd_pid, auth))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                h.ns,
                "/usr/sbin/sshd",
                "-f",
                str(config),
                "-E",
                str(h.dir / "sshd.log"),
            ],
            check=True,
        )
        kind, blob = Path(f"{key}.pub").read_text().split()[:2]
        return f"{h.address} {kind} {blob}\n"

    @staticmethod
    def _wait(address: str, port: int, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with socket.create_connection((address, port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {address}:{port}") from None
                time.sleep(0.05)

    # ----- faults -----
    def cut(self, name: str) -> None:
        """Pull the cable: the namespace side goes down (the root side's route stays)."""
        _ip("-n", self.host(name).ns, "link", "set", self.host(name).inner, "down")

    def mend(self, name: str) -> None:
        h = self.host(name)
        _ip("-n", h.ns, "link", "set", h.inner, "up")
        _ip("-n", h.ns, "route", "replace", "default", "via", h.gateway)
        subprocess.run(  # a slow link (see `slow`) back to full speed
            ["tc", "qdisc", "del", "dev", h.outer, "root"], capture_output=True, check=False
        )

    def slow(self, name: str, rate: str) -> None:
        """A slow link to the host (token bucket on the root side: what is sent to it)."""
        subprocess.run(
            ["tc", "qdisc", "replace", "dev", self.host(name).outer, "root", "tbf",
             "rate", rate, "burst", "32kb", "latency", "400ms"],
            check=True,
        )  # fmt: skip

    def kill(self, name: str, pattern: str = "app.py") -> None:
        """Kill the host's processes whose command line holds ``pattern``. Not `pkill` run
        inside the namespace: namespaces share the pid space, so that would kill every
        matching process on the machine (another test's apps too)."""
        for pid in _ip("netns", "pids", self.host(name).ns, check=False).stdout.split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                if pattern.encode() in cmdline:
                    os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass

    def host(self, name: str) -> NsHost:
        return next(h for h in self.hosts if h.name == name)

    # ----- down -----
    def down(self) -> None:
        """Everything this fleet made, whatever state it is in; never raises."""
        for h in self.hosts:
            pids = _ip("netns", "pids", h.ns, check=False).stdout.split()
            for pid in pids:  # sshd, apps, their timers: nothing outlives its namespace
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", h.ns, check=False)
            _ip("link", "del", h.outer, check=False)
            shutil.rmtree(NETNS_ETC / h.ns, ignore_errors=True)
        _ip("route", "del", "unreachable", GUARD, "metric", str(self.metric), check=False)

    def leftovers(self) -> list[str]:
        """What of this fleet still exists (a test asserts teardown left nothing)."""
        out = []
        names = _ip("netns", "list", check=False).stdout
        out += [h.ns for h in self.hosts if h.ns in names.split()]
        out += [str(NETNS_ETC / h.ns) for h in self.hosts if (NETNS_ETC / h.ns).exists()]
        links = _ip("-o", "link", "show", check=False).stdout
        out += [h.outer for h in self.hosts if f" {h.outer}@" in links or f" {h.outer}:" in links]
        routes = _ip("route", "show", "type", "unreachable", check=False).stdout
        out += [
            f"guard metric {self.metric}"
            for ln in routes.splitlines()
            if GUARD in ln and f"metric {self.metric}" in ln
        ]
        return out
