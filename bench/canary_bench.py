#!/usr/bin/env python3
"""Blast radius: the same always-failing release under the same load, blue-green against an
analysed canary with a 5% first step (not a test).

    .venv/bin/python bench/canary_bench.py [--rate 300] [--runs 3]

Each run releases a good version, then a version whose every request to / answers 500
(`fail_every=1`; its /health stays fine, so the pre-switch gate passes), under a constant
load through nginx (scripts/loadgen.py); the post-switch gate samples `/` too. Counted: the
failed requests users saw from the
start of the release until traffic was fully back on the old color (the load runs through
the whole release). Blue-green's post-switch gate: window 5 s, 20 samples/s, error budget 5%
(the project's defaults scaled down); the canary: 5% for up to 10 s, judged on the access
log every 250 ms by the statistical judge (deployer/analysis/judge.py), which fails the step
as soon as the canary's errors are clearly worse than the stable color's (or after 5 errors
over the limits, whichever comes first).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from loadgen import Load  # noqa: E402
from testbed import Ports, Testbed, write_playbook  # noqa: E402

BENCH_PORTS = Ports(ssh=22259, http=18389, pg=54369, blue=18301, green=18302)
START = (
    "${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} ${unhealthy_after} "
    "-1 0 ${fail_every} 0"
)


def run(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_COLOR": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    try:
        return {"code": proc.returncode, **json.loads(proc.stdout)}
    except ValueError:
        raise SystemExit(f"deployer failed: {proc.stderr.strip()[-300:]}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="requests per second")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deployer-canary-bench-"))
    bed = Testbed(work / "bed", BENCH_PORTS)
    root = work / "app"
    root.mkdir()
    url = f"http://127.0.0.1:{BENCH_PORTS.http}/"
    n = 0

    def playbook(strategy: str) -> str:
        doc = bed.playbook(root, work / "journal")
        doc["vars"]["fail_every"] = "0"
        doc["service"]["start"] = START
        doc["rollback"] = {"keep_warm": "1s"}
        # both judge what users request, `/` (the broken version's /health is fine)
        doc["gates"]["post_switch"].update(path="/", window="5s", rate=20, max_error_rate=0.05)
        if strategy == "canary":
            doc["strategy"] = {
                "kind": "canary",
                "steps": [{"weight": 5, "pause": "10s"}, {"weight": 100}],
                # the good release before runs without load: no evidence either way, so
                # proceed once the pause is over (max_pause = pause)
                "analysis": {"interval": "250ms", "max_pause": "10s"},
                "inconclusive": "proceed",
            }
        return str(write_playbook(work / f"{strategy}.yml", doc))

    results: dict[str, list[tuple[int, int, float]]] = {"blue-green": [], "canary 5%": []}
    try:
        bed.up({"ssh", "nginx"})
        bed.reset_router()
        for _ in range(args.runs):
            for label, strategy in (("blue-green", "blue_green"), ("canary 5%", "canary")):
                pb = playbook(strategy)
                n += 1
                good = run("release", "-p", pb, "--version", f"good{n}")
                assert good["code"] == 0, good.get("message")
                with Load(url, rate=args.rate, threads=8, seconds=120) as load:
                    bad = run("release", "-p", pb, "--version", f"bad{n}", "--var",
                              "fail_every=1")  # fmt: skip
                    load.stop.set()
                assert bad["code"] == 4, (bad.get("message"), bad.get("steps"))
                s = load.stats
                results[label].append((s.requests, s.server_errors, bad["restore_seconds"] or 0))
    finally:
        bed.stop_app(root)
        bed.down()
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(f"always-failing release under {args.rate:g} req/s through nginx, {args.runs} run(s)\n")
    print("| strategy | requests | failed requests users saw (each run) | median | restore s |")
    print("| --- | ---: | --- | ---: | ---: |")
    med = {}
    for label, rows in results.items():
        med[label] = statistics.median(r[1] for r in rows)
        print(
            f"| {label} | {sum(r[0] for r in rows) // len(rows):,} | "
            f"{', '.join(str(r[1]) for r in rows)} | {med[label]:g} | "
            f"{statistics.median(r[2] for r in rows):.2f} |"
        )
    ratio = med["canary 5%"] / med["blue-green"] if med["blue-green"] else 0.0
    print(f"\ncanary / blue-green failed requests: {ratio:.3f} (target <= 0.1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
