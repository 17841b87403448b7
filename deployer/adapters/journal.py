"""The write-ahead journal: append-only JSON lines, fsynced after each record.

Reading never trusts the file: a line that is not JSON, not an object, not UTF-8 or lacks
the fields of its event is skipped and named as ``journal:LINE`` in :attr:`problems`. An
append after a torn last line starts on a new line, so the new record is never glued to
the fragment. An operation is unfinished while any of its records exist without an ``end``;
its first step record repeats what recovery needs (``op``), so a damaged ``begin`` does not
hide an operation that changed something.

The journal only has to remember operations that are still open (the evidence store keeps
the history): when an operation ends with none left open, a journal past
:data:`COMPACT_BYTES` is replaced, atomically, by the last operation's records alone. Before
this, every release appended ~2 KB per host and step and every command read it all back: 29 MB
and ~0.7 s of a 100-host `deployer status` after five releases.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from deployer.errors import DeployerError
from deployer.redaction import scrub_obj

EVENTS = {
    "begin": ("id", "kind"),
    "step": ("id", "step", "phase"),
    "end": ("id",),
    "unlock": ("id", "reason"),
}


#: a journal larger than this is compacted when an operation ends and none is left open
COMPACT_BYTES = 256 * 1024


class JournalError(DeployerError):
    pass


class FileJournal:
    def __init__(self, path: Path):
        self.path = path
        self.problems: list[str] = []

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(scrub_obj(record), sort_keys=True, default=str).encode() + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn last line: start afresh
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write ({written} of {len(line)} bytes)")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise JournalError(f"cannot write journal {self.path}: {exc.strerror or exc}") from exc

    def records(self) -> list[dict[str, Any]]:
        self.problems = []
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise JournalError(f"cannot read journal {self.path}: {exc.strerror or exc}") from exc
        out = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            why = None
            try:
                rec = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                why = "not UTF-8"
            except ValueError:
                why = "not JSON (a torn write?)"
            else:
                why = _invalid(rec)
            if why:
                self.problems.append(f"{self.path}:{number}: skipped: {why}")
                continue
            out.append(rec)
        return out

    def unfinished(self) -> dict[str, Any] | None:
        """The last operation with no ``end``: its ``begin`` record, or one rebuilt from its
        steps (``damaged`` set) when the begin record is unreadable."""
        return self.unfinished_in(self.records())

    @staticmethod
    def unfinished_in(records: list[dict[str, Any]]) -> dict[str, Any] | None:
        open_ops: dict[str, dict[str, Any]] = {}
        for rec in records:
            op_id = rec["id"]
            event = rec["event"]
            if event == "begin":
                open_ops[op_id] = rec
            elif event == "step" and op_id not in open_ops:
                rebuilt = dict(rec.get("op") or {})
                rebuilt.update({"id": op_id, "event": "begin", "damaged": True})
                open_ops[op_id] = rebuilt
            elif event == "end":
                open_ops.pop(op_id, None)
        if not open_ops:
            return None
        return list(open_ops.values())[-1]

    def compact(self) -> bool:
        """Called right after an operation's end record, under the operation's lock: if the
        journal is past :data:`COMPACT_BYTES` and no operation is open, keep only the last
        operation's records (written to a temporary file, fsynced, renamed over the journal:
        a reader sees the old file or the new one). Best effort: a failure leaves the
        journal as it was. True if it was compacted."""
        try:
            if self.path.stat().st_size <= COMPACT_BYTES:
                return False
        except OSError:
            return False
        try:
            records = self.records()
        except JournalError:
            return False
        if not records or self.unfinished_in(records) is not None:
            return False
        last = records[-1]["id"]
        kept = b"".join(
            json.dumps(r, sort_keys=True, default=str).encode() + b"\n"
            for r in records
            if r["id"] == last
        )
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.compact")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, kept)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return False
        return True

    def retire(self, op_id: str, why: str) -> None:
        """End an operation this journal still holds open that was finished elsewhere (the
        router host's record, the truth, no longer names it): nothing is replayed."""
        self.append(
            {"id": op_id, "event": "end", "outcome": "retired", "why": why, "ts": time.time()}
        )

    def steps(self, op_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["id"] == op_id and r["event"] == "step"]


def _invalid(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not a record"
    event = rec.get("event")
    if event not in EVENTS:
        return f"unknown event {str(event)[:40]!r}"
    for key in EVENTS[str(event)]:
        if not isinstance(rec.get(key), str) or not rec.get(key):
            return f"{event} record without {key!r}"
    if "op" in rec and not isinstance(rec["op"], dict):
        return "'op' is not an object"
    return None
