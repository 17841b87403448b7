#!/usr/bin/env python3
"""Releases and rollbacks of the example app under wrk load through nginx (not a test).

    .venv/bin/python bench/release_bench.py [--runs 3] [--connections 4]

Rows:
  release, no load   a release with no traffic: the tool's own overhead without contention
  deployer release   a release to the idle color (ship, start, gates, switch)
  deployer rollback  `deployer rollback` to the warm previous color
  deployer failed    a broken version: the post-switch gate fails, deployer switches back
  naive switch       the peer: what a hand-written CI script does (start the new color, point
                     nginx at it, reload, stop the old color at once, no drain wait)

Columns: requests and errors wrk saw during the operation, its latency, the operation's wall
time, the tool's own overhead (wall time minus the gates' waits, which include the app's own
start), and for failures the time from the gate's verdict to traffic back on the old color.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from testbed import Ports, Testbed, write_playbook  # noqa: E402

BENCH_PORTS = Ports(ssh=22239, http=18189, pg=54349, blue=18101, green=18102)


@dataclass
class Wrk:
    requests: int = 0
    non2xx: int = 0
    socket_errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return 0.0
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def parse_wrk(out: str) -> Wrk:
    w = Wrk()
    if m := re.search(r"(\d+) requests in", out):
        w.requests = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        w.non2xx = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        w.socket_errors = sum(int(g) for g in m.groups())
    if m := re.search(r"50%\s+(\S+)", out):
        w.p50_ms = _ms(m.group(1))
    if m := re.search(r"99%\s+(\S+)", out):
        w.p99_ms = _ms(m.group(1))
    return w


class Load:
    """wrk in the background for the length of one operation (stopped with SIGINT)."""

    def __init__(self, url: str, connections: int):
        self.cmd = ["wrk", "-t1", f"-c{connections}", "-d300s", "--latency", url]

    def __enter__(self) -> Load:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=30)
        self.result = parse_wrk(out)


@dataclass
class Row:
    kind: str
    wrk: Wrk
    wall_s: float
    overhead_s: float | None = None
    restore_s: float | None = None
    outcome: str = ""


def deployer(*args: str) -> tuple[dict, float]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=300,
    )
    wall = time.monotonic() - t0
    try:
        return json.loads(proc.stdout), wall
    except ValueError:
        raise SystemExit(f"deployer failed: {proc.stderr.strip()}") from None


def overhead(doc: dict, wall: float) -> float:
    gates = sum(g["seconds"] for g in doc["gates"])
    return wall - gates


def naive_switch(bed: Testbed, root: Path, live: str, version: str) -> None:
    """The peer: start the idle color, switch nginx, reload, stop the old color immediately."""
    idle = "green" if live == "blue" else "blue"
    ctl = root / "releases" / version / "appctl.sh"
    # a warm idle color (deployer's keep-warm, or a rolled-back release's restore) is stopped
    # first, as any script must
    subprocess.run([str(ctl), "stop", str(root), idle], check=True)
    subprocess.run(["ln", "-sfn", str(root / "releases" / version), str(root / idle)], check=True)
    port = bed.ports.green if idle == "green" else bed.ports.blue
    subprocess.run([str(ctl), "start", str(root), idle, str(port), version, "-1"], check=True)
    import httpx

    for _ in range(100):  # wait until it answers, like any script's health loop (bounded)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    bed.upstream_file.write_text(
        f"upstream demo {{\n    server 127.0.0.1:{port};\n    keepalive 16;\n}}\n"
    )
    subprocess.run(bed.nginx_cmd("-s", "reload").split(), check=True)
    subprocess.run([str(root / live / "appctl.sh"), "stop", str(root), live], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="operations of each kind")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/install.sh")

    work = Path(tempfile.mkdtemp(prefix="deployer-bench-"))
    bed = Testbed(work / "bed", BENCH_PORTS)
    root = work / "app"
    root.mkdir()
    rows: list[Row] = []
    try:
        bed.up({"ssh", "nginx"})
        bed.reset_router()
        doc = bed.playbook(root, work / "journal")
        doc["rollback"] = {"keep_warm": "10m"}
        doc["gates"]["post_switch"] = {
            "path": "/health",
            "window": "3s",
            "rate": 20,
            "max_error_rate": 0.05,
            "max_p95": "1s",
        }
        pb = str(write_playbook(work / "bench.yml", doc))
        url = f"http://127.0.0.1:{bed.ports.http}/"
        deployer("release", "-p", pb, "--version", "b0")
        for i in range(1, args.runs + 1):
            res, wall = deployer("release", "-p", pb, "--version", f"idle{i}")
            rows.append(
                Row("release, no load", Wrk(), wall, overhead(res, wall), outcome=res["outcome"])
            )
        for i in range(1, args.runs + 1):
            with Load(url, args.connections) as load:
                res, wall = deployer("release", "-p", pb, "--version", f"b{i}")
            rows.append(
                Row(
                    "deployer release",
                    load.result,
                    wall,
                    overhead(res, wall),
                    outcome=res["outcome"],
                )
            )
        for _ in range(args.runs):
            with Load(url, args.connections) as load:
                res, wall = deployer("rollback", "-p", pb)
            rows.append(
                Row(
                    "deployer rollback",
                    load.result,
                    wall,
                    overhead(res, wall),
                    outcome=res["outcome"],
                )
            )
        for i in range(1, args.runs + 1):
            with Load(url, args.connections) as load:
                res, wall = deployer(
                    "release", "-p", pb, "--version", f"bad{i}", "--var", "unhealthy_after=5"
                )
            rows.append(
                Row(
                    "deployer failed",
                    load.result,
                    wall,
                    overhead(res, wall),
                    res.get("restore_seconds"),
                    res["outcome"],
                )
            )
        status, _ = deployer("status", "-p", pb)
        live = status["live_color"]
        for _ in range(args.runs):
            version = f"b{args.runs}"  # already shipped to releases/
            with Load(url, args.connections) as load:
                t0 = time.monotonic()
                naive_switch(bed, root, live, version)
                wall = time.monotonic() - t0
                time.sleep(0.5)
            rows.append(Row("naive switch", load.result, wall, outcome="switched"))
            live = "green" if live == "blue" else "blue"
    finally:
        bed.stop_app(root)
        bed.down()
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, args)
    return 0


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\nwrk -t1 -c{args.connections} through nginx, {args.runs} runs each; "
        "medians per kind, errors summed\n"
    )
    head = (
        f"{'kind':18} {'requests':>9} {'non-2xx':>8} {'sock err':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'wall s':>7} {'overhead s':>10} {'restore s':>9}  outcomes"
    )
    print(head)
    print("-" * len(head))
    for kind in dict.fromkeys(r.kind for r in rows):
        group = [r for r in rows if r.kind == kind]
        oh = [r.overhead_s for r in group if r.overhead_s is not None]
        rs = [r.restore_s for r in group if r.restore_s is not None]
        print(
            f"{kind:18} {sum(r.wrk.requests for r in group):9d} "
            f"{sum(r.wrk.non2xx for r in group):8d} "
            f"{sum(r.wrk.socket_errors for r in group):8d} "
            f"{median(r.wrk.p50_ms for r in group):7.2f} "
            f"{median(r.wrk.p99_ms for r in group):7.2f} "
            f"{median(r.wall_s for r in group):7.2f} "
            f"{(f'{median(oh):.2f}' if oh else '-'):>10} "
            f"{(f'{median(rs):.3f}' if rs else '-'):>9}  "
            f"{','.join(sorted({r.outcome for r in group}))}"
        )


if __name__ == "__main__":
    sys.exit(main())
