"""The Vercel target against a local Vercel (tests/fake_vercel.py): the adapter's real code,
only the API's base URL differs. deployer runs as users run it (the CLI, a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_vercel import FakeVercel, playbook_doc

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "vercel-canary-token-7f3a9c"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVercel]:
    with FakeVercel(TOKEN) as f:
        for k, v in f.resolve_env().items():  # the deployments' hostnames reach the fake
            monkeypatch.setenv(k, v)
        f.add("dpl_old", "a" * 40, created=1000, served=True)
        f.add("dpl_live", "b" * 40, created=2000)
        f.serve("dpl_live")
        f.alias_job = {
            "type": "promote",
            "fromDeploymentId": "dpl_old",
            "toDeploymentId": "dpl_live",
            "jobStatus": "succeeded",
            "requestedAt": 1.0,
        }
        yield f


@pytest.fixture
def playbook(fake: FakeVercel, tmp_path: Path) -> Path:
    doc = playbook_doc(fake, tmp_path)
    doc["vercel"].update(ready_timeout="3s", promote_timeout="3s", api_budget="20s")
    # the example health route reports VERCEL_GIT_COMMIT_SHA; a release's version is the
    # deployment's commit (all 40 characters)
    doc["gates"]["pre_switch"].update(expect_json={"commit": "${version}"}, budget="3s")
    path = tmp_path / "vercel.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(
    *args: str, token: str = TOKEN, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "VERCEL_TOKEN": token, "NO_COLOR": "1", **(env or {})},
        timeout=120,
        check=False,
    )


def _doc(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return dict(json.loads(proc.stdout))


def _posts(fake: FakeVercel) -> list[str]:
    return [p for m, p in fake.calls if m == "POST"]


def test_a_good_release_promotes_after_its_gates(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_new", "c" * 40, target="production", created=3000)
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert proc.returncode == 0, proc.stderr
    doc = _doc(proc)
    assert doc["outcome"] == "succeeded" and doc["version"] == "c" * 40
    assert [s["name"] for s in doc["steps"]] == [
        "wait-ready",
        "pre-switch-gate",
        "promote",
        "post-switch-gate",
        "commit",
    ]
    assert fake.production == "dpl_new"
    target = doc["target"]
    assert target["from"]["id"] == "dpl_live" and target["to"]["id"] == "dpl_new"
    assert target["to"]["commit"] == "c" * 40  # the signed evidence's subject names it
    assert target["api_calls"] == len(fake.calls)
    assert doc["evidence"]["recorded"]
    # the token never appears: output, journal, evidence store, the operation record
    seen = proc.stdout + proc.stderr
    for f in playbook.parent.rglob("*"):
        if f.is_file():
            seen += f.read_bytes().decode("utf-8", "replace")
    assert TOKEN not in seen


def test_a_release_broken_in_production_is_rolled_back(
    fake: FakeVercel, playbook: Path, tmp_path: Path
) -> None:
    fake.add("dpl_bad", "d" * 40, broken_in_production=True, created=3000)
    summary = tmp_path / "summary.md"
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_bad", env=ci)
    assert proc.returncode == 4, proc.stderr
    # the CI stage: a step summary and an error annotation (stdout stays one JSON document)
    assert "rolled_back, exit 4" in summary.read_text() and TOKEN not in summary.read_text()
    assert "::error title=deployer release rolled_back (exit 4)::" in proc.stderr
    doc = _doc(proc)
    assert doc["outcome"] == "rolled_back" and fake.production == "dpl_live"
    assert doc["restore_seconds"] is not None and doc["restore_seconds"] < 3
    assert "undo promote" in [s["name"] for s in doc["steps"]]
    assert _posts(fake)[-1] == "/v1/projects/prj_fake1/rollback/dpl_live"
    verify = [g for g in doc["gates"] if g["name"] == "verify"]
    assert verify and verify[0]["passed"]


def test_a_candidate_in_error_aborts_with_nothing_changed(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_err", "e" * 40, state="ERROR")
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_err")
    assert proc.returncode == 3, proc.stderr
    assert "is ERROR" in _doc(proc)["message"] and not _posts(fake)
    assert fake.production == "dpl_live"


def test_a_candidate_stuck_building_aborts_after_the_ready_timeout(
    fake: FakeVercel, playbook: Path
) -> None:
    fake.add("dpl_stuck", "f" * 40, state="BUILDING", stuck=True)
    t0 = time.monotonic()
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_stuck")
    assert proc.returncode == 3 and "ready_timeout" in _doc(proc)["message"]
    assert time.monotonic() - t0 < 20 and not _posts(fake)


def test_a_promote_that_never_lands_changed_nothing_and_says_so(
    fake: FakeVercel, playbook: Path
) -> None:
    """A promote Vercel accepted but never completed: production never served the candidate
    (exit 3), the message says the job may still complete, and nothing is wedged."""
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.promote_never = True
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert proc.returncode == 3, proc.stderr
    doc = _doc(proc)
    assert "does not serve it after 3s" in doc["message"]
    assert "production still serves dpl_live" in doc["message"]
    assert fake.production == "dpl_live" and doc["target"]["serves_now"] == "dpl_live"


def test_a_429_storm_is_waited_out_honouring_retry_after(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.rate_limited, fake.server_errors = 3, 2
    t0 = time.monotonic()
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert proc.returncode == 0, proc.stderr
    assert fake.served_429 == 3 and time.monotonic() - t0 >= 3  # Retry-After: 1, three times
    assert fake.production == "dpl_new"


def test_a_bad_token_is_named_and_changes_nothing(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new", token="wrong-token-x")
    assert proc.returncode == 7, proc.stdout
    assert "check vercel.token" in proc.stdout + proc.stderr
    assert "wrong-token-x" not in proc.stdout + proc.stderr
    assert not _posts(fake) and fake.production == "dpl_live"


def test_rollback_and_status_name_production_previous_and_pinning(
    fake: FakeVercel, playbook: Path
) -> None:
    status = _doc(_run("status", "-p", str(playbook)))
    assert status["vercel"]["production"]["id"] == "dpl_live"
    assert status["vercel"]["previous"]["id"] == "dpl_old" and not status["vercel"]["pinned"]
    assert status["idle_color"] is None and status["live_color"] is None  # no colors here
    proc = _run("rollback", "-p", str(playbook))
    assert proc.returncode == 0, proc.stderr
    doc = _doc(proc)
    assert doc["version"] == "a" * 40 and fake.production == "dpl_old"
    assert doc["restore_seconds"] is not None
    status = _doc(_run("status", "-p", str(playbook)))
    assert status["vercel"]["pinned"] and status["vercel"]["production"]["id"] == "dpl_old"
    # a release onto a pinned project says so
    fake.add("dpl_new", "c" * 40, created=3000)
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert proc.returncode == 0 and any("pinned" in w for w in _doc(proc)["warnings"])


def test_a_vercel_playbook_refuses_a_literal_token(tmp_path: Path, playbook: Path) -> None:
    text = playbook.read_text().replace("${env:VERCEL_TOKEN}", "tok_literal")
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    proc = _run("validate", "-p", str(bad))
    assert proc.returncode == 2 and "vercel.token: must be `${env:NAME}`" in proc.stdout


CHECK = ROOT / "tests" / "vercel_config" / "check.js"


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(CHECK), str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def test_examples_vercel_json_passes_vercels_own_validation(tmp_path: Path) -> None:
    """Vercel's schemas (@vercel/routing-utils, @vercel/build-utils, pinned in
    tests/vercel_config/package-lock.json, installed by scripts/install.sh) and its route
    compiler accept examples/vercel.json, and refuse a broken copy of it."""
    proc = _check(ROOT / "examples" / "vercel.json")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((ROOT / "examples" / "vercel.json").read_text())
    assert config["git"]["deploymentEnabled"]["main"] is False  # production only via deployer
    health = next(h for h in config["headers"] if h["source"] == "/api/health")
    assert any("no-store" in h["value"] for h in health["headers"])  # never cached
    config["headers"][0]["source"] = "/api/(health"
    config["functions"]["src/app/api/**/*.ts"]["maxDuration"] = "fifteen"
    bad = tmp_path / "vercel.json"
    bad.write_text(json.dumps(config))
    proc = _check(bad)
    assert proc.returncode == 1
    assert "maxDuration" in proc.stderr and "invalid `source`" in proc.stderr


def test_the_worked_example_playbook_validates() -> None:
    proc = _run("validate", "-p", str(ROOT / "playbooks" / "vercel.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["app"] == "shop"


def test_vercel_releases_count_in_the_score(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    assert _run("release", "-p", str(playbook), "--deployment", "dpl_new").returncode == 0
    assert _run("rollback", "-p", str(playbook)).returncode == 0
    score = _doc(_run("score", "-p", str(playbook)))
    earned = {i["id"]: i["earned"] for i in score["items"]}
    assert earned["health_gated"] and earned["blue_green"] and earned["rollback_tested"]
    assert score["dora"]["deployments"] == 1


def test_a_vercel_drill_moves_production_back_and_returns(fake: FakeVercel, playbook: Path) -> None:
    """The drill rolls production back to the previous deployment, gates it, then promotes
    the current one again as a failing gate would: both moves proven, the way back timed."""
    proc = _run("drill", "-p", str(playbook))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = _doc(proc)
    assert doc["kind"] == "drill" and doc["drill"]["passed"]
    assert doc["version"] == "a" * 40 and doc["drill"]["restore_s"] < 5
    assert [s["name"] for s in doc["steps"]][-2:] == ["drill-verdict", "undo rollback"]
    assert (
        fake.production == "dpl_live"
        and not _doc(_run("status", "-p", str(playbook)))["vercel"]["pinned"]
    )
    assert _run("drill", "-p", str(playbook), "--broken").returncode == 2


def test_an_api_that_keeps_failing_is_bounded_and_changes_nothing(
    fake: FakeVercel, playbook: Path
) -> None:
    doc = yaml.safe_load(playbook.read_text())
    doc["vercel"]["api_budget"] = "2s"
    playbook.write_text(yaml.safe_dump(doc))
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.server_errors = 10_000
    t0 = time.monotonic()
    proc = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert proc.returncode == 7 and "within vercel.api_budget 2s" in proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 15 and not _posts(fake) and fake.production == "dpl_live"


def test_a_deploy_command_names_the_deployment_for_version(
    fake: FakeVercel, playbook: Path, tmp_path: Path
) -> None:
    """`release --version V` with vercel.deploy_command: the command (given the version and
    the token through its environment, never its argv) prints the staged deployment's URL."""
    fake.add("dpl_new", "c" * 40, created=3000)
    script = tmp_path / "deploy.sh"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "--token" ] && [ -n "$2" ] || exit 9\n'
        f'echo "building $3"; echo "http://{fake.host_of(fake.deployments["dpl_new"])}"\n'
    )
    script.chmod(0o755)
    doc = yaml.safe_load(playbook.read_text())
    doc["vercel"]["deploy_command"] = f"{script} --token ${{env:VERCEL_TOKEN}} ${{version}}"
    del doc["gates"]["pre_switch"]["expect_json"]  # the fake's app reports its commit, not v42
    playbook.write_text(yaml.safe_dump(doc))
    proc = _run("release", "-p", str(playbook), "--version", "v42")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = _doc(proc)
    assert out["version"] == "v42" and out["target"]["to"]["id"] == "dpl_new"
    assert fake.production == "dpl_new" and TOKEN not in proc.stdout + proc.stderr


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "VERCEL_TOKEN": TOKEN, "NO_COLOR": "1"},
    )


def _wait_production(fake: FakeVercel, dep: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while fake.production != dep:
        assert time.monotonic() < deadline, f"production never became {dep}"
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_signal_after_the_promote_never_leaves_the_new_deployment_unjudged(
    fake: FakeVercel, playbook: Path, how: str
) -> None:
    """SIGTERM during the post-switch gate: rolled back, exit 4. SIGKILL: `recover` (the
    journal and the operation record on this machine) rolls production back."""
    import signal

    doc = yaml.safe_load(playbook.read_text())
    doc["gates"]["post_switch"]["window"] = "5s"
    playbook.write_text(yaml.safe_dump(doc))
    fake.add("dpl_new", "c" * 40, created=3000)
    proc = _spawn("release", "-p", str(playbook), "--deployment", "dpl_new")
    _wait_production(fake, "dpl_new")
    time.sleep(0.5)  # inside the post-switch window
    proc.send_signal(getattr(signal, how))
    out, _ = proc.communicate(timeout=60)
    if how == "SIGTERM":
        assert proc.returncode == 4 and json.loads(out)["outcome"] == "interrupted"
    else:
        assert proc.returncode == -9 and fake.production == "dpl_new"
        refused = _run("release", "-p", str(playbook), "--deployment", "dpl_new")
        assert refused.returncode == 6 and "deployer recover" in refused.stdout + refused.stderr
        rec = _run("recover", "-p", str(playbook))
        assert rec.returncode == 0, rec.stdout + rec.stderr
    assert fake.production == "dpl_live"
    assert _doc(_run("status", "-p", str(playbook)))["unfinished"] is None


@pytest.mark.parametrize("ref", ["dpl_x; rm -rf /", "$(id)", "https://a b", "../../etc"])
def test_a_hostile_deployment_reference_is_refused_before_anything_runs(
    fake: FakeVercel, playbook: Path, ref: str
) -> None:
    proc = _run("release", "-p", str(playbook), "--deployment", ref)
    assert proc.returncode == 2 and not fake.calls
    assert len(proc.stderr.strip().splitlines()) <= 1
