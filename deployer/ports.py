"""The small protocols the engine depends on; adapters implement them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from deployer.commands.shell import Shell


@dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class Runner(Protocol):
    """Runs shell commands and copies files on one host."""

    name: str

    def run(
        self, command: Shell, *, check: bool = True, timeout: float | None = None
    ) -> CommandResult: ...

    def put_bytes(self, data: bytes, remote_path: str) -> None: ...

    def close(self) -> None: ...


class Reporter(Protocol):
    """Receives the engine's progress (rich for people, silent for JSON)."""

    def step_started(self, name: str, host: str | None) -> None: ...

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None: ...

    def note(self, message: str) -> None: ...


class Journal(Protocol):
    def append(self, record: dict[str, Any]) -> None: ...


class NullReporter:
    def step_started(self, name: str, host: str | None) -> None:
        pass

    def step_finished(
        self, name: str, host: str | None, status: str, seconds: float, detail: str = ""
    ) -> None:
        pass

    def note(self, message: str) -> None:
        pass


__all__ = ["CommandResult", "Journal", "NullReporter", "Reporter", "Runner"]
