"""The runner for ``transport: local`` hosts: bash on this machine."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
from collections.abc import Sequence
from pathlib import Path

from deployer.commands.shell import redact
from deployer.errors import CommandFailed
from deployer.playbook.models import Host
from deployer.ports import CommandResult
from deployer.values import Secret, Shell

#: a command given no timeout of its own gets this one: nothing waits forever on a host
DEFAULT_TIMEOUT = 120.0


class HeldProcess:
    """A command on this machine with its stdin held open (:meth:`LocalRunner.hold`)."""

    def __init__(self, proc: subprocess.Popen[bytes]):
        self.proc = proc

    def beat(self) -> bool:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b".\n")
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def ended(self) -> bool:
        return self.proc.poll() is not None

    def first_line(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline().decode(errors="replace").rstrip("\n") or None

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()


class LocalRunner:
    """Runs commands with bash on this machine (for ``transport: local`` hosts)."""

    def __init__(self, host: Host, secrets: Sequence[Secret] = ()):
        self.name = host.name
        self._secrets = list(secrets)

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            proc = subprocess.run(
                ["bash", "-c", command.text],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
                env={**os.environ, **dict(command.env)} if command.env else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(
                self.name, command.shown, 124, f"timed out after {timeout}s"
            ) from exc
        result = CommandResult(
            proc.returncode, redact(proc.stdout, self._secrets), redact(proc.stderr, self._secrets)
        )
        return result.checked(self.name, command) if check else result

    def run_input(
        self, command: Shell, data: bytes, *, timeout: float | None = None
    ) -> CommandResult:
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        try:
            proc = subprocess.run(
                ["bash", "-c", command.text], input=data, capture_output=True, timeout=timeout,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(
                self.name, command.shown, 124, f"timed out after {timeout}s"
            ) from exc
        result = CommandResult(
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )
        return result.checked(self.name, command)

    def hold(self, command: Shell) -> HeldProcess:
        proc = subprocess.Popen(
            ["bash", "-c", command.text],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **dict(command.env)} if command.env else None,
        )
        return HeldProcess(proc)

    def put_bytes(self, data: bytes, remote_path: str) -> None:
        path = Path(remote_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def close(self) -> None:
        pass
