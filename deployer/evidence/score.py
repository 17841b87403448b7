"""The readiness score's "P0 #3 zero-downtime deployment" item and DORA metrics. Pure.

Every point is earned by records in the window, named by id; a missing point says what
evidence would earn it. The JSON form (:func:`score`) is versioned: ``schema`` is
``deployer.score/2`` (see score.schema.json beside this file).
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any

from deployer.evidence.record import parse_iso

SCHEMA = "deployer.score/2"  # /2: DORA's current names (change_lead_time_s, ...)
SWITCHED = ("succeeded", "rolled_back", "failed")  # releases that reached users


def _gate_passed(rec: dict[str, Any], name: str) -> bool:
    return any(g.get("name") == name and g.get("passed") for g in rec.get("gates") or [])


#: the step that moves traffic, per target (nginx: switch; vercel: promote, rollback)
TRAFFIC_STEPS = ("switch", "promote", "rollback")


def switched(rec: dict[str, Any]) -> bool:
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
    blue_green = [r for r in ok_releases if switched(r)][-1:]
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


#: a release this soon after a production failure of the same app and environment, with
#: no successful release between, is rework (an unplanned fix of the failed one)
REWORK_WINDOW_S = 86400.0


def _production_failures(ordered: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """(the failed release, when it failed) for each release that failed in production:
    rolled back or failed (outcomes of releases that reached users), or undone by a later
    rollback with no successful release between."""
    out: list[tuple[dict[str, Any], str]] = []
    for i, r in enumerate(ordered):
        if r["kind"] == "release" and r.get("outcome") in ("rolled_back", "failed"):
            out.append((r, r.get("ended_at") or r.get("started_at") or ""))
        if r["kind"] == "rollback" and r.get("outcome") == "succeeded":
            prior = [
                p for p in ordered[:i] if p["kind"] == "release" and p.get("outcome") == "succeeded"
            ]
            if prior and all(prior[-1] is not f for f, _ in out):
                out.append((prior[-1], r.get("started_at") or ""))
    return out


def dora(recs: list[dict[str, Any]], days: float) -> dict[str, Any]:
    """DORA's five software delivery metrics, as DORA names and defines them now (the 2024
    State of DevOps report and dora.dev's "DORA's software delivery metrics"): deployment
    frequency, change lead time, change failure rate, failed deployment recovery time and
    deployment rework rate. Drills are excluded: they are not changes.

    - a **change** is a release that reached users (switched, or rolled back after it);
      a **failed** one was rolled back or failed after reaching users, or undone by a later
      `deployer rollback` with no successful release between;
    - **failed deployment recovery time**: the median time to restore of the automatic
      rollbacks and the rollbacks that undid a failed release;
    - **deployment rework rate**: of the successful releases, those that were unplanned
      fixes of a failed one: the first successful release of the same app and environment
      within 24 h after a production failure (deployer cannot read intent; a planned
      release that happens to come next is counted too, and docs/evidence.md says so).
    """
    ordered = sorted(recs, key=lambda r: r.get("started_at") or "")
    deployed = [r for r in ordered if r["kind"] == "release" and r.get("outcome") in SWITCHED]
    failures = _production_failures(ordered)
    failed_ids = {f["id"] for f, _ in failures}
    restore = [
        float(r["time_to_restore_s"])
        for r in ordered
        if r.get("time_to_restore_s") is not None
        and (
            (r["kind"] == "release" and r["id"] in failed_ids)
            or (r["kind"] == "rollback" and r.get("outcome") == "succeeded")
        )
    ]
    succeeded = [r for r in deployed if r.get("outcome") == "succeeded"]
    rework: list[str] = []
    for failed, at in failures:
        key = (failed.get("app"), failed.get("environment"))
        after = [
            r
            for r in succeeded
            if (r.get("app"), r.get("environment")) == key and (r.get("started_at") or "") > at
        ]
        soon = after and at and parse_iso(after[0]["started_at"]) - parse_iso(at) <= REWORK_WINDOW_S
        if soon and after[0]["id"] not in rework:
            rework.append(after[0]["id"])
    lead = []
    for r in succeeded:
        commit = r.get("commit") or {}
        if commit.get("time") and r.get("ended_at"):
            lead.append(parse_iso(r["ended_at"]) - parse_iso(commit["time"]))
    return {
        "deployments": len(succeeded),
        "deployment_frequency_per_day": round(len(succeeded) / days, 4) if days else None,
        "change_lead_time_s": round(median(lead), 1) if lead else None,
        "lead_time_samples": len(lead),
        "change_failure_rate": round(len(failed_ids) / len(deployed), 4) if deployed else None,
        "failed_changes": len(failed_ids),
        "changes": len(deployed),
        "failed_deployment_recovery_time_s": round(median(restore), 3) if restore else None,
        "recoveries": len(restore),
        "deployment_rework_rate": round(len(rework) / len(succeeded), 4) if succeeded else None,
        "rework_deployments": rework,
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
