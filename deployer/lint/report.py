"""Machine formats for lint findings: json, SARIF 2.1.0 and GitHub workflow annotations."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from deployer.lint.rules import Rule
from deployer.lint.runner import META, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_json(findings: list[Finding]) -> str:
    """A list of {path, line, column, rule, severity, message, hint}; line and column 1-based."""
    return json.dumps([f.to_dict() for f in findings], indent=2)


def repository_root(start: Path) -> Path:
    """The git repository holding ``start`` (SARIF paths are relative to it, so code
    scanning maps results wherever the command ran); ``start`` itself outside a repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return start.resolve()
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else start.resolve()


def _uri(path: str, root: Path) -> dict[str, str]:
    p = Path(path).resolve()
    try:
        return {"uri": p.relative_to(root).as_posix(), "uriBaseId": "%SRCROOT%"}
    except ValueError:  # outside the repository: an absolute file URI
        return {"uri": p.as_uri()}


def to_sarif(
    findings: list[Finding], rules: dict[str, Rule], version: str, root: Path | None = None
) -> str:
    root = (root or repository_root(Path.cwd())).resolve()
    ids = sorted(set(rules) | set(META))
    descriptors: list[dict[str, Any]] = []
    level: str
    for rid in ids:
        if rid in rules:
            r = rules[rid]
            summary, doc, level = r.summary, r.doc, r.severity
        else:
            level, doc = META[rid]
            summary = doc.split(":")[0]
        descriptors.append(
            {
                "id": rid,
                "name": rid,
                "shortDescription": {"text": summary},
                "fullDescription": {"text": doc},
                "help": {"text": doc},
                "defaultConfiguration": {"level": level},
            }
        )
    index = {rid: i for i, rid in enumerate(ids)}
    results = [
        {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": f.severity,
            "message": {"text": f"{f.message}. Fix: {f.hint}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _uri(f.path, root),
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        for f in findings
    ]
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "deployer-lint",
                        "semanticVersion": version,
                        "version": version,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2)


def _escape(text: str, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def to_github(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        props = (
            f"file={_escape(f.path, True)},line={f.line},col={f.column},"
            f"title={_escape(f.rule, True)}"
        )
        lines.append(f"::{f.severity} {props}::{_escape(f.message)}. Fix: {_escape(f.hint)}")
    return "\n".join(lines)
