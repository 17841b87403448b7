"""Fleets without hosts: parallel lanes in the saga, the batch policy, batched switches,
left-out hosts in the upstream, counts. The real thing (network namespaces, a cut host, a
hanging app) is in test_fleet_testbed.py."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from deployer.adapters.journal import FileJournal
from deployer.commands import nginx
from deployer.engine.saga import FleetFailed, Saga
from deployer.engine.signals import Interrupted
from deployer.errors import CommandFailed, GateFailed, HostsFailed
from deployer.plan import Run, Step
from deployer.playbook.fleet_model import Fleet, resolve
from deployer.ports import NullReporter
from deployer.values import Shell


def _lane_steps(hosts: list[str], names: tuple[str, ...] = ("stop", "ship", "start")) -> list[Step]:
    out = []
    for n in names:
        for h in hosts:
            do = Run(h, (Shell.raw(f"{n} {h}"),))
            out.append(Step(n, h, do, Run(h, (Shell.raw(f"undo {n} {h}"),)), group="prepare"))
    return out


class Slow:
    """Each command takes ``delay`` seconds; records what ran, and how many at once."""

    def __init__(self, delay: float = 0.05, fail: dict[str, BaseException] | None = None):
        self.delay, self.fail = delay, fail or {}
        self.ran: list[str] = []
        self.busy = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, action: Any) -> str:
        text = action.commands[0].text
        with self.lock:
            self.ran.append(text)
            self.busy += 1
            self.peak = max(self.peak, self.busy)
        try:
            if not text.startswith("undo"):
                time.sleep(self.delay)
            if text in self.fail:
                raise self.fail[text]
            return ""
        finally:
            with self.lock:
                self.busy -= 1


def _saga(tmp_path: Path, steps: list[Step], run: Any, **kw: Any) -> Saga:
    return Saga("op", steps, run, FileJournal(tmp_path / "j"), NullReporter(), **kw)


def _journal(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (tmp_path / "j").read_text().splitlines()]


def test_lanes_run_hosts_at_once_each_in_order_and_journal_every_step(tmp_path: Path) -> None:
    hosts = [f"web{i}" for i in range(8)]
    run = Slow(0.1)
    t0 = time.monotonic()
    out = _saga(tmp_path, _lane_steps(hosts), run, workers=8).run()
    took = time.monotonic() - t0
    assert out.failed is None and run.peak == 8
    assert took < 3 * 0.1 * 3  # 3 steps a lane, not 24 in a row (2.4 s)
    for h in hosts:  # each lane in its order
        mine = [r for r in run.ran if r.endswith(f" {h}")]
        assert mine == [f"stop {h}", f"ship {h}", f"start {h}"]
    phases = [(r["step"], r["phase"]) for r in _journal(tmp_path)]
    assert all(
        (f"{n}@{h}", p) in phases
        for n in ("stop", "ship", "start")
        for h in hosts
        for p in ("start", "done")
    )


def test_workers_bound_how_many_hosts_at_once(tmp_path: Path) -> None:
    run = Slow(0.05)
    _saga(tmp_path, _lane_steps([f"h{i}" for i in range(6)]), run, workers=2).run()
    assert run.peak == 2


def test_one_failed_host_undoes_every_host_by_default(tmp_path: Path) -> None:
    hosts = ["a", "b", "c"]
    run = Slow(0.02, {"ship b": CommandFailed("b", "ship", 1, "disk full")})
    out = _saga(tmp_path, _lane_steps(hosts), run, workers=3).run()
    assert out.failed is not None and out.failed.key == "ship@b"
    assert "disk full" in str(out.error)
    undone = {r for r in run.ran if r.startswith("undo")}
    # b's failed ship is undone too (it may have happened); a and c are undone entirely
    assert {"undo ship b", "undo stop b", "undo stop a", "undo stop c"} <= undone
    assert "start b" not in run.ran


def test_failures_within_max_failures_leave_the_host_out_and_go_on(tmp_path: Path) -> None:
    hosts = ["a", "b", "c", "d"]
    run = Slow(0.02, {"ship c": CommandFailed("c", "ship", 1, "no space left")})
    told: list[dict[str, str]] = []
    steps = [*_lane_steps(hosts), Step("switch", None, Run("r", (Shell.raw("switch"),)))]
    out = _saga(tmp_path, steps, run, workers=4, max_failures=1, on_left_out=told.append).run()
    assert out.failed is None
    assert list(out.left_out) == ["c"] and "no space left" in out.left_out["c"]
    assert told == [out.left_out]
    assert {"undo ship c", "undo stop c"} <= set(run.ran) and "start c" not in run.ran
    assert "start d" in run.ran and run.ran[-1] == "switch"
    assert not any(r.startswith("undo") and not r.endswith(" c") for r in run.ran)


def test_more_failures_than_allowed_undo_everything_and_name_every_host(tmp_path: Path) -> None:
    fail = {f"ship {h}": CommandFailed(h, "ship", 1, f"{h} broke") for h in ("b", "c")}
    run = Slow(0.02, fail)
    out = _saga(tmp_path, _lane_steps(["a", "b", "c", "d"]), run, workers=4, max_failures=1).run()
    assert isinstance(out.error, FleetFailed)
    assert "b (ship" in str(out.error) and "c (ship" in str(out.error)
    assert "undo stop a" in run.ran and "undo stop d" in run.ran


def test_every_host_failing_is_never_within_the_policy(tmp_path: Path) -> None:
    fail = {f"stop {h}": CommandFailed(h, "stop", 1, "gone") for h in ("a", "b")}
    out = _saga(tmp_path, _lane_steps(["a", "b"]), Slow(0.01, fail), max_failures=5).run()
    assert out.failed is not None and not out.left_out


class PostSwitch:
    """A fleet's steps after preparation: switch, then a gate that fails on its own hosts
    (``failing``: one set per run of the gate) while the others pass."""

    def __init__(self, *failing: set[str], hosts: tuple[str, ...] = ("a", "b", "c", "d")):
        self.failing, self.hosts, self.ran = list(failing), hosts, []

    def __call__(self, action: Any) -> str:
        text = action.commands[0].text
        self.ran.append(text)
        if text == "gate" and self.failing:
            bad = self.failing.pop(0)
            if bad == set(self.hosts):
                raise GateFailed("every host fails")
            if bad:
                raise HostsFailed(
                    f"{sorted(bad)} fail", {h: "503" for h in bad}, len(self.hosts) - len(bad), ""
                )
        return "gate passed" if text == "gate" else ""

    @staticmethod
    def steps() -> list[Step]:
        def run(t: str) -> Run:
            return Run("r", (Shell.raw(t),))

        return [
            Step("switch", "r", run("switch"), run("undo switch")),
            Step("post-switch-gate", None, run("gate")),
            Step("commit", "r", run("commit")),
        ]


def test_hosts_failing_after_the_switch_within_the_budget_are_taken_out(tmp_path: Path) -> None:
    run = PostSwitch({"b"}, set())
    taken: list[dict[str, str]] = []

    def take_out(hosts: dict[str, str]) -> str:
        taken.append(dict(hosts))
        return f"{', '.join(hosts)} taken out"

    out = _saga(tmp_path, run.steps(), run, max_failures=1, take_out=take_out).run()
    assert out.failed is None and list(out.left_out) == ["b"]
    assert "post-switch: 503" in out.left_out["b"]
    assert taken == [{"b": out.left_out["b"]}]
    assert run.ran == ["switch", "gate", "gate", "commit"]  # gated again without b
    gate = next(r for r in out.records if r.name == "post-switch-gate")
    assert gate.detail == "b taken out; then gate passed"


def test_hosts_failing_after_the_switch_beyond_the_budget_switch_everything_back(
    tmp_path: Path,
) -> None:
    for failing, allowed in (({"b", "c"},), 1), (({"b"}, {"c"}), 1), (({"b"},), 0):
        run = PostSwitch(*failing)
        out = _saga(tmp_path, run.steps(), run, max_failures=allowed, take_out=str).run()
        assert isinstance(out.error, GateFailed), (failing, allowed)
        assert run.ran[-1] == "undo switch" and "commit" not in run.ran
    run = PostSwitch({"b"}, {"a", "b", "c", "d"})  # the gate fails again without b
    out = _saga(tmp_path, run.steps(), run, max_failures=2, take_out=str).run()
    assert str(out.error) == "every host fails" and run.ran[-1] == "undo switch"


def test_hosts_are_undone_in_parallel_lanes_each_in_reverse(tmp_path: Path) -> None:
    class SlowUndo(Slow):
        def __call__(self, action: Any) -> str:
            if action.commands[0].text.startswith("undo"):
                time.sleep(0.2)  # e.g. a host that answers slowly
            return super().__call__(action)

    hosts = ["a", "b", "c", "d"]
    run = SlowUndo(0.0, {"start d": CommandFailed("d", "start", 1, "broke")})
    t0 = time.monotonic()
    out = _saga(tmp_path, _lane_steps(hosts), run, workers=4).run()
    took = time.monotonic() - t0
    assert out.failed is not None and out.compensated
    for h in hosts:
        mine = [r for r in run.ran if r.startswith("undo") and r.endswith(f" {h}")]
        assert mine == [f"undo start {h}", f"undo ship {h}", f"undo stop {h}"]
    assert took < 1.5, took  # 3 undos a lane at once, not 12 in a row (2.4 s)


def test_a_signal_stops_lanes_between_steps_and_undoes_all(tmp_path: Path) -> None:
    run = Slow(0.1)
    stop: list[BaseException] = []
    timer = threading.Timer(0.15, lambda: stop.append(Interrupted(15)))
    timer.start()
    out = _saga(
        tmp_path,
        _lane_steps(["a", "b", "c"]),
        run,
        workers=3,
        interrupt=lambda: stop[0] if stop else None,
        max_failures=3,
    ).run()
    timer.join()
    assert isinstance(out.error, Interrupted) and not out.left_out  # never "left out"
    assert not any(r.startswith("start") for r in run.ran)
    assert "undo stop a" in run.ran and out.compensated


def test_recovery_undoes_every_step_a_killed_group_left_started(tmp_path: Path) -> None:
    """Several steps in flight at once leave several start records without done: each is
    undone (the records are what `deployer recover` reads)."""
    from deployer.engine.recovery import NEEDS_UNDO

    run = Slow(0.05, {"ship b": KeyboardInterrupt()})
    _saga(tmp_path, _lane_steps(["a", "b"]), run, workers=2).run()
    last: dict[str, str] = {}
    for r in _journal(tmp_path):
        last[r["step"]] = r["phase"]
    assert last["ship@b"] in NEEDS_UNDO | {"undone"}


@pytest.mark.parametrize(
    ("count", "hosts", "batch", "failures"),
    [
        ("1", 3, 1, 1),
        ("25%", 4, 1, 1),
        ("34%", 3, 2, 1),
        ("100%", 5, 5, 5),
        ("0", 3, 1, 0),
        ("10%", 3, 1, 0),
        ("7", 3, 3, 3),
    ],
)
def test_counts_resolve_against_the_fleet(
    count: str, hosts: int, batch: int, failures: int
) -> None:
    assert resolve(count, hosts, at_least_one=True) == batch
    assert resolve(count, hosts, at_least_one=False) == failures


@pytest.mark.parametrize("bad", ["-1", "x", "150%", "1.5", True, "%"])
def test_bad_counts_are_refused(bad: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Fleet(batch_size=bad)


def test_batches_split_hosts_in_order() -> None:
    assert Fleet(batch_size="2").batches(list("abcde")) == [["a", "b"], ["c", "d"], ["e"]]
    assert Fleet().batches(list("abc")) == [["a", "b", "c"]]


def test_left_out_hosts_leave_the_upstream_and_are_named() -> None:
    conf = nginx.upstream_conf("shop", "green", "v2", ["10.200.1.2:8001", "10.200.2.2:8001"], 8)
    out = nginx.leave_out(conf, ["web2"], ["10.200.2.2:8001", "10.200.2.2:8002"])
    assert "10.200.2.2" not in out and "10.200.1.2:8001" in out
    assert nginx.left_out(out) == ["web2"] and nginx.parse_live(out) == ("green", "v2")
    assert nginx.leave_out(conf, [], []) == conf
    assert nginx.servers(out) == ["10.200.1.2:8001"]  # what status reads rotation from


def test_status_reads_who_is_routed_from_the_upstream_servers() -> None:
    mixed = nginx.batch_conf(
        "shop",
        ("blue", "v1"),
        ("green", "v2"),
        [("10.0.0.1:8002", True), ("10.0.0.2:8001", False)],
        (1, 2),
        8,
        (1, 10.0),
    )
    assert nginx.servers(mixed) == ["10.0.0.1:8002", "10.0.0.2:8001"]
    weighted = nginx.canary_conf(
        "shop", ("blue", "v1", ["h:8001"]), ("green", "v2", ["h:8002"]), 10, 0
    )
    assert nginx.servers(weighted) == ["h:8001", "h:8002"]


def test_a_batch_upstream_still_names_the_old_color_live() -> None:
    conf = nginx.batch_conf(
        "shop",
        ("blue", "v1"),
        ("green", "v2"),
        [("10.0.0.1:8002", True), ("10.0.0.2:8001", False)],
        (1, 2),
        0,
    )
    assert nginx.parse_live(conf) == ("blue", "v1")
    assert "batch=1/2 new=green version=v2" in conf
    assert "server 10.0.0.1:8002" in conf and "server 10.0.0.2:8001" in conf


FLEET = """\
app: shop
hosts:
  - {name: web1, address: 10.200.1.2}
  - {name: web2, address: 10.200.2.2}
  - {name: web3, address: 10.200.3.2}
  - {name: lb, address: 10.200.0.1, runs_app: false}
colors: {blue: {port: 8001}, green: {port: 8002}}
ship: [{name: app, upload: {src: app, dest: "/srv/shop/releases/${version}"}}]
service: {start: "start ${color}", stop: "stop ${color}", status: "status ${color}"}
router:
  host: lb
  upstream_file: /etc/nginx/u.conf
  url: "http://10.200.0.1:8080"
  access_log: /var/log/a.log
fleet: FLEET
state_dir: /srv/shop/state
"""


def _plan(tmp_path: Path, fleet: str) -> list[Step]:
    from deployer.plan import Context, Observed, release_plan
    from deployer.playbook import load_playbook

    (tmp_path / "app").mkdir(exist_ok=True)
    path = tmp_path / "p.yml"
    path.write_text(FLEET.replace("FLEET", fleet))
    ctx = Context(load_playbook(path), {})
    old = ctx.upstream("blue", "v1")
    seen = Observed("blue", "v1", old, {}, {h: {"blue": True} for h in ("web1", "web2", "web3")})
    return release_plan(ctx, seen, "v2")


def test_a_fleet_prepares_in_lanes_then_switches_batch_by_batch(tmp_path: Path) -> None:
    from deployer.plan import ArmDeadMan, Gate, Switch

    steps = _plan(tmp_path, "{batch_size: 2, max_failures: 1}")
    keys = [s.name for s in steps]
    assert {s.group for s in steps if s.name in ("stop-idle", "ship:app")} == {"prepare"}
    assert {s.group for s in steps if s.name in ("start", "pre-switch-gate")} == {"start"}
    assert [k for k in keys if "switch" in k and "gate" not in k] == ["switch:batch-1", "switch"]
    assert keys.index("arm-dead-man:batch-1") < keys.index("switch:batch-1")
    assert keys.index("post-switch-gate:batch-1") < keys.index("arm-dead-man")
    assert keys.index("arm-dead-man") < keys.index("switch") < keys.index("commit")
    first = next(s for s in steps if s.name == "switch:batch-1")
    assert isinstance(first.do, Switch) and first.do.forward
    assert "server 10.200.1.2:8002" in first.do.conf and "server 10.200.3.2:8001" in first.do.conf
    assert isinstance(first.undo, Switch) and first.undo.color == "blue"  # puts all back
    last = next(s for s in steps if s.name == "switch")
    assert last.undo is None and "8001" not in last.do.conf
    gate = next(s for s in steps if s.name == "post-switch-gate:batch-1").do
    assert isinstance(gate, Gate) and gate.about == "after batch 1/2 (web1, web2)"
    assert [h for h, _ in gate.diagnose] == ["web1", "web2"]
    arms = [s.do for s in steps if isinstance(s.do, ArmDeadMan)]
    assert len(arms) == 2 and all(a.conf.startswith("# deployer: live=blue") for a in arms)


def test_without_batches_one_switch_as_before(tmp_path: Path) -> None:
    keys = [s.key for s in _plan(tmp_path, "{}")]
    assert keys.count("switch@lb") == 1 and not any("batch" in k for k in keys)
    assert [k for k in keys if k.startswith("pre-switch-gate")] == [
        "pre-switch-gate@web1",
        "pre-switch-gate@web2",
        "pre-switch-gate@web3",
    ]


def test_a_canary_with_batches_is_refused(tmp_path: Path) -> None:
    from deployer.errors import PlaybookError

    with pytest.raises(PlaybookError, match=r"fleet\.batch_size"):
        _plan(tmp_path, "{batch_size: 1}\nstrategy: {kind: canary}\n")


def test_commands_of_one_step_run_in_one_shell_in_order(tmp_path: Path) -> None:
    import subprocess

    from deployer.engine.actions import in_order

    cmds = (
        Shell.raw("echo a > " + str(tmp_path / "f") + " # a comment"),
        Shell.raw("sleep 0.01 &"),
        Shell.raw("false"),
        Shell.raw("echo never >> " + str(tmp_path / "f")),
    )
    proc = subprocess.run(["bash", "-c", in_order(cmds).text], check=False)
    assert proc.returncode == 1 and (tmp_path / "f").read_text() == "a\n"
    assert in_order(cmds).shown.count(" && ") == 3


def test_a_host_step_running_long_is_named_while_it_runs_then_every_30_s() -> None:
    import time

    from deployer.engine import lanes

    now = time.monotonic()
    running = {"web3": ("ship:upload app", now - 12), "web1": ("start", now - 2)}
    said: dict[str, float] = {}
    lines = lanes._waiting_on(running, said, 18, 20)
    assert lines == [
        "waiting on web3: ship:upload app running for 12s (18 of 20 hosts done with this group)"
    ]
    assert lanes._waiting_on(running, said, 18, 20) == []  # not again before 30 s
    said[next(iter(said))] -= 31
    assert len(lanes._waiting_on(running, said, 19, 20)) == 1
