"""Reading the files a playbook names (the playbook itself, an Ansible inventory): regular
files of bounded size, UTF-8, and YAML whose nesting is refused past a bound as it is read."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

#: limits that keep a hostile file from hanging or exhausting the machine
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per nesting level: a few hundred levels raise
    RecursionError before any check could see them. This one refuses a document nested
    past :data:`MAX_DEPTH` (+ a little: the walker names the key) as it composes."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 2:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class UnreadableFile(ValueError):
    """A file a playbook names cannot be read as bounded UTF-8 text (``line`` when known)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def read_bounded(p: Path, what: str, limit: int = MAX_BYTES) -> str:
    """A regular file's UTF-8 text, at most ``limit`` bytes: a FIFO would hang the read,
    ``/dev/zero`` would fill memory, a directory or a socket is not text."""
    try:
        info = p.stat()
    except FileNotFoundError:
        raise UnreadableFile(f"no such {what} file") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("not a regular file (a FIFO, a device, a directory?)")
    if info.st_size > limit:
        raise UnreadableFile(f"larger than {limit // 1024} KiB; not a {what}")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {what}: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise UnreadableFile(f"larger than {limit // 1024} KiB; not a {what}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile("not UTF-8 text", raw.count(b"\n", 0, exc.start) + 1) from None
