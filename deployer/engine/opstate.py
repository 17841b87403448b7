"""The unfinished operation, recorded on the router host beside the lock.

The local journal lives on the machine that ran the release; a CI runner can vanish with
it. So the router host keeps one small file next to the lock (``<lock.path>.operation``,
in the same directory that only deployer may write): the operation's id, kind, what is
needed to undo it (the previous upstream, each color's previous version) and its phase,
``begun`` until the release's commit step, then ``committed``. It is removed when the
operation ends. From any checkout, `status` shows it, a new release refuses to start
(exit 6) and `recover` finishes it: a committed release is completed, a begun one undone.
"""

from __future__ import annotations

import json
from typing import Any

from deployer.ports import Runner
from deployer.values import Shell, join


class OperationState:
    def __init__(self, runner: Runner, lock_path: str):
        self.runner = runner
        self.path = lock_path.rstrip("/") + ".operation"

    @property
    def where(self) -> str:
        """Where the record is, in words ("the router host web1", "this machine")."""
        name = self.runner.name
        place = "this machine" if name == "local" else f"the router host {name}"
        return f"{self.path} on {place}"

    def read(self) -> dict[str, Any] | None:
        """The recorded operation; an unreadable file counts as one (never silently free)."""
        p = join([self.path]).text
        out = self.runner.run(Shell.raw(f"cat {p} 2>/dev/null || true")).stdout
        if not out.strip():
            return None
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            return {"id": "?", "phase": "unreadable", "damaged": True}
        return doc

    def write(self, doc: dict[str, Any]) -> None:
        self.runner.run(self.write_command(doc))

    def clear_command(self, op_id: str) -> Shell:
        """Remove the record, only if it is this operation's."""
        p = join([self.path]).text
        rid = join([f'"id": "{op_id}"']).text
        return Shell.raw(f"if grep -qF {rid} {p} 2>/dev/null; then rm -f -- {p}; fi; true")

    def clear(self, op_id: str) -> None:
        self.runner.run(self.clear_command(op_id), check=False)

    # ----- deferred contract revisions (migrate.contract: deferred) -----
    @property
    def deferred_path(self) -> str:
        return self.path.removesuffix(".operation") + ".deferred"

    def read_deferred(self) -> dict[str, Any] | None:
        """The contract revisions a release deferred, or None. Read back from the host:
        checked by the caller (deployer.trust)."""
        p = join([self.deferred_path]).text
        out = self.runner.run(Shell.raw(f"head -c 65536 {p} 2>/dev/null || true")).stdout
        if not out.strip():
            return None
        try:
            doc = json.loads(out)
        except ValueError:
            return {"damaged": True}
        return doc if isinstance(doc, dict) else {"damaged": True}

    def write_deferred(self, doc: dict[str, Any] | None) -> None:
        p, tmp = join([self.deferred_path]).text, join([self.deferred_path + ".tmp"]).text
        if doc is None:
            self.runner.run(Shell.raw(f"rm -f -- {p}"))
            return
        text = join([json.dumps(doc, sort_keys=True)]).text
        self.runner.run(Shell.raw(f"umask 077 && printf '%s\\n' {text} > {tmp} && mv -f {tmp} {p}"))

    def write_command(self, doc: dict[str, Any]) -> Shell:
        p, tmp = join([self.path]).text, join([self.path + ".tmp"]).text
        text = join([json.dumps(doc, sort_keys=True)]).text
        return Shell.raw(f"umask 077 && printf '%s\\n' {text} > {tmp} && mv -f {tmp} {p}")
