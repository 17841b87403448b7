"""`strategy:` in a playbook: blue-green (all traffic at once, the default) or an analysed
canary (traffic moved in weighted steps, each judged on the router's access log)."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from deployer.playbook.fields import Duration, Strict
from deployer.values import LOG_FORMAT


class CanaryStep(Strict):
    weight: int = Field(ge=1, le=100, description="Percent of requests sent to the new color.")
    pause: Duration = Field(
        30.0, description="How long the step lasts while the access log is analysed."
    )


class PromQuery(Strict):
    query: str = Field(
        description="PromQL; `${version}` and `${color}` are the new color's (any template)."
    )
    max: float | None = Field(None, description="The step fails when the value is above.")
    min: float | None = Field(None, description="The step fails when the value is below.")

    @model_validator(mode="after")
    def _bound(self) -> PromQuery:
        if self.max is None and self.min is None:
            raise ValueError("give max or min (the bound the value must respect)")
        return self


class PromJudge(Strict):
    """The statistical judge fed from Prometheus (deployer/analysis/prom_counts.py): each
    query is rendered once per side, `${color}` and `${version}` being that side's (the
    canary's, then the stable color's), and must return a cumulative count (a counter,
    summed); deployer counts from the step's start."""

    requests: str = Field(
        description="Requests a side answered, e.g. "
        '`sum(app_requests_total{version="${version}"})`.'
    )
    errors: str = Field(
        description="Of those, the failed ones (5xx), e.g. "
        '`sum(app_requests_total{version="${version}",status=~"5.."}) or vector(0)`.'
    )
    slow: str | None = Field(
        None,
        description="Of those, the slow ones (optional), e.g. total minus a histogram "
        "bucket: latency is then judged as the share of slow requests; without it, on "
        "errors alone.",
    )
    slow_margin: float = Field(
        0.05,
        gt=0,
        le=0.5,
        description="The step fails when the canary's share of slow requests is worse than "
        "the stable color's by this much (0.05: five percentage points).",
    )


class PrometheusAnalysis(Strict):
    url: str = Field(
        pattern=r"^https?://[^\s/?#]+(?:/[^\s]*)?$",
        description="Prometheus's base URL (queried with /api/v1/query from this machine).",
    )
    queries: dict[str, PromQuery] = Field(
        default_factory=dict,
        description="Named queries, each evaluated at the end of every step.",
    )
    judge: PromJudge | None = Field(
        None,
        description="Counts for the statistical judge, canary against stable, instead of "
        "the router's access log (the access log is then not read).",
    )
    timeout: Duration = Field(5.0, gt=0, description="Per query.")

    @model_validator(mode="after")
    def _something(self) -> PrometheusAnalysis:
        if not self.queries and self.judge is None:
            raise ValueError("give `queries`, `judge` or both")
        return self


class LogAnalysis(Strict):
    """Judged per step on the router's access log (`router.access_log`, in the `deployer`
    log format), new color against old color in the same window."""

    min_requests: int = Field(
        20, ge=1, description="Requests the new color must have answered before any verdict."
    )
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="The new color's 5xx rate must stay at or below this."
    )
    max_error_ratio: float = Field(
        2.0,
        ge=1,
        description="...and at or below the old color's 5xx rate times this, plus "
        "`error_slack` (a release that fails a few percent where the old one fails none).",
    )
    error_slack: float = Field(0.01, ge=0, le=1, description="See `max_error_ratio`.")
    fail_fast_errors: int = Field(
        5,
        ge=1,
        description="As soon as the new color has this many 5xx and is over the error "
        "limits, the step fails (before its pause ends): the blast radius stays small.",
    )
    max_p95: Duration | None = Field(None, description="The new color's p95 limit.")
    max_p95_ratio: float = Field(
        2.0,
        ge=1,
        description="Kept for old playbooks; no longer decides (the latency judge, "
        "`latency_margin`, replaced it).",
    )
    p95_slack: Duration = Field(
        0.05,
        ge=0,
        description="Kept for old playbooks; no longer decides (see `latency_slack`).",
    )
    interval: Duration = Field(0.5, gt=0, description="How often the access log is read.")
    error_margin: float = Field(
        0.01,
        gt=0,
        le=0.5,
        description="The statistical judge (deployer/analysis/judge.py, a sequential "
        "probability ratio test against the stable color over the same interval): a step "
        "fails when the canary's error ratio is worse than the stable color's by this much "
        "(0.01: one percentage point; a healthy canary fails at most 0.5% of the time), and "
        "passes once it is shown not to be (a canary worse by this much passes at most 10% "
        "of the time).",
    )
    latency_margin: float = Field(
        0.5,
        gt=0,
        le=10,
        description="...and when its median latency is this much above the stable color's "
        "(0.5: +50%), judged the same way.",
    )
    latency_slack: Duration = Field(
        0.02,
        ge=0,
        le=10,
        description="Latency differences below this are noise (nginx logs milliseconds; a "
        "busy machine): a request counts as slow only past the stable median plus this.",
    )
    max_pause: Duration = Field(
        7200.0,
        gt=0,
        le=86400,
        description="A step whose evidence is not enough either way when its `pause` ends "
        "(not yet) goes on until the judge decides, at most this long; then `inconclusive` "
        "decides. The step ends as soon as the judge decides: minutes at a few canary "
        "requests a second; at 0.2 a second a healthy canary needs more than an hour to be "
        "shown no worse by one point with 95% confidence in ~30% of runs, hence two hours "
        "(bench/canary_judge_bench.py).",
    )
    mode: Literal["enforce", "dry-run"] = Field(
        "enforce",
        description="`dry-run`: the whole analysis runs and each verdict is recorded with "
        "what would have happened, but no step is aborted by it; only the post-switch gate "
        "acts.",
    )
    prometheus: PrometheusAnalysis | None = Field(
        None,
        description="Queries judged at the end of each step too: a value past its bound "
        "fails the step; an empty result or an unreachable server is inconclusive (never a "
        "pass).",
    )


class Strategy(Strict):
    kind: Literal["blue_green", "canary"] = Field(
        "blue_green",
        description="`blue_green`: all traffic at once after the pre-switch gate; `canary`: "
        "in `steps`, each analysed on the router's access log (`router.access_log`), which "
        "nginx must write in this format: " + LOG_FORMAT + " (and `access_log PATH deployer;`)",
    )
    steps: list[CanaryStep] = Field(
        default_factory=lambda: [
            CanaryStep(weight=5, pause=30.0),
            CanaryStep(weight=25, pause=30.0),
            CanaryStep(weight=50, pause=30.0),
            CanaryStep(weight=100, pause=0.0),
        ],
        description="Weights in increasing order; the last is 100 (the switch, followed by "
        "the post-switch gate).",
    )
    analysis: LogAnalysis = Field(default_factory=LogAnalysis, description="The rules.")
    inconclusive: Literal["abort", "proceed"] = Field(
        "abort",
        description="When a step reaches the analysis's `max_pause` with no verdict (the "
        "evidence not enough either way): abort (roll back) or proceed to the next step.",
    )

    @model_validator(mode="after")
    def _weights(self) -> Strategy:
        weights = [s.weight for s in self.steps]
        if self.kind == "canary":
            if not weights or weights[-1] != 100:
                raise ValueError("steps: the last step must have weight 100")
            if any(b <= a for a, b in itertools.pairwise(weights)):
                raise ValueError("steps: weights must increase")
        return self
