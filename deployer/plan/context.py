"""What a plan is made from: the playbook with its values (:class:`Context`) and what the
hosts and the router showed (:class:`Observed`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.commands import files
from deployer.commands import nginx as nginx_cmd
from deployer.errors import InputError
from deployer.gates import Expectation
from deployer.plan.actions import Run, ScheduleStop, StopColor
from deployer.playbook.loader import LoadedPlaybook
from deployer.playbook.models import Host, Playbook
from deployer.playbook.variables import references, render, render_value
from deployer.values import Secret, Shell, Token

COLORS = ("blue", "green")


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


@dataclass(frozen=True)
class Observed:
    """What the hosts and the router showed before the operation."""

    live_color: str | None
    live_version: str | None
    upstream_text: str
    versions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # host -> color -> v
    running: Mapping[str, Mapping[str, bool]] = field(default_factory=dict)  # host -> color -> up
    #: what receives the release when it is not simply the other color (a Vercel deployment)
    idle: str | None = None
    #: target-specific facts (a Vercel target's production and candidate deployments)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def idle_color(self) -> str:
        if self.idle is not None:
            return self.idle
        return other(self.live_color) if self.live_color else "blue"

    def idle_version(self) -> str | None:
        seen = {v.get(self.idle_color) for v in self.versions.values()}
        return seen.pop() if len(seen) == 1 else None

    def idle_running_everywhere(self) -> bool:
        return bool(self.running) and all(r.get(self.idle_color) for r in self.running.values())


@dataclass(frozen=True)
class Context:
    """Everything a plan needs besides the observed state."""

    loaded: LoadedPlaybook
    env: Mapping[str, str]
    vars: Mapping[str, str] = field(default_factory=dict)

    @property
    def pb(self) -> Playbook:
        return self.loaded.model

    def defaults(self) -> Context:
        """The playbook's own vars, without this run's ``--var`` overrides: how a version
        other than the one being released is started again (a re-warmed color)."""
        return Context(self.loaded, self.env) if self.vars else self

    def values(self, host: Host, color: str = "", version: str = "") -> dict[str, Token]:
        pb = self.pb
        port = str(pb.colors.port(color)) if color else ""
        vals: dict[str, Token] = {
            "app": pb.app,
            "environment": pb.environment,
            "version": version,
            "color": color,
            "port": port,
            "host": host.name,
            "address": host.reach,
        }
        for name, template in pb.vars.items():
            try:
                vals[name] = render_value(self.vars.get(name, template), vals, self.env)
            except InputError as exc:
                raise InputError(f"vars.{name}: {exc}") from None
        vals["state_dir"] = _plain(render_value(pb.state_dir, vals, self.env))
        return vals

    def shell(self, template: str, host: Host, color: str = "", version: str = "") -> Shell:
        return render(template, self.values(host, color, version), self.env)

    def value(self, template: str, host: Host, color: str = "", version: str = "") -> str:
        return _plain(render_value(template, self.values(host, color, version), self.env))

    def env_names(self) -> list[str]:
        """Every environment variable the playbook references as ``${env:NAME}``."""
        return sorted(
            {
                ref[4:]
                for _, t in self.pb.templates()
                for ref in references(t)
                if ref.startswith("env:")
            }
        )

    def missing_env(self) -> list[str]:
        return [n for n in self.env_names() if n not in self.env]

    def secrets(self) -> list[Secret]:
        return [Secret(self.env[n], n) for n in self.env_names() if n in self.env]

    def state_dir(self, host: Host) -> str:
        return self.value(self.pb.state_dir, host)

    def owned_paths(self, host: Host) -> list[str]:
        """Where deployer writes and runs from on an app host: its state directory and each
        upload's destination (for a ``.../${version}`` destination, the directory the
        versions live in), for both colors. Each must be safe from other users all the way
        up (:func:`deployer.commands.files.check_owned`)."""
        paths = [self.state_dir(host)]
        for item in self.pb.ship:
            if item.upload is None:
                continue
            for color in COLORS:
                dest = self.value(item.upload.dest, host, color, "v").rstrip("/")
                if item.upload.dest.rstrip("/").endswith("/${version}"):
                    dest = dest.rsplit("/", 1)[0] or "/"
                paths.append(dest)
        return list(dict.fromkeys(p for p in paths if p.startswith("/")))

    def stop(self, host: Host, color: str) -> StopColor:
        """Stop a color now, calling off any stop timer it had."""
        cancel = files.cancel_stop(self.state_dir(host), color)
        return StopColor(
            host.name, color, cancel.then(self.shell(self.pb.service.stop, host, color))
        )

    def stop_later(self, host: Host, color: str) -> ScheduleStop:
        stop = self.shell(self.pb.service.stop, host, color)
        delay = self.pb.rollback.keep_warm
        return ScheduleStop(
            host.name, color, delay, files.schedule_stop(self.state_dir(host), color, delay, stop)
        )

    def rewarm(self, host: Host, color: str, version: str) -> Run:
        """Start ``version`` on ``color`` again the way a cold rollback would: its release
        directory must still be there (never re-uploaded), the ship's ``run`` items (links)
        are redone for it, and it stays warm for ``keep_warm`` again."""
        pb = self.pb
        state_dir = self.state_dir(host)
        commands: list[Shell] = []
        for item in pb.ship:
            if item.upload is not None:
                dest = self.value(item.upload.dest, host, color, version)
                commands.append(files.require_release(dest, version))
            elif item.run is not None:
                commands.append(self.shell(item.run, host, color, version))
        commands.append(self.shell(pb.service.start, host, color, version))
        commands.append(files.write_state(state_dir, color, version))
        later = self.stop_later(host, color)
        commands.append(later.command)
        return Run(host.name, tuple(commands), best_effort=True)

    def upstream(self, color: str, version: str) -> str:
        pb = self.pb
        servers = [f"{h.reach}:{pb.colors.port(color)}" for h in pb.app_hosts]
        return nginx_cmd.upstream_conf(
            pb.router.upstream_name or pb.app,
            color,
            version,
            servers,
            pb.router.keepalive,
            (pb.router.max_fails, pb.router.fail_timeout),
        )

    def servers(self, color: str) -> list[str]:
        return [f"{h.reach}:{self.pb.colors.port(color)}" for h in self.pb.app_hosts]

    def canary_upstream(self, live: tuple[str, str], canary: tuple[str, str], weight: int) -> str:
        pb = self.pb
        return nginx_cmd.canary_conf(
            pb.router.upstream_name or pb.app,
            (*live, self.servers(live[0])),
            (*canary, self.servers(canary[0])),
            weight,
            pb.router.keepalive,
        )

    def batch_upstream(
        self, live: tuple[str, str], new: tuple[str, str], moved: set[str], batch: tuple[int, int]
    ) -> str:
        """Hosts in ``moved`` on the new color, the others still on the old one."""
        pb = self.pb
        servers = [
            (f"{h.reach}:{pb.colors.port(new[0] if h.name in moved else live[0])}", h.name in moved)
            for h in pb.app_hosts
        ]
        return nginx_cmd.batch_conf(
            pb.router.upstream_name or pb.app,
            live,
            new,
            servers,
            batch,
            pb.router.keepalive,
            (pb.router.max_fails, pb.router.fail_timeout),
        )

    def host_servers(self, name: str) -> list[str]:
        """Every address:port the router may know a host by (both colors)."""
        h = self.pb.host(name)
        return [f"{h.reach}:{self.pb.colors.port(c)}" for c in COLORS]

    def expectation(self, gate: Any, host: Host, color: str, version: str) -> Expectation:
        fields = None
        if getattr(gate, "expect_json", None):
            vals = self.values(host, color, version)
            fields = {
                k: _plain(render_value(v, vals, self.env)) if isinstance(v, str) else v
                for k, v in gate.expect_json.items()
            }
        return Expectation(gate.expect_status, getattr(gate, "expect_body", None), fields)


def _plain(value: Token) -> str:
    return value.value if isinstance(value, Secret) else value
