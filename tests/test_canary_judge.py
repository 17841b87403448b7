"""The statistical canary judge (deployer/analysis/judge.py) and the step's decision around
it (deployer/analysis/canary.py): its error rates measured by a seeded simulation, its
bounds and baselines by hand, dry-run by a step run against a log."""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deployer.analysis import canary
from deployer.analysis.judge import (
    Rules,
    Sample,
    bounds,
    difference_upper,
    judge,
    wilson_upper,
)
from deployer.errors import GateFailed
from deployer.playbook.strategy_model import LogAnalysis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from canary_judge_bench import one_run


def test_wald_bounds_and_the_wilson_baseline() -> None:
    upper, lower = bounds(Rules(alpha=0.01, beta=0.05))
    assert upper == pytest.approx(math.log(95)) and lower == pytest.approx(math.log(0.05 / 0.99))
    # Wilson's upper bound (one-sided 90%): 0 of 100 is not 0, and it shrinks with n
    assert wilson_upper(0, 100, 1.2816) == pytest.approx(0.01614, abs=1e-4)
    assert wilson_upper(5, 1000, 1.2816) == pytest.approx(0.00878, abs=1e-5)  # by hand
    assert wilson_upper(0, 0, 1.28) == 1.0


def test_the_difference_bound_is_newcombes_published_intervals() -> None:
    """Newcombe (1998, Stat Med 17:873, table II, method 10): two-sided 95% intervals for
    a difference of proportions, each end from difference_upper (the lower end is minus
    the upper of the swapped difference)."""
    z = 1.959964
    for (a, n, b, m), (low, high) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
        (5, 56, 0, 29): (-0.0381, 0.1926),
    }.items():
        assert difference_upper(a, n, b, m, z) == pytest.approx(high, abs=1e-4)
        assert -difference_upper(b, m, a, n, z) == pytest.approx(low, abs=1e-4)


def test_the_final_look_passes_a_canary_shown_not_worse_and_only_that() -> None:
    """At max_pause a metric the SPRT left undecided passes on a 97.5% bound below its
    margin; a canary at or past the margin stays undecided (then inconclusive)."""
    rng = random.Random(4)
    stable = _sample(6000, 30, 100, rng)
    healthy = _sample(700, 4, 100, rng)  # 0.57% against 0.5%: bound (0.95) under 1 point
    assert judge(healthy, stable, Rules()).verdict == "not yet"
    final = judge(healthy, stable, Rules(), final=True)
    assert final.verdict == "pass" and "max_pause" in final.decided_by
    errors = next(m for m in final.metrics if m.name == "errors")
    assert "final look: upper 97.5% bound of the difference" in errors.note
    marginal = _sample(700, 11, 100, rng)  # 1.6%: a point worse, as the margin says
    assert judge(marginal, stable, Rules(), final=True).verdict != "pass"


def _sample(n: int, errors: int, latency: float, rng: random.Random) -> Sample:
    s = Sample()
    for i in range(n):
        s.add(i < errors, latency * rng.lognormvariate(0, 0.3))
    return s


def test_never_a_verdict_on_too_few_requests_or_without_a_stable_color() -> None:
    rng = random.Random(1)
    broken = _sample(9, 9, 100, rng)  # every request failed, but only nine
    assert judge(broken, _sample(500, 0, 100, rng), Rules()).verdict == "not yet"
    lonely = judge(_sample(500, 400, 100, rng), _sample(5, 0, 100, rng), Rules())
    assert lonely.verdict == "not yet" and "a verdict needs" in lonely.decided_by


def test_a_zero_baseline_is_said_and_never_decisive_alone() -> None:
    rng = random.Random(2)
    v = judge(_sample(30, 1, 100, rng), _sample(300, 0, 100, rng), Rules())
    errors = next(m for m in v.metrics if m.name == "errors")
    assert errors.verdict == "not yet" and "no stable errors yet" in errors.note


def test_every_verdict_says_counts_difference_threshold_and_rule() -> None:
    rng = random.Random(3)
    v = judge(_sample(400, 60, 100, rng), _sample(3000, 15, 100, rng), Rules())
    assert v.verdict == "fail" and v.decided_by.startswith("errors")
    text = v.why()
    for part in ("60/400", "15/3000", "difference +", "threshold +1.0%", "log-likelihood ratio"):
        assert part in text, text
    doc = v.to_dict()
    assert doc["metrics"][0]["name"] == "errors" and doc["verdict"] == "fail"


@pytest.mark.parametrize(
    "bad, expect, at_least",
    [
        ((0.005, 100.0), "pass", 0.85),  # healthy: passes, and almost never fails
        ((0.035, 100.0), "fail", 0.95),  # errors +3 points
        ((0.005, 150.0), "fail", 0.95),  # latency +50%
    ],
)
def test_simulated_thin_traffic_decides_as_designed(
    bad: tuple[float, float], expect: str, at_least: float
) -> None:
    """60 seeded runs at 20 req/s, a 10% step (the bench runs 500 at 2 req/s): the share
    of runs that end as designed, and (healthy) at most 3 false fails."""
    rng = random.Random(f"judge-{bad}")
    runs = [one_run(rng, 20.0, 0.1, bad, 600.0, Rules())[0] for _ in range(60)]
    assert runs.count(expect) >= at_least * len(runs), runs
    if expect == "pass":
        assert runs.count("fail") <= 3, runs


@dataclass
class FakeRouter:
    """A router whose access log is a list of lines, all there from the start."""

    lines: list[str]
    each: list[Any] = field(default_factory=list)
    access_logs: list[str | None] = field(default_factory=lambda: [None])

    def switch(self, conf: str) -> float:
        return 0.0


class Step:
    def __init__(self, analysis: LogAnalysis, pause: float = 0.2):
        self.weight, self.color, self.old_color = 10, "green", "blue"
        self.pause, self.conf, self.access_log = pause, "", "/log"
        self.servers = (("10.0.0.1:8002", "green"), ("10.0.0.1:8001", "blue"))
        self.analysis, self.inconclusive, self.queries = analysis, "abort", ()


def _log(new_errors: int, n_new: int, n_old: int) -> list[str]:
    line = '127.0.0.1 {addr} {status} 0.010 0.010 "GET / HTTP/1.1"'
    out = [line.format(addr="10.0.0.1:8002", status=500 if i < new_errors else 200)
           for i in range(n_new)]  # fmt: skip
    out += [line.format(addr="10.0.0.1:8001", status=200) for _ in range(n_old)]
    return out


def _run(monkeypatch: pytest.MonkeyPatch, analysis: LogAnalysis, lines: list[str]) -> Any:
    class Reader:
        def __init__(self, runner: Any, path: str):
            self.sent = False

        def lines(self) -> list[str]:
            if self.sent:
                return []
            self.sent = True
            return lines

    monkeypatch.setattr(canary, "LogReader", Reader)
    router = FakeRouter(lines, each=[type("R", (), {"runner": None})()])
    record: list[dict[str, Any]] = []
    return canary.run_step(router, Step(analysis), record), record


def test_a_clear_failure_ends_the_step_and_dry_run_only_records_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = _log(60, 100, 900)
    with pytest.raises(GateFailed, match="canary step 10% failed"):
        _run(monkeypatch, LogAnalysis(), broken)
    summary, record = _run(monkeypatch, LogAnalysis(mode="dry-run"), broken)
    assert "dry-run: the judge said fail" in summary and "would have aborted" in summary
    assert record[0]["verdict"] == "fail" and record[0]["dry_run"] == {"would": "abort"}
    assert record[0]["judge"]["verdict"] == "fail"


def test_not_yet_goes_on_past_pause_until_max_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    few = _log(0, 5, 50)  # too few for any verdict
    with pytest.raises(GateFailed, match=r"no verdict within max_pause 0\.6s"):
        _run(monkeypatch, LogAnalysis(max_pause=0.6, interval=0.05), few)


def test_the_live_view_shows_the_judges_current_verdict() -> None:
    from deployer.cli.live import _gate_line

    side = {"requests": 40, "errors": 0, "p95_ms": 3.0}
    event = {"name": "canary", "weight": 10, "new": side, "old": side}
    line = _gate_line({**event, "elapsed": 31.0, "pause": 30.0, "judge": "not yet"})
    assert line.endswith("(31/30s); judge: not yet"), line


def test_the_sorted_latencies_agree_with_sorting_every_time() -> None:
    """The judge keeps each side's latencies sorted as requests arrive (not re-sorted at
    every look); medians and counts above a cut equal the plain computation."""
    import random

    from deployer.analysis import judge as j
    from deployer.gates import percentile

    rng = random.Random(26)
    sample = j.Sample()
    for step in range(60):
        for _ in range(rng.randint(0, 40)):
            sample.add(rng.random() < 0.01, round(rng.lognormvariate(4.6, 0.5), rng.choice([0, 3])))
        ordered = sample.ordered()
        assert ordered == sorted(sample.latencies_ms)
        for q in (1, 50, 95, 99, 100):
            assert j._nearest_rank(ordered, q) == percentile(sample.latencies_ms, q)
        cut = rng.choice(sample.latencies_ms) if sample.latencies_ms else 100.0
        for scale in (1.0, 1.5, 1.1):
            want = sum(1 for x in sample.latencies_ms if x * scale > cut)
            assert j._above(ordered, cut, scale) == want
        if step == 30:
            sample.latencies_ms = sample.latencies_ms[:10]  # replaced: rebuilt
            assert sample.ordered() == sorted(sample.latencies_ms)
