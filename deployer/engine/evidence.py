"""Write an operation's evidence: who, which commit, which CI run, the playbook's digest."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from deployer.adapters.evidence import Spool, Store, append_or_spool, open_store
from deployer.evidence import signing
from deployer.evidence.record import build, iso

CI_VARS = (  # provider, run id variable, url builder
    (
        "github",
        "GITHUB_RUN_ID",
        lambda e: (
            f"{e.get('GITHUB_SERVER_URL', '')}/"
            f"{e.get('GITHUB_REPOSITORY', '')}/actions/runs/{e.get('GITHUB_RUN_ID', '')}"
        ),
    ),
    ("gitlab", "CI_PIPELINE_ID", lambda e: e.get("CI_PIPELINE_URL", "")),
    ("circleci", "CIRCLE_BUILD_NUM", lambda e: e.get("CIRCLE_BUILD_URL", "")),
    ("buildkite", "BUILDKITE_BUILD_ID", lambda e: e.get("BUILDKITE_BUILD_URL", "")),
    ("jenkins", "BUILD_ID", lambda e: e.get("BUILD_URL", "")),
)


def ci_run(env: Mapping[str, str]) -> dict[str, str] | None:
    for provider, var, url in CI_VARS:
        if env.get(var) and (provider != "jenkins" or env.get("JENKINS_URL")):
            return {"provider": provider, "run_id": env[var], "url": url(env)}
    if env.get("CI"):
        return {"provider": "unknown", "run_id": "", "url": ""}
    return None


def git_commit(folder: Path, sha: str | None = None) -> dict[str, Any] | None:
    """The commit (``sha`` or HEAD) of the playbook's repository and its commit time."""
    args = ["git", "-C", str(folder), "log", "-1", "--format=%H %ct", sha or "HEAD", "--"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        full, ts = out.stdout.split()
        return {"sha": full, "time": iso(float(ts))}
    return {"sha": sha, "time": None} if sha else None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spool_for(url: str | None, base: Path) -> Spool:
    """Each store has its own spool: a record meant for PostgreSQL is only ever flushed
    into PostgreSQL (the local SQLite store keeps the historical name)."""
    if not url:
        return Spool(base / "evidence-spool.jsonl")
    tag = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Spool(base / f"evidence-spool-{tag}.jsonl")


def opener(url: str | None, base: Path) -> tuple[Any, Spool]:
    db = base / "evidence.db"
    return (lambda: open_store(url, db)), spool_for(url, base)


def open_store_at(url: str | None, base: Path) -> Store:
    """The store opened for reading only: nothing is created or written (a missing store
    or table raises :class:`~deployer.adapters.evidence.StoreMissing`)."""
    return open_store(url, base / "evidence.db", readonly=True)


def record_operation(
    op: dict[str, Any],
    *,
    playbook: Path,
    journal_dir: Path,
    evidence_url: str | None,
    secrets: Sequence[str],
    commit_sha: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Append the record; returns what the result should say about it."""
    env = os.environ if env is None else env
    record = build(
        op,
        playbook_digest=digest(playbook),
        commit=git_commit(playbook.parent, commit_sha),
        actor={"user": getpass.getuser(), "host": socket.gethostname()},
        ci=ci_run(env),
        secrets=secrets,
        playbook=str(playbook),
    )
    open_, spool = opener(evidence_url, journal_dir)
    envelope, warning = signing.signer_or_warning(env)
    warnings = [warning] if warning else []

    def sign(body: dict[str, Any]) -> dict[str, Any] | None:
        """Signing never changes the operation's result: a failure is a warning."""
        if envelope is None:
            return None
        try:
            return envelope(body)
        except Exception as exc:
            warnings.append(f"evidence not signed: {type(exc).__name__}: {exc}")
            return None

    sealed, problem = append_or_spool(open_, record, spool, sign=sign)
    warnings += spool.warnings
    if sealed is None:
        return {"recorded": False, "id": record["id"], "error": problem, "warnings": warnings}
    return {
        "recorded": True,
        "id": sealed["id"],
        "seq": sealed["seq"],
        "hash": sealed["hash"],
        "signed": "envelope" in sealed,
        "warnings": warnings,
    }


def readiness(
    records: list[dict[str, Any]],
    playbook: str | None,
    since_s: float,
    restore_bound: float,
    app_name: str | None = None,
) -> dict[str, Any]:
    """The readiness score, computed in this one place for `deployer score` and `deployer
    report`: the playbook (if given) is loaded, validated and its digest compared."""
    import time

    from deployer.evidence.score import score as compute

    pb_info = None
    if playbook is not None:
        from deployer.playbook import load_playbook

        loaded = load_playbook(playbook)  # a playbook that does not validate: exit 2
        pb_info = {"path": str(loaded.path), "digest": digest(loaded.path)}
        app_name = app_name or loaded.model.app
    return compute(
        records,
        now=time.time(),
        since_s=since_s,
        app=app_name,
        playbook=pb_info,
        restore_bound=restore_bound,
    )
