"""The CI deploy stage: the GitHub step summary and annotations, and the example workflows
(every `deployer` invocation in them parses with the real CLI)."""

from __future__ import annotations

import io
import shlex
import warnings
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from deployer.cli.ci import report, summary
from deployer.cli.root import cli

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "examples" / "github-actions").glob("*.yml"))
SHELL_ENDS = {">", ">>", "|", "||", "&&", ";", "2>&1"}


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "release",
        "app": "shop",
        "environment": "production",
        "outcome": "rolled_back",
        "exit_code": 4,
        "message": "post-switch gate failed | 7 of 20 failed; rolled back",
        "version": "v2",
        "from_version": "v1",
        "duration_s": 9.1,
        "restore_seconds": 0.19,
        "steps": [{"name": "switch", "host": "web1", "status": "ok", "seconds": 0.2, "detail": ""}],
        "gates": [
            {
                "name": "post_switch",
                "probes": 20,
                "errors": 7,
                "p95_ms": 3.1,
                "passed": False,
                "reason": "7 of 20 failed",
            }
        ],
        "evidence": {"recorded": True, "id": "ab12", "seq": 7, "hash": "f" * 64},
        "warnings": ["the old color stays warm\nfor 60s"],
    }
    doc.update(over)
    return doc


def test_the_summary_says_outcome_steps_gates_restore_and_the_chain_head(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    err = io.StringIO()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(path)}
    report(_doc(), env=env, err=err)
    text = path.read_text()
    assert "rolled_back, exit 4" in text and "traffic restored in 0.19 s" in text
    assert f"`7:{'f' * 64}`" in text  # the chain head to keep
    assert "| switch | web1 | ok |" in text and "| post_switch | 20 | 7 |" in text
    assert "gate failed \\| 7 of 20" in text  # a pipe in a value never breaks the table
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("::error title=deployer release rolled_back (exit 4)::")
    assert lines[1] == "::warning title=deployer::the old color stays warm%0Afor 60s"


def test_the_summary_says_why_each_canary_step_was_judged_as_it_was() -> None:
    from deployer.analysis.judge import Rules, Sample, judge

    canary, stable = Sample(400, 60, [100.0] * 400), Sample(3000, 15, [100.0] * 3000)
    step = {"weight": 5, "verdict": "fail", "judge": judge(canary, stable, Rules()).to_dict()}
    dry = {**step, "dry_run": {"would": "abort"}}
    text = summary(_doc(target={"canary": [step, dry]}))
    assert "| 5% | errors | fail | 60/400 (15.00%) | 15/3000 (0.50%) | difference +14.50% |" in (
        text
    )
    assert "fail (dry-run: would abort)" in text and "| 5% | step | fail |" in text


def test_no_summary_outside_github_actions(tmp_path: Path) -> None:
    err = io.StringIO()
    report(_doc(), env={"GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}, err=err)
    assert not (tmp_path / "s.md").exists() and not err.getvalue()
    assert "## ✅" in summary(_doc(outcome="succeeded", exit_code=0))


def _invocations(workflow: Path) -> list[list[str]]:
    doc = yaml.safe_load(workflow.read_text())
    found = []
    for job in doc["jobs"].values():
        for step in job["steps"]:
            for line in str(step.get("run") or "").splitlines():
                line = line.strip()
                if not line.startswith("deployer "):
                    continue
                argv = []
                for token in shlex.split(line)[1:]:
                    if token in SHELL_ENDS or token.startswith(">"):
                        break
                    argv.append(token)
                found.append(argv)
    return found


def _parse(argv: list[str]) -> None:
    """Parse as click would, down to the leaf command (no callback runs)."""
    ctx = cli.make_context("deployer", list(argv))
    group: click.Command = cli
    while isinstance(group, click.Group):
        with warnings.catch_warnings():  # protected_args: deprecated in click 8.2
            warnings.simplefilter("ignore", DeprecationWarning)
            args = [*ctx.protected_args, *ctx.args]
        name, cmd, rest = group.resolve_command(ctx, args)
        assert cmd is not None and name is not None
        ctx = cmd.make_context(name, rest, parent=ctx)
        group = cmd


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_every_deployer_invocation_in_the_workflows_parses(workflow: Path) -> None:
    calls = _invocations(workflow)
    assert calls, f"{workflow.name} runs no deployer command"
    for argv in calls:
        _parse(argv)  # a flag that does not exist raises click.UsageError


def test_the_workflows_cover_both_targets_lint_checkpoint_and_a_drill() -> None:
    names = {w.name for w in WORKFLOWS}
    assert {"deploy-nginx.yml", "deploy-vercel.yml", "rollback-drill.yml"} <= names
    every = [a for w in WORKFLOWS for a in _invocations(w)]
    assert any(a[:1] == ["lint"] and "sarif" in a for a in every)
    assert any(a[:2] == ["evidence", "checkpoint"] for a in every)
    assert any(a[:1] == ["drill"] for a in every)
    assert any("--deployment" in a for a in every)
    with pytest.raises(click.UsageError):
        _parse(["release", "-p", "x.yml", "--no-such-flag"])
