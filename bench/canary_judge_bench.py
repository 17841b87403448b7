#!/usr/bin/env python3
"""The canary judge on thin traffic, replayed offline (seeded; no network; not a test).

    .venv/bin/python bench/canary_judge_bench.py [--runs 2000] [--rate 2] [--weight 10]
                                                 [--max-pause 7200] [--seed 1]

A simulator feeds deployer.analysis.judge synthetic requests for both colors: Poisson
arrivals at --rate req/s in total, --weight percent to the canary; errors Bernoulli at the
baseline rate (0.5%); latencies log-normal (median 100 ms, sigma 0.5). The judge is asked
every --look seconds of simulated time (5: the step's log reader looks every 0.5 s, but at
2 req/s little changes in between; a verdict comes at most that much later), until it says
pass or fail or --max-pause passes (the playbook's default, 2 h; then its final look: a
metric still undecided passes if the upper 97.5% bound of the difference is below its
margin; otherwise inconclusive). Scenarios: healthy (both sides the same), errors +3 points
(canary 3.5%), latency +50% (canary median 150 ms), a canary exactly at the error margin
(1.5%: it must pass in at most 5% of runs, the "95% confidence"), and healthy with
max_pause 1 h. Printed per scenario: how often each verdict came and the median time to it.

Targets (issue 26): at 2 req/s and a 10% step, each regression caught (fail) in >= 95% of
runs; healthy runs fail in <= 1% and pass (not inconclusive) in >= 90% within max_pause.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deployer.analysis.judge import Rules, Sample, judge
from deployer.playbook.strategy_model import LogAnalysis

DEFAULT_MAX_PAUSE = float(LogAnalysis.model_fields["max_pause"].default)

SCENARIOS = {
    "healthy": (0.005, 100.0),
    "errors +3 points": (0.035, 100.0),
    "latency +50%": (0.005, 150.0),
    "at the margin (errors +1 point)": (0.015, 100.0),
}


def one_run(rng: random.Random, rate: float, weight: float, bad: tuple[float, float],
            max_pause: float, rules: Rules, look: float = 5.0) -> tuple[str, float]:  # fmt: skip
    canary, stable = Sample(), Sample()
    t, next_look = 0.0, look
    while True:
        t += rng.expovariate(rate)
        while next_look <= min(t, max_pause):
            v = judge(canary, stable, rules)
            if v.verdict != "not yet":
                return v.verdict, next_look
            next_look += look
        if t > max_pause:  # the final look (a 95% bound per undecided metric)
            v = judge(canary, stable, rules, final=True)
            return ("inconclusive" if v.verdict == "not yet" else v.verdict), max_pause
        if rng.random() < weight:
            err, median = bad
            canary.add(rng.random() < err, median * rng.lognormvariate(0, 0.5))
        else:
            stable.add(rng.random() < 0.005, 100.0 * rng.lognormvariate(0, 0.5))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--weight", type=float, default=10.0)
    p.add_argument("--max-pause", type=float, default=DEFAULT_MAX_PAUSE)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--look", type=float, default=5.0)
    args = p.parse_args()
    rules = Rules()
    print(
        f"{args.runs} runs per scenario, {args.rate:g} req/s in total, {args.weight:g}% to the "
        f"canary, max_pause {args.max_pause:g} s, seed {args.seed}\n"
    )
    print("| scenario | fail | pass | inconclusive | median s to the verdict | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    rows = [(name, bad, args.max_pause) for name, bad in SCENARIOS.items()]
    if args.max_pause > 3600:
        rows.append(("healthy, max_pause 1 h", SCENARIOS["healthy"], 3600.0))
    for name, bad, max_pause in rows:
        rng = random.Random(f"{args.seed}-{name}")
        t0 = time.monotonic()
        outcomes = [
            one_run(rng, args.rate, args.weight / 100, bad, max_pause, rules, args.look)
            for _ in range(args.runs)
        ]
        counts = {
            k: sum(1 for v, _ in outcomes if v == k) for k in ("fail", "pass", "inconclusive")
        }
        decided = [s for v, s in outcomes if v != "inconclusive"]
        med = statistics.median(decided) if decided else float("nan")
        print(
            f"| {name} | {counts['fail'] / args.runs:.1%} | {counts['pass'] / args.runs:.1%} | "
            f"{counts['inconclusive'] / args.runs:.1%} | {med:.0f} | {time.monotonic() - t0:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
