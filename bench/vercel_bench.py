#!/usr/bin/env python3
"""Releases on the local Vercel (tests/fake_vercel.py), not a test: API calls per release and
the restore time of a release broken in production (verdict to production serving the old
deployment), with the fake's promote taking 0.3 s to land.

    .venv/bin/python bench/vercel_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fake_vercel import FakeVercel, playbook_doc  # noqa: E402

TOKEN = "bench-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[dict[str, float]]] = {"good": [], "broken": []}
    with tempfile.TemporaryDirectory() as tmp, FakeVercel(TOKEN) as fake:
        fake.add("dpl_0", "0" * 40, created=1)
        fake.serve("dpl_0")
        doc = playbook_doc(fake, Path(tmp))
        doc["gates"]["post_switch"]["window"] = "3s"
        pb = Path(tmp) / "vercel.yml"
        pb.write_text(yaml.safe_dump(doc))
        n = 0
        for kind in ("good", "broken"):
            for _ in range(args.runs):
                n += 1
                fake.add(
                    f"dpl_{n}", f"{n:040d}", created=n + 1, broken_in_production=kind == "broken"
                )
                before = len(fake.calls)
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "deployer",
                        "-o",
                        "json",
                        "release",
                        "-p",
                        str(pb),
                        "--deployment",
                        f"dpl_{n}",
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    check=False,
                    env={**os.environ, **fake.resolve_env(), "VERCEL_TOKEN": TOKEN},
                )
                res = json.loads(proc.stdout)
                rows[kind].append(
                    {
                        "exit": res["exit_code"],
                        "calls": len(fake.calls) - before,
                        "wall": res["duration_s"],
                        "restore": res.get("restore_seconds") or 0.0,
                    }
                )
    print("| release | runs | exit | API calls | wall s | restore s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind, rs in rows.items():
        print(
            f"| {kind} | {len(rs)} | {rs[0]['exit']:.0f} | {median(r['calls'] for r in rs):.0f} "
            f"| {median(r['wall'] for r in rs):.2f} | "
            f"{median(r['restore'] for r in rs):.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
