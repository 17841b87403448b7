"""The lock and the operation record in PostgreSQL (`lock.url` / `--state-url`): two CI
runners releasing one Vercel project at once get one winner; a holder killed with -9 frees
the lock at once (its session ended) and its operation is recovered from the other runner.

The bed's real PostgreSQL; the local Vercel (tests/fake_vercel.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT
from fake_vercel import FakeVercel, playbook_doc

pytestmark = [pytest.mark.testbed]
TOKEN = "vercel-pgstate-token-3d9e"


@pytest.fixture
def state_url(pg_bed: Any) -> Iterator[str]:
    import psycopg

    name = f"state_{uuid.uuid4().hex[:8]}"
    admin = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVercel]:
    with FakeVercel(TOKEN) as f:
        for k, v in f.resolve_env().items():
            monkeypatch.setenv(k, v)
        f.add("dpl_old", "a" * 40, created=1000, served=True)
        f.add("dpl_live", "b" * 40, created=2000)
        f.serve("dpl_live")
        yield f


def _runner(fake: FakeVercel, where: Path, state_url: str, window: str = "1s") -> Path:
    """One CI runner's checkout: its own journal and state directory, the shared store."""
    where.mkdir()
    doc = playbook_doc(fake, where)
    doc["gates"]["post_switch"].update(window=window)
    doc["lock"] = {"url": "${env:STATE_URL}"}
    path = where / "vercel.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _env(state_url: str) -> dict[str, str]:
    return {**os.environ, "VERCEL_TOKEN": TOKEN, "STATE_URL": state_url, "NO_COLOR": "1"}


def run(state_url: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        capture_output=True, text=True, cwd=ROOT, env=_env(state_url), timeout=120,
        check=False,
    )  # fmt: skip
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {}
    return proc.returncode, doc, proc.stderr


def spawn(state_url: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        cwd=ROOT, env=_env(state_url), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _wait(fake: FakeVercel, dep: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while fake.production != dep:
        assert time.monotonic() < deadline, f"production never became {dep}"
        time.sleep(0.02)


def test_two_runners_releasing_at_once_get_one_winner(
    fake: FakeVercel, tmp_path: Path, state_url: str
) -> None:
    one = _runner(fake, tmp_path / "runner1", state_url, window="4s")
    two = _runner(fake, tmp_path / "runner2", state_url)
    fake.add("dpl_a", "c" * 40, created=3000)
    fake.add("dpl_b", "d" * 40, created=4000)
    first = spawn(state_url, "release", "-p", str(one), "--deployment", "dpl_a")
    try:
        _wait(fake, "dpl_a")  # runner 1 holds the lock, in its post-switch window
        code, doc, err = run(state_url, "release", "-p", str(two), "--deployment", "dpl_b")
        assert code == 5, (code, err)
        assert "PostgreSQL session is alive" in doc["message"]
        out, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out
    assert fake.production == "dpl_a"
    code, doc, err = run(state_url, "release", "-p", str(two), "--deployment", "dpl_b")
    assert code == 0 and fake.production == "dpl_b", (doc.get("message"), err)


def test_a_killed_holder_frees_the_lock_and_any_runner_recovers_its_operation(
    fake: FakeVercel, tmp_path: Path, state_url: str
) -> None:
    one = _runner(fake, tmp_path / "runner1", state_url, window="10s")
    two = _runner(fake, tmp_path / "runner2", state_url)
    fake.add("dpl_a", "c" * 40, created=3000)
    holder = spawn(state_url, "release", "-p", str(one), "--deployment", "dpl_a")
    _wait(fake, "dpl_a")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    started = time.monotonic()
    # the lock went with the session: not "locked" (5) but "recover first" (6)
    code, doc, _ = run(state_url, "release", "-p", str(two), "--deployment", "dpl_a")
    assert code == 6 and "deployer recover" in doc["message"], doc
    assert time.monotonic() - started < 10
    code, status, _ = run(state_url, "status", "-p", str(two))
    assert status["unfinished"] and status["lock"] is None, status
    code, doc, err = run(state_url, "recover", "-p", str(two))
    assert code == 0 and fake.production == "dpl_live", (doc.get("message"), err)
    code, status, _ = run(state_url, "status", "-p", str(two))
    assert status["unfinished"] is None
    # the first runner's journal is stale now: retired, nothing replayed
    code, doc, err = run(state_url, "recover", "-p", str(one))
    assert code == 0 and doc["message"].startswith("nothing to recover"), (doc, err)
    assert fake.production == "dpl_live"
