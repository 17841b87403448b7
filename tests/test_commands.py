"""Command builders as plain strings, without SSH; quoting and secrets."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer.commands import dead_man, files, lock, nginx
from deployer.commands.shell import redact
from deployer.playbook.variables import render
from deployer.values import Secret, Shell, join


def test_join_quotes_each_token_once() -> None:
    assert join(["echo", "v1; rm -rf /"]).text == "echo 'v1; rm -rf /'"
    assert join(["ls", "plain"]).text == "ls plain"


def test_secret_runs_but_shows_redacted_and_stays_off_the_command_line() -> None:
    secret = Secret("Bearer abc", "TOKEN")
    cmd = join(["curl", "-H", secret])
    assert cmd.text == f'curl -H "${{{secret.variable}}}"'
    assert "abc" not in cmd.text  # the value travels in env, not in the command text
    assert cmd.env == ((secret.variable, "Bearer abc"),)
    assert cmd.shown == "curl -H ***"
    assert "abc" not in str(cmd) and "abc" not in repr(Secret("abc"))


def test_render_quotes_values_and_redacts_env() -> None:
    shell = render(
        "deploy ${version} --token ${env:TOKEN} $${literal}", {"version": "v1 2"}, {"TOKEN": "t0p"}
    )
    var = Secret("t0p").variable
    assert shell.text == f"deploy 'v1 2' --token \"${{{var}}}\" ${{literal}}"
    assert shell.shown == "deploy 'v1 2' --token *** ${literal}"
    assert dict(shell.env) == {var: "t0p"}


def test_secret_reaches_the_command_through_stdin_script(tmp_path) -> None:
    from deployer.commands.shell import stdin_script

    value = 'it\'s a "quoted" $secret\nwith a newline'
    shell = render("printf %s ${env:T} > ${out}", {"out": str(tmp_path / "o")}, {"T": value})
    script = stdin_script(shell)
    proc = subprocess.run(["bash", "-s"], input=script, text=True, check=False)
    assert proc.returncode == 0
    assert (tmp_path / "o").read_text() == value
    assert value not in shell.text


def test_redaction_covers_quoted_and_escaped_forms() -> None:
    from deployer.redaction import Redactor

    value = 'Can4ry\'s "tok" $x'
    r = Redactor([value])
    q = subprocess.run(
        ["bash", "-c", 'printf %q "$V"'], env={"V": value}, capture_output=True, text=True
    ).stdout
    import json

    for form in (value, shlex.quote(value), json.dumps(value)[1:-1], q):
        assert r.text(f"before {form} after") == "before *** after", form


@given(st.text(min_size=1, max_size=40))
def test_any_value_stays_one_word_in_the_shell(value: str) -> None:
    value = value.replace("\x00", "")
    shell = render("printf %s ${v}", {"v": value}, {})
    assert shlex.split(shell.text) == ["printf", "%s", value]


def test_rendered_hostile_value_runs_nothing(tmp_path) -> None:
    marker = tmp_path / "pwned"
    shell = render("echo ${v}", {"v": f"x; touch {marker}"}, {})
    out = subprocess.run(["bash", "-c", shell.text], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"x; touch {marker}" and not marker.exists()


def test_redact_removes_secret_from_output() -> None:
    assert redact("error: token s3cr3t rejected", [Secret("s3cr3t")]) == "error: token *** rejected"


def test_upstream_conf_records_live_color_and_servers() -> None:
    conf = nginx.upstream_conf("shop", "green", "v2", ["10.0.0.1:8002", "10.0.0.2:8002"], 16)
    assert conf == (
        "# deployer: live=green version=v2\n"
        "upstream shop {\n"
        "    server 10.0.0.1:8002 max_fails=0;\n"
        "    server 10.0.0.2:8002 max_fails=0;\n"
        "    keepalive 16;\n"
        "}\n"
    )
    assert nginx.parse_live(conf) == ("green", "v2")
    assert nginx.parse_live("upstream x { server a:1; }") is None


def test_switch_script_tests_before_reload_and_restores_on_failure() -> None:
    cmd = nginx.switch(
        "/etc/u.new",
        "/etc/u",
        Shell.raw("nginx -t"),
        Shell.raw("nginx -s reload"),
        "/run/nginx.pid",
    )
    text = cmd.text
    assert (
        text.index("mv -f /etc/u.new /etc/u")
        < text.index("nginx -t")
        < text.index("nginx -s reload")
    )
    assert "trap 'rc=$?; if [ $rc -ne 0 ]; then restore; fi' EXIT" in text
    assert "exit 97" in text and "exit 98" in text and "exit 99" in text


def test_switch_script_really_restores_previous_file_when_test_fails(tmp_path) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    path.write_text("old")
    staged.write_text("new")
    cmd = nginx.switch(
        str(staged), str(path), Shell.raw("false"), Shell.raw("true"), str(tmp_path / "pid")
    )
    res = subprocess.run(["bash", "-c", cmd.text], capture_output=True, check=False)
    assert res.returncode == nginx.TEST_FAILED and path.read_text() == "old"


def test_switch_script_restores_previous_file_when_nginx_is_down(tmp_path) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    path.write_text("old")
    staged.write_text("new")
    (tmp_path / "pid").write_text("999999999\n")  # no such process
    cmd = nginx.switch(
        str(staged), str(path), Shell.raw("true"), Shell.raw("true"), str(tmp_path / "pid")
    )
    res = subprocess.run(["bash", "-c", cmd.text], capture_output=True, check=False)
    assert res.returncode == nginx.NOT_RUNNING and path.read_text() == "old"


def test_switch_script_restores_previous_file_when_reload_fails(tmp_path) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    path.write_text("old")
    staged.write_text("new")
    (tmp_path / "pid").write_text(f"{os.getpid()}\n")  # a live "master"
    cmd = nginx.switch(
        str(staged), str(path), Shell.raw("true"), Shell.raw("false"), str(tmp_path / "pid")
    )
    res = subprocess.run(["bash", "-c", cmd.text], capture_output=True, check=False)
    assert res.returncode == nginx.RELOAD_FAILED and path.read_text() == "old"
    assert not (tmp_path / "u.conf.deployer-prev").exists()


def test_workers_alive_lists_only_integers() -> None:
    assert nginx.workers_alive([12, 34]).text == (
        "for p in 12 34; do kill -0 $p 2>/dev/null && echo $p; done; true"
    )
    assert nginx.workers_alive([]).text == "true"


def test_lock_acquire_is_an_atomic_mkdir_with_holder_info() -> None:
    info = lock.LockInfo("r1", "alice", "ci", 7, 100.0, 60.0)
    text = lock.acquire("/tmp/app.lock", info).text
    assert "mkdir -m 0700 -- /tmp/app.lock" in text
    assert "> /tmp/app.lock/info" in text
    assert lock.LockInfo.from_json(info.to_json()) == info
    assert info.expired(161.0) and not info.expired(159.0)
    assert info.describe() == "alice@ci (pid 7, release r1)"


def test_lock_commands_really_exclude_a_second_holder(tmp_path) -> None:
    path = str(tmp_path / "x.lock")
    a = lock.LockInfo("ra", "a", "h", 1, 0.0, 60.0)
    b = lock.LockInfo("rb", "b", "h", 2, 0.0, 60.0)
    sh = ["bash", "-c"]
    assert subprocess.run([*sh, lock.acquire(path, a).text], check=False).returncode == 0
    assert (
        subprocess.run(
            [*sh, lock.acquire(path, b).text], capture_output=True, check=False
        ).returncode
        != 0
    )
    subprocess.run([*sh, lock.release(path, "rb").text], check=True)  # not b's: stays
    held = subprocess.run([*sh, lock.read(path).text], capture_output=True, text=True, check=True)
    assert lock.LockState.parse(held.stdout).info == a
    subprocess.run([*sh, lock.release(path, "ra").text], check=True)
    assert not (tmp_path / "x.lock").exists()


def test_state_files_round_trip(tmp_path) -> None:
    d = str(tmp_path / "state dir")
    subprocess.run(["bash", "-c", files.write_state(d, "blue", "v1").text], check=True)
    subprocess.run(["bash", "-c", files.write_state(d, "green", "v2").text], check=True)
    out = subprocess.run(
        ["bash", "-c", files.read_states(d).text], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["blue v1", "green v2"]
    # what a host may hold instead: only the first line, at most 256 characters, read back
    # (then judged by deployer.trust); an empty file says an empty version; a FIFO is no file
    (tmp_path / "state dir" / "blue.version").write_bytes(b"v1\nrm -rf /\n")
    (tmp_path / "state dir" / "green.version").write_bytes(b"x" * 5000)
    out = subprocess.run(
        ["bash", "-c", files.read_states(d).text], capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["blue v1", "green " + "x" * 256]
    (tmp_path / "state dir" / "blue.version").write_bytes(b"")
    (tmp_path / "state dir" / "green.version").unlink()
    os.mkfifo(tmp_path / "state dir" / "green.version")
    out = subprocess.run(
        ["bash", "-c", files.read_states(d).text], capture_output=True, text=True, check=True,
        timeout=10,
    ).stdout  # fmt: skip
    assert out.splitlines() == ["blue "]


def test_scheduled_stop_returns_at_once_runs_later_and_can_be_cancelled(tmp_path) -> None:
    import time

    state = str(tmp_path / "state")
    marker = tmp_path / "stopped"
    stop = Shell.raw(f"touch {marker}")
    t0 = time.monotonic()
    subprocess.run(
        ["bash", "-c", files.schedule_stop(state, "blue", 0.3, stop).text],
        check=True,
        capture_output=True,
        timeout=5,
    )
    assert time.monotonic() - t0 < 0.25 and not marker.exists()
    timer = tmp_path / "state" / "blue.stop-timer"
    deadline = time.monotonic() + 5  # the timer stops, then removes its pid file
    while not (marker.exists() and not timer.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists() and not timer.exists()

    marker.unlink()
    subprocess.run(
        ["bash", "-c", files.schedule_stop(state, "blue", 0.5, stop).text],
        check=True,
        capture_output=True,
        timeout=5,
    )
    subprocess.run(["bash", "-c", files.cancel_stop(state, "blue").text], check=True)
    time.sleep(0.8)
    assert not marker.exists()


def test_observe_host_reads_versions_and_statuses_in_one_command(tmp_path) -> None:
    d = str(tmp_path / "state")
    subprocess.run(["bash", "-c", files.write_state(d, "blue", "v1").text], check=True)
    cmd = files.observe_host(d, {"blue": Shell.raw("true"), "green": Shell.raw("false")}, [d])
    out = subprocess.run(["bash", "-c", cmd.text], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["blue v1", "up blue"]


def test_observe_host_runs_no_status_command_when_a_path_could_be_swapped(tmp_path) -> None:
    d = tmp_path / "state"
    d.mkdir()
    ran = tmp_path / "ran"
    tmp_path.chmod(0o777)  # anyone could swap state/ for their own
    try:
        cmd = files.observe_host(str(d), {"blue": Shell.raw(f"touch {ran}")}, [str(d)])
        out = subprocess.run(["bash", "-c", cmd.text], capture_output=True, text=True)
    finally:
        tmp_path.chmod(0o755)
    assert out.returncode == files.UNTRUSTED_PATH
    assert f"{tmp_path}: writable by other users (mode 777)" in out.stderr
    assert not ran.exists()


def test_stage_tests_in_place_and_unstage_puts_the_previous_file_back(tmp_path) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    path.write_text("old")
    staged.write_text("new")
    pid = str(tmp_path / "pid")
    ok = nginx.stage(str(staged), str(path), Shell.raw("true"), Shell.raw("true"), pid)
    res = subprocess.run(["bash", "-c", ok.text], capture_output=True, check=False)
    assert res.returncode == 0 and path.read_text() == "new"  # in place, nothing reloaded
    res = subprocess.run(["bash", "-c", nginx.unstage(str(path), pid).text], check=False)
    assert res.returncode == 0 and path.read_text() == "old"
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "u.conf",
        "u.conf.deployer-switch.lock",
    ]


def test_stage_restores_when_the_test_fails_and_unstage_of_a_first_release_removes(
    tmp_path,
) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    staged.write_text("new")
    pid = str(tmp_path / "pid")
    bad = nginx.stage(str(staged), str(path), Shell.raw("false"), Shell.raw("true"), pid)
    res = subprocess.run(["bash", "-c", bad.text], capture_output=True, check=False)
    assert res.returncode == nginx.TEST_FAILED and not path.exists()
    staged.write_text("new")
    ok = nginx.stage(str(staged), str(path), Shell.raw("true"), Shell.raw("true"), pid)
    assert subprocess.run(["bash", "-c", ok.text], check=False).returncode == 0
    assert subprocess.run(["bash", "-c", nginx.unstage(str(path), pid).text]).returncode == 0
    assert not path.exists()  # there was no upstream before: none after


def test_reload_staged_puts_the_held_file_back_when_nginx_is_down(tmp_path) -> None:
    path, staged = tmp_path / "u.conf", tmp_path / "u.conf.new"
    path.write_text("old")
    staged.write_text("new")
    pid = tmp_path / "pid"
    pid.write_text("999999999\n")
    t = Shell.raw("true")
    stage = nginx.stage(str(staged), str(path), t, t, str(pid))
    assert subprocess.run(["bash", "-c", stage.text], check=False).returncode == 0
    cmd = nginx.reload_staged(str(path), t, t, str(pid))
    res = subprocess.run(["bash", "-c", cmd.text], capture_output=True, check=False)
    assert res.returncode == nginx.NOT_RUNNING and path.read_text() == "old"
    # nothing staged any more: a second reload refuses instead of reloading blind
    res = subprocess.run(["bash", "-c", cmd.text], capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "no staged upstream" in res.stderr


class Watchdog:
    """The router's dead-man watchdog run here, through the same held-process runner a
    `transport: local` router uses; its "switch back" touches a file."""

    def __init__(self, tmp_path: Path, seconds: float = 60, grace: float = 5):
        from deployer.adapters.local import LocalRunner
        from deployer.playbook.models import Host

        self.path = str(tmp_path / "u.conf")
        self.switched = tmp_path / "switched"
        conf, timer, fired, off = (Path(p) for p in dead_man.paths(self.path))
        self.conf, self.timer, self.fired, self.off = conf, timer, fired, off
        conf.write_text("old")
        self.runner = LocalRunner(Host(name="r", address="127.0.0.1", transport="local"))
        said = self.runner.run(dead_man.prepare(self.path)).stdout
        self.said_before = dead_man.parse_fired(said)
        body = Shell.raw(f"touch {shlex.quote(str(self.switched))}")
        self.held = self.runner.hold(dead_man.watchdog(self.path, body, seconds, grace))
        assert self.held.first_line(5) == "armed"

    def wait_fired(self, within: float) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            text = self.fired.read_text() if self.fired.exists() else ""
            if text.count(" ") == 2 and " - " not in text:
                return text.split()[2]
            time.sleep(0.02)
        raise AssertionError(f"not fired within {within}s")

    def disarm(self) -> str | None:
        return dead_man.parse_fired(self.runner.run(dead_man.disarm(self.path)).stdout)


def test_the_watchdog_fires_at_once_when_deployers_session_closes(tmp_path) -> None:
    dog = Watchdog(tmp_path)
    for _ in range(3):
        assert dog.held.beat()
        time.sleep(0.1)
    closed_at = time.monotonic()
    dog.held.close()  # deployer killed: its end of the session is gone
    assert dog.wait_fired(3) == "closed" and dog.switched.exists()
    assert time.monotonic() - closed_at < 1.5
    said = dog.disarm()
    assert said is not None and said.endswith(" 0 closed")
    assert "session to the router closed" in dead_man.fired_text(said)


def test_the_watchdog_fires_when_beats_stop_for_grace(tmp_path) -> None:
    dog = Watchdog(tmp_path, grace=0.6)
    for _ in range(6):  # beats keep it quiet well past its grace
        assert dog.held.beat()
        time.sleep(0.2)
    assert not dog.fired.exists()
    assert dog.wait_fired(2) == "stalled"
    assert "stopped renewing" in dead_man.fired_text(str(dog.disarm()))
    dog.held.close()


def test_the_watchdog_fires_at_its_deadline_even_with_beats(tmp_path) -> None:
    dog = Watchdog(tmp_path, seconds=0.8, grace=5)
    started = time.monotonic()
    while not dog.fired.exists() and time.monotonic() - started < 3:
        dog.held.beat()
        time.sleep(0.1)
    assert dog.wait_fired(2) == "deadline" and time.monotonic() - started < 2
    dog.held.close()


def test_a_watchdog_called_off_never_fires_even_when_its_session_then_closes(tmp_path) -> None:
    dog = Watchdog(tmp_path)
    dog.held.beat()
    pid = int(dog.timer.read_text())
    assert dog.disarm() is None
    assert dog.held.ended() and not dog.conf.exists(), pid
    dog.held.close()
    time.sleep(0.5)
    assert not dog.fired.exists() and not dog.switched.exists()
    assert dog.held.ended()


def test_arming_again_reports_a_watchdog_that_fired_meanwhile_once(tmp_path) -> None:
    dog = Watchdog(tmp_path)
    dog.held.close()
    dog.wait_fired(3)
    again = Watchdog(tmp_path)
    assert again.said_before is not None and again.said_before.endswith("closed")
    assert again.disarm() is None  # said once, by the next arming
    third = Watchdog(tmp_path)
    assert third.said_before is None
    assert third.disarm() is None
    again.held.close()
    third.held.close()


@pytest.mark.parametrize(
    "out",
    ["fired 1796435377 0 closed", "fired 1796435377 - stalled", "fired 1796435377 3 deadline"],
)
def test_what_a_watchdog_printed_is_read_as_words(out) -> None:
    said = dead_man.parse_fired(out)
    assert said is not None and said.startswith("1796435377 ")
    assert "2026-12-05T01:49:37Z" in dead_man.fired_text(said)


@pytest.mark.parametrize("out", ["fired $(id)", "fired 1 2 3 4", "fired \x1b[31m 0 closed"])
def test_a_hostile_fired_marker_is_read_as_unknown(out) -> None:
    assert dead_man.parse_fired(out) == "? ? ?"
    assert "?" in dead_man.fired_text("? ? ?")


def test_a_watchdog_pid_file_naming_another_process_calls_nothing_off(tmp_path) -> None:
    path = str(tmp_path / "u.conf")
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        Path(dead_man.paths(path)[1]).write_text(f"{sleeper.pid}\n")
        started = time.monotonic()
        subprocess.run(["bash", "-c", dead_man.disarm(path).text], check=True, timeout=30)
        assert time.monotonic() - started < 1  # not ours: nothing waited for
        assert sleeper.poll() is None and not Path(dead_man.paths(path)[3]).exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("content", ["1", "0", "", "12x", "-1", "$(id)", "99999999"])
def test_a_timer_file_that_does_not_name_our_timer_signals_nothing(tmp_path, content) -> None:
    state = str(tmp_path / "state")
    Path(state).mkdir()
    (tmp_path / "state" / "blue.stop-timer").write_text(content + "\n")
    # `kill` recorded instead of sent: whatever the file says, nothing is signalled
    cmd = 'kill() { echo "KILL $*" >&2; }; ' + files.cancel_stop(state, "blue").text
    res = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "KILL" not in res.stderr, res.stderr
    assert not (tmp_path / "state" / "blue.stop-timer").exists()


def test_a_timer_file_naming_our_timer_stops_it(tmp_path) -> None:
    state = str(tmp_path / "state")
    marker = tmp_path / "stopped"
    sched = files.schedule_stop(state, "blue", 30, Shell.raw(f"touch {marker}"))
    subprocess.run(["bash", "-c", sched.text], check=True, timeout=5)
    pid = int((tmp_path / "state" / "blue.stop-timer").read_text())
    subprocess.run(["bash", "-c", files.cancel_stop(state, "blue").text], check=True, timeout=5)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() and not marker.exists()


def _owned_reference(paths: list[str]) -> str | None:
    """check_owned's rule, written again from its docstring in Python (lstat, walking up):
    the shell version must agree with it on every tree."""
    import stat as st_

    me = os.getuid()
    for p in paths:
        real = os.path.realpath(p)
        for chain in [p] + ([real] if real != p else []):
            cur, below = chain, False
            while True:
                if os.path.lexists(cur):
                    s = os.lstat(cur)
                    if s.st_uid not in (0, me):
                        return f"{cur}: owned by uid {s.st_uid}"
                    mode = st_.S_IMODE(s.st_mode)
                    w = mode & 0o2 if s.st_gid == 0 else mode & 0o22
                    sticky_pass = mode & 0o1000 and st_.S_ISDIR(s.st_mode) and below
                    if not st_.S_ISLNK(s.st_mode) and w and not sticky_pass:
                        return f"{cur}: writable by other users (mode {mode:o})"
                    below = True
                if cur == "/" or not cur.startswith("/"):
                    break
                cur = cur.rsplit("/", 1)[0] or "/"
    return None


def test_check_owned_agrees_with_the_rule_on_random_trees(tmp_path: Path) -> None:
    """Random trees (modes, owners when root, links up and sideways, names with spaces
    and newlines, missing and relative paths): the shell's verdict and message are the
    reference's, for each of 300 seeded cases."""
    import random

    rng = random.Random(7)
    tmp_path.chmod(0o755)
    sticky = tmp_path / "stk"
    sticky.mkdir()
    sticky.chmod(0o1777)
    outcomes = {True: 0, False: 0}
    for trial in range(300):
        root = tmp_path / f"t{trial}"
        root.mkdir()
        cur = root
        for i in range(rng.randint(1, 4)):
            nxt = cur / (rng.choice(["a", "b c", "d\nnl", "sticky"]) + str(i))
            if nxt.exists() or nxt.is_symlink():
                break
            if rng.random() < 0.15:
                try:
                    nxt.symlink_to(rng.choice([root, sticky, tmp_path, root / "nowhere"]))
                except FileNotFoundError:  # below a link to nowhere
                    break
                cur = nxt
                continue
            if rng.random() < 0.1:
                break  # what follows does not exist yet
            try:
                nxt.mkdir()
            except FileNotFoundError:  # below a link to nowhere
                break
            nxt.chmod(rng.choice([0o755, 0o755, 0o775, 0o777, 0o1777, 0o700, 0o757]))
            if os.getuid() == 0 and rng.random() < 0.2:
                os.chown(nxt, rng.choice([0, 1, 65534]), rng.choice([0, 1]))
            cur = nxt
        paths = [str(cur), str(cur / "state")]
        if rng.random() < 0.3:
            paths.append("relative/x")
        if rng.random() < 0.3:
            paths.append(str(root / "missing" / "y"))
        rng.shuffle(paths)
        want = _owned_reference(paths)
        out = subprocess.run(
            ["bash", "-c", files.check_owned(paths).text], capture_output=True, text=True
        )
        got = out.stderr.strip().removeprefix("untrusted path ") if out.returncode else None
        assert (out.returncode in (0, files.UNTRUSTED_PATH)) and got == want, (paths, out)
        outcomes[want is None] += 1
    assert min(outcomes.values()) > 50  # both verdicts were exercised
