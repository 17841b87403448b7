"""`deployer drill`: prove on the real system that rollback works, and measure it.

A drill is a release of the live version (or ``--version``) to the idle color that always
ends switched back: after the post-switch gate the drill's verdict rolls back exactly as a
failing gate would (the same saga, undo in reverse, dead-man watchdog armed meanwhile). With
``--broken`` the build is made to fail its gate (``drill.broken_vars``) and the real gate has
to catch it. Traffic through the router is watched from start to end. The drill passes
(exit 0) only if traffic came back within the bound, the router serves the old color healthy,
and every host is as it was before (live color, versions, the warm color running or not);
otherwise it exits 8 and its evidence record says why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deployer.adapters.watch import RouterWatch
from deployer.engine.outcome import SagaOutcome, describe_error
from deployer.engine.result import OperationResult
from deployer.errors import AbortedError, DrillVerdict, ExitCode
from deployer.plan import Context, Observed, Step

if TYPE_CHECKING:
    from deployer.engine.operations import Engine


class Drill:
    def __init__(
        self, engine: Engine, version: str | None, *, broken: bool, bound: float | None
    ) -> None:
        pb = engine.pb
        engine.target.check_drill(broken=broken, version=version)
        self.engine, self.version, self.broken = engine, version, broken
        self.bound = bound if bound is not None else pb.drill.restore_bound
        ctx = engine.ctx
        self.build = (
            Context(ctx.loaded, ctx.env, {**ctx.vars, **pb.drill.broken_vars}) if broken else None
        )
        self.watch: RouterWatch | None = None  # started once the plan knows what serves

    def run(self) -> OperationResult:
        try:
            return self.engine._run("drill", self.plan, self.conclude)
        finally:
            if self.watch is not None:
                self.watch.__exit__()

    def plan(self, observed: Observed) -> tuple[str, Observed, list[Step]]:
        if observed.live_color is None:
            raise AbortedError("nothing is live: a drill needs a live color to come back to")
        target = self.engine.target
        version, observed, steps = target.drill_plan(observed, self.version, self.build)
        # what users see, watched from here to the end (bounded by the lock's ttl)
        url, _, headers = target.serving(observed.live_color or "", version)
        post = self.engine.pb.gates.post_switch
        self.watch = RouterWatch(
            url,
            rate=self.engine.pb.drill.watch_rate,
            limit=self.engine.pb.lock.ttl,
            timeout=post.timeout,
            headers=headers,
        )
        self.watch.__enter__()
        return version, observed, steps

    # ----- the verdict -----
    def conclude(self, result: OperationResult, out: SagaOutcome, before: Observed) -> None:
        self._verdict(result, out, before)
        verify = next((g for g in reversed(self.engine.actions.gates) if g.name == "verify"), None)
        if verify is not None and not verify.passed and result.exit_code == ExitCode.OK:
            # users may be hurt now: never 0 (see verify_serving)
            result.exit_code = ExitCode.NEEDS_RECOVERY

    def _verdict(self, result: OperationResult, out: SagaOutcome, before: Observed) -> None:
        engine = self.engine
        engine.record(result, out)
        failed = out.failed.key if out.failed is not None else None
        cause = describe_error(out.error) if out.error is not None else "no verdict"
        detection = (
            round(out.verdict_at - out.switched_at, 3)
            if out.verdict_at is not None and out.switched_at is not None
            else None
        )
        info: dict[str, Any] = {
            "broken": self.broken,
            "bound_s": self.bound,
            "detection_s": detection,
            "restore_s": out.restore_seconds,
            "verdict_step": failed,
            "passed": False,
            "problems": [],
        }
        result.drill = info
        interrupted = isinstance(out.error, KeyboardInterrupt)
        if out.undo_errors:
            result.outcome, result.exit_code = "failed", ExitCode.NEEDS_RECOVERY
            result.message = (
                f"drill: {cause}; undo failed ({'; '.join(out.undo_errors)}): check the "
                "hosts, then run `deployer recover`"
            )
            info["problems"].append("undo failed")
            return
        engine.verify_serving(result)
        info["traffic"] = self.watch.summary(out.switched_at, out.restored_at) if self.watch else {}
        if not out.switched:
            result.outcome = "interrupted" if interrupted else "aborted"
            result.exit_code = ExitCode.ABORTED
            hint = ""
            if self.broken and out.failed is not None and out.failed.name == "pre-switch-gate":
                hint = (
                    ": the broken build failed the pre-switch gate, so it never reached users "
                    "and the rollback after a switch was not exercised; make drill.broken_vars "
                    "break it after the pre-switch gate's probes"
                )
            info["problems"].append(f"stopped before the switch at {failed}: {cause}")
            result.message = (
                f"drill stopped before the switch ({cause}); users saw nothing, "
                f"{result.from_color} still serves; nothing was proven{hint}"
            )
            return
        problems: list[str] = info["problems"]
        if interrupted:
            problems.append(f"interrupted ({cause})")
        elif isinstance(out.error, DrillVerdict):
            if out.error.broken_passed:
                problems.append(str(out.error))
        elif self.broken and out.failed is not None and out.failed.name == "post-switch-gate":
            pass  # what a broken drill is for: the gate caught it
        else:
            result.warnings.append(f"the drill's build failed at {failed}: {cause}")
        if out.restore_seconds is None:
            problems.append("no switch back was recorded")
        elif out.restore_seconds > self.bound:
            problems.append(
                f"traffic took {out.restore_seconds:.2f}s to come back, over the bound "
                f"{self.bound:g}s"
            )
        verify = next((g for g in reversed(engine.actions.gates) if g.name == "verify"), None)
        if verify is not None and not verify.passed:
            problems.append(f"after the drill the router does not serve {result.from_color}")
        problems += self._changed(before)
        info["passed"] = not problems
        traffic = info["traffic"].get("while_switched") or {}
        seen = (
            f"; through the router {traffic.get('errors', 0)} of {traffic.get('requests', 0)} "
            "request(s) failed while it was live"
            if traffic
            else ""
        )
        verdict = "the gate caught it" if self.broken else "verdict"
        timing = (
            f"{verdict} {detection:.2f}s after the switch, " if detection is not None else ""
        ) + f"traffic back on {result.from_color} in {out.restore_seconds or 0:.2f}s"
        what = f"drill{' (broken build)' if self.broken else ''} {result.version} on "
        what += f"{result.to_color}: {timing} (bound {self.bound:g}s){seen}"
        if info["passed"]:
            result.outcome, result.exit_code = "succeeded", ExitCode.OK
            result.message = f"{what}; rollback proven, the system is as it was"
        else:
            result.outcome = "interrupted" if interrupted else "failed"
            result.exit_code = ExitCode.DRILL_FAILED
            result.message = f"{what}; DRILL FAILED: {'; '.join(problems)}"

    def _changed(self, before: Observed) -> list[str]:
        """How the hosts differ from before the drill (live color, versions, warm color)."""
        try:
            after = self.engine.observe()
        except Exception as exc:  # the verdict stands on what could be seen
            return [f"could not look at the hosts after the drill: {describe_error(exc)}"]
        return self.engine.target.changes(before, after)
