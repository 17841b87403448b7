"""The Vercel target tells the truth about production, and no fault wedges the project.

Against the local Vercel (tests/fake_vercel.py, modelled on Vercel's docs and CLI). After
every fault: the exit code agrees with what production serves (0: the candidate; 3: the
candidate never served and production is where it was; 4: production is back where it was),
and, the fault cleared, the next release goes through with no hand edit.
"""

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
TOKEN = "vercel-truth-token-81c2"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVercel]:
    with FakeVercel(TOKEN) as f:
        for k, v in f.resolve_env().items():
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
        f.job_stale_after = 4.0
        yield f


@pytest.fixture
def playbook(fake: FakeVercel, tmp_path: Path) -> Path:
    doc = playbook_doc(fake, tmp_path)
    doc["vercel"].update(ready_timeout="3s", promote_timeout="2s", api_budget="6s")
    doc["gates"]["pre_switch"].update(expect_json={"commit": "${version}"}, budget="3s")
    return _write(tmp_path, doc)


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "vercel.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _edit(path: Path, **vercel: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    doc["vercel"].update(vercel)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "-o", "json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "VERCEL_TOKEN": TOKEN, "NO_COLOR": "1", **(env or {})},
        timeout=120,
        check=False,
    )
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        doc = {}
    return proc.returncode, doc, proc.stderr


def truthful(fake: FakeVercel, code: int, candidate: str, before: str = "dpl_live") -> None:
    """The exit code agrees with what production serves now."""
    fake._settle()
    if code == 0:
        assert fake.production == candidate
    elif code == 3:
        assert fake.production == before and not fake.deployments[candidate].served
    elif code == 4:
        assert fake.production == before
    else:
        raise AssertionError(f"exit {code} is not a release's answer")


def releases_again(fake: FakeVercel, playbook: Path) -> None:
    """The fault cleared, a release goes through: nothing needs a hand edit."""
    fake.promote_never = fake.promote_fails = False
    fake.rate_limited = fake.server_errors = fake.refuse_moves = 0
    time.sleep(max(0.0, fake.job_stale_after - 3.5))
    fake.add("dpl_next", "9" * 40, created=9000)
    code, doc, err = run("release", "-p", str(playbook), "--deployment", "dpl_next")
    assert code == 0, (doc.get("message"), err)
    assert fake.production == "dpl_next"


# ----- 1. "previous" is the deployment that served before the current one -----


def test_after_an_automatic_rollback_previous_is_never_the_rejected_build(
    fake: FakeVercel, playbook: Path
) -> None:
    fake.add("dpl_bad", "d" * 40, created=3000, broken_in_production=True)
    code, doc, _ = run("release", "-p", str(playbook), "--deployment", "dpl_bad")
    assert code == 4 and fake.production == "dpl_live", doc.get("message")
    assert any("pinned now" in w and "un-pins" in w for w in doc["warnings"]), doc["warnings"]
    _, status, _ = run("status", "-p", str(playbook))
    assert status["vercel"]["previous"]["id"] == "dpl_old", status["vercel"]
    assert status["vercel"]["pinned"] and "promote" in status["vercel"]["unpinned_by"]
    code, doc, _ = run("rollback", "-p", str(playbook))
    assert code == 0 and fake.production == "dpl_old", doc.get("message")


def test_a_deployment_that_never_served_is_never_previous(fake: FakeVercel, playbook: Path) -> None:
    fake.alias_job = None  # no record of the last promote: the candidates list decides
    fake.add("dpl_staged", "e" * 40, created=1500)  # READY, production, never served
    _, status, _ = run("status", "-p", str(playbook))
    assert status["vercel"]["previous"]["id"] == "dpl_old"
    code, doc, _ = run("rollback", "-p", str(playbook))
    assert code == 0 and fake.production == "dpl_old", doc.get("message")


# ----- 2. an undo whose goal already holds is done; nothing wedges -----


@pytest.mark.parametrize("fault", ["refused", "failed", "hung", "rate_limited"])
def test_a_promote_that_did_not_happen_changes_nothing_and_wedges_nothing(
    fake: FakeVercel, playbook: Path, fault: str
) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    if fault == "refused":
        fake.refuse_moves = 1
    elif fault == "failed":
        fake.promote_fails = True
    elif fault == "hung":
        fake.promote_never = True
    else:  # 429s from the promote on, longer than its budget: never accepted
        _edit(playbook, api_budget="2s")
        fake.retry_after, fake.storm_on_move = 1, 3
    code, doc, err = run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert code == 3, (code, doc.get("message"), err)
    truthful(fake, code, "dpl_new")
    assert "production still serves dpl_live" in doc["message"], doc["message"]
    assert doc["target"]["serves_now"] == "dpl_live"
    _, status, _ = run("status", "-p", str(playbook))
    assert status["unfinished"] is None and status["lock"] is None
    releases_again(fake, playbook)


def test_a_refused_rollback_on_a_pinned_project_is_not_called_rolled_back(
    fake: FakeVercel, playbook: Path
) -> None:
    code, _, _ = run("rollback", "-p", str(playbook))  # now pinned on dpl_old
    assert code == 0 and fake.pinned and fake.production == "dpl_old"
    fake.deployments["dpl_live"].served = True
    fake.refuse_moves = 1
    fake.alias_job = None
    code, doc, _ = run("rollback", "-p", str(playbook))
    assert code == 3, doc.get("message")
    assert fake.production == "dpl_old" and fake.pinned  # no promote un-pinned it by accident
    assert not [c for c in fake.calls if c[1].endswith("/promote/dpl_old")]


def test_recover_finishes_after_a_kill_during_a_failed_promote(
    fake: FakeVercel, playbook: Path
) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.promote_never = True
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployer", "release", "-p", str(playbook), "--deployment",
         "dpl_new"],
        cwd=ROOT, env={**os.environ, "VERCEL_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any(p.endswith("/promote/dpl_new") for _, p in fake.calls):
        assert time.monotonic() < deadline, "the promote was never sent"
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=10)
    fake.promote_never = False
    fake.alias_job = None  # Vercel dropped the stuck job
    code, doc, err = run("recover", "-p", str(playbook))
    assert code == 0, (doc.get("message"), err)
    assert fake.production == "dpl_live"
    releases_again(fake, playbook)


# ----- 3. an ambiguous answer is read again; a candidate that goes live by itself -----


def test_a_lost_answer_then_a_409_is_a_promote_that_happened(
    fake: FakeVercel, playbook: Path
) -> None:
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.drop_next_move = True  # applied, the answer lost; the retry gets 409
    code, doc, err = run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert code == 0, (doc.get("message"), err)
    truthful(fake, code, "dpl_new")
    assert doc["outcome"] == "succeeded" and doc["target"]["from"]["id"] == "dpl_live"
    _, records, _ = run("evidence", "list", "-p", str(playbook))
    assert records[-1]["outcome"] == "succeeded"


def test_a_project_that_auto_assigns_is_refused_unless_accepted(
    fake: FakeVercel, playbook: Path
) -> None:
    fake.auto_assign = True
    fake.add("dpl_new", "c" * 40, created=3000, auto_assign=None, state="BUILDING")
    fake.deployments["dpl_new"].polls_until_ready = 2
    code, doc, err = run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert code == 2 and "auto-assigns its production domains" in err, err
    assert not [c for c in fake.calls if c[0] == "POST"]
    # accepted: it went live by itself when READY; its gate judges it there: a broken one
    # is rolled back (exit 4), production back on the one before
    fake.add(
        "dpl_bad", "d" * 40, created=4000, auto_assign=None, broken_in_production=True,
        state="BUILDING", polls_until_ready=1,
    )  # fmt: skip
    _edit(playbook, accept_auto_assign=True)
    code, doc, err = run("release", "-p", str(playbook), "--deployment", "dpl_bad")
    assert code == 4, (doc.get("message"), err)
    truthful(fake, code, "dpl_bad")


@pytest.mark.parametrize("kind", ["preview", "other-project", "other-team"])
def test_a_deployment_that_is_not_this_projects_production_build_is_refused(
    fake: FakeVercel, playbook: Path, kind: str
) -> None:
    kw: dict[str, Any] = {
        "preview": {"target": None},
        "other-project": {"project_id": "prj_other"},
        "other-team": {"owner": "team_other"},
    }[kind]
    fake.add("dpl_x", "c" * 40, created=3000, **kw)
    code, _, err = run("release", "-p", str(playbook), "--deployment", "dpl_x")
    assert code == 2 and fake.production == "dpl_live", err
    assert not [c for c in fake.calls if c[0] == "POST"]


# ----- 4. rolling releases configured on the project -----


def test_a_plain_promote_on_a_project_with_rolling_releases_is_refused(
    fake: FakeVercel, playbook: Path
) -> None:
    stages = [{"targetPercentage": 10}, {"targetPercentage": 100}]
    fake.rolling_config = {"enabled": True, "advancementType": "automatic", "stages": stages}
    fake.add("dpl_new", "c" * 40, created=3000)
    code, _, err = run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert code == 2 and "Rolling Releases on" in err and "strategy: canary" in err
    assert fake.rolling is None and fake.production == "dpl_live"


# ----- 5. canary sides (the rolling tests run the stages; here the attribution) -----


def test_a_reported_full_commit_matches_a_short_version() -> None:
    from deployer.targets.vercel_rolling import same_commit

    full = "0123456789abcdef0123456789abcdef01234567"
    assert same_commit(full, full[:12]) and same_commit(full[:12], full)
    assert same_commit(full.upper(), full)
    assert not same_commit(full[:6], full) and not same_commit("", full)
    assert not same_commit("f" * 40, full)


# ----- 6. pinned state from lastRollbackTarget -----


def test_pinned_stays_pinned_after_a_failed_promote(fake: FakeVercel, playbook: Path) -> None:
    assert run("rollback", "-p", str(playbook))[0] == 0  # pinned on dpl_old
    fake.add("dpl_new", "c" * 40, created=3000)
    fake.promote_fails = True
    code, doc, _ = run("release", "-p", str(playbook), "--deployment", "dpl_new")
    assert code == 3, doc.get("message")
    _, status, _ = run("status", "-p", str(playbook))
    assert status["vercel"]["pinned"] is True  # lastRollbackTarget, not the last job's type


# ----- 7. budgets and input -----


def test_a_retry_after_longer_than_the_budget_gives_up_at_once(
    fake: FakeVercel, playbook: Path
) -> None:
    _edit(playbook, api_budget="10s")
    fake.rate_limited, fake.retry_after = 100, 15
    started = time.monotonic()
    code, doc, _ = run("status", "-p", str(playbook))
    assert code == 7 and time.monotonic() - started < 6
    assert "asked to wait 15s" in doc["message"]


def test_retries_never_overshoot_the_budget(fake: FakeVercel, playbook: Path) -> None:
    _edit(playbook, api_budget="5s")
    fake.rate_limited, fake.retry_after = 100, 2
    started = time.monotonic()
    code, _, _ = run("status", "-p", str(playbook))
    assert code == 7 and time.monotonic() - started < 5 + 3  # + start-up


def test_bad_input_is_exit_2_at_once(fake: FakeVercel, playbook: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    code, _, err = run("status", "-p", str(playbook), env={"VERCEL_TOKEN": ""})
    assert code == 2 and "vercel.token is empty" in err and time.monotonic() - started < 5
    for url in ("http://[::1", "http://127.0.0.1:99999"):
        _edit(playbook, api_url=url)
        code, _, err = run("status", "-p", str(playbook))
        assert code == 2 and "vercel.api_url" in err, err


def test_debug_never_changes_an_exit_code(fake: FakeVercel, playbook: Path) -> None:
    code, _, err = run("status", "-p", str(playbook), env={"VERCEL_TOKEN": "wrong-token"})
    assert code == 7
    code, _, err = run(
        "status", "-p", str(playbook), env={"VERCEL_TOKEN": "wrong-token", "DEPLOYER_DEBUG": "1"}
    )
    assert code == 7 and "Traceback" in err


def test_a_broken_drill_on_vercel_says_why_in_vercels_words(
    fake: FakeVercel, playbook: Path
) -> None:
    code, _, err = run("drill", "-p", str(playbook), "--broken")
    assert code == 2 and "not available for the vercel target" in err
    assert "broken_vars" not in err


# ----- 8. words, and the bypass secret only where it belongs -----


def test_a_drill_on_a_pinned_project_leaves_it_pinned(fake: FakeVercel, playbook: Path) -> None:
    fake.add("dpl_new", "c" * 40, created=3000, served=True)
    fake.production = "dpl_new"
    fake.rollback_target = {"toDeploymentId": "dpl_new"}  # pinned by an earlier rollback
    fake.alias_job = None
    code, doc, err = run("drill", "-p", str(playbook))
    assert code == 0, (doc.get("message"), err)
    assert fake.pinned and fake.production == "dpl_new"


def test_messages_speak_of_vercel_and_the_bypass_only_goes_to_deployment_urls(
    fake: FakeVercel, playbook: Path
) -> None:
    doc = yaml.safe_load(playbook.read_text())
    doc["vercel"]["protection_bypass"] = "${env:BYPASS}"
    playbook.write_text(yaml.safe_dump(doc))
    fake.bypass = "bypass-secret-123"
    fake.add("dpl_new", "c" * 40, created=3000)
    code, out, err = run(
        "release", "-p", str(playbook), "--deployment", "dpl_new", env={"BYPASS": fake.bypass}
    )
    assert code == 0, (out.get("message"), err)
    assert fake.bypass_sent_to and all(h.endswith(".vercel.app") for h in fake.bypass_sent_to)
    assert "router host" not in json.dumps(out) + err
