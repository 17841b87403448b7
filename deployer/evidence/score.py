"""The readiness score's "P0 #3 zero-downtime deployment" item and DORA metrics. Pure.

Every point is earned by records in the window, named by id; a missing point says what
evidence would earn it. The JSON form (:func:`score`) is versioned: ``schema`` is
``deployer.score/1`` (see score.schema.json beside this file).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from deployer.evidence.record import parse_iso

SCHEMA = "deployer.score/1"
SWITCHED = ("succeeded", "rolled_back", "failed")  # releases that reached users


def _gate_passed(rec: dict[str, Any], name: str) -> bool:
    return any(g.get("name") == name and g.get("passed") for g in rec.get("gates") or [])


#: the step that moves traffic, per target (nginx: switch; vercel: promote, rollback)
TRAFFIC_STEPS = ("switch", "promote", "rollback")


def _switched(rec: dict[str, Any]) -> bool:
    return any(
        s.get("name") in TRAFFIC_STEPS and s.get("status") == "ok" for s in rec.get("steps") or []
    )


def _item(key: str, title: str, earned_by: list[dict[str, Any]], missing: str) -> dict[str, Any]:
    earned = bool(earned_by)
    return {
        "id": key,
        "title": title,
        "points": 1 if earned else 0,
        "max_points": 1,
        "earned": earned,
        "evidence": [r["id"] for r in earned_by],
        "missing": None if earned else missing,
    }


def _points(
    recs: list[dict[str, Any]], playbook: dict[str, Any] | None, restore_bound: float
) -> list[dict[str, Any]]:
    releases = [r for r in recs if r["kind"] == "release"]
    ok_releases = [r for r in releases if r.get("outcome") == "succeeded"]
    gated = [
        r for r in ok_releases if _gate_passed(r, "pre_switch") and _gate_passed(r, "post_switch")
    ][-1:]
    last = releases[-1] if releases else None
    codified: list[dict[str, Any]] = []
    why_codified = "no release in the window records a playbook digest"
    if playbook is None:
        why_codified = "no playbook given (-p), or it does not validate"
    elif last is not None:
        if last.get("playbook_digest") == playbook.get("digest"):
            codified = [last]
        else:
            why_codified = (
                f"the playbook changed since the last release {last['id']} "
                "(its digest differs): release with it to record it"
            )
    blue_green = [r for r in ok_releases if _switched(r)][-1:]
    lint_ok: list[dict[str, Any]] = []
    why_lint = "no release in the window"
    if last is not None:
        lint = last.get("lint")
        if not lint:
            why_lint = f"the last release {last['id']} ran no migrate step with a lint gate"
        elif lint.get("errors"):
            why_lint = f"the last release {last['id']} had unacknowledged lint errors"
        else:
            lint_ok = [last]
    drills = [
        r
        for r in recs
        if r["kind"] in ("rollback", "drill")
        and r.get("outcome") == "succeeded"
        and r.get("time_to_restore_s") is not None
        and r["time_to_restore_s"] <= restore_bound
    ][-1:]
    return [
        _item(
            "health_gated",
            "releases gated by health checks",
            gated,
            "no succeeded release whose pre- and post-switch gates both passed",
        ),
        _item("codified", "deployment configuration is codified", codified, why_codified),
        _item(
            "blue_green",
            "blue-green exercised",
            blue_green,
            "no succeeded release that switched colors",
        ),
        _item("migration_safety", "migration safety checked", lint_ok, why_lint),
        _item(
            "rollback_tested",
            "rollback tested",
            drills,
            f"no succeeded rollback or drill restoring traffic within {restore_bound:g}s",
        ),
    ]


def dora(recs: list[dict[str, Any]], days: float) -> dict[str, Any]:
    """DORA figures over the window; drills are excluded from change failure rate."""
    ordered = sorted(recs, key=lambda r: r.get("started_at") or "")
    deployed = [r for r in ordered if r["kind"] == "release" and r.get("outcome") in SWITCHED]
    failed_ids: set[str] = set()
    restore: list[float] = []
    for i, r in enumerate(ordered):
        if r["kind"] == "release" and r.get("outcome") in ("rolled_back", "failed"):
            failed_ids.add(r["id"])
            if r.get("time_to_restore_s") is not None:
                restore.append(float(r["time_to_restore_s"]))
        if r["kind"] == "rollback" and r.get("outcome") == "succeeded":
            # an incident rollback: the last release before it failed in production
            prior = [
                p for p in ordered[:i] if p["kind"] == "release" and p.get("outcome") == "succeeded"
            ]
            if prior:
                failed_ids.add(prior[-1]["id"])
            if r.get("time_to_restore_s") is not None:
                restore.append(float(r["time_to_restore_s"]))
    succeeded = [r for r in deployed if r.get("outcome") == "succeeded"]
    lead = []
    for r in succeeded:
        commit = r.get("commit") or {}
        if commit.get("time") and r.get("ended_at"):
            lead.append(parse_iso(r["ended_at"]) - parse_iso(commit["time"]))
    return {
        "deployments": len(succeeded),
        "deployment_frequency_per_day": round(len(succeeded) / days, 4) if days else None,
        "lead_time_for_changes_s": round(median(lead), 1) if lead else None,
        "lead_time_samples": len(lead),
        "change_failure_rate": round(len(failed_ids) / len(deployed), 4) if deployed else None,
        "failed_changes": len(failed_ids),
        "changes": len(deployed),
        "time_to_restore_s": round(median(restore), 3) if restore else None,
        "restores": len(restore),
    }


def score(
    records: Sequence[dict[str, Any]],
    *,
    now: float,
    since_s: float,
    app: str | None = None,
    playbook: dict[str, Any] | None = None,
    restore_bound: float = 60.0,
) -> dict[str, Any]:
    """``playbook`` is ``{"path", "digest"}`` of a playbook that validates, or None."""
    start = now - since_s
    window = [
        r
        for r in records
        if r.get("started_at")
        and parse_iso(r["started_at"]) >= start
        and (app is None or r.get("app") == app)
    ]
    items = _points(window, playbook, restore_bound)
    return {
        "schema": SCHEMA,
        "item": "P0 #3 zero-downtime deployment",
        "app": app,
        "window": {
            "since_s": since_s,
            "from": _iso(start),
            "to": _iso(now),
            "records": len(window),
        },
        "points": sum(i["points"] for i in items),
        "max_points": len(items),
        "items": items,
        "dora": dora(window, since_s / 86400),
    }


def _iso(ts: float) -> str:
    from deployer.evidence.record import iso

    return iso(ts) or ""
