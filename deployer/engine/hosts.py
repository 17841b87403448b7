"""One runner per host, opened on first use and closed together."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from deployer.adapters.hosts import SshRunner
from deployer.adapters.local import LocalRunner
from deployer.adapters.nginx import NginxAdapter
from deployer.adapters.routers import Routers
from deployer.plan import Context
from deployer.ports import Runner

#: the routers' connections get this long alone before the hosts' start (see warm)
ROUTERS_FIRST = 0.5


class HostPool:
    def __init__(self, ctx: Context, *, accept_new_host_key: bool = False):
        self.ctx = ctx
        self.accept_new_host_key = accept_new_host_key
        self._runners: dict[str, Runner] = {}
        self._router: Routers | None = None
        self._lock = threading.RLock()  # hosts' lanes ask for runners from several threads

    def runner(self, name: str) -> Runner:
        """The shared runner of a host (one connection for the whole operation)."""
        with self._lock:
            if name not in self._runners:
                self._runners[name] = self.fresh_runner(name)
            return self._runners[name]

    def fresh_runner(self, name: str) -> Runner:
        """A runner of its own (the lock's heartbeat thread); the caller closes it."""
        host = self.ctx.pb.host(name)
        secrets = self.ctx.secrets()
        if host.transport == "local":
            return LocalRunner(host, secrets)
        loaded = self.ctx.loaded
        key = loaded.local_path(host.key) if host.key else None
        known = (
            loaded.local_path(host.known_hosts)
            if host.known_hosts
            else Path("~/.ssh/known_hosts").expanduser()
        )
        return SshRunner(
            host,
            key=key,
            known_hosts=known,
            accept_new_host_key=self.accept_new_host_key,
            secrets=secrets,
            **_connect_policy(self.ctx.pb),
        )

    @property
    def router(self) -> Routers:
        """Every router (``router.hosts``), switched together; most playbooks have one."""
        with self._lock:
            if self._router is None:
                pb, ctx, r = self.ctx.pb, self.ctx, self.ctx.pb.router
                hosts = pb.router_hosts
                each = [
                    NginxAdapter(
                        runner=self.runner(host.name),
                        upstream_file=ctx.value(r.upstream_file, host),
                        test=ctx.shell(r.test, host),
                        reload=ctx.shell(r.reload, host),
                        pid_file=ctx.value(r.pid_file, host),
                        drain_timeout=r.drain_timeout,
                    )
                    for host in hosts
                ]
                logs = [ctx.value(r.access_log, h) if r.access_log else None for h in hosts]
                self._router = Routers(each, logs)
            return self._router

    def warm(self, hold: bool = True) -> None:
        """Every SSH host's connection and shell opened in the background (daemon threads),
        while the operation takes its lock: connections cost most of a small release's own
        time, and each host's first command would otherwise open its own in turn. The
        routers' connections go first (the lock, the operation record and the upstream are
        read there before anything else, and a handshake among a hundred others took 0.4 s
        with 20 hosts on two cores and 1.4 s with 100); the hosts' start once the routers
        are connected (at most :data:`ROUTERS_FIRST` s later). Errors are met again, and
        reported, by the first real command."""
        names = {h.name for h in getattr(self.ctx.pb, "router_hosts", None) or []}
        first: list[tuple[str, Any]] = []
        rest: list[tuple[str, Any]] = []
        for host in getattr(self.ctx.pb, "hosts", None) or []:
            if getattr(host, "transport", "ssh") == "local":
                continue
            warm = getattr(self.runner(host.name), "warm", None)
            if warm is not None:
                (first if host.name in names else rest).append((host.name, warm))

        def start(name: str, warm: Any, connected: threading.Event | None = None) -> None:
            threading.Thread(
                target=warm, args=(hold and name in names, connected), name=f"warm-{name}",
                daemon=True,
            ).start()  # fmt: skip

        events = [threading.Event() for _ in first]
        for (name, warm), event in zip(first, events, strict=True):
            start(name, warm, event)

        def then_the_hosts() -> None:
            deadline = time.monotonic() + ROUTERS_FIRST
            for event in events:
                event.wait(max(0.0, deadline - time.monotonic()))
            for name, warm in rest:
                start(name, warm)

        threading.Thread(target=then_the_hosts, name="warm-hosts", daemon=True).start()

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
        self._runners.clear()


def _connect_policy(pb: object) -> dict[str, Any]:
    fleet = getattr(pb, "fleet", None)  # a platform target's playbook has no fleet
    if fleet is None:
        return {}
    return {"connect_timeout": fleet.connect_timeout, "connect_attempts": fleet.connect_attempts}
