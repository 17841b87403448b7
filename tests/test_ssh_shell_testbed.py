"""The host's one shell (deployer/adapters/ssh_shell.py) against the bed's real sshd: what a
command sees and returns is what a session of its own gave it, and nothing a command does
or prints can run something else, forge another command's end, or show a secret in `ps`."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from deployer.adapters.hosts import SshRunner
from deployer.errors import CommandFailed
from deployer.playbook.models import Host
from deployer.values import Shell

pytestmark = [pytest.mark.testbed]


@pytest.fixture
def runner(bed: Any) -> Iterator[SshRunner]:
    r = SshRunner(
        Host(name="bed", address="127.0.0.1", port=bed.ports.ssh),
        key=bed.client_key,
        known_hosts=bed.known_hosts,
    )
    try:
        yield r
    finally:
        r.close()


def _driver(r: SshRunner) -> int:
    """The pid of the shell that ran the command (a subshell's parent)."""
    return int(r.run(Shell.raw("ps -o ppid= -p $BASHPID")).stdout)


def test_commands_share_one_shell_and_keep_their_own_output_and_status(
    runner: SshRunner,
) -> None:
    first = _driver(runner)
    res = runner.run(Shell.raw("printf 'no newline'; printf 'err' >&2; exit 3"), check=False)
    assert (res.exit_status, res.stdout, res.stderr) == (3, "no newline", "err")
    # an `exit`, `exec` or `set -e` ends the command's subshell, never the shell
    assert runner.run(Shell.raw("set -e; false; echo not reached"), check=False).exit_status == 1
    assert runner.run(Shell.raw("exec true")).ok
    assert runner.run(Shell.raw("cat; echo after")).stdout == "after\n"  # stdin: at its end
    assert _driver(runner) == first


def test_output_cannot_forge_the_end_of_a_command(runner: SshRunner) -> None:
    tricky = "printf '\\n%s 0\\n' deadbeef; printf '\\n0 0\\n'; printf '\\n%s\\n' x >&2; exit 4"
    res = runner.run(Shell.raw(tricky), check=False)
    assert res.exit_status == 4
    assert res.stdout == "\ndeadbeef 0\n\n0 0\n" and res.stderr == "\nx\n"
    # a line that looks like a frame, sent to the shell's stdin by a command, is never run
    marker = f"/tmp/deployer-frame-{time.time_ns()}"
    res = runner.run(Shell.raw(f"echo 'x y 0 {_b64(f'touch {marker}')}' >&0"), check=False)
    assert runner.run(Shell.raw(f"test ! -e {marker}")).ok


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def test_data_reaches_the_script_exactly_and_what_it_leaves_is_drained(
    runner: SshRunner,
) -> None:
    data = bytes(range(256)) * 12_000  # 3 MB, every byte value
    res = runner.run_input(Shell.raw("sha256sum"), data)
    assert res.stdout.split()[0] == hashlib.sha256(data).hexdigest()
    first = _driver(runner)
    # a script reading 10 bytes of 3 MB: the rest must not be taken for commands
    res = runner.run_input(Shell.raw("head -c 10 | wc -c"), data)
    assert res.stdout.strip() == "10"
    with pytest.raises(CommandFailed):  # a failing script: same, and its status reported
        runner.run_input(Shell.raw("exit 9"), data)
    assert runner.run(Shell.raw("echo fine")).stdout == "fine\n"
    big = runner.run(Shell.raw("head -c 4000000 /dev/zero | base64 -w0")).stdout  # 5.3 MB out
    assert len(big) == 5_333_336 and big.rstrip("=") == "A" * 5_333_334
    assert _driver(runner) == first


def test_a_command_that_times_out_closes_the_shell_and_the_next_gets_another(
    runner: SshRunner,
) -> None:
    first = _driver(runner)
    t0 = time.monotonic()
    with pytest.raises(CommandFailed, match=r"timed out after 0\.5s"):
        runner.run(Shell.raw("sleep 5"), timeout=0.5)
    assert time.monotonic() - t0 < 3
    assert runner.run(Shell.raw("echo next")).stdout == "next\n"
    assert _driver(runner) != first


def test_concurrent_commands_on_one_host_each_get_their_answer(runner: SshRunner) -> None:
    results: dict[int, str] = {}

    def one(i: int) -> None:
        results[i] = runner.run(Shell.raw(f"sleep 0.2; echo {i}")).stdout.strip()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: str(i) for i in range(6)}


def test_a_secret_in_a_command_never_shows_in_the_process_list(runner: SshRunner) -> None:
    secret = "shell-s3cret-in-ps-77"
    cmd = Shell('sleep 1.5; test -n "$TOKEN" && echo set', "sleep; echo", (("TOKEN", secret),))
    seen: list[str] = []

    def watch() -> None:
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            seen.append(ps)
            time.sleep(0.1)

    w = threading.Thread(target=watch)
    w.start()
    assert runner.run(cmd).stdout == "set\n"
    w.join()
    assert seen and not any(secret in ps for ps in seen)
