#!/usr/bin/env python3
"""What a release costs beyond its waits: deployer against a hand-written parallel rollout,
on 1, 20, 50 and 100 separate hosts (and optionally ansible-playbook), in one run on the same
hosts (not a test).

    .venv/bin/python bench/fleet_bench.py [--sizes 1,20,50,100] [--runs 2] [--ansible]

Each host is a network namespace with its own address (10.200.151+i.2) and sshd
(scripts/netns.py, guard route first, everything removed at the end); the router is the
bed's nginx, reached over the bed's loopback sshd. Both sides, per host: stop the idle
color, ship the example app as an archive, link it, start it, probe its health until it
answers; then rewrite the router's upstream file and reload nginx. deployer also journals
every step, holds the lock, waits for the old nginx workers to drain, gates through the
router and schedules the old color's stop.

Printed per size: deployer's wall time, the waits its playbook configures (the post-switch
window, and the pre-switch gate's successes x interval), its own cost (wall minus those
waits), the hand-written rollout's wall time (bench/fleet_handwritten.sh: one SSH session
per host, all at once, tar on stdin, start, probe every 0.05 s, one upstream rewrite and
reload), and `deployer status` on the fleet. Target (issue 24): deployer's own cost at most
the hand-written rollout's whole wall time at 1, 20 and 50 hosts; 100 hosts released, with
`status` under 2 s; and the CPU seconds deployer's own process used (the rest of the wall
time is the hosts' sshd, shells and apps on the same cores, and waiting).
DEPLOYER_BENCH_PROFILE=PREFIX writes cProfile files of the release and status. With
--ansible, ansible-core from the package index releases the same steps at the largest
size <= 20 (`pipelining = True`, `forks` = the hosts, strict host keys).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from netns import NetnsFleet, permitted  # noqa: E402
from testbed import Ports, Testbed, write_playbook  # noqa: E402

# DEPLOYER_BENCH_PROFILE=PREFIX runs deployer under cProfile: PREFIX-release, PREFIX-status
PROFILE = os.environ.get("DEPLOYER_BENCH_PROFILE", "")
BENCH_PORTS = Ports(ssh=22269, http=18489, pg=54379, blue=18401, green=18402)
START = "APP_HOST=0.0.0.0 ${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} -1"


def profiled(command: str) -> list[str]:
    return ["-m", "cProfile", "-o", f"{PROFILE}-{command}"] if PROFILE else []


def cpu_of_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def deployer(*args: str) -> tuple[float, dict[str, Any]]:
    """Run deployer; (wall s, its JSON with ``cpu_s``: the CPU seconds it used itself)."""
    t0, cpu0 = time.monotonic(), cpu_of_children()
    proc = subprocess.run(
        [sys.executable, *profiled(args[0]), "-m", "deployer", "-o", "json", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={"NO_COLOR": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    took = time.monotonic() - t0
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"deployer failed: {proc.stderr.strip()[-400:]}") from None
    if proc.returncode != 0:
        raise SystemExit(f"deployer exited {proc.returncode}: {doc.get('message')}")
    return took, {**doc, "cpu_s": cpu_of_children() - cpu0}


def print_breakdown(n: int, wall: float, doc: dict[str, Any]) -> None:
    """Where the last release's time went: each step's slowest host and its total."""
    print(f"\n{n} hosts: {wall:.1f}s wall, {doc.get('duration_s')}s in the operation")
    print("| step | hosts | slowest s | sum s |\n| --- | ---: | ---: | ---: |")
    steps: dict[str, list[float]] = {}
    for s in doc.get("steps") or []:
        steps.setdefault(s["name"], []).append(float(s["seconds"]))
    for name, secs in steps.items():
        print(f"| {name} | {len(secs)} | {max(secs):.2f} | {sum(secs):.2f} |")
    print()


def install_ansible(work: Path) -> Path:
    venv = work / "ansible-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "-q", "ansible-core>=2.15,<2.18"],
        check=True,
    )
    return venv / "bin" / "ansible-playbook"


def ansible_side_by_side(
    bed: Testbed, fleet: NetnsFleet, n: int, archive: Path, work: Path, control: Path, runs: int
) -> list[tuple[str, float, float]]:
    """deployer and ansible-playbook releasing the same steps to the first ``n`` hosts."""
    ansible = install_ansible(work)
    inventory = work / "inventory.ini"
    merged = work / "known_hosts"
    merged.write_text(fleet.known_hosts.read_text() + bed.known_hosts.read_text())
    lines = ["[app]"] + [
        f"{h.name} ansible_host={h.address} ansible_user=root" for h in fleet.hosts[:n]
    ]
    router = f"lb ansible_host=127.0.0.1 ansible_port={BENCH_PORTS.ssh} ansible_user=root"
    lines += ["[router]", router]
    inventory.write_text("\n".join(lines) + "\n")
    cfg = work / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        f"forks = {n}\n"
        "host_key_checking = True\n"
        f"private_key_file = {bed.client_key}\n"
        f"local_tmp = {work}/ansible-local\n"
        f"remote_tmp = {work}/ansible-remote\n"
        "interpreter_python = /usr/bin/python3\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        f"control_path_dir = {control}\n"
        f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s "
        f"-o UserKnownHostsFile={merged} -o StrictHostKeyChecking=yes\n"
    )
    yml = work / "release.yml"
    text = (REPO / "bench" / "fleet_ansible.yml").read_text()
    for name, value in {
        "@FLEET@": str(fleet.root),
        "@ARCHIVE@": str(archive),
        "@UPSTREAM@": str(bed.upstream_file),
        "@RELOAD@": bed.nginx_cmd("-s", "reload"),
    }.items():
        text = text.replace(name, value)
    yml.write_text(text)
    pb = str(work / f"size{n}.yml")
    env = {**os.environ, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1"}
    rows = []
    for run in range(runs):
        d_took, _ = deployer("release", "-p", pb, "--version", f"d{run}")
        live = "blue" if "live=blue" in bed.upstream_file.read_text() else "green"
        idle = "green" if live == "blue" else "blue"
        port = BENCH_PORTS.green if idle == "green" else BENCH_PORTS.blue
        servers = "".join(f"    server {h.address}:{port};\n" for h in fleet.hosts[:n])
        conf = f"# deployer: live={idle} version=a{run}\nupstream demo {{\n{servers}}}\n"
        extra = {
            "version": f"a{run}",
            "live": live,
            "ports": {"blue": BENCH_PORTS.blue, "green": BENCH_PORTS.green},
            "upstream_conf": conf,
        }
        t0 = time.monotonic()
        proc = subprocess.run(
            [str(ansible), "-i", str(inventory), str(yml), "-e", json.dumps(extra)],
            env=env, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        a_took = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(f"ansible-playbook failed:\n{proc.stdout[-2000:]}")
        rows.append((f"{n} hosts, run {run + 1}", d_took, a_took))
    return rows


def handwritten(bed: Testbed, fleet: NetnsFleet, n: int, archive: Path, version: str) -> float:
    """The hand-written rollout of ``version`` to the first ``n`` hosts: its wall time."""
    live = "blue" if "live=blue" in bed.upstream_file.read_text() else "green"
    known = fleet.root / "known_hosts-all"
    known.write_text(fleet.known_hosts.read_text() + bed.known_hosts.read_text())
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO / "bench" / "fleet_handwritten.sh"), str(bed.client_key), str(known),
         str(BENCH_PORTS.ssh), str(fleet.root), str(archive), str(bed.upstream_file),
         bed.nginx_cmd("-s", "reload"), version, live,
         str(BENCH_PORTS.blue), str(BENCH_PORTS.green),
         *(h.address for h in fleet.hosts[:n])],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the hand-written rollout failed: {proc.stderr[-2000:]}")
    return took


def stop_idle(bed: Testbed, fleet: NetnsFleet, n: int) -> None:
    """Before each timed run, untimed: the idle color's app stopped on every host, so both
    sides start where a finished deployer release leaves a fleet (its old color stopped
    after keep_warm). The hand-written rollout never stops the color it leaves; without
    this, deployer's next release paid for stopping a hundred apps the other side left."""
    time.sleep(2.0)  # deployer's keep_warm (1 s) timer has stopped the old color by then
    live = "blue" if "live=blue" in bed.upstream_file.read_text() else "green"
    idle = "green" if live == "blue" else "blue"
    for h in fleet.hosts[:n]:
        fleet.kill(h.name, f"--color {idle} ")
    time.sleep(0.5)


def waits(doc: dict[str, Any]) -> float:
    """The waits a release's playbook configures: the post-switch window(s), and the
    pre-switch gate's successes x interval (each host's gate runs at once with the others)."""
    window = sum(
        float(g.get("window_s") or 0) for g in doc.get("gates") or [] if g["name"] == "post_switch"
    )
    return window + PRE_SUCCESSES * PRE_INTERVAL


PRE_SUCCESSES, PRE_INTERVAL = 3, 0.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--sizes", default="1,20,50,100")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--ansible", action="store_true", help="ansible-playbook too (<= 20)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still cleans up
    sizes = sorted({int(x) for x in args.sizes.split(",")})
    why = permitted()
    if why is not None:
        raise SystemExit(f"needs network namespaces: {why}")
    work = Path(tempfile.mkdtemp(prefix="deployer-fleet-bench-"))
    bed = Testbed(work / "bed", BENCH_PORTS)
    fleet: NetnsFleet | None = None
    control = work / "cp"
    control.mkdir()
    # n, wall, waits, hand-written, status, deployer's CPU s in the release and in status
    rows: list[tuple[int, float, float, float, float, float, float]] = []
    ansible_rows: list[tuple[str, float, float]] = []
    breakdown: tuple[int, float, dict[str, Any]] | None = None
    archive = work / "app.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(REPO / "examples/app"), "."], check=True)
    try:
        bed.up({"ssh", "nginx"})
        bed.reset_router()
        fleet = NetnsFleet(
            work / "fleet", max(sizes), subnet=150, tag="bn", client_key=bed.client_key
        )
        fleet.up()

        def playbook(n: int, name: str) -> str:
            doc = bed.playbook(Path("/unused"), work / f"journal-{name}")
            router = dict(doc["hosts"][0], name="lb", runs_app=False)
            doc["hosts"] = [router] + [
                {"name": h.name, "address": h.address, "key": str(bed.client_key),
                 "known_hosts": str(fleet.known_hosts)}
                for h in fleet.hosts[:n]
            ]  # fmt: skip
            doc["router"]["host"] = "lb"
            doc["vars"]["root"] = f"{fleet.root}/${{host}}/app"
            doc["service"]["start"] = START
            doc["gates"]["post_switch"].update(window="1s")
            doc["gates"]["pre_switch"].update(
                budget="60s", successes=PRE_SUCCESSES, interval=f"{PRE_INTERVAL}s"
            )  # a hundred apps start on 2 cores
            doc["rollback"] = {"keep_warm": "1s"}
            doc["fleet"] = {"parallel": n}  # every host at once, as the hand-written rollout
            return str(write_playbook(work / f"{name}.yml", doc))

        version = 0
        for n in sizes:
            pb = playbook(n, f"size{n}")
            bed.reset_router()
            for h in fleet.hosts:
                fleet.kill(h.name)
            version += 1
            deployer("release", "-p", pb, "--version", f"s{version}")  # first: both colors
            for _ in range(args.runs):
                version += 1
                stop_idle(bed, fleet, n)
                took, doc = deployer("release", "-p", pb, "--version", f"s{version}")
                version += 1
                stop_idle(bed, fleet, n)
                hand = handwritten(bed, fleet, n, archive, f"s{version}")
                t0 = time.monotonic()
                _, seen = deployer("status", "-p", pb)
                stat = time.monotonic() - t0
                rows.append((n, took, waits(doc), hand, stat, doc["cpu_s"], seen["cpu_s"]))
                breakdown = (n, took, doc)
                print(rows[-1], flush=True)
        if args.ansible:
            n = max(x for x in sizes if x <= 20)
            ansible_rows = ansible_side_by_side(bed, fleet, n, archive, work, control, args.runs)
    finally:
        if breakdown is not None:
            print_breakdown(*breakdown)
        for sock in control.glob("*"):  # Ansible's SSH control masters
            subprocess.run(["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "x"],
                           capture_output=True, check=False)  # fmt: skip
        subprocess.run(["pkill", "-f", f"ssh.*{control}"], check=False)
        if fleet is not None:
            fleet.down()
        bed.down()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nrelease across 1-{max(sizes)} hosts (network namespaces), {args.runs} run(s) each\n")
    print("| hosts | deployer wall s | configured waits s | deployer own cost s "
          "| hand-written wall s | own cost / hand-written | status s "
          "| deployer CPU s (release / status) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in sizes:
        mine = [r for r in rows if r[0] == n]
        wall = statistics.median(r[1] for r in mine)
        wait = statistics.median(r[2] for r in mine)
        hand = statistics.median(r[3] for r in mine)
        stat = statistics.median(r[4] for r in mine)
        cpu = statistics.median(r[5] for r in mine), statistics.median(r[6] for r in mine)
        print(f"| {n} | {wall:.2f} | {wait:.2f} | {wall - wait:.2f} | {hand:.2f} "
              f"| {(wall - wait) / hand:.2f}x | {stat:.2f} "
              f"| {cpu[0]:.2f} / {cpu[1]:.2f} |")  # fmt: skip
    each = "; ".join(f"{n}: {w:.2f}/{h:.2f}" for n, w, _, h, *_ in rows)
    print(
        f"\n(medians; each run, deployer/hand-written wall s: {each}; CPU: the user and "
        "system seconds deployer's own process used, the hosts' sshd, shells and apps "
        "share the same two cores)"
    )
    if ansible_rows:
        print("\n| run | deployer s | ansible-playbook s | ansible / deployer |")
        print("| --- | ---: | ---: | ---: |")
        for label, d, a in ansible_rows:
            print(f"| {label} | {d:.1f} | {a:.1f} | {a / d:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
