"""`strategy: canary` on Vercel: a rolling release against the local Vercel (its documented
rolling-release endpoints), each stage judged before it is approved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_vercel import FakeVercel, playbook_doc

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "vercel-rolling-token-5b1e"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVercel]:
    with FakeVercel(TOKEN) as f:
        for k, v in f.resolve_env().items():
            monkeypatch.setenv(k, v)
        f.add("dpl_live", "b" * 40, created=2000)
        f.serve("dpl_live")
        f.rolling_config = {"enabled": False, "stages": []}  # the project's own, put back
        yield f


def playbook(fake: FakeVercel, tmp_path: Path, **strategy: Any) -> Path:
    doc = playbook_doc(fake, tmp_path)
    doc["gates"]["pre_switch"].update(expect_json={"commit": "${version}"}, budget="3s")
    doc["gates"]["post_switch"].update(rate=40)
    doc["strategy"] = {
        "kind": "canary",
        "steps": [{"weight": 25, "pause": "1500ms"}, {"weight": 50, "pause": "1s"},
                  {"weight": 100}],
        "analysis": {"min_requests": 5, "fail_fast_errors": 3},
        **strategy,
    }  # fmt: skip
    path = tmp_path / "vercel.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(*args: str) -> tuple[int, dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "VERCEL_TOKEN": TOKEN, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    return proc.returncode, json.loads(proc.stdout)


def rolling_calls(fake: FakeVercel) -> list[tuple[str, dict[str, Any]]]:
    return [(p.rsplit("/", 1)[-1], b) for p, b in fake.bodies if "rolling-release" in p]


def test_a_healthy_rolling_release_is_approved_stage_by_stage(
    fake: FakeVercel, tmp_path: Path
) -> None:
    fake.add("dpl_new", "c" * 40, target="production", created=3000)
    pb = playbook(fake, tmp_path)
    code, doc = run("release", "-p", str(pb), "--deployment", "dpl_new")
    assert code == 0, doc["message"]
    assert fake.production == "dpl_new" and fake.rolling["state"] == "COMPLETE"
    calls = rolling_calls(fake)
    assert [c for c, _ in calls] == ["config", "start", "approve-stage", "complete", "config"]
    assert calls[0][1]["advancementType"] == "manual-approval"
    assert [s["targetPercentage"] for s in calls[0][1]["stages"]] == [25, 50, 100]
    assert calls[2][1] == {"nextStageIndex": 1, "canaryDeploymentId": "dpl_new"}
    assert fake.rolling_config == {"enabled": False, "stages": []}  # put back
    steps = doc["target"]["canary"]
    assert [s["verdict"] for s in steps] == ["pass", "pass"]
    # each side was probed on purpose (Vercel keeps one client on one side: left to
    # itself, this prober would only ever have seen one), each answer by its commit
    assert steps[0]["new"]["requests"] > 3 and steps[0]["old"]["requests"] > 3
    # the statistical judge, as on nginx: every metric passed, with its counts
    judged = steps[0]["judge"]
    assert judged["verdict"] == "pass", judged
    assert [m["name"] for m in judged["metrics"]] == ["errors", "latency"]
    fake.add("dpl_next", "f" * 40, target="production", created=4000)
    dry = subprocess.run(
        [sys.executable, "-m", "deployer", "release", "--dry-run", "-p", str(pb),
         "--deployment", "dpl_next"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        env={**os.environ, "VERCEL_TOKEN": TOKEN},
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "approve-stage {nextStageIndex: 1" in dry.stdout and "canary-50%" in dry.stdout
    plan = subprocess.run(
        [sys.executable, "-m", "deployer", "plan", "-p", str(pb), "--version", "x"],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
        env={**os.environ, "VERCEL_TOKEN": TOKEN},
    )  # fmt: skip
    assert plan.returncode == 2 and "--dry-run" in plan.stderr and "Traceback" not in plan.stderr


def test_a_failing_candidate_is_never_approved_and_production_rolls_back(
    fake: FakeVercel, tmp_path: Path
) -> None:
    fake.add("dpl_bad", "d" * 40, target="production", created=3000, broken_in_production=True)
    pb = playbook(fake, tmp_path)
    code, doc = run("release", "-p", str(pb), "--deployment", "dpl_bad")
    assert code == 4, doc["message"]
    assert "canary step 25% failed" in doc["message"]
    calls = [c for c, _ in rolling_calls(fake)]
    assert "approve-stage" not in calls and "complete" not in calls
    assert fake.production == "dpl_live" and fake.rolling["state"] == "ABORTED"
    assert ("POST", "/v1/projects/prj_fake1/rollback/dpl_live") in fake.calls
    assert fake.rolling_config == {"enabled": False, "stages": []}
    assert doc["target"]["canary"][0]["verdict"] == "fail"
    assert doc["target"]["canary"][0]["judge"]["metrics"][0]["name"] == "errors"


def test_a_first_release_is_a_plain_promote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeVercel(TOKEN) as fake:
        for k, v in fake.resolve_env().items():
            monkeypatch.setenv(k, v)
        fake.add("dpl_first", "e" * 40, target="production", created=1000)
        pb = playbook(fake, tmp_path)
        code, doc = run("release", "-p", str(pb), "--deployment", "dpl_first")
        assert code == 0, doc["message"]
        assert "promote" in [s["name"] for s in doc["steps"]]
        assert rolling_calls(fake) == []
