"""`deployer migrate --contract`: run the contract revisions a release deferred, once no
version that could be rolled back to needs the old shape.

Under the deploy lock: the deferred record (beside the operation record, any runner's), the
condition (the release's rollback window closed, none of the versions that need the old
schema running; else refused with exit 5 saying when it becomes possible), the lint gate
(contract findings of these revisions are what is expected here; anything else still
blocks), ``alembic upgrade`` to the last deferred revision under the playbook's lock and
statement timeouts, then the record is cleared. A run killed midway leaves the record: the
next run (from any runner) reads where the database is and finishes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from deployer.engine.migrations import contract_allowed
from deployer.engine.result import OperationResult, new_id
from deployer.errors import DeployerError, ExitCode, InputError, LockHeldError
from deployer.plan import Migrate, Observed, migrate_step

if TYPE_CHECKING:
    from deployer.engine.operations import Engine


def running_versions(observed: Observed) -> tuple[str, ...]:
    """Versions running now: every color up on a host (nginx), or what production serves."""
    seen = {
        v
        for host, row in observed.versions.items()
        for color, v in row.items()
        if observed.running.get(host, {}).get(color)
    }
    if not observed.running and observed.live_version:
        seen.add(observed.live_version)
    return tuple(sorted(seen))


def run_contract(engine: Engine) -> OperationResult:
    pb = engine.pb
    if pb.migrate is None:
        raise InputError("migrate --contract: the playbook has no migrate section")
    with engine.guard:
        op_id = new_id("migrate-")
        engine.acquire(op_id)
        result = OperationResult("migration", pb.app, pb.environment, op_id)
        try:
            mig = engine.actions.mig
            mig.record, mig.op_id = engine.opstate, op_id
            doc = mig._deferred()
            if not doc or not doc.get("revisions"):
                result.id = "-"  # nothing done: no evidence
                result.outcome, result.message = "succeeded", "no deferred contract revisions"
                return result
            observed = engine.observe()
            running = running_versions(observed)
            allowed, why = contract_allowed(doc, running)
            if not allowed:
                raise LockHeldError(
                    f"the deferred contract revisions {', '.join(doc['revisions'])} cannot run "
                    f"yet: {why}"
                )
            version = str((doc.get("brought_by") or {}).get("version") or "")
            step = migrate_step(engine.ctx, "", version or (observed.live_version or ""))
            assert isinstance(step.do, Migrate)
            m = step.do
            result.version = version or None
            prepared = mig._prepare(m)
            # what this run applies: the deferred revisions still pending, nothing after
            todo = [r for r in doc["revisions"] if r in {p.revision for p in prepared.phases}]
            prepared.contract_first, prepared.expand, prepared.defer = todo, [], []
            mig._prepared[id(m)] = prepared
            engine.reporter.step_started("contract", m.host)
            started = time.monotonic()
            if todo:
                try:
                    detail = mig.run(m)
                except DeployerError as exc:  # the upgrade failed: its transaction rolled back
                    took = time.monotonic() - started
                    engine.reporter.step_finished("contract", m.host, "failed", took, str(exc))
                    result.steps = [_step(m.host, "failed", took, str(exc))]
                    result.migrations = mig.migrations
                    result.outcome, result.exit_code = "aborted", ExitCode.ABORTED
                    result.message = (
                        f"the deferred contract revisions did not run: {exc}; they stay "
                        "deferred (run `deployer migrate --contract` again)"
                    )
                    return result
            else:  # a run killed after the upgrade: only the record was left
                engine.opstate.write_deferred(None)
                detail = "the deferred revisions had run already; record cleared"
            took = time.monotonic() - started
            engine.reporter.step_finished("contract", m.host, "ok", took, detail)
            result.steps = [_step(m.host, "ok", took, detail)]
            result.migrations = mig.migrations or {"contracted": todo}
            result.outcome, result.message = "succeeded", detail
        finally:
            result.ended_at = time.time()
            engine.lock.release(op_id)
            engine.close()
    return result


def _step(host: str, status: str, seconds: float, detail: str) -> dict[str, object]:
    """The one step of a contract run, shaped as a saga step for evidence and reports."""
    return {
        "name": "contract",
        "host": host,
        "status": status,
        "seconds": round(seconds, 3),
        "detail": detail,
    }
