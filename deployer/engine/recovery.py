"""`deployer recover` and `deployer unlock`: finish what a crash left, break a dead lock.

Recovery takes the deploy lock first (it refuses while the operation it would undo is
still running), then reads the operation record on the router host: that record is the
truth, the local journal only a cache of it. An operation the journal holds open that the
router no longer records (or records under another id) was finished elsewhere: it is
retired with a note and nothing of it is replayed. The recorded operation is checked like
any value read back from a host (:func:`deployer.trust.op_record` for nginx), then every
step it started and did not undo is undone in reverse (undos are idempotent, and each
switch back is fenced: the router must still hold what this operation wrote), unless it
had reached its commit point: then the release stands and what was still due is finished.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from deployer.engine.outcome import SagaOutcome
from deployer.engine.result import OperationResult, new_id
from deployer.engine.saga import Saga
from deployer.errors import ExitCode, InputError, RecoveryNeededError
from deployer.plan import Observed, Step

if TYPE_CHECKING:
    from deployer.engine.operations import Engine

NEEDS_UNDO = {"start", "done", "failed", "undo-start", "undo-failed"}


def recover(engine: Engine) -> OperationResult:
    pb = engine.pb
    with engine.guard:
        lock_id = new_id("recover-")
        engine.acquire(lock_id)
        result = OperationResult("recover", pb.app, pb.environment, "-")
        try:
            remote = engine.opstate.read()
            if remote is not None and remote.get("damaged"):
                raise RecoveryNeededError(
                    f"the operation record {engine.opstate.where} is unreadable; check what "
                    "serves with `deployer status`, then remove it"
                )
            engine.retire_stale(remote)
            if remote is None:
                result.outcome = "succeeded"
                result.message = "nothing to recover" + (
                    f" ({len(engine.notes)} operation(s) in the local journal had been "
                    "finished elsewhere: retired, nothing replayed)"
                    if engine.notes
                    else ""
                )
                result.warnings = engine.notes + list(engine.journal.problems)
                return result
            # checked like any value read back from a host, before anything uses it
            observed, steps = engine.target.recovery_plan(remote)
            engine.target.begin(remote)
            engine.actions.mig.record, engine.actions.mig.op_id = engine.opstate, str(remote["id"])
            local = engine.journal.unfinished()
            precise = local is not None and local.get("id") == remote["id"]
            op_id = str(remote["id"])
            result = OperationResult(
                "recover",
                pb.app,
                pb.environment,
                op_id,
                remote.get("version"),
                remote.get("from_version"),
                remote.get("from_color"),
                remote.get("to_color"),
            )
            result.warnings = engine.notes + list(engine.journal.problems)
            if not precise:
                result.warnings.append(
                    f"no local journal of {op_id}: recovering from its record in "
                    f"{engine.opstate.where} "
                    "(every step before the commit point is undone; undos are idempotent)"
                )
            _recover(engine, remote, (observed, steps), result, precise=precise)
            if result.exit_code != ExitCode.NEEDS_RECOVERY:
                engine.opstate.clear(op_id)
                # always: the undo steps recover journalled here belong to this operation
                engine.journal.append(
                    {"id": op_id, "event": "end", "outcome": "recovered", "ts": time.time()}
                )
                engine.journal.compact()
        finally:
            result.ended_at = time.time()
            engine.lock.release(lock_id)
            engine.close()
    return result


def _recover(
    engine: Engine,
    pending: dict[str, Any],
    plan: tuple[Observed, list[Step]],
    result: OperationResult,
    *,
    precise: bool,
) -> None:
    """Undo or finish ``pending`` (the router host's record). With the local journal of the
    same operation (``precise``) only the steps it started are undone; from the record
    alone, every step before the commit point is. Committed (the record says so, or the
    journal saw the commit done): the steps after it are finished instead."""
    op_id = result.id
    last_phase: dict[str, str] = {}
    for rec in engine.journal.steps(op_id) if precise else []:
        last_phase[rec["step"]] = rec["phase"]
    observed, steps = plan
    before_pivot = [s for s in steps if not s.after_pivot]
    pivot = before_pivot[-1].key if before_pivot else "post-switch-gate"
    committed = last_phase.get(pivot) == "done" or pending.get("phase") == "committed"
    if committed:
        # the release stands; finish what was still due (the old color's scheduled stop)
        rest = [s for s in steps if s.after_pivot and last_phase.get(s.key) != "done"]
        if not precise:  # no journal: only what is safe to repeat (stop timers, pruning)
            rest = [s for s in steps if s.after_pivot]
        out = Saga(op_id, rest, engine.actions, engine.journal, engine.reporter).run()
        result.steps = [r.to_dict() for r in out.records]
        result.warnings += out.warnings
        result.outcome = "succeeded"
        result.message = f"{op_id} had passed its post-switch gate; it stands" + (
            f"; finished {len(rest)} step(s) it had not done" if rest else ""
        )
        return
    if not steps or not pending.get("version"):
        raise RecoveryNeededError(
            f"{op_id}: the journal does not say what it changed "
            f"({'; '.join(engine.journal.problems) or 'no begin record'}); check the hosts "
            "with `deployer status`, put the router back by hand, then move the journal away"
        )
    if precise:
        touched = [s for s in steps if last_phase.get(s.key) in NEEDS_UNDO]
    else:
        touched = [s for s in steps if not s.after_pivot and s.undo is not None]
    saga = Saga(op_id, [], engine.actions, engine.journal, engine.reporter)
    out = SagaOutcome()
    saga.compensate(touched, out)
    result.steps = [r.to_dict() for r in out.records]
    result.warnings += out.warnings
    if out.undo_errors:
        result.outcome, result.exit_code = "failed", ExitCode.NEEDS_RECOVERY
        result.message = "undo failed: " + "; ".join(out.undo_errors)
        return
    result.outcome = "rolled_back"
    fired = [r.detail for r in out.records if "dead-man switch had" in r.detail]
    result.message = (
        f"undid {len(touched)} started step(s) of {op_id}; "
        f"{observed.live_color or 'nothing'} serves" + (f"; {fired[0]}" if fired else "")
    )
    engine.verify_serving(result)


def unlock(engine: Engine, reason: str) -> OperationResult:
    """Break the lock whatever holds it (refused while its holder runs on this machine);
    the reason and what was there go to the journal."""
    if len(reason.strip()) < 5:
        raise InputError("--reason: say why the lock may be broken (at least 5 characters)")
    pb = engine.pb
    result = OperationResult("unlock", pb.app, pb.environment, new_id("unlock-"))
    try:
        state = engine.lock.break_()
    finally:
        engine.close()
    holder = state.info
    was = (
        "nothing (the lock was free)"
        if state.kind == "absent"
        else holder.describe()
        if holder is not None
        else f"an unreadable lock ({state.kind}: {state.text[:80]!r})"
    )
    engine.journal.append(
        {
            "id": result.id,
            "event": "unlock",
            "reason": reason,
            "was": was,
            "ts": time.time(),
        }
    )
    result.outcome = "succeeded"
    result.message = f"lock {engine.lock.path} broken (held by {was}); reason: {reason}"
    result.ended_at = time.time()
    return result
