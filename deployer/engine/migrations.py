"""The migrate step and the rollback's database check, expand/contract included.

With ``migrate.contract: deferred`` a release runs, in this order: the contract revisions an
earlier release deferred, if no version that needs the old shape still runs and their window
has closed; then its own pending revisions up to the first contract one (``alembic upgrade
REV``); then it probes the running (old) version once more, so an expand that broke it stops
the release while users are still on it (exit 3). The contract revisions it leaves are
recorded as deferred where any runner finds them (beside the operation record), and
forgotten again if the release does not stand. ``deployer migrate --contract`` runs them
once allowed (:func:`run_contract`). A pending chain whose expand revision comes after a
contract revision that may not run yet is refused before anything runs (exit 2): Alembic
cannot skip a revision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from deployer.adapters import http
from deployer.commands import alembic as alembic_cmd
from deployer.commands import files
from deployer.engine.hosts import HostPool
from deployer.errors import CommandFailed, DeployerError, GateFailed, InputError
from deployer.plan import CheckDatabase, Migrate, Step
from deployer.ports import OperationRecord
from deployer.values import Secret


@dataclass
class Prepared:
    """What the preflight found for one migrate step (read-only: nothing changed yet)."""

    current: str | None
    phases: list[Any]
    #: deferred contract revisions that may run first, and the record they come from
    contract_first: list[str] = field(default_factory=list)
    deferred_doc: dict[str, Any] | None = None
    #: this release's revisions before the switch, and the contract ones it defers
    expand: list[str] = field(default_factory=list)
    defer: list[str] = field(default_factory=list)


class MigrationSteps:
    def __init__(self, hosts: HostPool, warnings: list[str]):
        self.hosts, self.warnings = hosts, warnings
        self.migrations: dict[str, Any] | None = None
        #: set by the engine: where deferred contracts are kept, this operation's id, and
        #: `rollback --force`
        self.record: OperationRecord | None = None
        self.op_id = ""
        self.force = False
        self._prepared: dict[int, Prepared] = {}

    # ----- before anything runs -----
    def preflight(self, steps: list[Step]) -> None:
        """Read-only checks that refuse (exit 2) before the operation changes anything."""
        for step in steps:
            if isinstance(step.do, Migrate) and step.do.mode == "deferred":
                self._prepared[id(step.do)] = self._prepare(step.do)
            elif isinstance(step.do, CheckDatabase) and not self.force:
                self._refuse_contracted(step.do)

    def _prepare(self, m: Migrate) -> Prepared:
        from deployer.commands.alembic import parse_current
        from deployer.lint.gate import versions_folder
        from deployer.lint.phases import classify, order_problem

        runner = self.hosts.runner(m.host)
        current = parse_current(runner.run(m.current, timeout=120).stdout)
        phases = classify(versions_folder(m.scripts), current)
        out = Prepared(current, phases)
        doc = self._deferred()
        allowed, why = contract_allowed(doc, m.running)
        deferred_revs = set(doc.get("revisions", [])) if doc else set()
        runnable = {p.revision for p in phases if p.revision in deferred_revs} if allowed else set()
        problem = order_problem(phases, runnable)
        if problem:
            wait = f" ({why})" if doc and not allowed else ""
            raise InputError(f"migrate: {problem}{wait}")
        # the chain in order: contract revisions allowed now, then expand, then the rest
        i = 0
        while i < len(phases) and phases[i].revision in runnable:
            out.contract_first.append(phases[i].revision)
            i += 1
        while i < len(phases) and phases[i].phase == "expand":
            out.expand.append(phases[i].revision)
            i += 1
        out.defer = [p.revision for p in phases[i:]]
        out.deferred_doc = doc
        return out

    def _deferred(self) -> dict[str, Any] | None:
        if self.record is None:
            return None
        from deployer import trust

        doc = self.record.read_deferred()
        if doc is None:
            return None
        if doc.get("damaged"):
            raise DeployerError(
                f"the deferred contract record beside {self.record.where} is unreadable: "
                "check it, then remove it"
            )
        where = "the deferred contract record"
        for rev in doc.get("revisions") or []:
            trust.revision(rev, where)
        for v in doc.get("needs_old") or []:
            trust.version(v, where)
        return doc

    # ----- the migrate step -----
    def run(self, m: Migrate) -> str:
        from deployer.commands.alembic import parse_current
        from deployer.lint.gate import lint_pending

        runner = self.hosts.runner(m.host)
        prepared = self._prepared.get(id(m))
        current = parse_current(runner.run(m.current, timeout=120).stdout)
        gate = lint_pending(m.scripts, current, list(m.acknowledge))
        record: dict[str, Any] = {
            "from": current,
            "lint": gate.to_dict(),
            "applied": [],
            "attempts": 0,
            "mode": m.mode,
        }
        self.migrations = record
        if prepared is not None:  # deferred: contract findings are what gets deferred
            contracts = {p.revision for p in prepared.phases if p.phase == "contract"}
            gate.blocking = [(r, f) for r, f in gate.blocking if not _deferrable(r, f, contracts)]
            record["lint"] = gate.to_dict()
        if gate.blocking:
            raise GateFailed(f"migration lint gate: {gate.message()}")
        if not gate.pending:
            record["to"] = current
            self._remember_revision(m, current)
            return f"database at {current or 'base'}: nothing to apply"
        if m.prove is not None:
            self._prove(m, gate, current, record)
        if prepared is None:  # with-release: everything, as before
            done = self._upgrade(m, record, "head", gate.pending)
            self._remember_revision(m, done)
            acks = f", {len(gate.acknowledged)} acknowledged" if gate.acknowledged else ""
            return (
                f"{current or 'base'} -> {done}: {len(record['applied'])} revision(s) in "
                f"{record['attempts']} attempt(s){acks}"
            )
        said = []
        if prepared.contract_first:
            self._upgrade(m, record, prepared.contract_first[-1], gate.pending)
            record["contracted"] = prepared.contract_first
            assert self.record is not None
            self.record.write_deferred(None)
            said.append(f"ran {len(prepared.contract_first)} deferred contract revision(s)")
        reached: str | None
        if prepared.expand:
            reached = self._upgrade(m, record, prepared.expand[-1], gate.pending)
        else:
            reached = parse_current(runner.run(m.current, timeout=120).stdout)
        after = reached
        record["to"] = after
        self._remember_revision(m, after, prepared.defer)
        if prepared.defer:
            record["deferred"] = prepared.defer
            not_before = time.time() + m.window
            doc = {
                "revisions": prepared.defer,
                "brought_by": {"version": m.version, "op_id": self.op_id},
                "needs_old": list(m.needs_old),
                "not_before": not_before,
                "deferred_at": time.time(),
            }
            assert self.record is not None
            self.record.write_deferred(doc)
            said.append(
                f"deferred {len(prepared.defer)} contract revision(s) "
                f"({', '.join(prepared.defer)}) until {_when(not_before)} and "
                f"{', '.join(m.needs_old) or 'no older version'} no longer runs"
            )
        if prepared.expand or prepared.contract_first:
            self._check_live(m)
        expanded = [f"{len(prepared.expand)} expand revision(s)"] if prepared.expand else []
        return f"{current or 'base'} -> {after}: " + "; ".join(
            [*expanded, *said] or ["0 expand revision(s)"]
        )

    def _upgrade(self, m: Migrate, record: dict[str, Any], to: str, pending: list[str]) -> str:
        """``alembic upgrade TO``, retried on a lock timeout; the revision reached."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        from deployer.commands.alembic import is_lock_timeout, parse_current

        runner = self.hosts.runner(m.host)
        command = (
            m.upgrade
            if to == "head" or m.base is None
            else alembic_cmd.alembic(*m.base, "upgrade", to)
        )
        if m.state_dir:  # never two at once, even with a killed deployer's still running
            command = files.one_at_a_time(m.state_dir, command)

        def upgrade() -> None:
            record["attempts"] += 1
            runner.run(command, timeout=3600)

        retrying = Retrying(
            retry=retry_if_exception(
                lambda e: isinstance(e, CommandFailed) and is_lock_timeout(e.stderr)
            ),
            stop=stop_after_attempt(m.retries),
            wait=wait_exponential(multiplier=0.5, max=15),
            reraise=True,
        )
        try:
            retrying(upgrade)
        finally:
            after = parse_current(runner.run(m.current, timeout=120).stdout)
            record["to"] = after
            if after in pending:
                record["applied"] = pending[: pending.index(after) + 1]
        return str(after)

    def _check_live(self, m: Migrate) -> None:
        """The running version's own checks, once the revisions are in: a few tries each."""
        bad = []
        for url, expect in m.live_checks:
            why = "ok"
            for _ in range(3):
                why = http.probe_each({"live": url}, expect, timeout=3.0)["live"]
                if why == "ok":
                    break
                time.sleep(0.3)
            if why != "ok":
                bad.append(f"{url}: {why}")
        if bad:
            raise GateFailed(
                "the migrations broke the running version (it still serves users): "
                + "; ".join(bad)
                + ": release aborted before the switch; the database stays migrated"
            )

    def forget(self) -> str:
        """Undo of a deferred-mode migrate step: its deferred contracts are forgotten."""
        if self.record is None:
            return ""
        doc = self.record.read_deferred()
        if doc and (doc.get("brought_by") or {}).get("op_id") == self.op_id:
            self.record.write_deferred(None)
            return "forgot the contract revisions this release had deferred"
        return ""

    def _prove(self, m: Migrate, gate: Any, current: str | None, record: dict[str, Any]) -> None:
        """`migrate.prove`: the pending revisions in a scratch database first; a rewrite,
        a long ACCESS EXCLUSIVE or a failing revision stops the release before it migrates."""
        from deployer.lint.rules import load_rules
        from deployer.prove.run import ProveOptions, prove
        from deployer.prove.verdict import judge

        assert m.prove is not None
        url = m.prove.url.value if isinstance(m.prove.url, Secret) else str(m.prove.url)
        options = ProveOptions(
            rows=m.prove.rows,
            lock_bound_s=m.prove.lock_bound,
            schema_from=m.prove.schema_from,
            start_after=current,
            i_know=m.prove.i_know,
        )
        try:
            run = prove(gate.migrations, url, options)
        except DeployerError as exc:
            raise GateFailed(f"migration prove: {exc}") from exc
        verdict = judge(gate.result, run, load_rules(), m.prove.lock_bound)
        doc = verdict.to_dict()
        record["prove"] = {k: doc[k] for k in ("passed", "rows", "lock_bound_ms", "hazards")}
        record["prove"]["revisions"] = [
            {
                "revision": r["revision"],
                "duration_ms": r["duration_ms"],
                "access_exclusive_ms": r["access_exclusive_ms"],
                "error": r["error"],
            }
            for r in doc["revisions"]
        ]
        if verdict.failed:
            raise GateFailed("migration prove: " + "; ".join(verdict.hazards[:5]))

    def _remember_revision(
        self, m: Migrate, revision: str | None, own_contracts: list[str] | None = None
    ) -> None:
        """The revision ``m.version`` went live with, and the contract revisions it brought
        and deferred (it works without what they remove: a rollback to it may meet them)."""
        if m.state_dir and m.version:
            cmd = files.write_db_revision(m.state_dir, m.version, revision, own_contracts)
            self.hosts.runner(m.host).run(cmd, timeout=60)

    # ----- a rollback's database -----
    def _ahead(self, c: CheckDatabase) -> tuple[str | None, str, Any]:
        from deployer import trust
        from deployer.commands.alembic import parse_current
        from deployer.lint.gate import revisions_ahead

        runner = self.hosts.runner(c.host)
        current = parse_current(runner.run(c.current, timeout=120).stdout)
        text = runner.run(files.read_db_revision(c.state_dir, c.version)).stdout.strip()
        lines = text.splitlines()
        recorded, own = (lines[0].strip() if lines else ""), lines[1:]
        where = f"{c.host}: {c.state_dir}/db-revision.{c.version}"
        if recorded and recorded != "base":  # read back from the host: input
            trust.revision(recorded, where)
        mine = {trust.revision(r.strip(), where) for r in ",".join(own).split(",") if r.strip()}
        if not recorded:
            return current, recorded, None
        older = None if recorded == "base" else recorded
        ahead = revisions_ahead(c.scripts, current, older)
        # what the version itself brought and deferred, it works without
        ahead.contract = [k for k in ahead.contract if k["revision"] not in mine]
        return current, recorded, ahead

    def _refuse_contracted(self, c: CheckDatabase) -> None:
        """A rollback to a version the database has contracted past is refused (exit 2)
        before anything runs: that version may need what the contract removed."""
        try:
            _, _, ahead = self._ahead(c)
        except DeployerError:
            return  # the step itself says it could not tell
        if ahead is None or ahead.unknown or not ahead.contract:
            return
        k = ahead.contract[0]
        raise InputError(
            f"rollback to {c.version}: the database has contracted past it: revision "
            f"{k['revision']} ({k['rule']}: {k['message']}) ran after {c.version} went live, "
            f"and {c.version} may need what it removed. Release a version that works with the "
            "schema instead, or roll back anyway with `deployer rollback --force`"
        )

    def check_database(self, c: CheckDatabase) -> str:
        try:
            current, recorded, ahead = self._ahead(c)
        except DeployerError as exc:
            what = f"could not read the database's revision: {exc}"
            self.warnings.append(f"check-database: {what}")
            self.migrations = {"rollback_to": c.version, "unknown": what}
            return what
        if ahead is None:
            what = (
                f"database at {current or 'base'}; no revision was recorded for {c.version} "
                "(released before deployer recorded it): cannot say what it is ahead by"
            )
            self.migrations = {"rollback_to": c.version, "database": current, "unknown": what}
            return what
        self.migrations = {"rollback_to": c.version, **ahead.to_dict()}
        if ahead.unknown:
            self.warnings.append(f"check-database: {ahead.unknown}")
            return str(ahead.unknown)
        if not ahead.revisions:
            return f"database at {current or 'base'}, as when {c.version} went live"
        text = (
            f"database at {current}, ahead of {c.version} ({recorded}) by "
            f"{len(ahead.revisions)} revision(s): {', '.join(ahead.revisions)}; not migrated back"
        )
        for k in ahead.contract:
            self.warnings.append(
                f"revision {k['revision']} contracts the schema ({k['rule']}: {k['message']}) "
                f"since {c.version} went live: {c.version} may fail against it"
            )
        return text


def contract_allowed(doc: dict[str, Any] | None, running: tuple[str, ...]) -> tuple[bool, str]:
    """Whether deferred contract revisions may run now: their window has closed and no
    version that needs the old shape runs. (allowed, why not)."""
    if not doc:
        return False, "nothing is deferred"
    not_before = float(doc.get("not_before") or 0)
    if time.time() < not_before:
        return False, f"the rollback window of {_brought(doc)} closes {_when(not_before)}"
    still = sorted(set(doc.get("needs_old") or []) & set(running))
    if still:
        return False, (
            f"{', '.join(still)} still runs (a rollback to it would meet the contracted schema); "
            "possible once it is stopped"
        )
    return True, ""


def _brought(doc: dict[str, Any]) -> str:
    by = doc.get("brought_by") or {}
    return f"the release of {by.get('version') or '?'}"


def _when(ts: float) -> str:
    left = ts - time.time()
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return f"at {at} (in {left:.0f}s)" if left > 0 else f"at {at}"


def _deferrable(revision: str, finding: Any, contracts: set[str]) -> bool:
    from deployer.lint.phases import contract_rules

    return revision in contracts and finding.rule in contract_rules()
