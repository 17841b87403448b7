"""The actions a plan is made of: pure data the engine carries out (see
:mod:`deployer.engine.actions`), and how each reads in `deployer plan`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from deployer.gates import Expectation
from deployer.values import Shell, Token


@dataclass(frozen=True)
class Run:
    host: str
    commands: tuple[Shell, ...]
    #: a failure is reported, not raised (re-warming the previous color after an abort:
    #: users never depended on it, so it must not turn an abort into "needs recovery")
    best_effort: bool = False


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
    #: request headers for every probe (values may be secrets: a protection bypass)
    headers: tuple[tuple[str, Token], ...] = ()
    #: what the gate judges, said when it fails ("after batch 2/3: web3, web4")
    about: str = ""
    #: (host, its new color's URL): probed once each when the gate fails, to name the hosts
    #: that answer badly
    diagnose: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Switch:
    switches_traffic: ClassVar[bool] = True
    color: str | None
    version: str | None
    conf: str
    #: towards the new version: hosts the batch policy left out are taken out of ``conf``
    #: (an undo puts back exactly what was there)
    forward: bool = False


@dataclass(frozen=True)
class CanaryShift:
    """A canary step: ``weight`` percent of requests to ``color``, then ``pause`` of analysis
    on the router's access log (new color against ``old_color``); fails the step on a bad
    verdict. ``servers`` maps each upstream address to its color."""

    switches_traffic: ClassVar[bool] = True
    color: str
    version: str
    old_color: str
    weight: int
    pause: float
    conf: str
    servers: tuple[tuple[str, str], ...]
    access_log: str
    analysis: Any
    inconclusive: str
    #: (name, rendered PromQL, min, max) per query, with analysis.prometheus
    queries: tuple[tuple[str, str, float | None, float | None], ...] = ()
    #: analysis.prometheus.judge rendered per side: ((count, canary PromQL, stable PromQL))
    counts: tuple[tuple[str, str, str], ...] = ()

    def describe(self) -> list[str]:
        a = self.analysis
        prom = [
            f"then Prometheus {name}: {query}"
            + (f" <= {hi:g}" if hi is not None else "")
            + (f" >= {lo:g}" if lo is not None else "")
            for name, query, lo, hi in self.queries
        ]
        if self.counts:
            source = (
                "Prometheus counts ("
                + "; ".join(f"{name}: {canary} / {stable}" for name, canary, stable in self.counts)
                + ")"
            )
            latency = (
                f"its share of slow requests by {a.prometheus.judge.slow_margin:g}"
                if any(name == "slow" for name, _, _ in self.counts)
                else "(latency not counted)"
            )
        else:
            source = f"{self.access_log} (read every {a.interval:g}s)"
            latency = f"its median latency by {a.latency_margin:.0%} (+{a.latency_slack:g}s)"
        return [
            f"upstream: {self.weight}% to {self.color} ({self.version}), "
            f"{100 - self.weight}% to {self.old_color} (nginx -t, graceful reload)",
            f"judge {self.color} against {self.old_color} over the same interval on {source}: "
            f"fail as soon as its error ratio is worse by {a.error_margin:g} or {latency} "
            f"(SPRT), pass once shown not worse after {self.pause:g}s; not yet: up to "
            f"{a.max_pause:g}s, then a 95% bound, then {self.inconclusive}"
            + (" (dry-run: recorded, never acted on)" if a.mode == "dry-run" else ""),
            *prom,
        ]


class TargetAction:
    """Base of a target's own actions (deployer.targets): it says how it reads in `plan` and
    whether it moves users' traffic (the saga then counts the release as switched)."""

    switches_traffic: ClassVar[bool] = False

    def describe(self) -> list[str]:
        return []


@dataclass(frozen=True)
class ArmDeadMan:
    """A watchdog on the router host that puts ``conf`` back when deployer's session to it
    closes, after ``grace`` seconds without a beat, or at the latest after ``seconds``.
    ``rearm``: a fleet's next batch arms it again, and one that fired since the last
    batch's switch (traffic went back while deployer was late) fails the step instead of
    going unnoticed."""

    conf: str
    seconds: float
    rearm: bool = False
    grace: float = 5.0


@dataclass(frozen=True)
class DisarmDeadMan:
    """Call the timer off; with ``must_not_have_fired``, a timer that already switched
    back fails the step (the release did not stay live)."""

    must_not_have_fired: bool = True


@dataclass(frozen=True)
class Commit:
    """The commit point: the router's dead-man watchdog is called off (``dead_man``) and its
    operation record says the release stands, in one round trip."""

    dead_man: bool = False


@dataclass(frozen=True)
class DrillVerdict:
    """A drill's verdict after the post-switch gate: roll back as a failing gate would.
    With ``broken``, reaching it means the broken build passed the gate."""

    broken: bool = False


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
    """Lint the pending revisions (local scripts), then `alembic upgrade head` on the host;
    the revision reached is remembered on the host for ``version`` (see CheckDatabase)."""

    host: str
    scripts: Path
    current: Shell
    upgrade: Shell
    retries: int
    acknowledge: tuple[Any, ...]
    state_dir: str = ""
    version: str = ""
    prove: ProveSpec | None = None
    #: `migrate.contract`: "deferred" applies expand revisions only (see deployer.lint.phases)
    mode: str = "with-release"
    #: how to run `alembic upgrade REV`: (command, database URL, lock and statement timeouts)
    base: tuple[Shell, Token, float, float] | None = None
    #: the running (old) version's own checks (url, expectation), probed once the expand
    #: revisions are applied: an expand that broke it aborts the release before the switch
    live_checks: tuple[tuple[str, Expectation], ...] = ()
    #: versions that could be rolled back to and need the schema as it is now
    needs_old: tuple[str, ...] = ()
    #: versions running now (live and warm): a deferred contract waits while any needs it
    running: tuple[str, ...] = ()
    #: seconds from now until this release's contract revisions may run (its rollback window)
    window: float = 0.0


@dataclass(frozen=True)
class ForgetDeferred:
    """The undo of a deferred-mode migrate step: the contract revisions it deferred belong
    to a release that did not stand; forget them (only if this operation recorded them)."""


@dataclass(frozen=True)
class ProveSpec:
    """`migrate.prove`: the pending revisions run first in a scratch database (locally)."""

    url: Any  # a Token: a Secret when it came from ${env:...}
    rows: int
    lock_bound: float
    schema_from: Path | None
    i_know: bool = False


@dataclass(frozen=True)
class CheckDatabase:
    """A rollback never migrates: it says which revisions the database is ahead of
    ``version``'s by, and which of them contract the schema. Never fails the rollback."""

    host: str
    scripts: Path
    current: Shell
    state_dir: str
    version: str
    #: `rollback --force`: a contract revision ahead of the version is a warning, not a refusal
    force: bool = False


Action = (
    CanaryShift
    | Run
    | Upload
    | Gate
    | Switch
    | StopColor
    | ScheduleStop
    | Migrate
    | CheckDatabase
    | ForgetDeferred
    | ArmDeadMan
    | DisarmDeadMan
    | Commit
    | DrillVerdict
    | TargetAction
)


@dataclass(frozen=True)
class Step:
    name: str
    host: str | None
    do: Action
    undo: Action | None = None
    after_pivot: bool = False
    #: consecutive steps of one group run in parallel, one lane per host (each lane in order)
    group: str = ""

    @property
    def key(self) -> str:
        return f"{self.name}@{self.host}" if self.host else self.name


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
        case ArmDeadMan(seconds=seconds, grace=grace):
            return [
                "start a watchdog on the router host, renewed by deployer: it puts the "
                "previous upstream back (test, graceful reload) unless called off: at once if "
                f"deployer's session closes, after {grace:g}s without a renewal, at the "
                f"latest after {seconds:g}s"
            ]
        case DisarmDeadMan():
            return ["call the router's dead-man watchdog off (fails if it already switched back)"]
        case DrillVerdict(broken=broken):
            if broken:
                return [
                    "(reached only if the broken build passed the post-switch gate: the "
                    "drill fails) roll back"
                ]
            return ["roll back, as a failing post-switch gate would (undo in reverse)"]
        case Commit(dead_man=dead_man):
            timer = "call the dead-man watchdog off (fails if it fired), then " if dead_man else ""
            return [f"{timer}record on the router host that the release stands"]
        case TargetAction():
            return action.describe()
        case CheckDatabase(current=current, version=version):
            return [
                current.shown,
                f"compare with the revision {version} went live with; name the revisions "
                "the database is ahead by (a contract one is a warning); never migrates",
            ]
        case CanaryShift():
            return action.describe()
        case ForgetDeferred():
            return ["forget the contract revisions this release deferred"]
        case Migrate(scripts=scripts, current=current, upgrade=upgrade, prove=prove, mode=mode):
            lines = [current.shown, f"lint the pending revisions in {scripts}; refuse errors"]
            if mode == "deferred":
                lines.append(
                    "first any contract revisions an earlier release deferred, if no version "
                    "that needs the old shape runs and its window has closed; then only the "
                    "expand revisions (up to the first contract one), the contract ones "
                    "deferred; then probe the running version once more"
                )
            if prove is not None:
                lines.append(
                    f"prove them in a scratch database ({prove.rows:,} rows per table); refuse "
                    f"a rewrite or ACCESS EXCLUSIVE held over {prove.lock_bound:g}s"
                )
            return [*lines, f"{upgrade.shown} (retried on lock timeout)"]
    return []
