"""The write-ahead journal: append-only JSON lines, fsynced after each record."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class FileJournal:
    def __init__(self, path: Path):
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        for raw in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue  # a torn last line after a crash
        return out

    def unfinished(self) -> dict[str, Any] | None:
        """The ``begin`` record of the last operation if it never wrote ``end``."""
        begin: dict[str, Any] | None = None
        for rec in self.records():
            if rec.get("event") == "begin":
                begin = rec
            elif rec.get("event") == "end" and begin and rec.get("id") == begin.get("id"):
                begin = None
        return begin
