#!/usr/bin/env python3
"""The demo: real blue-green releases on this machine, behind a real nginx, over real SSH.

1. release v1 (its migrate step lints migrations_safe's revisions, then applies them to the
   bed's PostgreSQL), then v2 under a steady load through nginx (zero errors expected);
2. release a broken v3: it passes the pre-switch gate, fails the post-switch gate, and
   deployer switches back to v2 by itself;
3. a rollback drill under load: v2 to the idle color, switch, rolled back as a failing gate
   would, measured against the playbook's bound;
4. show the evidence those left (verified hash chain, the score, 5/5, and DORA).
Everything it started is stopped at the end (KEEP=1 leaves the bed and the app running).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from loadgen import Load  # noqa: E402
from testbed import DEFAULT_DIR, Testbed, env_ports  # noqa: E402

PLAYBOOK = ROOT / "playbooks" / "demo.yml"
APP_ROOT = Path("/tmp/deployer-demo")


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def deployer(*args: str) -> int:
    cmd = [sys.executable, "-m", "deployer", *args]
    print("$ deployer " + " ".join(args), flush=True)
    return subprocess.run(cmd, cwd=ROOT, check=False).returncode


def deployer_json(*args: str) -> Any:
    cmd = [sys.executable, "-m", "deployer", "-o", "json", *args]
    return json.loads(subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True).stdout)


#: the migrate step runs Alembic with this Python on the "host" (this machine)
PYTHON = f"python={sys.executable}"


def fresh_database(bed: Testbed) -> None:
    """An empty `demo` database on the bed's PostgreSQL (the migrate step fills it)."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{bed.ports.pg}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS demo WITH (FORCE)")
        conn.execute("CREATE DATABASE demo")


def stop_apps() -> None:
    Testbed.stop_app(APP_ROOT)


def reset(bed: Testbed) -> None:
    stop_apps()
    shutil.rmtree(APP_ROOT, ignore_errors=True)
    shutil.rmtree(ROOT / "playbooks" / ".deployer", ignore_errors=True)
    bed.reset_router()


def report(name: str, load: Load) -> None:
    s = load.stats
    print(
        f"   load during {name}: {s.requests} requests at {s.rate:.0f}/s, "
        f"statuses {dict(s.statuses)}, failed {len(s.failures)}, "
        f"closed keep-alive retried {s.retries}, versions seen {dict(s.versions)}",
        flush=True,
    )


def main() -> int:
    bed = Testbed(Path(DEFAULT_DIR), env_ports())
    say(
        "starting the test bed: sshd on 127.0.0.1:2222, nginx on 127.0.0.1:8080, "
        "PostgreSQL on 127.0.0.1:54329"
    )
    bed.up({"ssh", "nginx", "pg"})
    url = f"http://127.0.0.1:{bed.ports.http}/"
    codes: list[int] = []
    try:
        reset(bed)
        fresh_database(bed)
        say("release v1 (first release: nothing live yet; migrations linted, then applied)")
        codes.append(deployer("release", "-p", str(PLAYBOOK), "--version", "v1", "--var", PYTHON))

        say("release v2 while a client sends ~200 requests/s through nginx")
        with Load(url, rate=200, threads=4, seconds=120) as load:
            codes.append(
                deployer("release", "-p", str(PLAYBOOK), "--version", "v2", "--var", PYTHON)
            )
            load.stop.set()
        report("v1 -> v2", load)

        say("release v3, which turns unhealthy after 5 health checks: automatic rollback")
        with Load(url, rate=200, threads=4, seconds=120) as load:
            codes.append(
                deployer(
                    "release",
                    "-p",
                    str(PLAYBOOK),
                    "--version",
                    "v3",
                    "--var",
                    "unhealthy_after=5",
                    "--var",
                    PYTHON,
                )
            )
            load.stop.set()
        report("the broken v3 and its rollback", load)

        say("a rollback drill under load: v2 to the idle color, switched, rolled back, measured")
        with Load(url, rate=200, threads=4, seconds=120) as load:
            codes.append(deployer("drill", "-p", str(PLAYBOOK)))
            load.stop.set()
        report("the drill", load)

        say("status")
        deployer("status", "-p", str(PLAYBOOK))

        say("the evidence these releases left: a hash chain, a score, DORA figures")
        deployer("evidence", "list", "-p", str(PLAYBOOK))
        deployer("evidence", "verify", "-p", str(PLAYBOOK))
        deployer("score", "-p", str(PLAYBOOK))
        points = deployer_json("score", "-p", str(PLAYBOOK))["points"]
        records = deployer_json("evidence", "list", "-p", str(PLAYBOOK))
        rolled = [r for r in records if r.get("outcome") == "rolled_back"]
        if rolled:
            say("a report of the rolled-back release, for the people who audit readiness")
            page = PLAYBOOK.parent.parent / f"deployer-report-{rolled[-1]['seq']}.html"
            deployer("report", str(rolled[-1]["seq"]), "-p", str(PLAYBOOK), "-O", str(page))
        time.sleep(0.2)
        expected = [0, 0, 4, 0]
        ok = codes == expected and points == 5
        say(
            f"exit codes {codes} (expected {expected}: 4 = rolled back), score {points}/5: "
            + ("demo OK" if ok else "UNEXPECTED")
        )
        return 0 if ok else 1
    finally:
        if os.environ.get("KEEP") == "1":
            print(f"\nKEEP=1: the bed and the app keep running; try `curl {url}`")
        else:
            stop_apps()
            bed.down()
            print("\nstopped the app and the test bed (KEEP=1 leaves them running)")


if __name__ == "__main__":
    sys.exit(main())
