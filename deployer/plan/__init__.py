"""Playbook + observed state -> the saga's steps. Pure: no I/O, every value passed in.

A step has a *do* action and, where it changed something users could notice, an *undo*.
Steps before the pivot (the post-switch gate) are compensated in reverse when one fails;
steps after it (keep warm, stop the old color) only go forward.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from deployer.commands import alembic as alembic_cmd
from deployer.commands import files
from deployer.commands import nginx as nginx_cmd
from deployer.commands.shell import Secret, Shell, Token
from deployer.gates import Expectation
from deployer.playbook.loader import LoadedPlaybook
from deployer.playbook.models import Host, Playbook
from deployer.playbook.variables import references, render, render_value

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

    @property
    def idle_color(self) -> str:
        return other(self.live_color) if self.live_color else "blue"

    def idle_version(self) -> str | None:
        seen = {v.get(self.idle_color) for v in self.versions.values()}
        return seen.pop() if len(seen) == 1 else None

    def idle_running_everywhere(self) -> bool:
        return bool(self.running) and all(r.get(self.idle_color) for r in self.running.values())


@dataclass(frozen=True)
class Run:
    host: str
    commands: tuple[Shell, ...]


@dataclass(frozen=True)
class Upload:
    host: str
    src: Path
    dest: str
    version: str = ""


@dataclass(frozen=True)
class Gate:
    kind: Literal["pre_switch", "post_switch"]
    urls: tuple[str, ...]
    expect: Expectation
    #: per url (pre-switch): the host and the status command that says the process runs
    alive: tuple[tuple[str, Shell], ...] = ()


@dataclass(frozen=True)
class Switch:
    color: str | None
    version: str | None
    conf: str


@dataclass(frozen=True)
class ArmDeadMan:
    """A timer on the router host that puts ``conf`` back after ``seconds``."""

    conf: str
    seconds: float


@dataclass(frozen=True)
class DisarmDeadMan:
    """Call the timer off; with ``must_not_have_fired``, a timer that already switched
    back fails the step (the release did not stay live)."""

    must_not_have_fired: bool = True


@dataclass(frozen=True)
class Commit:
    """The commit point: the router's dead-man timer is called off (``dead_man``) and its
    operation record says the release stands, in one round trip."""

    dead_man: bool = False


@dataclass(frozen=True)
class StopColor:
    host: str
    color: str
    command: Shell


@dataclass(frozen=True)
class ScheduleStop:
    """Keep ``color`` warm for the rollback window, then stop it (a timer on the host)."""

    host: str
    color: str
    seconds: float
    command: Shell


@dataclass(frozen=True)
class Migrate:
    """Lint the pending revisions (local scripts), then `alembic upgrade head` on the host."""

    host: str
    scripts: Path
    current: Shell
    upgrade: Shell
    retries: int
    acknowledge: tuple[Any, ...]


Action = (
    Run
    | Upload
    | Gate
    | Switch
    | StopColor
    | ScheduleStop
    | Migrate
    | ArmDeadMan
    | DisarmDeadMan
    | Commit
)


@dataclass(frozen=True)
class Step:
    name: str
    host: str | None
    do: Action
    undo: Action | None = None
    after_pivot: bool = False

    @property
    def key(self) -> str:
        return f"{self.name}@{self.host}" if self.host else self.name


@dataclass(frozen=True)
class Context:
    """Everything a plan needs besides the observed state."""

    loaded: LoadedPlaybook
    env: Mapping[str, str]
    vars: Mapping[str, str] = field(default_factory=dict)

    @property
    def pb(self) -> Playbook:
        return self.loaded.model

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
            vals[name] = render_value(self.vars.get(name, template), vals, self.env)
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

    def upstream(self, color: str, version: str) -> str:
        pb = self.pb
        servers = [f"{h.reach}:{pb.colors.port(color)}" for h in pb.app_hosts]
        return nginx_cmd.upstream_conf(
            pb.router.upstream_name or pb.app, color, version, servers, pb.router.keepalive
        )

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


def prepare_steps(
    ctx: Context,
    color: str,
    version: str,
    observed: Observed | None = None,
    *,
    rollback: bool = False,
) -> list[Step]:
    """Ship ``version`` to ``color`` on every host and start it (undo: stop it and put back
    the version the color had, so a later rollback never picks the failed one).

    A rollback never uploads the local folder (it holds newer code): it checks, before
    anything changes, that the version's directory is still on each host and starts it
    from there; only an ``upload.src`` that names the version (``builds/${version}``) is
    shipped, and only if missing (releases are immutable)."""
    pb = ctx.pb
    checks: list[Step] = []
    steps: list[Step] = []
    starts: list[Step] = []
    for host in pb.app_hosts:
        steps.append(Step("stop-idle", host.name, ctx.stop(host, color)))
        for item in pb.ship:
            if item.upload is not None:
                dest = ctx.value(item.upload.dest, host, color, version)
                versioned = "${version}" in item.upload.src
                if rollback and not versioned:
                    check = Run(host.name, (files.require_release(dest, version),))
                    checks.append(Step(f"check:{item.label}", host.name, check))
                    continue
                src = ctx.loaded.local_path(item.upload.src.replace("${version}", version))
                upload = Upload(host.name, src, dest, version)
                steps.append(Step(f"ship:{item.label}", host.name, upload))
            elif item.run is not None:
                cmd = ctx.shell(item.run, host, color, version)
                steps.append(Step(f"ship:{item.label}", host.name, Run(host.name, (cmd,))))
        state_dir = ctx.value(pb.state_dir, host, color, version)
        start = (
            ctx.shell(pb.service.start, host, color, version),
            files.write_state(state_dir, color, version),
        )
        before = observed.versions.get(host.name, {}).get(color) if observed else None
        stop = ctx.stop(host, color)
        undo = StopColor(
            host.name, color, stop.command.then(files.restore_state(state_dir, color, before))
        )
        starts.append(Step("start", host.name, Run(host.name, start), undo=undo))
    if pb.migrate is not None and not rollback:  # a rollback never migrates forward
        steps.append(migrate_step(ctx, color, version))
    return checks + steps + starts


def migrate_step(ctx: Context, color: str, version: str) -> Step:
    """Expand-only migrations, before the new color starts (the old one keeps serving)."""
    m = ctx.pb.migrate
    assert m is not None
    host = ctx.pb.migrate_host
    command = ctx.shell(m.command, host, color, version)
    url = render_value(m.database_url, ctx.values(host, color, version), ctx.env)

    def run(*args: str) -> Shell:
        assert m is not None
        return alembic_cmd.alembic(command, url, m.lock_timeout, m.statement_timeout, *args)

    action = Migrate(
        host.name,
        ctx.loaded.local_path(m.scripts),
        run("current"),
        run("upgrade", "head"),
        m.retries,
        tuple(m.acknowledge),
    )
    return Step("migrate", host.name, action)


def switch_steps(ctx: Context, observed: Observed, color: str, version: str) -> list[Step]:
    """Pre-switch gate, the switch (undo: the previous upstream), post-switch gate, finish."""
    pb = ctx.pb
    pre = pb.gates.pre_switch
    first = pb.app_hosts[0]
    pre_urls = tuple(f"http://{h.reach}:{pb.colors.port(color)}{pre.path}" for h in pb.app_hosts)
    post = pb.gates.post_switch
    post_url = pb.router.url.rstrip("/") + post.path
    router = pb.router_host.name
    margin = pb.router.dead_man_margin
    dead_man = bool(margin and observed.live_color and observed.upstream_text)
    deadline = post.window + post.timeout + margin
    steps = [
        Step(
            "pre-switch-gate",
            None,
            Gate(
                "pre_switch",
                pre_urls,
                ctx.expectation(pre, first, color, version),
                tuple((h.name, ctx.shell(pb.service.status, h, color)) for h in pb.app_hosts),
            ),
        ),
        Step(
            "switch",
            router,
            Switch(color, version, ctx.upstream(color, version)),
            undo=Switch(observed.live_color, observed.live_version, observed.upstream_text),
        ),
        Step(
            "post-switch-gate",
            None,
            Gate("post_switch", (post_url,), ctx.expectation(post, first, color, version)),
        ),
    ]
    if dead_man:  # bounds users' exposure if deployer dies after the switch
        arm = Step(
            "arm-dead-man",
            router,
            ArmDeadMan(observed.upstream_text, deadline),
            undo=DisarmDeadMan(must_not_have_fired=False),
        )
        steps.insert(1, arm)
    steps.append(Step("commit", router, Commit(dead_man)))  # the last step before the pivot
    if observed.live_color:
        old = observed.live_color
        steps += [
            Step("stop-old-later", h.name, ctx.stop_later(h, old), after_pivot=True)
            for h in pb.app_hosts
        ]
    steps += prune_steps(ctx, observed, color, version)
    return steps


def prune_steps(ctx: Context, observed: Observed, color: str, version: str) -> list[Step]:
    """Keep the newest ``keep_releases`` versions under each ``…/${version}`` upload
    directory, never the new one nor the warm one."""
    pb = ctx.pb
    protect = [v for v in (version, observed.live_version) if v]
    out = []
    for host in pb.app_hosts:
        for item in pb.ship:
            if item.upload is None or not item.upload.dest.rstrip("/").endswith("/${version}"):
                continue
            dest = ctx.value(item.upload.dest, host, color, version)
            parent = dest.rstrip("/").rsplit("/", 1)[0]
            cmd = files.prune_releases(parent, pb.keep_releases, protect)
            out.append(Step("prune-releases", host.name, Run(host.name, (cmd,)), after_pivot=True))
    return out


def release_plan(ctx: Context, observed: Observed, version: str) -> list[Step]:
    color = observed.idle_color
    return prepare_steps(ctx, color, version, observed) + switch_steps(
        ctx, observed, color, version
    )


def rollback_plan(ctx: Context, observed: Observed) -> tuple[str, list[Step]]:
    """Back to the idle color's recorded version: switch if it is warm, else redeploy it."""
    version = observed.idle_version()
    if version is None:
        from deployer.errors import AbortedError

        raise AbortedError(
            f"no previous version recorded for the idle color {observed.idle_color}; "
            "nothing to roll back to"
        )
    color = observed.idle_color
    if observed.idle_running_everywhere():
        keep = [
            Step("keep-warm", h.name, Run(h.name, (files.cancel_stop(ctx.state_dir(h), color),)))
            for h in ctx.pb.app_hosts
        ]
        return version, keep + switch_steps(ctx, observed, color, version)
    steps = prepare_steps(ctx, color, version, observed, rollback=True)
    return version, steps + switch_steps(ctx, observed, color, version)


def describe(action: Action) -> list[str]:
    """What an action does, as lines for `deployer plan` (secrets shown as ***)."""
    match action:
        case Run(commands=commands):
            return [c.shown for c in commands]
        case Upload(src=src, dest=dest):
            return [
                f"ship {src} -> {dest} once (staged beside it, manifest with its digest, "
                "renamed into place; the same build already there is kept)"
            ]
        case Gate(kind=kind, urls=urls):
            return [f"{kind} gate: GET {u}" for u in urls]
        case Switch(color=color, version=version):
            return [
                f"write upstream -> {color or 'previous'} ({version or '-'}), "
                "nginx -t, graceful reload, wait for new workers"
            ]
        case StopColor(command=command):
            return ["wait for old nginx workers to exit", command.shown]
        case ScheduleStop(command=command):
            return ["wait for old nginx workers to exit", command.shown]
        case ArmDeadMan(seconds=seconds):
            return [
                f"arm a timer on the router host: after {seconds:g}s it puts the previous "
                "upstream back (test, graceful reload) unless called off"
            ]
        case DisarmDeadMan():
            return ["call the router's dead-man timer off (fails if it already switched back)"]
        case Commit(dead_man=dead_man):
            timer = "call the dead-man timer off (fails if it fired), then " if dead_man else ""
            return [f"{timer}record on the router host that the release stands"]
        case Migrate(scripts=scripts, current=current, upgrade=upgrade):
            return [
                current.shown,
                f"lint the pending revisions in {scripts}; refuse errors",
                f"{upgrade.shown} (retried on lock timeout)",
            ]
    return []
