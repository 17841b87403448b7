"""The small protocols the engine depends on; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from deployer.errors import CommandFailed
from deployer.values import Shell

if TYPE_CHECKING:
    from deployer.commands.lock import LockState
    from deployer.gates import Expectation
    from deployer.plan import Action, Context, Observed, Step


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def checked(self, host: str, command: Shell) -> CommandResult:
        """This result, or :class:`CommandFailed` when ``command`` failed on ``host``."""
        if not self.ok:
            raise CommandFailed(host, command.shown, self.exit_status, self.stderr)
        return self


class Runner(Protocol):
    """Runs shell commands and copies files on one host."""

    name: str

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult: ...

    def put_bytes(self, data: bytes, remote_path: str) -> None: ...

    def run_input(
        self, command: Shell, data: bytes, *, timeout: float | None = None
    ) -> CommandResult:
        """Run ``command`` (no secrets in it) with ``data`` on its stdin, in one round trip:
        a build streamed into its staging directory and installed."""
        ...

    def hold(self, command: Shell) -> Held:
        """Start ``command`` in a session of its own that stays open: deployer writes beats
        to its stdin (:meth:`Held.beat`), and the command sees the end of its input when the
        session closes (deployer stops, dies, or loses its connection). Secrets in it travel
        on that stdin first, never on a command line."""
        ...

    def close(self) -> None: ...


class Held(Protocol):
    """A command on a host that deployer keeps a session open to (see :meth:`Runner.hold`)."""

    def beat(self) -> bool:
        """One line to its stdin; False when that could not be done (the session is gone)."""
        ...

    def ended(self) -> bool:
        """The command has exited (its session then closes by itself)."""
        ...

    def first_line(self, timeout: float) -> str | None:
        """The first line the command printed (None when none came within ``timeout``)."""
        ...

    def close(self) -> None:
        """Close the session: the command sees the end of its input."""
        ...


class Reporter(Protocol):
    """Receives the engine's progress (rich for people, silent for JSON)."""

    def step_started(self, name: str, host: str | None) -> None: ...

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None: ...

    def note(self, message: str) -> None: ...


class Journal(Protocol):
    def append(self, record: dict[str, Any]) -> None: ...


class Lock(Protocol):
    """The deploy lock (a directory on the router host, or a PostgreSQL advisory lock)."""

    path: str
    lost: BaseException | None

    def acquire(self, op_id: str) -> None: ...

    def release(self, op_id: str, also: Shell | None = None) -> None: ...

    def start_heartbeat(self) -> None: ...

    def state(self) -> LockState: ...

    def break_(self) -> LockState: ...


class OperationRecord(Protocol):
    """The unfinished operation's record, where any runner finds it (a file beside the lock
    on the router host, or a row in PostgreSQL): the truth a local journal caches."""

    path: str

    @property
    def where(self) -> str: ...

    def read(self) -> dict[str, Any] | None: ...

    def write(self, doc: dict[str, Any]) -> None: ...

    def clear(self, op_id: str) -> None: ...

    def write_command(self, doc: dict[str, Any]) -> Shell | None:
        """The write as a command for the router host (to run in the commit's round trip);
        None: not a file on a host."""
        ...

    def clear_command(self, op_id: str) -> Shell | None: ...

    def read_deferred(self) -> dict[str, Any] | None:
        """The contract revisions a release deferred (`migrate.contract: deferred`)."""
        ...

    def write_deferred(self, doc: dict[str, Any] | None) -> None: ...


class NullReporter:
    def step_started(self, name: str, host: str | None) -> None:
        pass

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class Target(Protocol):
    """Where traffic is switched (nginx over SSH, Vercel): everything that differs per
    platform. The engine (lock, saga, journal, gates, recovery, evidence) is shared; each
    platform is one module in :mod:`deployer.targets`."""

    def begin(self, op: dict[str, Any]) -> None:
        """The operation about to run (or be recovered): its record, with its ``id``. What
        the target writes carries the id, and what it undoes is fenced by it."""
        ...

    def observe(self, *, tolerant: bool = False) -> Observed:
        """What serves now (and, for hosts, what each color runs). ``tolerant``: hosts
        that cannot be reached are reported in ``extra["unreachable"]``, never raised
        (`deployer status`); otherwise only as many as the batch policy allows."""
        ...

    def release_plan(
        self, observed: Observed, version: str, candidate: str | None
    ) -> tuple[str, Observed, list[Step]]:
        """(the version released, the observed state with the candidate named, the steps)."""
        ...

    def rollback_plan(self, observed: Observed) -> tuple[str, Observed, list[Step]]:
        """Back to what served before: (its version, the observed state, the steps)."""
        ...

    def drill_plan(
        self, observed: Observed, version: str | None, broken: Context | None
    ) -> tuple[str, Observed, list[Step]]:
        """A release that always ends switched back (its last step is the drill's verdict):
        (the version drilled with, the observed state with it named, the steps)."""
        ...

    def check_drill(self, *, broken: bool, version: str | None) -> None:
        """Refuse drill options this target cannot honour (exit 2), before anything runs."""
        ...

    def recovery_plan(self, op: dict[str, Any]) -> tuple[Observed, list[Step]]:
        """The steps of an unfinished operation, from its record (to undo or finish them)."""
        ...

    def op_record(self, observed: Observed) -> dict[str, Any]:
        """What the operation record must hold to undo from any checkout."""
        ...

    def execute(self, action: Action) -> str | None:
        """Carry out one of this target's own actions (None: not one of them)."""
        ...

    def serving(self, live: str, version: str) -> tuple[str, Expectation, dict[str, Any]]:
        """How to check that ``live`` serves users: (URL, expectation, request headers)."""
        ...

    def status(self, observed: Observed) -> dict[str, Any]:
        """Target-specific status (hosts and colors, or deployments)."""
        ...

    def changes(self, before: Observed, after: Observed) -> list[str]:
        """How ``after`` differs from ``before`` (a drill must leave nothing changed)."""
        ...

    def dead_man_off(self) -> Shell | None:
        """The command that calls the router's dead-man watchdog off (None: no timer)."""
        ...

    def leave_out(self, hosts: dict[str, str]) -> None:
        """Hosts the batch policy let the release go on without (host -> what failed):
        the switches that follow do not route to them."""
        ...

    def take_out(self, hosts: dict[str, str]) -> str:
        """After the switch: serve without ``hosts`` (all the hosts out so far), which fail
        on their own while the others pass; what was done, in words."""
        ...

    def result_facts(self, observed: Observed | None) -> dict[str, Any] | None:
        """What the result and the evidence record should carry about the target (e.g. the
        deployments from and to, the API calls made); None: nothing beyond the colors."""
        ...

    def close(self) -> None: ...


__all__ = [
    "CommandResult",
    "Held",
    "Journal",
    "Lock",
    "NullReporter",
    "OperationRecord",
    "Reporter",
    "Runner",
    "Target",
]
