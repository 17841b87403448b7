"""`strategy: canary` on Vercel: a rolling release, each stage judged before it is approved.

deployer sets the project's rolling-release configuration to manual approval with the
playbook's stages (the previous configuration is put back at the end, or on an abort), starts
the rolling release for the candidate, and at each stage probes the production domain for the
step's pause. Vercel keeps each client on one side of a rolling release (a cookie, and the
client's identity), so one prober left to itself would only ever see one side: every probe
forces a side on purpose, alternately (``vcrrForceCanary=1`` / ``vcrrForceStable=1``, the
query parameters Vercel documents for checking each side, docs/rolling-releases), and each
answer is attributed by the commit the deployment itself reports (a health route returning
``VERCEL_GIT_COMMIT_SHA``: all 40 characters, or any prefix of at least 7 either way).
The same statistical judge as on nginx (deployer/analysis/judge.py) judges the candidate's
probes against the current deployment's, over the same interval, extending the stage up to
``max_pause`` while the evidence is not enough either way (and Prometheus, when
configured); a pass approves the next stage (``approve-stage`` with ``nextStageIndex`` and
``canaryDeploymentId``), the last one completes the rolling release; a failure rolls
production back to the previous deployment (the start step's undo), exit 4.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployer import progress
from deployer.adapters import resolve
from deployer.adapters.vercel import ApiError
from deployer.analysis.canary import Side, decide, prometheus, rules_for, statistical
from deployer.analysis.judge import Verdict
from deployer.errors import DeployerError, GateFailed
from deployer.plan import Step, TargetAction
from deployer.targets.vercel_actions import RollBack

if TYPE_CHECKING:
    from deployer.targets.vercel_actions import RollingHost


@dataclass(frozen=True)
class RollingConfigure(TargetAction):
    weights: tuple[int, ...]

    def describe(self) -> list[str]:
        stages = ", ".join(f"{w}%" for w in self.weights)
        return [
            "PATCH /v1/projects/{project}/rolling-release/config: enabled, manual-approval, "
            f"stages {stages} (the previous configuration is put back afterwards)"
        ]


@dataclass(frozen=True)
class RollingRestore(TargetAction):
    previous: str  # the configuration before, as JSON ("null": none)

    def describe(self) -> list[str]:
        return ["put the project's previous rolling-release configuration back"]


@dataclass(frozen=True)
class RollingStart(TargetAction):
    switches_traffic = True
    deployment: str
    version: str
    weight: int

    def describe(self) -> list[str]:
        return [
            f"POST /v1/projects/{{project}}/rolling-release/start {{canaryDeploymentId: "
            f"{self.deployment}}}: {self.weight}% of production to it"
        ]


@dataclass(frozen=True)
class RollingStage(TargetAction):
    switches_traffic = True
    deployment: str
    version: str
    weight: int
    pause: float
    next_index: int
    completes: bool  # the next stage is the last: complete instead of approving it
    probe_url: str
    rate: float
    analysis: Any
    inconclusive: str
    queries: tuple[tuple[str, str, float | None, float | None], ...] = ()
    #: the candidate's commit (what its health route reports), when Vercel says
    commit: str | None = None

    def describe(self) -> list[str]:
        then = "complete the rolling release" if self.completes else (
            f"approve-stage {{nextStageIndex: {self.next_index}, canaryDeploymentId: "
            f"{self.deployment}}}"
        )  # fmt: skip
        return [
            f"for {self.pause:g}s probe {self.probe_url} at {self.rate:g}/s, each side forced in "
            f"turn (vcrrForceCanary / vcrrForceStable), each answer the candidate's "
            f"({self.commit or self.version}) or production's by the commit it reports; the "
            f"statistical judge as on nginx, up to {self.analysis.max_pause:g}s while not yet",
            f"on a pass {then}",
        ]


def rolling_steps(
    target: RollingHost, observed: Any, deployment: Any, version: str
) -> list[Step] | None:
    """The steps that replace the promote, or None when there is no production to compare
    the candidate with (a first release is a promote)."""
    pb = target.pb
    st = pb.strategy
    prod = observed.extra.get("production")
    if st.kind != "canary" or not prod:
        return None
    weights = tuple(s.weight for s in st.steps)
    previous = json.dumps(target.api.rolling_config(target.project_id))
    post = pb.gates.post_switch
    prom = st.analysis.prometheus
    values = target.ctx.values(pb.LOCAL, "", version)
    from deployer.playbook.variables import render_value

    queries = tuple(
        (name, str(render_value(q.query, values, target.ctx.env)), q.min, q.max)
        for name, q in (prom.queries.items() if prom else ())
    )
    steps = [
        Step("rolling-config", None, RollingConfigure(weights), undo=RollingRestore(previous)),
        Step(
            f"rolling-start-{weights[0]}%",
            None,
            RollingStart(deployment.id, version, weights[0]),
            undo=RollBack(prod["id"], prod["url"], observed.live_version or prod["id"]),
        ),
    ]
    for i, spec in enumerate(s for s in st.steps if s.weight < 100):
        steps.append(
            Step(
                f"canary-{spec.weight}%",
                None,
                RollingStage(
                    deployment.id,
                    version,
                    spec.weight,
                    spec.pause,
                    i + 1,
                    i + 1 == len(weights) - 1,
                    pb.vercel.production_url.rstrip("/") + post.path,
                    post.rate,
                    st.analysis,
                    st.inconclusive,
                    queries,
                    deployment.commit,
                ),
            )
        )
    return steps


def same_commit(reported: str, expected: str | None) -> bool:
    """A reported commit (or version) is the candidate's: equal, or one a prefix of the
    other of at least 7 characters (a short SHA against ``VERCEL_GIT_COMMIT_SHA``)."""
    if not reported or not expected:
        return False
    short, long_ = sorted((reported.lower(), expected.lower()), key=len)
    return short == long_ or (len(short) >= 7 and long_.startswith(short))


def _forced(url: str, side: str) -> str:
    flag = "vcrrForceCanary=1" if side == "new" else "vcrrForceStable=1"
    return f"{url}{'&' if '?' in url else '?'}{flag}"


def execute(target: RollingHost, action: Any) -> str | None:
    api, project = target.api, target.project_id
    match action:
        case RollingConfigure(weights=weights):
            api.set_rolling_config(
                project,
                {
                    "enabled": True,
                    "advancementType": "manual-approval",
                    "target": "production",
                    "stages": [{"targetPercentage": w} for w in weights],
                },
            )
            return f"rolling releases: manual approval, stages {', '.join(map(str, weights))}%"
        case RollingRestore(previous=previous):
            api.set_rolling_config(project, json.loads(previous))
            return "the previous rolling-release configuration is back"
        case RollingStart(deployment=deployment, weight=weight):
            rr = api.rolling_start(project, deployment).get("rollingRelease") or {}
            if rr.get("state") != "ACTIVE":
                raise DeployerError(f"Vercel did not start the rolling release: {rr.get('state')}")
            return f"{weight}% of production to {deployment}"
        case RollingStage():
            return _stage(target, action)
    return None


def _stage(target: RollingHost, step: RollingStage) -> str:
    import httpx

    new, old = Side(), Side()
    started = time.monotonic()
    sent, verdict, why = 0, None, ""
    a = step.analysis
    max_pause = max(step.pause, a.max_pause)
    # probes are split evenly between the sides on purpose: the stable side needs no more
    # samples than the canary before a verdict (the access log's stable color has 9x more)
    rules = rules_for(a, min_stable=min(a.min_requests, 100))
    stats: Verdict | None = None
    headers = target._plain_headers()
    with resolve.client(timeout=5.0, headers=headers) as client:
        while True:
            elapsed = time.monotonic() - started
            final, bound = elapsed >= step.pause, elapsed >= max_pause
            due = started + sent / step.rate
            while not bound and time.monotonic() >= due and sent < step.rate * max_pause + 1:
                t0 = time.monotonic()
                forced = "new" if sent % 2 == 0 else "old"
                try:
                    resp = client.get(_forced(step.probe_url, forced))
                    body = resp.json() if resp.content else {}
                    doc = body if isinstance(body, dict) else {}
                    seen = str(doc.get("commit") or doc.get("version") or "")
                    ok = resp.status_code == 200
                except (httpx.HTTPError, ValueError):
                    ok, seen = False, ""
                expected = step.commit or step.version
                if seen:  # what the deployment says it is decides, not what was asked
                    side = new if same_commit(seen, expected) else old
                else:
                    side = new if forced == "new" else old
                side.requests += 1
                side.errors += not ok
                side.latencies_ms.append((time.monotonic() - t0) * 1000)
                sent += 1
                due = started + sent / step.rate
            stats = statistical(new, old, rules, final=bound)
            progress.emit(
                "canary", weight=step.weight, new=new.to_dict(), old=old.to_dict(),
                elapsed=time.monotonic() - started, pause=step.pause, judge=stats.verdict,
            )  # fmt: skip
            verdict, why = decide(new, old, a, stats, final, bound)
            if verdict in ("pass", "inconclusive") and step.queries:
                pv, pwhy, _ = prometheus(
                    step.analysis.prometheus.url, step.queries, step.analysis.prometheus.timeout
                )
                if pv != "pass" and (verdict == "pass" or pv == "fail"):
                    verdict, why = pv, pwhy
            if verdict is not None:
                break
            time.sleep(max(0.0, min(due - time.monotonic(), 0.05)))
    target.facts.setdefault("canary", []).append(
        {
            "weight": step.weight,
            "seconds": round(time.monotonic() - started, 3),
            "new": new.to_dict(),
            "old": old.to_dict(),
            "verdict": verdict,
            "reason": why,
            "judge": stats.to_dict() if stats is not None else None,
        }
    )
    summary = (
        f"{step.weight}%: candidate {new.requests} probes, {new.errors} failed, p95 "
        f"{new.p95_ms:.0f} ms; production {old.requests} probes, {old.errors} failed"
    )
    if verdict == "fail" or (verdict == "inconclusive" and step.inconclusive == "abort"):
        raise GateFailed(f"canary step {step.weight}% failed: {why} ({summary})")
    api, project = target.api, target.project_id
    try:
        if step.completes:
            api.rolling_complete(project, step.deployment)
        else:
            api.rolling_approve(project, step.deployment, step.next_index)
    except ApiError:  # a retried request that had landed: is the stage already there?
        rr = api.rolling_release(project) or {}
        index = (rr.get("activeStage") or {}).get("index")
        if not (rr.get("state") == "COMPLETE" or index == step.next_index):
            raise
    then = "completed" if step.completes else f"approved stage {step.next_index}"
    return f"{summary}; {then}"
