"""Helpers for the tests on the namespace fleet (the `fleet` and `fdeploy` fixtures are in
conftest.py)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
from conftest import Deploy, write_playbook


def doc_of(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.stdout, proc.stderr
    return dict(json.loads(proc.stdout))


def set_playbook(d: Deploy, **changes: Any) -> None:
    import yaml

    doc = yaml.safe_load(d.path.read_text())
    for key, value in changes.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    write_playbook(d.path, doc)


def versions_served(d: Deploy, n: int = 30) -> dict[str, int]:
    """Versions in ``n`` answers through the router (a request that fails, e.g. to a host
    cut off while still in the upstream, is counted as "error")."""
    seen: dict[str, int] = {}
    with httpx.Client(trust_env=False, timeout=5) as c:
        for _ in range(n):
            try:
                v = str(c.get(d.url + "/health").json()["version"])
            except (httpx.HTTPError, ValueError, KeyError):
                v = "error"
            seen[v] = seen.get(v, 0) + 1
    return seen


def release_json(d: Deploy, version: str) -> subprocess.CompletedProcess[str]:
    return d.run("-o", "json", "release", "-p", str(d.path), "--version", version, timeout=240)
