#!/usr/bin/env python3
"""A release across 20 hosts: deployer against ansible-playbook doing the same steps, in
one run on the same hosts (not a test).

    .venv/bin/python bench/fleet_bench.py [--hosts 20] [--runs 2]

Each host is a network namespace with its own address (10.200.151+i.2) and sshd
(scripts/netns.py, guard route first, everything removed at the end); the router is the
bed's nginx, reached over the bed's loopback sshd. Both tools, per host: stop the idle
color, ship the example app as an archive, link it, start it, probe its health until it
answers; then rewrite the router's upstream file and reload nginx. deployer also journals
every step, holds the lock, gates through the router (a 1 s window: the shortest useful
one) and schedules the old color's stop; those are counted in its time, not Ansible's.

Ansible: ansible-core from the package index, installed into a virtualenv under the bench's
own temporary directory, `pipelining = True`, `forks` = the number of hosts (its default,
5, would be unfair), strict host keys with the same known_hosts; its temporary files and
SSH control sockets live under the bench directory, and its control masters are stopped
afterwards. Printed: both wall times per run and their ratio (target: deployer at least 3x
faster), and deployer's time for 1, 5 and 20 hosts (growth with fleet size).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

BENCH_PORTS = Ports(ssh=22269, http=18489, pg=54379, blue=18401, green=18402)
START = "APP_HOST=0.0.0.0 ${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} -1"


def deployer(*args: str) -> tuple[float, dict[str, Any]]:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
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
    return took, doc


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--no-ansible", action="store_true", help="deployer and the hand-written rollout only"
    )
    args = parser.parse_args()
    why = permitted()
    if why is not None:
        raise SystemExit(f"needs network namespaces: {why}")
    work = Path(tempfile.mkdtemp(prefix="deployer-fleet-bench-"))
    bed = Testbed(work / "bed", BENCH_PORTS)
    fleet: NetnsFleet | None = None
    control = work / "cp"
    control.mkdir()
    rows: list[tuple[str, float, float, float]] = []
    breakdown: tuple[int, float, dict[str, Any]] | None = None
    sizes: dict[int, list[float]] = {}
    try:
        bed.up({"ssh", "nginx"})
        bed.reset_router()
        fleet = NetnsFleet(
            work / "fleet", args.hosts, subnet=150, tag="bn", client_key=bed.client_key
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
            doc["gates"]["pre_switch"].update(budget="30s")  # twenty apps start on 2 cores
            doc["rollback"] = {"keep_warm": "1s"}
            doc["fleet"] = {"parallel": max(n, 1)}
            return str(write_playbook(work / f"{name}.yml", doc))

        # deployer's growth with fleet size: 1, 5, 20 hosts (a first release, then measured)
        version = 0
        for n in sorted({1, min(5, args.hosts), args.hosts}):
            pb = playbook(n, f"size{n}")
            bed.reset_router()
            for h in fleet.hosts:
                fleet.kill(h.name)
            version += 1
            deployer("release", "-p", pb, "--version", f"s{version}")
            for _ in range(args.runs):
                version += 1
                took, doc = deployer("release", "-p", pb, "--version", f"s{version}")
                sizes.setdefault(n, []).append(took)
            breakdown = (n, took, doc)
        ansible = None if args.no_ansible else install_ansible(work)

        # side by side, same hosts, same steps
        archive = work / "app.tar.gz"
        subprocess.run(
            ["tar", "-czf", str(archive), "-C", str(REPO / "examples/app"), "."], check=True
        )
        inventory = work / "inventory.ini"
        key, known = bed.client_key, fleet.known_hosts
        lines = ["[app]"] + [
            f"{h.name} ansible_host={h.address} ansible_user=root" for h in fleet.hosts
        ]
        lines += [
            "[router]",
            f"lb ansible_host=127.0.0.1 ansible_port={BENCH_PORTS.ssh} ansible_user=root",
        ]
        inventory.write_text("\n".join(lines) + "\n")
        # the router's loopback sshd is in the bed's known_hosts: both files, for the others
        merged = work / "known_hosts"
        merged.write_text(known.read_text() + bed.known_hosts.read_text())
        cfg = work / "ansible.cfg"
        cfg.write_text(
            "[defaults]\n"
            f"forks = {args.hosts}\n"
            "host_key_checking = True\n"
            f"private_key_file = {key}\n"
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
        pb = playbook(args.hosts, "side")
        env = {**os.environ, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_NOCOLOR": "1"}

        def live_color() -> str:
            return "blue" if "live=blue" in bed.upstream_file.read_text() else "green"

        for run in range(args.runs):
            # deployer: the fleet from the last size run is live; release a new version
            version += 1
            d_took, _ = deployer("release", "-p", pb, "--version", f"s{version}")
            # hand-written: the same steps to the other color, one SSH session per host
            t0 = time.monotonic()
            proc = subprocess.run(
                ["bash", str(REPO / "bench" / "fleet_handwritten.sh"), str(key), str(merged),
                 str(BENCH_PORTS.ssh), str(fleet.root), str(archive), str(bed.upstream_file),
                 bed.nginx_cmd("-s", "reload"), f"h{run}", live_color(),
                 str(BENCH_PORTS.blue), str(BENCH_PORTS.green),
                 *(h.address for h in fleet.hosts)],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            h_took = time.monotonic() - t0
            if proc.returncode != 0:
                raise SystemExit(f"the hand-written rollout failed: {proc.stderr[-2000:]}")
            a_took = float("nan")
            if ansible is not None:
                # ansible: the same steps to the other color, then the upstream rewritten
                live = live_color()
                idle = "green" if live == "blue" else "blue"
                port = BENCH_PORTS.green if idle == "green" else BENCH_PORTS.blue
                servers = "".join(f"    server {h.address}:{port};\n" for h in fleet.hosts)
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
            rows.append((f"run {run + 1}", d_took, h_took, a_took))
            # the router now names the color the others made live: deployer's next release
            # goes on from there (to the other color)
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
    print(f"release across {args.hosts} hosts (network namespaces), {args.runs} run(s)\n")
    print("| run | deployer s | hand-written s | deployer / hand-written | ansible-playbook s "
          "| ansible / deployer |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, d, h, a in rows:
        print(f"| {label} | {d:.1f} | {h:.1f} | {d / h:.2f}x | {a:.1f} | {a / d:.1f}x |")
    d_med = statistics.median(r[1] for r in rows)
    h_med = statistics.median(r[2] for r in rows)
    a_med = statistics.median(r[3] for r in rows)
    print(
        f"\nmedian: deployer {d_med:.1f}s, hand-written {h_med:.1f}s ({d_med / h_med:.2f}x, "
        f"target <= 1.5x), ansible {a_med:.1f}s ({a_med / d_med:.1f}x, target >= 3x)"
    )
    print("\n| hosts | deployer s (each run) | median |")
    print("| ---: | --- | ---: |")
    for n, times in sorted(sizes.items()):
        print(f"| {n} | {', '.join(f'{t:.1f}' for t in times)} | {statistics.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
