"""The canary judge: the canary against the stable color over the same interval, per metric,
as a sequential probability ratio test (Wald's SPRT), so that thin traffic decides as soon as
the evidence allows and never before.

Each metric weighs two hypotheses about the canary's requests, given what the stable color
shows in the same interval:

- **errors**: H0, the canary fails as often as the stable color (its rate ``p0``); H1, it
  fails ``error_margin`` more often (``p0 + margin``: 1 percentage point by default). Every
  canary request adds ``ln(p1/p0)`` (an error) or ``ln((1-p1)/(1-p0))`` (a success) to the
  log-likelihood ratio. ``p0`` is the upper 90% (Wilson) bound of the stable color's rate, not
  its point estimate: the baseline is itself measured, and a stable color with no errors yet
  (said in the verdict) never makes one canary error decisive by itself.
- **latency**: a request is "slow" when it takes longer than the stable color's median plus
  ``latency_slack`` (20 ms: below that, differences are a clock's resolution or a busy
  machine). H0, the canary's requests are slow as often as the stable color's; H1, the
  canary is ``latency_margin`` slower (``+50%`` by default): then they are slow as often as
  stable requests scaled by 1.5 would be, and at least 25 points more often (a fixed added
  delay on fast requests). Both rates come from the stable samples themselves (a sign test
  made sequential).

The ratio crossing ``ln((1-beta)/alpha)`` is a **fail** (the canary is worse by the margin;
``alpha`` the chance of failing a healthy canary, 0.5% per metric), crossing
``ln(beta/(1-alpha))`` a **pass** for that metric (``beta`` the chance of passing one that is
worse by the margin, 2.5%); in between, **not yet**. A step fails as soon as one metric
fails (fail-fast, on evidence, not a count) and passes when every metric has passed; neither
happens before ``min_requests`` canary requests, nor without a stable color to compare with.
Wald's bounds keep both error rates near alpha and beta however often the ratio is looked
at.

**At ``max_pause``** (the step cannot be extended further), a metric still "not yet" gets one
fixed-sample look: it passes if the upper one-sided 97.5% bound of the difference between the
canary's rate and the stable color's (Newcombe's hybrid score interval, built from the two
Wilson intervals) lies below the margin; otherwise the step is inconclusive and the
playbook's ``inconclusive`` policy decides.

Together this is what "pass when it is not worse by that much with 95% confidence" means:
a canary exactly at the margin can pass through the sequential test (at most 2.5%) or the
final look (at most 2.5%), so in at most 5% of runs (measured by the replay bench: 2.2% with
``max_pause`` 1 h, 4.6% with 2 h). Before this split the two had 10% and 5% each, and a
canary a full point worse passed 17% of two-hour steps. The price is time on thin traffic:
at 0.2 canary requests a second a healthy canary needs more than an hour to be shown no
worse by one point in ~30% of runs (hence ``max_pause`` 2 h by default); at 2 canary
requests a second it takes minutes.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sample:
    """What one color answered in the interval: outcomes and latencies, in order."""

    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    #: requests slower than the source's own threshold, when the source counts them
    #: instead of timing each request (Prometheus: a histogram bucket); None: not counted
    slow: int | None = None
    #: False: the source has no per-request latencies (counts only)
    timed: bool = True
    #: ``latencies_ms`` sorted, kept up to date as requests are added (the judge looks
    #: every half second: sorting every latency at each look was O(n log n) per look)
    _ordered: list[float] = field(default_factory=list, repr=False, compare=False)

    def add(self, error: bool, latency_ms: float) -> None:
        self.requests += 1
        self.errors += bool(error)
        self.latencies_ms.append(latency_ms)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def ordered(self) -> list[float]:
        """The latencies sorted (appended ones merged in: one sorted run and a short tail
        is a linear merge for Python's sort); rebuilt if the list was replaced."""
        done, now = len(self._ordered), len(self.latencies_ms)
        if now < done:
            self._ordered = sorted(self.latencies_ms)
        elif now > done:
            self._ordered.extend(self.latencies_ms[done:])
            self._ordered.sort()
        return self._ordered


def _nearest_rank(ordered: list[float], q: float) -> float:
    """:func:`deployer.gates.percentile` on an already sorted list."""
    if not ordered:
        return 0.0
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def _above(ordered: list[float], cut: float, scale: float = 1.0) -> int:
    """How many of ``ordered`` have ``x * scale > cut`` (the same comparison as a loop)."""
    return len(ordered) - bisect.bisect_right(ordered, cut, key=lambda x: x * scale)


@dataclass(frozen=True)
class Rules:
    error_margin: float = 0.01
    latency_margin: float = 0.5
    alpha: float = 0.005  # per metric: two metrics keep a healthy canary's fail rate <= 1%
    beta: float = 0.025  # with the final look's 2.5%: a canary at the margin passes <= 5%
    min_requests: int = 10
    min_stable: int = 100
    #: counted slow requests (no per-request latencies): H1 is this many more of them
    slow_margin: float = 0.05
    #: latency differences below this are noise (a clock's resolution, a busy machine)
    latency_slack_ms: float = 20.0


@dataclass
class Metric:
    name: str
    verdict: str  # "pass" | "fail" | "not yet"
    llr: float
    canary: str
    stable: str
    difference: str
    threshold: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    def text(self) -> str:
        note = f"; {self.note}" if self.note else ""
        return (
            f"{self.name} {self.verdict}: canary {self.canary}, stable {self.stable}, "
            f"{self.difference} (threshold {self.threshold}; log-likelihood ratio "
            f"{self.llr:.2f}){note}"
        )


@dataclass
class Verdict:
    verdict: str  # "pass" | "fail" | "not yet"
    metrics: list[Metric]
    decided_by: str

    def why(self) -> str:
        return f"{self.decided_by}: " + "; ".join(m.text() for m in self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "decided_by": self.decided_by,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def bounds(rules: Rules) -> tuple[float, float]:
    """(fail at or above, pass at or below) for the log-likelihood ratio."""
    return math.log((1 - rules.beta) / rules.alpha), math.log(rules.beta / (1 - rules.alpha))


def _decide(llr: float, rules: Rules) -> str:
    upper, lower = bounds(rules)
    return "fail" if llr >= upper else "pass" if llr <= lower else "not yet"


def wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval (lower, upper) for ``k`` successes in ``n`` trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - margin) / (1 + z * z / n), (centre + margin) / (1 + z * z / n)


def wilson_upper(k: int, n: int, z: float) -> float:
    """The Wilson score interval's upper bound for ``k`` successes in ``n`` trials."""
    return wilson(k, n, z)[1]


#: the final look's bound: one-sided 97.5% (the other 2.5% is the sequential test's beta)
Z_FINAL = 1.96


def difference_upper(k1: int, n1: int, k2: int, n2: int, z: float = Z_FINAL) -> float:
    """The upper bound of ``k1/n1 - k2/n2`` by Newcombe's hybrid score method (his method
    10, 1998): the two Wilson intervals combined; good coverage at small counts and rates
    near zero, where the plain (Wald) interval is far too narrow."""
    p1, p2 = k1 / n1, k2 / n2
    _, u1 = wilson(k1, n1, z)
    l2, _ = wilson(k2, n2, z)
    return p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _final_look(metric: Metric, upper: float, margin: float) -> None:
    """At ``max_pause``: a metric still "not yet" passes if the difference's upper one-sided
    97.5% bound lies below its margin."""
    if metric.verdict != "not yet":
        return
    shown = f"final look: upper 97.5% bound of the difference {upper:+.2%} vs margin {margin:.2%}"
    metric.note = f"{metric.note}; {shown}" if metric.note else shown
    if upper < margin:
        metric.verdict = "pass"


def _proportion(
    name: str, k: int, n: int, ks: int, ns: int, margin: float, rules: Rules, final: bool
) -> Metric:
    """``k`` of the canary's ``n`` requests against ``ks`` of the stable color's ``ns``: H0,
    as often; H1, ``margin`` more often."""
    # the baseline is itself an estimate: its upper 90% bound (Wilson) is used, so that the
    # stable color's own luck does not make a healthy canary look worse
    p0 = wilson_upper(ks, ns, 1.2816)
    note = f"no stable {name} yet: baseline taken as {p0:.2%} (upper 90% bound)" if not ks else ""
    p0 = min(max(p0, 1e-6), 0.999 - margin)
    p1 = p0 + margin
    llr = k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
    rate, base = (k / n if n else 0.0), (ks / ns if ns else 0.0)
    metric = Metric(
        "errors" if name == "errors" else "latency",
        _decide(llr, rules),
        llr,
        f"{k}/{n} ({rate:.2%})" if name == "errors" else f"{k}/{n} {name} ({rate:.2%})",
        f"{ks}/{ns} ({base:.2%})",
        f"difference {rate - base:+.2%}",
        f"+{margin:.1%}",
        note,
    )
    if final and n and ns:
        _final_look(metric, difference_upper(k, n, ks, ns), margin)
    return metric


def errors(canary: Sample, stable: Sample, rules: Rules, final: bool = False) -> Metric:
    return _proportion(
        "errors",
        canary.errors,
        canary.requests,
        stable.errors,
        stable.requests,
        rules.error_margin,
        rules,
        final,
    )


def slow_share(canary: Sample, stable: Sample, rules: Rules, final: bool = False) -> Metric:
    """Latency from counts (a source that cannot time each request): the canary's share of
    slow requests against the stable color's, H1 ``slow_margin`` more."""
    return _proportion(
        "slow",
        canary.slow or 0,
        canary.requests,
        stable.slow or 0,
        stable.requests,
        rules.slow_margin,
        rules,
        final,
    )


def _metrics(canary: Sample, stable: Sample, rules: Rules, final: bool) -> list[Metric]:
    """Errors, and latency as the source measures it: counted slow requests, timed requests,
    or not at all (a source with neither: latency is not a metric of this step)."""
    out = [errors(canary, stable, rules, final)]
    if canary.slow is not None and stable.slow is not None:
        out.append(slow_share(canary, stable, rules, final))
    elif canary.timed:
        out.append(latency(canary, stable, rules, final))
    return out


#: the least H1 asks of the slow rate, above the stable color's
SHIFT = 0.25


def latency(canary: Sample, stable: Sample, rules: Rules, final: bool = False) -> Metric:
    base, seen = stable.ordered(), canary.ordered()
    median = _nearest_rank(base, 50)
    cut = median + rules.latency_slack_ms
    scaled = 1 + rules.latency_margin
    n = max(1, len(base))
    # how often a request is slower than the cut: a stable one (H0), and a stable one
    # scaled by the margin (H1), from the stable samples themselves
    slow = _above(base, cut)
    p0 = (slow + 0.5) / (n + 1)
    q1 = (_above(base, cut, scaled) + 0.5) / (n + 1)
    k = _above(seen, cut)
    m = len(seen)
    cp50 = _nearest_rank(seen, 50)
    common = (
        f"p50 {cp50:.0f} ms, {k}/{m} slower than {cut:.0f} ms",
        f"p50 {median:.0f} ms",
        f"p50 ratio {cp50 / median:.2f}" if median else "p50 ratio -",
        f"+{rules.latency_margin:.0%} p50 and {rules.latency_slack_ms:.0f} ms",
    )
    # a shift the scaling misses (tiny stable latencies, a fixed added delay): a quarter more
    # of the requests slow is a regression too
    q1 = min(max(q1, p0 + SHIFT), 0.99)
    llr = k * math.log(q1 / p0) + (m - k) * math.log((1 - q1) / (1 - p0))
    metric = Metric("latency", _decide(llr, rules), llr, *common)
    if final and m and stable.latencies_ms:  # the margin: H1's slow rate above H0's
        upper = difference_upper(k, m, slow, len(stable.latencies_ms))
        _final_look(metric, upper, q1 - p0)
    return metric


def judge(canary: Sample, stable: Sample, rules: Rules, final: bool = False) -> Verdict:
    """The step's verdict now: "fail" as soon as a metric fails, "pass" once every metric
    passed, "not yet" otherwise (never a verdict on too few requests). ``final``: the step
    is at ``max_pause``, a metric still undecided gets the fixed-sample look (module
    docstring)."""
    if canary.requests < rules.min_requests or stable.requests < rules.min_stable:
        metrics = _metrics(canary, stable, rules, False)
        for m in metrics:
            m.verdict = "not yet"
        why = (
            f"{canary.requests} canary and {stable.requests} stable request(s): a verdict "
            f"needs {rules.min_requests} and {rules.min_stable}"
        )
        return Verdict("not yet", metrics, why)
    metrics = _metrics(canary, stable, rules, False)
    failed = [m for m in metrics if m.verdict == "fail"]
    if failed:
        return Verdict("fail", metrics, f"{failed[0].name}: worse by the margin (SPRT)")
    if all(m.verdict == "pass" for m in metrics):
        return Verdict("pass", metrics, "every metric: not worse by the margin (SPRT)")
    if final:
        metrics = _metrics(canary, stable, rules, True)
        if all(m.verdict == "pass" for m in metrics):
            return Verdict(
                "pass",
                metrics,
                "every metric: not worse by the margin (SPRT, then a 97.5% bound at max_pause)",
            )
    waiting = [m.name for m in metrics if m.verdict == "not yet"]
    return Verdict("not yet", metrics, f"not enough evidence yet on {', '.join(waiting)}")
