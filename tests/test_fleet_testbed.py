"""Fleets on real separate hosts: three app hosts, each in its own network namespace with its
own address (10.200.x.2) and sshd, behind the bed's nginx; traffic through nginx all along.

A host is cut off by taking its namespace's side of the veth down (a guard route keeps its
address from leaving the machine). Teardown removes namespaces, veths and the guard even
after a failure; where namespaces are not permitted these tests skip, saying why.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FLEET_HOSTS, ROOT, Deploy, write_playbook
from fleetbed import doc_of, release_json, set_playbook, versions_served
from loadgen import Load
from netns import NetnsFleet

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

HOSTS = FLEET_HOSTS


def test_a_healthy_three_host_release_under_load(fdeploy: Deploy) -> None:
    assert release_json(fdeploy, "v1").returncode == 0
    with Load(fdeploy.url + "/", rate=100, threads=2, seconds=60) as load:
        t0 = time.monotonic()
        proc = release_json(fdeploy, "v2")
        took = time.monotonic() - t0
        load.stop.set()
    doc = doc_of(proc)
    assert proc.returncode == 0, doc["message"]
    assert [(h["host"], h["outcome"]) for h in doc["hosts"]] == [(h, "released") for h in HOSTS]
    starts = [s for s in doc["steps"] if s["name"] == "start"]
    assert {s["host"] for s in starts} == set(HOSTS)
    errors = load.stats.server_errors + len(load.stats.failures)
    print(
        f"\n3-host release under load: {took:.1f}s, {load.stats.requests} requests, {errors} errors"
    )
    assert errors == 0, (load.stats.statuses, load.stats.failures[:3])
    assert versions_served(fdeploy) == {"v2": 30}
    status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
    assert [(h["host"], h["in_rotation"], h["health"]) for h in status["hosts"]] == [
        (h, True, "ok") for h in HOSTS
    ]


def test_one_host_broken_after_the_switch_switches_every_host_back(fdeploy: Deploy) -> None:
    assert release_json(fdeploy, "v1").returncode == 0
    # web2's v2 passes its pre-switch gate (3 checks), then answers 503 (and / with 500).
    # The router's gate samples need not reach web2 at all (round robin in step with the
    # load's clients): the post-switch gate's direct probe of each host must catch it.
    (fdeploy.root / "web2" / "fault-v2").write_text("3")
    with Load(fdeploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = release_json(fdeploy, "v2")
        load.stop.set()
    doc = doc_of(proc)
    assert proc.returncode == 4, doc["message"]
    assert "web2" in doc["message"] and "web1" not in doc["message"].split("own:")[-1]
    assert {h["outcome"] for h in doc["hosts"]} == {"switched_back"}
    assert versions_served(fdeploy) == {"v1": 30}
    print(
        f"\nbroken host after the switch: {load.stats.server_errors} 5xx of {load.stats.requests}"
    )


def test_a_hanging_app_is_left_out_within_max_failures(fdeploy: Deploy) -> None:
    assert release_json(fdeploy, "v1").returncode == 0
    set_playbook(fdeploy, fleet={"max_failures": 1})
    (fdeploy.root / "web3" / "fault-v2").write_text("-1 0 30")  # /health hangs for 30 s
    with Load(fdeploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = release_json(fdeploy, "v2")
        load.stop.set()
    doc = doc_of(proc)
    assert proc.returncode == 0, doc["message"]
    outcome = {h["host"]: h for h in doc["hosts"]}
    assert (
        outcome["web3"]["outcome"] == "left_out" and "pre-switch-gate" in outcome["web3"]["error"]
    )
    assert "left out of the router: web3" in doc["message"]
    assert load.stats.server_errors == 0 and not load.stats.failures
    assert versions_served(fdeploy) == {"v2": 30}  # one version served, web3 out
    status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
    rotation = {h["host"]: h["in_rotation"] for h in status["hosts"]}
    assert rotation == {"web1": True, "web2": True, "web3": False}
    # the next release brings web3 back once it is healthy
    assert release_json(fdeploy, "v3").returncode == 0
    status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
    assert all(h["in_rotation"] for h in status["hosts"])


def test_a_host_cut_mid_prepare_is_named_and_the_policy_decides(
    fdeploy: Deploy, fleet: NetnsFleet
) -> None:
    assert release_json(fdeploy, "v1").returncode == 0
    set_playbook(fdeploy, fleet={"max_failures": 1})
    import yaml

    doc = yaml.safe_load(fdeploy.path.read_text())
    marker = fleet.root / "web2" / "warming"
    marker.unlink(missing_ok=True)
    # the cut lands while web2 runs this ship step
    doc["ship"].append({"name": "warm caches", "run": "touch ${root}/../warming && sleep 3"})
    write_playbook(fdeploy.path, doc)

    def cut_when_warming() -> None:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        fleet.cut("web2")

    with Load(fdeploy.url + "/", rate=50, threads=2, seconds=90) as load:
        cutter = threading.Thread(target=cut_when_warming)
        cutter.start()
        t0 = time.monotonic()
        proc = release_json(fdeploy, "v2")
        took = time.monotonic() - t0
        cutter.join()
        load.stop.set()
    res = doc_of(proc)
    assert proc.returncode == 0, res["message"]
    outcome = {h["host"]: h for h in res["hosts"]}
    assert outcome["web2"]["outcome"] == "left_out", outcome
    assert "web2" in outcome["web2"]["error"] or "10.200." in outcome["web2"]["error"]
    assert outcome["web1"]["outcome"] == outcome["web3"]["outcome"] == "released"
    print(
        f"\nhost cut mid-prepare: named and left out after {took:.1f}s; "
        f"{load.stats.server_errors} 5xx, {len(load.stats.failures)} failures"
    )
    assert took < 60  # bounded: dead-peer detection and connection retries, not forever
    assert versions_served(fdeploy) == {"v2": 30}


def test_a_host_cut_mid_window_rolls_back_and_recover_finishes_once_it_is_back(
    fdeploy: Deploy, fleet: NetnsFleet
) -> None:
    assert release_json(fdeploy, "v1").returncode == 0
    set_playbook(fdeploy, gates={"post_switch": {"window": "5s", "timeout": "1s"}})
    with Load(fdeploy.url + "/", rate=50, threads=2, seconds=90) as load:
        proc = fdeploy.spawn(
            "-o",
            "json",
            "release",
            "-p",
            str(fdeploy.path),
            "--version",
            "v2",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the switch done: the window runs
            if "live=green" in fdeploy.bed.upstream_file.read_text():
                break
            time.sleep(0.05)
        time.sleep(0.5)
        fleet.cut("web2")
        out, err = proc.communicate(timeout=180)
        assert out, err
        load.stop.set()
    res = json.loads(out)
    # users are back on v1 (the router's switch back does not need web2); web2's own undo
    # could not run while it was cut off: said so (needs recovery) or done
    assert proc.returncode in (4, 6), res["message"]
    assert "web2" in json.dumps(res["hosts"]) + res["message"]
    served = versions_served(fdeploy, 12)
    assert served.get("v1") and set(served) <= {"v1", "error"}, served  # web2 is still cut
    # status says so, without failing (a status that exits 7 because one host is down
    # is no help while it is down)
    status = fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path), timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    health = {h["host"]: h["health"] for h in doc_of(status)["hosts"]}
    assert health["web1"] == "ok" and health["web2"] != "ok", health
    fleet.mend("web2")
    if proc.returncode == 6:
        rec = fdeploy.run("-o", "json", "recover", "-p", str(fdeploy.path), timeout=120)
        assert rec.returncode == 0, rec.stdout + rec.stderr
    assert fdeploy.run("status", "-p", str(fdeploy.path)).returncode == 0
    assert release_json(fdeploy, "v3").returncode == 0  # nothing left half-done


# ----- two routers (a pair of load balancers) in front of the three namespace hosts -----


@pytest.fixture
def two_routers(bed: Any, fdeploy: Deploy, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Two nginx routers of their own (lb1 over SSH, lb2 run locally), each with its
    directory, upstream file and port; the playbook lists both in `router.hosts`."""
    import yaml

    lbs = tmp_path / "lbs"
    ports = {"lb1": bed.ports.http + 50, "lb2": bed.ports.http + 51}
    for name, port in ports.items():
        bed.up_nginx(lbs / name, port)
    doc = yaml.safe_load(fdeploy.path.read_text())
    lb = next(h for h in doc["hosts"] if h["name"] == "lb")
    lb2 = {"name": "lb2", "address": "127.0.0.1", "transport": "local", "runs_app": False}
    doc["hosts"] = [dict(lb, name="lb1"), lb2] + [h for h in doc["hosts"] if h is not lb]
    d = lbs / "${host}"
    doc["router"] = dict(
        doc["router"],
        host=None,
        hosts=["lb1", "lb2"],
        upstream_file=f"{d}/upstream.conf",
        test=bed.nginx_cmd("-t", "-q", d=d),
        reload=bed.nginx_cmd("-s", "reload", d=d),
        pid_file=f"{d}/nginx.pid",
        access_log=f"{d}/logs/access.log",
        url=f"http://127.0.0.1:{ports['lb1']}",
    )
    del doc["router"]["host"]
    write_playbook(fdeploy.path, doc)
    urls = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    try:
        yield {"dir": lbs, "urls": urls}
    finally:
        for name in ports:
            bed.stop_nginx(lbs / name)


def _served_by(url: str, n: int = 20) -> dict[str, int]:
    seen: dict[str, int] = {}
    with httpx.Client(trust_env=False, timeout=5) as c:
        for _ in range(n):
            try:
                v = str(c.get(url + "/health").json()["version"])
            except (httpx.HTTPError, ValueError, KeyError):
                v = "error"
            seen[v] = seen.get(v, 0) + 1
    return seen


def _workers(lbs: Path, name: str) -> set[int]:
    master = (lbs / name / "nginx.pid").read_text().split()[0]
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", master], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def test_two_routers_switch_together_under_load(
    fdeploy: Deploy, two_routers: dict[str, Any]
) -> None:
    urls, lbs = two_routers["urls"], two_routers["dir"]
    assert release_json(fdeploy, "v1").returncode == 0
    with (
        Load(urls["lb1"] + "/", rate=60, threads=2, seconds=60) as load1,
        Load(urls["lb2"] + "/", rate=60, threads=2, seconds=60) as load2,
    ):
        proc = release_json(fdeploy, "v2")
        load1.stop.set()
        load2.stop.set()
    doc = doc_of(proc)
    assert proc.returncode == 0, doc["message"]
    errors = sum(ld.stats.server_errors + len(ld.stats.failures) for ld in (load1, load2))
    print(f"\ntwo routers: {load1.stats.requests + load2.stats.requests} requests, {errors} errors")
    assert errors == 0, (load1.stats.statuses, load2.stats.statuses, load1.stats.failures[:3])
    for name, url in urls.items():
        assert _served_by(url) == {"v2": 20}, name
        assert "version=v2" in (lbs / name / "upstream.conf").read_text()
    status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
    assert [(r["host"], r["live_version"]) for r in status["routers"]] == [
        ("lb1", "v2"),
        ("lb2", "v2"),
    ]


def test_nginx_t_failing_on_one_of_two_routers_reloads_nothing_anywhere(
    fdeploy: Deploy, two_routers: dict[str, Any]
) -> None:
    urls, lbs = two_routers["urls"], two_routers["dir"]
    assert release_json(fdeploy, "v1").returncode == 0
    before = {n: (lbs / n / "upstream.conf").read_bytes() for n in urls}
    workers = {n: _workers(lbs, n) for n in urls}
    conf = lbs / "lb2" / "nginx.conf"
    good = conf.read_text()
    conf.write_text(good + "\nbogus_directive on;\n")  # someone's broken edit on lb2
    try:
        with Load(urls["lb1"] + "/", rate=60, threads=2, seconds=60) as load:
            proc = release_json(fdeploy, "v2")
            load.stop.set()
        doc = doc_of(proc)
        print(f"\none router rejects: {doc['message']}")
        assert proc.returncode == 3, doc["message"]
        assert "lb2" in doc["message"] and "nothing was reloaded on any router" in doc["message"]
        for name in urls:  # both files as they were, no worker replaced: nothing reloaded
            assert (lbs / name / "upstream.conf").read_bytes() == before[name], name
            assert _workers(lbs, name) == workers[name], name
            left = {f.name for f in (lbs / name).glob("upstream.conf.deployer-*")}
            assert left <= {"upstream.conf.deployer-switch.lock"}, (name, left)
            assert _served_by(urls[name]) == {"v1": 20}, name
        assert load.stats.server_errors == 0 and not load.stats.failures
    finally:
        conf.write_text(good)
    proc = release_json(fdeploy, "v2")  # once lb2's config is fixed, the release goes through
    assert proc.returncode == 0, doc_of(proc)["message"]
    assert all(_served_by(u) == {"v2": 20} for u in urls.values())


def test_routers_that_disagree_are_refused_and_a_killed_release_is_undone_on_each(
    fdeploy: Deploy, two_routers: dict[str, Any]
) -> None:
    urls, lbs = two_routers["urls"], two_routers["dir"]
    assert release_json(fdeploy, "v1").returncode == 0
    # a killed release: each router's dead-man timer puts v1 back by itself
    set_playbook(fdeploy, router={"dead_man_margin": "2s"})  # 3 s window + 1 s timeout + 2 s
    proc = fdeploy.spawn("release", "-p", str(fdeploy.path), "--version", "v2")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all("version=v2" in (lbs / n / "upstream.conf").read_text() for n in urls):
            break
        time.sleep(0.05)
    switched = time.monotonic()
    proc.kill()
    proc.wait(timeout=10)
    back: dict[str, float] = {}
    while len(back) < len(urls) and time.monotonic() < switched + 20:
        for n in urls:
            if n not in back and "version=v1" in (lbs / n / "upstream.conf").read_text():
                back[n] = time.monotonic() - switched
        time.sleep(0.05)
    print(f"\nkilled after the switch: routers back on v1 after {back}")
    assert set(back) == set(urls) and max(back.values()) < 6 + 3
    rec = fdeploy.run("-o", "json", "recover", "-p", str(fdeploy.path), timeout=120)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert all(_served_by(u) == {"v1": 20} for u in urls.values())
    # lb2 edited by hand to another upstream: refused, nothing changed, both routers named
    (lbs / "lb2" / "upstream.conf").write_text(
        (lbs / "lb2" / "upstream.conf").read_text().replace("version=v1", "version=v0")
    )
    proc = release_json(fdeploy, "v3")
    doc = doc_of(proc)
    assert proc.returncode == 3, doc["message"]
    assert "routers disagree" in doc["message"] and "lb2" in doc["message"]
    status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
    assert {r["host"]: r["live_version"] for r in status["routers"]} == {"lb1": "v1", "lb2": "v0"}
    # a router just added (no deployer upstream yet) does not disagree: the release writes it
    (lbs / "lb2" / "upstream.conf").write_text("upstream demo {\n    server 127.0.0.1:9 down;\n}\n")
    proc = release_json(fdeploy, "v3")
    assert proc.returncode == 0, doc_of(proc)["message"]
    assert all(_served_by(u) == {"v3": 20} for u in urls.values())


def test_sigterm_then_kill_9_mid_parallel_prepare_leave_every_host_clean(
    fdeploy: Deploy, fleet: NetnsFleet
) -> None:
    """Three lanes at once in a ship step: SIGTERM stops them at their next step and undoes
    each (exit 3, users on v1 without an error); kill -9 in the same place leaves the
    journal, and `recover` undoes every lane it names."""
    import yaml

    assert release_json(fdeploy, "v1").returncode == 0
    doc = yaml.safe_load(fdeploy.path.read_text())
    doc["ship"].append({"name": "warm caches", "run": "touch ${root}/../warming && sleep 2"})
    write_playbook(fdeploy.path, doc)
    markers = [fleet.root / h / "warming" for h in HOSTS]

    def in_the_middle(version: str) -> subprocess.Popen[str]:
        for m in markers:
            m.unlink(missing_ok=True)
        proc = fdeploy.spawn(
            "-o", "json", "release", "-p", str(fdeploy.path), "--version", version,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not all(m.exists() for m in markers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert all(m.exists() for m in markers), "the lanes never reached the ship step"
        return proc

    def green_running() -> list[str]:
        status = doc_of(fdeploy.run("-o", "json", "status", "-p", str(fdeploy.path)))
        assert status["lock"] is None and status["unfinished"] is None, status
        idle = status["idle_color"]
        return [h["host"] for h in status["hosts"] if h["colors"][idle]["running"]]

    with Load(fdeploy.url + "/", rate=60, threads=2, seconds=120) as load:
        proc = in_the_middle("v2")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 3, err
        res = json.loads(out)
        assert res["outcome"] == "interrupted" and "Traceback" not in err, res["message"]
        assert green_running() == []  # every lane's steps undone
        proc = in_the_middle("v3")
        proc.kill()
        proc.communicate(timeout=30)
        rec = fdeploy.run("-o", "json", "recover", "-p", str(fdeploy.path), timeout=120)
        assert rec.returncode == 0, rec.stdout + rec.stderr
        assert green_running() == []
        load.stop.set()
    assert set(load.stats.versions) == {"v1"}, load.stats.versions
    assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    assert release_json(fdeploy, "v4").returncode == 0  # nothing left half-done
    assert versions_served(fdeploy) == {"v4": 30}


def _cut_under_load(d: Deploy, fleet: NetnsFleet, host: str, seconds: float) -> Any:
    """Cut ``host`` while 8 clients send 100 req/s through the router for ``seconds``; the
    load's stats (``slow``: requests that took >= 0.5 s, with when they started)."""
    with Load(d.url + "/", rate=100, threads=8, seconds=seconds + 30) as load:
        time.sleep(1.0)
        cut_at = time.monotonic()
        fleet.cut(host)
        time.sleep(seconds)
        load.stop.set()
    fleet.mend(host)
    load.cut_at = cut_at  # type: ignore[attr-defined]
    return load


def test_nginx_stops_sending_users_to_a_dead_host_after_its_first_failure(
    fdeploy: Deploy, fleet: NetnsFleet
) -> None:
    """Passive health (router.max_fails, shared by nginx's workers through a zone): once a
    connection to the cut host has failed, no request waits on it for `fail_timeout`. With
    max_fails 0 (deployer's upstream before issue 14), users kept waiting on it."""
    set_playbook(fdeploy, router={"max_fails": 0})
    assert release_json(fdeploy, "v1").returncode == 0
    before = _cut_under_load(fdeploy, fleet, "web3", 6.0)
    set_playbook(fdeploy, router={"max_fails": 1, "fail_timeout": "20s"})
    assert release_json(fdeploy, "v2").returncode == 0  # web3 back: the upstream rewritten
    upstream = fdeploy.bed.upstream_file.read_text()
    assert "zone deployer_demo" in upstream and "max_fails=1 fail_timeout=20s" in upstream
    after = _cut_under_load(fdeploy, fleet, "web3", 6.0)
    waited = sorted(b for b, took in after.stats.slow if took >= 1.0)
    # the first failure is known at most one connect timeout (2 s in the bed's nginx) after
    # the first request that waited started; a request started later never waits
    late = [b - after.cut_at for b in waited if waited and b > waited[0] + 2.5]
    n_before = sum(1 for _, took in before.stats.slow if took >= 1.0)
    print(
        f"\nhost cut under 100 req/s for 6 s: {n_before} of {before.stats.requests} requests "
        f"waited >= 1 s with max_fails=0; {len(waited)} of {after.stats.requests} with "
        f"max_fails=1 (all started within {waited[-1] - waited[0] if waited else 0:.1f} s)"
    )
    assert not late, late
    assert len(waited) < n_before
    # requests already sent to web3 when it vanished wait for nginx's proxy_read_timeout (the
    # client here gives up after 5 s): they are among `waited`, all started before the first
    # failure was known; no 5xx either way
    assert after.stats.server_errors == 0


def test_a_host_cut_during_its_upload_is_named_while_waited_on_and_left_out(
    fdeploy: Deploy, fleet: NetnsFleet, tmp_path: Path
) -> None:
    """Issue 14's 939 s hang: web2's link is slow (2 Mbit/s) and cut while its 3 MB build
    streams. The release says it is waiting on web2, declares it lost within the dead-peer
    bound, and the batch policy (max_failures 1) releases the others without it."""
    import shutil

    import yaml

    assert release_json(fdeploy, "v1").returncode == 0
    src = tmp_path / "app"
    shutil.copytree(ROOT / "examples" / "app", src)
    (src / "blob.bin").write_bytes(os.urandom(3_000_000))  # incompressible: 12 s at 2 Mbit/s
    doc = yaml.safe_load(fdeploy.path.read_text())
    doc["ship"][0]["upload"]["src"] = str(src)
    doc["fleet"]["max_failures"] = 1
    write_playbook(fdeploy.path, doc)
    fleet.slow("web2", "2mbit")
    releases = fleet.root / "web2" / "app" / "releases"

    def cut_mid_upload() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(f.stat().st_size > 200_000 for f in releases.glob("*/upload.tar.gz")):
                fleet.cut("web2")
                return
            time.sleep(0.02)

    cutter = threading.Thread(target=cut_mid_upload)
    cutter.start()
    t0 = time.monotonic()
    proc = fdeploy.run("release", "-p", str(fdeploy.path), "--version", "big2", timeout=240)
    took = time.monotonic() - t0
    cutter.join()
    out = proc.stdout + proc.stderr
    print(f"\nweb2 cut mid-upload: release done in {took:.1f}s, exit {proc.returncode}")
    print("\n".join(line for line in out.splitlines() if "web2" in line))
    assert proc.returncode == 0, out
    assert "waiting on web2: ship:upload app" in out, out
    assert "left out of the router: web2" in out, out
    assert took < 60, out  # seconds (dead-peer detection), not the 15 minutes of issue 14
    fleet.mend("web2")
    assert versions_served(fdeploy) == {"big2": 30}
