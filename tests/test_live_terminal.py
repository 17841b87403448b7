"""The live view in a real terminal (tmux): steps with a spinner and elapsed time and the
gate's running samples, redrawn in place; and plain, uncut lines when not a terminal."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Deploy

pytestmark = pytest.mark.testbed
TMUX = shutil.which("tmux")


def tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", *args], capture_output=True, text=True, timeout=10, check=False
    ).stdout


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_live_view_in_a_real_terminal(deploy: Deploy, tmp_path: Path) -> None:
    doc = yaml.safe_load(deploy.path.read_text())
    doc["gates"]["post_switch"].update(window="4s", rate=10)
    deploy.path.write_text(yaml.safe_dump(doc))
    session = f"deployer-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m deployer release "
        f"-p {shlex.quote(str(deploy.path))} --version v1; echo $? > {shlex.quote(str(done))}; "
        "sleep 30"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
         "env", "TERM=xterm-256color", "sh", "-c", command)  # fmt: skip
    screens: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not done.exists() and time.monotonic() < deadline:
            screens.append(tmux("capture-pane", "-p", "-t", session))
            time.sleep(0.2)
        final = tmux("capture-pane", "-p", "-t", session)
    finally:
        tmux("kill-session", "-t", session)
    assert done.exists() and done.read_text().strip() == "0", final
    during = [s for s in screens if "post-switch gate:" in s]
    assert during, "the gate's running samples were never on screen"
    # redrawn in place: the sample count grows on the same screen line, never a new line each
    counts = sorted(
        {line for s in during for line in s.splitlines() if "post-switch gate:" in line}
    )
    assert len(counts) >= 3 and all(s.count("post-switch gate:") == 1 for s in during)
    assert any("budget left" in c and "p95" in c for c in counts)
    spinner = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    assert any(any(ch in s for ch in spinner) for s in screens)
    # the finished view: every step's line stays, the live area is gone
    assert "✓ switch" in final and "release succeeded" in final
    assert "post-switch gate:" not in final


def test_tables_are_plain_records_when_not_a_terminal(deploy: Deploy) -> None:
    assert deploy.release("v1").returncode == 0
    listed = deploy.run("evidence", "list", "-p", str(deploy.path))  # a pipe, not a terminal
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[1].startswith("#seq\tid\tkind")
    record = lines[2].split("\t")
    assert record[2] == "release" and record[6] == "succeeded" and "…" not in listed.stdout
    assert len(record[7]) >= 19  # the whole time, not "2026-11…"
    forced = deploy.run("--color", "always", "evidence", "list", "-p", str(deploy.path))
    assert "\x1b[" in forced.stdout  # colors on demand, even into a pipe
