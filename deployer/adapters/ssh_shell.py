"""One shell per host for the whole operation, so a command does not cost an SSH session.

Every SSH session makes the host fork, start the user's login shell and read its rc files
before the command runs: on this project's test machine that is ~120 ms per session (root's
``.bashrc`` runs ``pyenv init``), and ~0.8 s each with twenty hosts' sessions at once on two
cores; on real hosts rc files with nvm, rvm or conda cost the same. A release runs about ten
commands per host. So deployer opens one session per host, running a small driver
(``bash --noprofile --norc``), and sends it each command as one framed line on its stdin:

    TOKEN NONCE SIZE ESCAPED(script)\\n   (then SIZE bytes of data for its stdin)

ESCAPED is the script's bytes with printable ASCII as it is, a backslash doubled and every
other byte (a newline, UTF-8) as ``\\xHH``; bash's own ``printf -v VAR %b`` turns it back
into the exact bytes, with no process started (the base64 this replaced forked a subshell and
``base64 -d`` per command: ~2 ms of a host's CPU each, ~2 s of machine time in a release to
a hundred hosts sharing two cores).

The driver checks the shell's token (random, sent once on stdin: a stream out of step ends
the shell instead of running stray bytes), decodes the script and runs it in a subshell
(``( eval ... ) </dev/null``: an ``exit``, ``exec`` or ``set -e`` in it ends only that
subshell, and it cannot read the frames meant for the driver). Data for the script's stdin
(a build being uploaded) follows the frame; exactly SIZE bytes reach the script and what it
leaves unread is drained. Then the driver writes ``\\nNONCE STATUS\\n`` to stdout and
``\\nNONCE\\n`` to stderr; the nonce is random per command, so no output can forge the end of
a command. A script travels on stdin only, never on a command line, so secrets in it (the
exports of :func:`~deployer.commands.shell.stdin_script`) never show in the host's process
list.

A command while the shell is busy (another thread on the same host) gets a session of its
own, as every command did before. A command that times out closes the shell (the next
command opens another), as a timed-out session was closed before.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

DRIVER = (
    # the first line is this shell's token: a frame without it (a stream out of step, e.g.
    # after a command killed mid-way left data unread) ends the shell, never runs
    "IFS= read -r __dpl_t || exit 3; "
    "while IFS= read -r __dpl_l; do "
    '[ "${__dpl_l%% *}" = "$__dpl_t" ] || exit 3; __dpl_l=${__dpl_l#* }; '
    "__dpl_n=${__dpl_l%% *}; __dpl_l=${__dpl_l#* }; "
    "__dpl_z=${__dpl_l%% *}; "
    # the script: \\xHH and \\\\ escapes only (escape()), decoded by the builtin printf
    'printf -v __dpl_s %b "${__dpl_l#* }" || exit 3; '
    'if [ "$__dpl_z" = 0 ]; then ( eval "$__dpl_s" ) </dev/null; __dpl_r=$?; '
    # data follows the frame: exactly Z bytes go to the script's stdin, and whatever it
    # leaves unread is drained, so the next frame starts where it should
    'else head -c "$__dpl_z" | ( ( eval "$__dpl_s" ); __dpl_r=$?; cat >/dev/null; '
    "exit $__dpl_r ); __dpl_r=$?; fi; "
    'printf \'\\n%s %d\\n\' "$__dpl_n" "$__dpl_r"; '
    "printf '\\n%s\\n' \"$__dpl_n\" >&2; "
    "done"
)


class ShellGone(Exception):
    """The driver's session ended before the command's end was seen."""


#: each byte as the driver's ``printf %b`` reads it back: printable ASCII as it is (space
#: included: the frame's last field runs to the end of the line), a backslash doubled, any
#: other byte ``\\xHH`` (exactly two digits: a hex digit after it stays a character)
_ESCAPES = {b: chr(b) for b in range(0x20, 0x7F)}
_ESCAPES.update({b: f"\\x{b:02x}" for b in range(256) if b not in _ESCAPES})
_ESCAPES[0x5C] = "\\\\"


def escape(script: str) -> bytes:
    """``script`` as one line of printable ASCII that ``printf %b`` turns back into its exact
    bytes (a NUL cannot be in a shell variable; scripts never hold one: refused)."""
    raw = script.encode()
    if b"\0" in raw:
        raise ValueError("a script cannot contain a NUL byte")
    return raw.decode("latin-1").translate(_ESCAPES).encode("ascii")


class RemoteShell:
    def __init__(self, chan: Any, transport: Any, token: bytes):
        self.chan, self.transport, self.token = chan, transport, token
        self.lock = threading.Lock()
        self.broken = False

    @classmethod
    def open(cls, transport: Any, timeout: float) -> RemoteShell:
        chan = transport.open_session(timeout=timeout)
        chan.exec_command("exec bash --noprofile --norc -c " + shlex.quote(DRIVER))
        token = secrets.token_hex(16).encode()
        chan.sendall(token + b"\n")
        return cls(chan, transport, token)

    def run(
        self,
        script: str,
        timeout: float,
        data: bytes = b"",
        sent: Callable[[int], None] | None = None,
    ) -> tuple[int, bytes, bytes]:
        """Run ``script`` (``data`` on its stdin); (exit status, stdout, stderr). Raises
        TimeoutError after ``timeout`` s and :class:`ShellGone` if the session ended; either
        way the shell is broken and must be closed (the caller opens another for the next
        command). ``sent`` is told the bytes of ``data`` sent so far, per MiB."""
        nonce = secrets.token_hex(16).encode()
        frame = b" ".join([self.token, nonce, str(len(data)).encode(), escape(script)])
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        out_end, err_end = b"\n" + nonce + b" ", b"\n" + nonce + b"\n"
        status: int | None = None
        err_done = False
        chan = self.chan
        self.broken = True  # until the command's end is seen
        chan.settimeout(max(1.0, timeout))
        chan.sendall(frame + b"\n")
        for i in range(0, len(data), 1 << 20):
            chan.sendall(data[i : i + (1 << 20)])
            if sent is not None:
                sent(min(i + (1 << 20), len(data)))
        chan.settimeout(None)
        ready = chan.fileno()
        seen_out = seen_err = 0  # searched up to here already (large outputs stay linear)
        while status is None or not err_done:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if status is None:
                at = out.find(out_end, max(0, seen_out - len(out_end) - 24))
                seen_out = len(out)
                if at >= 0 and out.find(b"\n", at + len(out_end)) >= 0:
                    tail = bytes(out[at + len(out_end) :]).split(b"\n", 1)[0]
                    if not tail.isdigit():
                        raise ShellGone  # cannot happen from the driver: never guess
                    status = int(tail)
                    del out[at:]
            if not err_done:
                at = err.find(err_end, max(0, seen_err - len(err_end)))
                seen_err = len(err)
                if at >= 0:
                    err_done = True
                    del err[at:]
            if status is not None and err_done:
                break
            if chan.eof_received or chan.closed:
                if not (chan.recv_ready() or chan.recv_stderr_ready()):
                    raise ShellGone
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            select.select([ready], [], [], min(left, 0.05))
        self.broken = False
        return status, bytes(out), bytes(err)

    def close(self) -> None:
        self.chan.close()


def exec_session(
    conn: Any,
    remote: str,
    stdin: bytes | None,
    timeout: float,
    sent: Callable[[int], None] | None = None,
) -> tuple[int, bytes, bytes]:
    """A session of its own for one command: (exit status, stdout, stderr). Waits on the channel's
    readiness (no polling loop with sleeps: invoke's, which fabric's ``run`` uses, cost
    ~120 ms per command and far more with twenty hosts at once)."""
    deadline = time.monotonic() + timeout
    out, err = bytearray(), bytearray()
    chan = conn.client.get_transport().open_session(timeout=min(timeout, 30))
    try:
        chan.exec_command(remote)
        if stdin:
            chan.settimeout(max(1.0, deadline - time.monotonic()))
            for i in range(0, len(stdin), 1 << 20):  # a build: progress per MiB
                chan.sendall(stdin[i : i + (1 << 20)])
                if sent is not None:
                    sent(min(i + (1 << 20), len(stdin)))
            chan.settimeout(None)
        chan.shutdown_write()
        ready = chan.fileno()  # set while data (or EOF) waits to be read
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and (chan.eof_received or chan.closed):
                if not (chan.recv_ready() or chan.recv_stderr_ready()):
                    break
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            if chan.eof_received or chan.closed:  # output done; the status is coming
                chan.status_event.wait(min(left, 0.05))
            else:
                select.select([ready], [], [], min(left, 0.05))
        return chan.recv_exit_status(), bytes(out), bytes(err)
    finally:
        chan.close()


#: what a held session runs: the script (exports, then the command) is read from stdin up
#: to a NUL and run in place (``exec``s in it keep that stdin: the beats that follow)
HOLD_REMOTE = 'exec bash --noprofile --norc -c \'IFS= read -r -d "" s && eval "$s"\''


class HeldSession:
    """A command on an SSH host with its session held open (:meth:`SshRunner.hold`)."""

    def __init__(self, chan: Any):
        self.chan = chan
        self._out = b""

    def beat(self) -> bool:
        try:
            self.chan.settimeout(5)
            self.chan.sendall(b".\n")
            return True
        except Exception:  # paramiko raises OSError, EOFError or SSHException: all say gone
            return False

    def ended(self) -> bool:
        return bool(self.chan.exit_status_ready() or self.chan.closed)

    def first_line(self, timeout: float) -> str | None:
        """The first line the command printed (None if none came in ``timeout``)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0 or self.chan.closed:
                return None
            if self.chan.recv_ready():
                chunk = self.chan.recv(4096)
                if not chunk:
                    return None
                self._out += chunk
            elif self.chan.exit_status_ready() and not self.chan.recv_ready():
                return None
            else:
                select.select([self.chan], [], [], min(left, 0.05))
        return self._out.split(b"\n", 1)[0].decode(errors="replace")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.chan.close()
