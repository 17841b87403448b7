"""The CI deploy stage's report: on GitHub Actions, a markdown summary of the operation in
``$GITHUB_STEP_SUMMARY`` and ``::error``/``::warning`` annotations (on stderr, so that
stdout stays one JSON document under ``-o json``). Other CI systems read the JSON output."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from deployer.redaction import scrub

ICON = {"succeeded": "✅", "rolled_back": "↩️", "aborted": "⏹️"}


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def summary(doc: dict[str, Any]) -> str:
    """The operation as GitHub-flavoured markdown."""
    outcome = str(doc.get("outcome"))
    lines = [
        f"## {ICON.get(outcome, '❌')} deployer {doc.get('kind')} {doc.get('app')} "
        f"({doc.get('environment')}): {outcome}, exit {doc.get('exit_code')}",
        "",
        _cell(doc.get("message")),
        "",
        f"- version: `{_cell(doc.get('version'))}` (from `{_cell(doc.get('from_version'))}`)",
        f"- duration: {doc.get('duration_s')} s",
    ]
    if doc.get("restore_seconds") is not None:
        lines.append(f"- traffic restored in {doc['restore_seconds']} s")
    evidence = doc.get("evidence") or {}
    if evidence.get("recorded"):
        lines.append(
            f"- evidence: record {evidence.get('seq')} `{evidence.get('id')}`, chain head "
            f"`{evidence.get('seq')}:{evidence.get('hash')}`"
        )
    elif evidence:
        lines.append(f"- evidence not stored: {_cell(evidence.get('error'))}")
    if doc.get("steps"):
        lines += [
            "",
            "| step | host | status | seconds | detail |",
            "| --- | --- | --- | ---: | --- |",
        ]
        for s in doc["steps"]:
            lines.append(
                f"| {_cell(s['name'])} | {_cell(s.get('host') or '')} | {_cell(s['status'])} "
                f"| {s['seconds']} | {_cell(s.get('detail'))} |"
            )
    if doc.get("gates"):
        lines += [
            "",
            "| gate | probes | errors | p95 ms | result |",
            "| --- | ---: | ---: | ---: | --- |",
        ]
        for g in doc["gates"]:
            result = "pass" if g.get("passed") else f"fail: {_cell(g.get('reason'))}"
            lines.append(
                f"| {_cell(g['name'])} | {g['probes']} | {g['errors']} | {g['p95_ms']} | {result} |"
            )
    steps = (doc.get("target") or {}).get("canary") or []
    if steps:
        lines += [
            "",
            "| canary step | metric | verdict | canary | stable | observed | threshold | LLR |",
            "| ---: | --- | --- | --- | --- | --- | --- | ---: |",
        ]
        for c in steps:
            judged = c.get("judge") or {}
            would = (c.get("dry_run") or {}).get("would")
            tag = f" (dry-run: would {would})" if would else ""
            for m in judged.get("metrics") or []:
                lines.append(
                    f"| {c.get('weight')}% | {_cell(m.get('name'))} | "
                    f"{_cell(m.get('verdict'))}{tag} | {_cell(m.get('canary'))} | "
                    f"{_cell(m.get('stable'))} | {_cell(m.get('difference'))} | "
                    f"{_cell(m.get('threshold'))} | {m.get('llr')} |"
                )
            lines.append(
                f"| {c.get('weight')}% | step | {_cell(c.get('verdict'))}{tag} | | | | | |"
            )
    for w in doc.get("warnings") or []:
        lines.append(f"\n> ⚠️ {_cell(w)}")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    """A workflow command's data: %, CR and LF escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def report(
    doc: dict[str, Any], env: dict[str, str] | None = None, err: TextIO | None = None
) -> None:
    """On GitHub Actions: the summary and the annotations. Never fails the operation."""
    env = dict(os.environ) if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return
    err = err or sys.stderr
    path = env.get("GITHUB_STEP_SUMMARY")
    text = scrub(summary(doc))
    if path:
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"::warning title=deployer::step summary not written: {exc}", file=err)
    title = f"deployer {doc.get('kind')} {doc.get('outcome')} (exit {doc.get('exit_code')})"
    message = scrub(str(doc.get("message") or ""))
    if doc.get("exit_code"):
        print(f"::error title={_escape(title)}::{_escape(message)}", file=err)
    for w in doc.get("warnings") or []:
        print(f"::warning title=deployer::{_escape(scrub(str(w)))}", file=err)
