"""The saga under faults, with plain actions: what runs, what is undone, what is journalled.

The end-to-end versions of these (real sshd, nginx and signals) are in
test_faults_testbed.py; these pin the rules themselves.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from deployer.adapters.evidence import Spool, SqliteStore
from deployer.adapters.journal import FileJournal
from deployer.engine.evidence import record_operation
from deployer.engine.recovery import recover
from deployer.engine.saga import Saga
from deployer.engine.signals import Interrupted, SignalGuard
from deployer.errors import CommandFailed, DeployerError
from deployer.evidence.record import GENESIS, verify
from deployer.plan import Run, Step, Switch
from deployer.ports import NullReporter
from deployer.values import Shell


def _step(name: str, undo: bool = True, pivot: bool = False) -> Step:
    do = Run(name, (Shell.raw(name),))
    return Step(name, None, do, Run(name, (Shell.raw(f"undo {name}"),)) if undo else None, pivot)


class Recorder:
    def __init__(self, fail: dict[str, BaseException] | None = None):
        self.ran: list[str] = []
        self.fail = fail or {}

    def __call__(self, action: Any) -> str:
        text = action.commands[0].text if isinstance(action, Run) else "switch"
        self.ran.append(text)
        if text in self.fail:
            raise self.fail[text]
        return ""


def _saga(tmp_path: Path, steps: list[Step], execute: Any, **kw: Any) -> Saga:
    return Saga("op", steps, execute, FileJournal(tmp_path / "j"), NullReporter(), **kw)


def test_a_failed_step_is_undone_too_its_effect_may_have_happened(tmp_path: Path) -> None:
    run = Recorder({"b": CommandFailed("h", "b", 255, "connection reset")})
    out = _saga(tmp_path, [_step("a"), _step("b"), _step("c")], run).run()
    assert run.ran == ["a", "b", "undo b", "undo a"]
    assert out.failed is not None and out.failed.name == "b" and out.compensated


def test_a_step_that_proves_it_changed_nothing_is_not_undone(tmp_path: Path) -> None:
    err = CommandFailed("h", "nginx -t", 97, "rejected")
    err.not_applied = True
    run = Recorder({"b": err})
    _saga(tmp_path, [_step("a"), _step("b")], run).run()
    assert run.ran == ["a", "b", "undo a"]


def test_any_exception_compensates_not_only_expected_ones(tmp_path: Path) -> None:
    from rich.errors import MarkupError

    run = Recorder({"b": MarkupError("closing tag '[/srv/app]' doesn't match")})
    out = _saga(tmp_path, [_step("a"), _step("b")], run).run()
    assert run.ran == ["a", "b", "undo b", "undo a"]
    assert "MarkupError" in str(out.records[1].detail)


def test_a_failing_switch_counts_as_switched(tmp_path: Path) -> None:
    switch = Step("switch", None, Switch("green", "v2", "conf"), Switch("blue", "v1", "old"))
    run = Recorder({"switch": DeployerError("connection lost during reload")})
    out = _saga(tmp_path, [_step("a"), switch], run).run()
    assert out.switched and run.ran == ["a", "switch", "switch", "undo a"]


def test_an_interrupt_is_acted_on_between_steps(tmp_path: Path) -> None:
    pending: list[BaseException] = []
    run = Recorder()

    def execute(action: Any) -> str:
        result = run(action)
        if action.commands[0].text == "b":
            pending.append(Interrupted(signal.SIGTERM))  # arrives while b runs
        return result

    steps = [_step("a"), _step("b"), _step("c")]
    out = _saga(tmp_path, steps, execute, interrupt=lambda: pending[0] if pending else None).run()
    assert run.ran == ["a", "b", "undo b", "undo a"]  # b finished, c never started
    assert isinstance(out.error, Interrupted)
    phases = [json.loads(x)["phase"] for x in (tmp_path / "j").read_text().splitlines()]
    assert phases == ["start", "done", "start", "done", "undo-start", "undone"] * 1 + [
        "undo-start",
        "undone",
    ]


def test_an_interrupt_after_the_commit_never_undoes_the_release_and_its_last_steps_run(
    tmp_path: Path,
) -> None:
    pending: list[BaseException] = []
    run = Recorder()

    def execute(action: Any) -> str:
        pending.append(Interrupted(signal.SIGTERM))
        return run(action)

    steps = [_step("gate"), _step("later", undo=False, pivot=True)]
    out = _saga(tmp_path, steps, execute, interrupt=lambda: pending[0] if pending else None).run()
    # the steps past the commit (the old color's stop timer) still run: else the old color
    # would be left running with nothing to stop it
    assert out.failed is None and run.ran == ["gate", "later"]
    assert "the release stands" in out.warnings[0]


def test_a_reporter_that_raises_never_aborts_the_saga(tmp_path: Path) -> None:
    class Broken(NullReporter):
        def step_finished(self, *a: Any, **k: Any) -> None:
            raise ValueError("render failed")

    run = Recorder()
    saga = Saga("op", [_step("a"), _step("b")], run, FileJournal(tmp_path / "j"), Broken())
    assert saga.run().failed is None and run.ran == ["a", "b"]


def test_a_journal_that_cannot_be_written_stops_before_the_step(tmp_path: Path) -> None:
    run = Recorder()
    journal = FileJournal(tmp_path / "no-such-dir-file")
    (tmp_path / "no-such-dir-file").mkdir()  # a directory where the journal file should be
    out = Saga("op", [_step("a")], run, journal, NullReporter()).run()
    assert run.ran == [] and out.failed is not None


def test_signal_guard_defers_outside_gates_and_interrupts_inside(tmp_path: Path) -> None:
    guard = SignalGuard()
    with guard:
        os.kill(os.getpid(), signal.SIGTERM)
        assert guard.requested is not None  # recorded, nothing raised
        with pytest.raises(Interrupted):
            guard.check()
    fresh = SignalGuard()
    with fresh, pytest.raises(Interrupted), fresh.interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):
            pass


# ----- evidence never changes a result -----
def _op() -> dict[str, Any]:
    return {
        "kind": "release",
        "id": "r1",
        "app": "shop",
        "environment": "test",
        "version": "v2",
        "outcome": "succeeded",
        "exit_code": 0,
        "steps": [],
        "gates": [],
        "warnings": [],
        "started_at": 1.0,
        "ended_at": 2.0,
    }


def _record(tmp_path: Path) -> dict[str, Any]:
    pb = tmp_path / "p.yml"
    pb.write_text("app: shop\n")
    return record_operation(
        _op(), playbook=pb, journal_dir=tmp_path, evidence_url=None, secrets=[], env={}
    )


def test_a_corrupt_evidence_row_spools_the_record_and_never_raises(tmp_path: Path) -> None:
    assert _record(tmp_path)["recorded"]
    db = sqlite3.connect(tmp_path / "evidence.db")
    db.execute("UPDATE evidence SET body = '{not json' WHERE seq = 1")
    db.commit()
    db.close()
    result = _record(tmp_path)
    assert result["recorded"] is False and "damaged" in result["error"]
    assert (tmp_path / "evidence-spool.jsonl").exists()


def test_a_torn_spool_line_is_quarantined_with_a_warning(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "evidence-spool.jsonl")
    spool.put({"id": "a", "kind": "release"})
    with spool.path.open("ab") as fh:
        fh.write(b'{"id": "b", "ki')
    store = SqliteStore(tmp_path / "evidence.db")
    assert spool.flush(store) == 1
    assert [r["id"] for r in store.records()] == ["a"]
    assert spool.warnings and spool.quarantine.read_bytes().startswith(b'{"id": "b"')
    store.close()


def test_evidence_db_is_created_private(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "evidence.db").close()
    assert (tmp_path / "evidence.db").stat().st_mode & 0o777 == 0o600


def test_the_checkpoint_of_an_empty_store_verifies() -> None:
    assert verify([], (0, GENESIS)).ok
    assert not verify([], (0, "f" * 64)).ok


def _local_engine(tmp_path: Path) -> Any:
    """An engine on a `transport: local` playbook (lock, journal, router record; no SSH)."""
    from deployer.app import build_engine
    from deployer.plan import Context
    from deployer.playbook import load_playbook

    pb = tmp_path / "p.yml"
    pb.write_text(
        "app: shop\nhosts: [{name: here, transport: local}]\n"
        "colors: {blue: {port: 8001}, green: {port: 8002}}\n"
        "service: {start: 'true', stop: 'true', status: 'false'}\n"
        f"router: {{upstream_file: {tmp_path}/u.conf, url: 'http://127.0.0.1:9'}}\n"
        f"state_dir: {tmp_path}/state\njournal_dir: {tmp_path}/journal\n"
    )
    return build_engine(Context(load_playbook(pb), {}))


def test_an_operation_whose_undo_failed_stays_open_for_recover(tmp_path: Path) -> None:
    """Undo failure (exit 6) writes no `end`: `deployer recover` still sees the operation."""
    from deployer.engine.operations import OperationResult
    from deployer.errors import ExitCode

    engine = _local_engine(tmp_path)
    engine.lock.acquire("op-1")
    engine.journal.append({"id": "op-1", "event": "begin", "kind": "release"})
    failed = OperationResult("release", "shop", "production", "op-1")
    failed.exit_code = ExitCode.NEEDS_RECOVERY
    engine._close("op-1", failed)
    assert engine.journal.unfinished() is not None  # still open
    assert engine.lock.state().kind == "absent"  # but the lock is free for `recover`
    ok = OperationResult("release", "shop", "production", "op-1")
    engine.lock.acquire("op-1")
    engine._close("op-1", ok)
    assert engine.journal.unfinished() is None


def test_a_release_that_cannot_journal_its_begin_leaves_no_router_record(tmp_path: Path) -> None:
    """Disk full at `begin`: nothing changed (exit 3) and the router host's operation record
    is gone, so the next release is not told to recover."""
    from deployer.adapters.journal import JournalError
    from deployer.errors import AbortedError

    engine = _local_engine(tmp_path)
    real_append = engine.journal.append

    def full_disk(record: dict[str, Any]) -> None:
        if record.get("event") == "begin":
            raise JournalError("cannot write journal: No space left on device")
        real_append(record)

    engine.journal.append = full_disk  # type: ignore[method-assign]
    with pytest.raises(AbortedError, match="nothing was changed"):
        engine.release("v1")
    assert engine.opstate.read() is None
    assert engine.lock.state().kind == "absent"


def _remote_record(engine: Any, op_id: str, phase: str) -> dict[str, Any]:
    doc = {
        "id": op_id,
        "phase": phase,
        "kind": "release",
        "version": "v2",
        "from_color": "blue",
        "from_version": "v1",
        "to_color": "green",
        "upstream_before": "# deployer: live=blue version=v1\nupstream shop {\n"
        "    server 127.0.0.1:8001 max_fails=0;\n}\n",
        "versions_before": {"here": {"blue": "v1"}},
        "running_before": {"here": {"blue": True, "green": False}},
    }
    Path(engine.opstate.path).parent.mkdir(parents=True, exist_ok=True)
    engine.opstate.write(doc)
    return doc


def test_a_journal_the_router_no_longer_records_is_retired_not_refused(tmp_path: Path) -> None:
    """Disk full at the journal's `end` (or a recover from another checkout): the router's
    record is gone, so the operation finished; the next release retires it and goes on."""
    engine = _local_engine(tmp_path)
    engine.journal.append({"id": "op-1", "event": "begin", "kind": "release", "version": "v2"})
    engine.journal.append({"id": "op-1", "event": "step", "step": "switch@here", "phase": "done"})
    engine.check_journal()  # no RecoveryNeededError
    assert engine.journal.unfinished() is None
    assert engine.notes and "finished elsewhere" in engine.notes[0]
    assert "nothing replayed" in engine.notes[0]
    ends = [r for r in engine.journal.records() if r["event"] == "end"]
    assert ends[-1]["outcome"] == "retired"


def test_recover_prefers_the_router_record_over_a_stale_journal(tmp_path: Path) -> None:
    from deployer.errors import ExitCode

    engine = _local_engine(tmp_path)
    engine.journal.append({"id": "op-old", "event": "begin", "kind": "release", "version": "v9"})
    result = recover(engine)
    assert result.exit_code == ExitCode.OK and result.message.startswith("nothing to recover")
    assert "retired" in result.message + " ".join(result.warnings)
    assert engine.journal.unfinished() is None


def test_recover_of_a_release_killed_at_its_commit_lets_it_stand(tmp_path: Path) -> None:
    """The router's record says committed; the local journal saw the commit start only (a
    kill -9 between the two writes): the release stands, as the README says."""
    from deployer.errors import ExitCode

    engine = _local_engine(tmp_path)
    _remote_record(engine, "op-1", "committed")
    engine.journal.append({"id": "op-1", "event": "begin", "kind": "release", "version": "v2"})
    for step, phase in (("switch@here", "done"), ("post-switch-gate", "done"), ("commit", "start")):
        engine.journal.append({"id": "op-1", "event": "step", "step": step, "phase": phase})
    result = recover(engine)
    assert result.exit_code == ExitCode.OK, result.message
    assert "stands" in result.message
    assert engine.opstate.read() is None and engine.journal.unfinished() is None


def test_a_hostile_operation_record_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from deployer.errors import UntrustedError

    engine = _local_engine(tmp_path)
    doc = _remote_record(engine, "op-1", "begun")
    for field, value in (
        ("version", "$(id)"),
        ("from_color", "purple"),
        ("upstream_before", doc["upstream_before"] + "server { listen 1; root /; }\n"),
        ("versions_before", {"here": {"blue": "v1;id"}}),
        ("id", "../x"),
    ):
        engine.opstate.write({**doc, field: value})
        with pytest.raises(UntrustedError):
            recover(_local_engine(tmp_path))
