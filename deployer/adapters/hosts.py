"""The runner for SSH hosts: one connection (ssh_connect.py) and one shell (ssh_shell.py)
per host, commands and uploads through them, a lost host remembered as lost. The runner for
``transport: local`` hosts is in local.py."""

from __future__ import annotations

import contextlib
import io
import shlex
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployer import progress
from deployer.adapters.local import DEFAULT_TIMEOUT
from deployer.adapters.ssh_connect import Unreachable, open_connection, why
from deployer.adapters.ssh_shell import (
    HOLD_REMOTE,
    HeldSession,
    RemoteShell,
    ShellGone,
    exec_session,
)
from deployer.commands.shell import redact, stdin_script
from deployer.errors import CommandFailed, HostError
from deployer.playbook.models import Host
from deployer.ports import CommandResult
from deployer.values import Secret, Shell

#: connection attempts to a host before it is declared unreachable (bounded in time too)
CONNECT_ATTEMPTS = 3
#: a host whose connection dropped gets one attempt of at most this many seconds to come back
REACQUIRE_TIMEOUT = 5.0
#: a held session opened ahead waits at most this long for the host's shell to serve first
SPARE_AFTER = 2.0


class SshRunner:
    def __init__(
        self,
        host: Host,
        *,
        key: Path | None,
        known_hosts: Path,
        accept_new_host_key: bool = False,
        secrets: Sequence[Secret] = (),
        connect_timeout: float = 10.0,
        connect_attempts: int = CONNECT_ATTEMPTS,
    ):
        self.name = host.name
        self.label = f"{host.name} ({host.user}@{host.address}:{host.port})"
        self._host, self._key, self._known_hosts = host, key, known_hosts
        self._accept_new = accept_new_host_key
        self._secrets = list(secrets)
        self._timeout = connect_timeout
        self._attempts = connect_attempts
        self._conn: Any = None
        self._shell: RemoteShell | None = None  # one shell per host (ssh_shell.py)
        self._shell_opening = threading.Lock()
        #: a held session opened ahead (warm(hold=True)), waiting for its script
        self._spare: Any = None
        #: set once the host's shell has run a command (warm(hold=True) then opens the spare)
        self._served = threading.Event()
        self._connecting = threading.Lock()
        #: set once the host could not be reached again: later commands fail at once
        self._lost: str | None = None
        #: set when the connection dropped under a command: the next connection gets one
        #: short attempt, not the full retries (the hosts still up wait on this one)
        self._dropped: str | None = None

    @property
    def lost(self) -> str | None:
        """Why this host is lost (its connection dropped, or it cannot be reached), or None."""
        return self._lost or self._dropped

    def _drop(self, why: str) -> None:
        self._conn = None
        self._dropped = why

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        with self._connecting:  # a host's lane and the router's drain may share a runner
            if self._lost is not None:
                raise HostError(f"{self._lost} (not tried again in this operation)")
            if self._conn is None:
                try:
                    if self._dropped is not None:  # seen lost: one short attempt
                        self._conn = self._open(min(self._timeout, REACQUIRE_TIMEOUT))
                    else:
                        self._conn = self._open_retrying()
                except Unreachable as exc:
                    self._lost = (
                        f"{exc} (after its connection dropped: {self._dropped})"
                        if self._dropped
                        else str(exc)
                    )
                    raise
                self._dropped = None  # it came back
            return self._conn

    def _open_retrying(self) -> Any:
        """Connect, retrying what may pass (refused, timed out, reset) a bounded number of
        times within a bounded time; never an unknown key or a refused login."""
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_after_delay,
            wait_exponential,
        )

        retrying = Retrying(
            stop=stop_after_attempt(self._attempts) | stop_after_delay(self._timeout * 2),
            wait=wait_exponential(multiplier=0.25, max=2),
            retry=retry_if_exception_type(Unreachable),
            reraise=True,
        )
        return retrying(self._open)

    def _open(self, timeout: float | None = None) -> Any:
        return open_connection(
            self._host,
            self.label,
            key=self._key,
            known_hosts=self._known_hosts,
            accept_new=self._accept_new,
            timeout=self._timeout if timeout is None else timeout,
        )

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        """Run ``command`` in the host's one shell (ssh_shell.py) on its one connection.
        Secrets go through stdin (the exports, then the command), never a command line, so
        they never show in the host's process list."""
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        script = stdin_script(command) if command.env else command.text
        status, out, err = self._ran(command, script, timeout, secret=bool(command.env))
        result = CommandResult(
            status,
            redact(out.decode(errors="replace"), self._secrets),
            redact(err.decode(errors="replace"), self._secrets),
        )
        return result.checked(self.name, command) if check else result

    def run_input(
        self, command: Shell, data: bytes, *, timeout: float | None = None
    ) -> CommandResult:
        if command.env:
            raise ValueError("run_input takes no secrets (stdin carries the data)")
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        status, out, err = self._ran(command, command.text, timeout, data)
        result = CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))
        return result.checked(self.name, command)

    def _ran(
        self, command: Shell, script: str, timeout: float, data: bytes = b"", secret: bool = False
    ) -> tuple[int, bytes, bytes]:
        """``script`` in the host's one shell, or in a session of its own when that shell is
        busy (a secret's script then goes to ``bash -s`` on stdin, never the command line);
        a timeout or a lost connection said as deployer's errors."""
        conn = self._connect()
        try:
            ran = self._in_shell(conn, script, timeout, data)
            if ran is None:  # the shell is busy (another thread) or could not be opened
                # bash, as in the host's one shell, whatever the user's login shell is (the
                # commands use bash: arrays, $EUID, read -n)
                remote, stdin = (
                    ("exec bash --noprofile --norc -s", script.encode())
                    if secret
                    else (f"exec bash --noprofile --norc -c {shlex.quote(script)}", data)
                )
                ran = exec_session(conn, remote, stdin or None, timeout, self._sent(len(stdin)))
        except TimeoutError:
            raise CommandFailed(
                self.name, command.shown, 124, f"timed out after {timeout}s"
            ) from None
        except (OSError, EOFError) as exc:
            self._drop(why(exc))
            raise HostError(f"{self.label}: connection lost ({why(exc)})") from exc
        self._check_alive(conn, command)
        return ran

    def _in_shell(
        self, conn: Any, script: str, timeout: float, data: bytes = b""
    ) -> tuple[int, bytes, bytes] | None:
        """``script`` in the host's one shell; None if that shell is busy or cannot be
        opened (the caller then uses a session of its own)."""
        transport = conn.client.get_transport()
        with self._shell_opening:
            shell = self._shell
            if shell is None or shell.chan.closed or shell.transport is not transport:
                try:
                    shell = self._shell = RemoteShell.open(transport, 30)
                except Exception:  # e.g. the server's MaxSessions: a session per command
                    return None
            if not shell.lock.acquire(blocking=False):
                return None
        try:
            ran = shell.run(script, timeout, data, self._sent(len(data)))
            self._served.set()
            return ran
        except TimeoutError:  # an OSError too: the command's own time ran out
            raise
        except (ShellGone, OSError, EOFError) as exc:
            if not transport.is_active():  # the connection itself is gone: the host is lost
                raise EOFError(str(exc) or "the connection closed") from exc
            return -1, b"", b"the host's shell session ended during the command"
        finally:
            if shell.broken:
                shell.close()
                if self._shell is shell:
                    self._shell = None
            shell.lock.release()

    def _sent(self, total: int) -> Any:
        def sent(done: int) -> None:
            progress.emit("upload", host=self.name, sent=done, total=total)

        return sent

    def _check_alive(self, conn: Any, command: Shell) -> None:
        """A channel closed under a command (exit status -1) by a dead connection: the host
        stopped answering, which is not the command failing."""
        transport = conn.client.get_transport()
        if transport is None or not transport.is_active():
            self._drop(f"it stopped answering during `{command.shown[:80]}`")
            raise HostError(
                f"{self.label}: stopped answering during `{command.shown[:80]}` (connection lost)"
            )

    def hold(self, command: Shell) -> HeldSession:
        """``command`` in a session of its own that stays open (see :class:`HeldSession`);
        its exports come first on its stdin, ended by a NUL, never on a command line."""
        import paramiko

        conn = self._connect()
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in command.env)
        transport = conn.client.get_transport()
        with self._shell_opening:
            spare, self._spare = self._spare, None
        try:
            if spare is not None and not spare.closed and spare.get_transport() is transport:
                chan = spare  # opened ahead by warm(hold=True)
            else:
                if spare is not None:
                    spare.close()
                chan = transport.open_session(timeout=30)
                chan.settimeout(30)
                chan.exec_command(HOLD_REMOTE)
            chan.sendall((exports + command.text).encode() + b"\0")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise HostError(
                f"{self.label}: cannot hold a session open for `{command.shown[:80]}` ({why(exc)})"
            ) from exc
        return HeldSession(chan)

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        conn = self._connect()
        try:
            sftp = conn.sftp()
            sftp.get_channel().settimeout(DEFAULT_TIMEOUT)

            def sent(done: int, total: int) -> None:
                progress.emit("upload", host=self.name, sent=done, total=total)

            sftp.putfo(io.BytesIO(data), remote_path, callback=sent, confirm=True)
        except (OSError, EOFError) as exc:
            transport = conn.client.get_transport()
            if transport is None or not transport.is_active():
                self._drop(f"the connection closed during an upload ({why(exc)})")
            raise HostError(f"{self.label}: upload to {remote_path} failed: {exc}") from exc

    def warm(self, hold: bool = False, connected: threading.Event | None = None) -> None:
        """Connect and open the host's shell now (from a thread, while the operation takes
        its lock): the first command then finds both ready; ``hold``: a held session too,
        waiting for its script (a router's dead-man watchdog starts through it). A failure
        is left for the first command to meet (an unreachable host is remembered as lost,
        as it would be then)."""
        try:
            try:
                conn = self._connect()
            finally:
                if connected is not None:  # connected or failed: the others may start
                    connected.set()
            transport = conn.client.get_transport()
            with self._shell_opening:
                if self._shell is None or self._shell.chan.closed:
                    self._shell = RemoteShell.open(transport, 30)
            if not hold:
                return
            # the held session's rc files run once the shell has served its first command
            # (the lock): the router's first round trip is on every release's critical path
            self._served.wait(SPARE_AFTER)
            with self._shell_opening:
                if self._spare is None:
                    chan = transport.open_session(timeout=30)
                    chan.settimeout(30)
                    chan.exec_command(HOLD_REMOTE)  # reads its script up to a NUL
                    self._spare = chan
        except Exception:
            return

    def close(self) -> None:
        if self._spare is not None:  # never given a script: it ends on EOF, running nothing
            with contextlib.suppress(Exception):
                self._spare.close()
            self._spare = None
        if self._shell is not None:
            with contextlib.suppress(Exception):
                self._shell.close()
            self._shell = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
