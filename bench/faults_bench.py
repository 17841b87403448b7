#!/usr/bin/env python3
"""The safety nets of a release measured under load (not a test).

    .venv/bin/python bench/faults_bench.py [--rate 300]

Rows:
  killed broken, no dead-man   deployer SIGKILLed 1 s into the post-switch window of a broken
                               release, `router.dead_man_margin: 0s` (no timer), nobody runs
                               `recover`: how long users get the broken version (watched 40 s)
  killed broken, dead-man      the same with the dead-man watchdog (a heartbeat: deployer's
                               session to the router closes with it, and the watchdog switches
                               back at once; its backstop deadline is window 5 s + timeout 2 s
                               + margin 3 s; the gate's error budget is 50% so that it has not
                               judged yet when the kill comes)
  slow release 1.5 s / 5 s     the new version's health route answers in 1.5 s or 5 s
                               (window 10 s, timeout 2 s, max_p95 1 s): how long it stays live
  drill / drill --broken       `deployer drill`: time to restore, what users saw

Columns: requests and non-2xx responses the load loop (scripts/loadgen.py, threads, one retry
on a closed keep-alive connection) saw through nginx during the operation, and "exposed s":
from the first answer of the bad version (or first error) to the last, per a 50 Hz watcher
of `/` (which, unlike `/health`, does not count towards the example app's `unhealthy_after`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO))

from loadgen import Load  # noqa: E402
from testbed import Ports, Testbed, write_playbook  # noqa: E402

from deployer.adapters.watch import RouterWatch  # noqa: E402

BENCH_PORTS = Ports(ssh=22249, http=18289, pg=54359, blue=18201, green=18202)


def deployer(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"NO_COLOR": "1", "PYTHONUNBUFFERED": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=300)
    try:
        return dict(json.loads(out))
    except ValueError:
        raise SystemExit(f"deployer failed: {err.strip()[-300:]}") from None


def exposed(watch: RouterWatch, bad: str) -> float:
    """Seconds from the first bad answer (the bad version, an error) to the last."""
    hits = [s.at for s in watch.samples if s.version == bad or s.status != 200]
    return round(hits[-1] - hits[0], 2) if hits else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300, help="requests per second")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deployer-faults-"))
    bed = Testbed(work / "bed", BENCH_PORTS)
    root = work / "app"
    root.mkdir()
    rows: list[tuple[str, int, int, float, str]] = []
    url = f"http://127.0.0.1:{BENCH_PORTS.http}"
    n = 0

    def playbook(margin: str = "3s", slow: bool = False, **post: Any) -> str:
        doc = bed.playbook(root, work / "journal")
        doc["rollback"] = {"keep_warm": "1s"}
        doc["gates"]["post_switch"].update(post)
        doc["router"]["dead_man_margin"] = margin
        doc["drill"] = {"broken_vars": {"unhealthy_after": "5"}, "restore_bound": "5s"}
        if slow:  # the example app's 7th and 8th arguments: slow after N requests, by S
            doc["vars"].update({"slow_after": "-1", "delay": "0"})
            doc["service"]["start"] += " ${slow_after} ${delay}"
        return str(write_playbook(work / "bench.yml", doc))

    def release(pb: str, *extra: str) -> dict[str, Any]:
        nonlocal n
        n += 1
        return finish(deployer("release", "-p", pb, "--version", f"r{n}", *extra))

    try:
        bed.up({"ssh", "nginx"})
        bed.reset_router()
        for margin in ("0s", "3s"):
            # an error budget of 50%: the gate needs ~2.5 s to judge, the kill comes at 1 s
            pb = playbook(margin, window="5s", timeout="2s", max_error_rate=0.5)
            good = release(pb)["version"]
            time.sleep(1.5)  # the old color's keep-warm timer has stopped it
            watch = RouterWatch(url + "/", rate=50, limit=60)
            with watch, Load(url + "/", rate=args.rate, threads=8, seconds=60) as load:
                proc = deployer(
                    "release", "-p", pb, "--version", "broken", "--var", "unhealthy_after=5"
                )
                assert proc.stderr is not None
                for line in proc.stderr:
                    if "post-switch-gate" in line:  # its start: 1 s into the window, kill
                        break
                time.sleep(1.0)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                t0 = time.monotonic()
                while time.monotonic() - t0 < 40:
                    if watch.samples and watch.samples[-1].version == good:
                        time.sleep(1.0)  # a little after: nothing else happens
                        break
                    time.sleep(0.05)
                load.stop.set()
            still = watch.samples[-1].version != good
            label = "no dead-man" if margin == "0s" else "dead-man (heartbeat)"
            note = "still broken when watching stopped" if still else "restored by the router"
            s = load.stats
            bad = s.requests - s.statuses[200]
            rows.append(
                (f"killed broken, {label}", s.requests, bad, exposed(watch, "broken"), note)
            )
            finish(deployer("recover", "-p", pb))
            subprocess.run(["rm", "-rf", str(root / "releases" / "broken")], check=True)
        pb = playbook(slow=True, window="10s", timeout="2s", max_p95="1s")
        for delay in ("1.5", "5"):
            release(pb)
            watch = RouterWatch(url + "/", rate=50, limit=60)
            with watch, Load(url + "/", rate=args.rate, threads=8, seconds=60) as load:
                res = release(pb, "--var", "slow_after=3", "--var", f"delay={delay}")
            steps = {s["name"]: s["seconds"] for s in res["steps"]}
            live = steps.get("post-switch-gate", 0) + steps.get("undo switch", 0)
            s = load.stats
            rows.append(
                (
                    f"slow release {delay} s",
                    s.requests,
                    s.requests - s.statuses[200],
                    round(live, 2),
                    f"exit {res['exit_code']} ({res['outcome']}): live {live:.2f} s "
                    "(bound: window 10 s + timeout 2 s)",
                )
            )
        for broken in (False, True):
            watch = RouterWatch(url + "/", rate=50, limit=60)
            with watch, Load(url + "/", rate=args.rate, threads=8, seconds=60) as load:
                extra = ("--broken",) if broken else ()
                doc = finish(deployer("drill", "-p", pb, *extra))
            d = doc["drill"]
            s = load.stats
            rows.append(
                (
                    "drill --broken" if broken else "drill",
                    s.requests,
                    s.requests - s.statuses[200],
                    0.0,
                    f"exit {doc['exit_code']}, restore {d['restore_s']} s, "
                    f"detection {d['detection_s']} s",
                )
            )
    finally:
        bed.stop_app(root)
        bed.down()
        shutil.rmtree(work, ignore_errors=True)
    print("| scenario | requests | non-2xx | exposed s | result |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, req, bad, secs, note in rows:
        print(f"| {name} | {req:,} | {bad:,} | {secs:.2f} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
