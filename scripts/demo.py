#!/usr/bin/env python3
"""The demo: real blue-green releases on this machine, behind a real nginx, over real SSH.

1. release v1, then v2 under a steady load through nginx (zero errors expected);
2. release a broken v3: it passes the pre-switch gate, fails the post-switch gate, and
   deployer switches back to v2 by itself;
3. show the evidence those releases recorded (verified hash chain, score, DORA).
Everything it started is stopped at the end (KEEP=1 leaves the bed and the app running).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    say("starting the test bed: sshd on 127.0.0.1:2222, nginx on 127.0.0.1:8080")
    bed.up({"ssh", "nginx"})
    url = f"http://127.0.0.1:{bed.ports.http}/"
    codes: list[int] = []
    try:
        reset(bed)
        say("release v1 (first release: nothing live yet)")
        codes.append(deployer("release", "-p", str(PLAYBOOK), "--version", "v1"))

        say("release v2 while a client sends ~200 requests/s through nginx")
        with Load(url, rate=200, threads=4, seconds=120) as load:
            codes.append(deployer("release", "-p", str(PLAYBOOK), "--version", "v2"))
            load.stop.set()
        report("v1 -> v2", load)

        say("release v3, which turns unhealthy after 5 health checks: automatic rollback")
        with Load(url, rate=200, threads=4, seconds=120) as load:
            codes.append(
                deployer(
                    "release", "-p", str(PLAYBOOK), "--version", "v3", "--var", "unhealthy_after=5"
                )
            )
            load.stop.set()
        report("the broken v3 and its rollback", load)

        say("status")
        deployer("status", "-p", str(PLAYBOOK))

        say("the evidence these releases left: a hash chain, a score, DORA figures")
        deployer("evidence", "list", "-p", str(PLAYBOOK))
        deployer("evidence", "verify", "-p", str(PLAYBOOK))
        deployer("score", "-p", str(PLAYBOOK))
        time.sleep(0.2)
        expected = [0, 0, 4]
        ok = codes == expected
        say(
            f"exit codes {codes} (expected {expected}: 4 = rolled back): "
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
