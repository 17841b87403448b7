"""deployer's one error tree. Each error knows the exit code it stands for.

    DeployerError (1)                 anything unexpected, reported as one line
    ├── InputError (2)                bad arguments or values from the command line
    │   └── PlaybookError (2)         a playbook that does not validate (file:line: key: why)
    ├── AbortedError (3)              the release stopped before the switch; users saw nothing
    │   └── GateFailed (3)            the pre-switch gate did not pass
    ├── RolledBackError (4)           the release switched, failed after, and traffic is back
    ├── LockHeldError (5)             another release holds the lock (names the holder)
    ├── RecoveryNeededError (6)       an unfinished journal: run `deployer recover`
    ├── HostError (7)                 a host cannot be reached or trusted
    │   ├── HostKeyError (7)          unknown or changed SSH host key
    │   └── UntrustedError (7)        a value read back from a host or an API fails its
    │                                 check, or a path others could write
    └── DrillVerdict (1)              a drill's forced rollback (never leaves the engine)

A drill that ran but did not prove rollback (too slow, a broken build its gates missed, a
system not as it started) exits 8 (``ExitCode.DRILL_FAILED``).

Adapters translate library errors (paramiko, invoke, httpx, OSError) into this tree at the
boundary, most specific first, with ``raise ... from exc``; the CLI maps ``exit_code``.
"""

from __future__ import annotations

import unicodedata
from enum import IntEnum

#: categories shown escaped: controls, format characters (bidi overrides), line separators
_HIDDEN = {"Cc", "Cf", "Zl", "Zp"}


def printable(value: object, limit: int = 80) -> str:
    """A user or host value as it may appear in a message: control characters and line
    separators escaped (a newline in a value can never forge a second error line), and cut
    to ``limit`` characters."""
    out = []
    for ch in str(value):
        if unicodedata.category(ch) in _HIDDEN:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    BAD_INPUT = 2
    ABORTED = 3
    ROLLED_BACK = 4
    LOCKED = 5
    NEEDS_RECOVERY = 6
    HOST_UNREACHABLE = 7
    DRILL_FAILED = 8


class DeployerError(Exception):
    exit_code: ExitCode = ExitCode.UNEXPECTED
    #: set when the error proves the step changed nothing (the saga then skips its undo)
    not_applied: bool = False


class InputError(DeployerError):
    exit_code = ExitCode.BAD_INPUT


class PlaybookError(InputError):
    """A playbook problem located in its file: ``file:line: key.path: message``."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, key: str = ""):
        path, key = printable(path, 200), printable(key, 120)
        self.path, self.line, self.key, self.reason = path, line, key, message
        where = path
        if line is not None:
            where = f"{where}:{line}"
        text = message if not key else f"{key}: {message}"
        super().__init__(f"{where}: {text}" if where else text)


class AbortedError(DeployerError):
    exit_code = ExitCode.ABORTED


class GateFailed(AbortedError):
    pass


class HostsFailed(GateFailed):
    """A gate through the router passed, but some hosts fail probed on their own. The saga
    may go on without them (within the fleet's ``max_failures``: they are taken out of the
    router's upstream); otherwise it is an ordinary gate failure."""

    def __init__(self, message: str, hosts: dict[str, str], remaining: int, passed: str):
        super().__init__(message)
        #: host -> why it failed; how many hosts passed; what the gate saw through the router
        self.hosts, self.remaining, self.passed = dict(hosts), remaining, passed


class RolledBackError(DeployerError):
    exit_code = ExitCode.ROLLED_BACK


class LockHeldError(DeployerError):
    exit_code = ExitCode.LOCKED


class LockLost(DeployerError):
    """Another process took the lock (or its session ended) while this operation ran."""


class RecoveryNeededError(DeployerError):
    exit_code = ExitCode.NEEDS_RECOVERY


class HostError(DeployerError):
    exit_code = ExitCode.HOST_UNREACHABLE


class HostKeyError(HostError):
    pass


class UntrustedError(HostError):
    """What a host (or an API) said fails the checks a user's value would (a version marker,
    an operation record, an upstream file), or a path deployer writes to or runs from could
    be changed by another user: the step refuses before using it."""


class CommandFailed(DeployerError):
    """A remote or local command exited non-zero (the step that ran it decides what follows)."""

    def __init__(self, host: str, command: str, exit_status: int, stderr: str):
        self.host, self.command, self.exit_status, self.stderr = host, command, exit_status, stderr
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
        # SQLAlchemy ends with a link ("(Background on this error at: ...)"): the error is
        # the line before it
        while len(lines) > 1 and lines[-1].lstrip().startswith("(Background on this error"):
            lines.pop()
        tail = lines[-1] if lines else "no output"
        super().__init__(f"{host}: `{command}` exited {exit_status}: {tail}")


class DrillVerdict(DeployerError):
    """A drill rolls back here as a failing post-switch gate would; ``broken_passed``: the
    build meant to fail its gate passed it."""

    def __init__(self, broken_passed: bool):
        self.broken_passed = broken_passed
        super().__init__(
            "the broken build passed the post-switch gate: a release like it would have stayed "
            "live (check drill.broken_vars and the gates)"
            if broken_passed
            else "drill: rolling back as a failing post-switch gate would"
        )
