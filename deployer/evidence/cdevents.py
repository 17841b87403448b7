"""Records as CDEvents 0.5.1 wrapped in CloudEvents 1.0 (structured JSON). Pure.

A release is ``service.deployed`` (the app's first in that environment) or
``service.upgraded``, a rollback ``service.rolledback``, each gate a
``testsuiterun.finished``, all sharing the record's id as ``chainId``. CDEvents' service
events cannot say a release failed, so deployer's own fields, the outcome first, go in
``customData`` (the schemas refuse extra fields in ``subject.content``).

A release that failed in production (its post-switch gate failed: rolled back, or failed
while rolling back) opens an incident, as DORA tooling (e.g. Four Keys, Apache DevLake)
reads them: ``incident.detected`` when deployer noticed (the record's end minus its time to
restore), and ``incident.resolved`` when traffic was back on the old version (the record's
end; none when the rollback itself failed). Both share the record's id as ``chainId`` and
name the incident ``{record id}-incident``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deployer.evidence.record import GATE_STATS, iso, parse_iso
from deployer.evidence.score import switched

SPECVERSION = "0.5.1"
CONTENT_TYPE = "application/cdevents+json"
SOURCE = "/deployer"


def _envelope(event: dict[str, Any]) -> dict[str, Any]:
    ctx = event["context"]
    return {
        "specversion": "1.0",
        "id": ctx["id"],
        "source": ctx["source"],
        "type": ctx["type"],
        "time": ctx["timestamp"],
        "datacontenttype": CONTENT_TYPE,
        "data": event,
    }


def _context(kind: str, event_id: str, rec: dict[str, Any], ts: str) -> dict[str, Any]:
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": f"{SOURCE}/{rec.get('app')}/{rec.get('environment')}",
        "type": f"dev.cdevents.{kind}.0.3.0",
        "timestamp": ts,
        "chainId": rec["id"],
    }


def _custom(rec: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "outcome",
        "kind",
        "operation_id",
        "version_from",
        "version_to",
        "color_from",
        "color_to",
        "commit",
        "actor",
        "ci",
        "started_at",
        "ended_at",
        "duration_s",
        "traffic",
        "migrations",
        "time_to_restore_s",
        "drill",
        "target",
        "playbook_digest",
        "message",
        "seq",
        "hash",
    )
    return {"deployer": {k: rec.get(k) for k in keep}}


def _incident(rec: dict[str, Any], env: dict[str, str], artifact: str) -> list[dict[str, Any]]:
    """The incident a release that failed in production opened (module docstring)."""
    if rec["kind"] != "release" or rec.get("outcome") not in ("rolled_back", "failed"):
        return []
    if not switched(rec):
        return []  # never reached users: no incident
    end = rec.get("ended_at") or rec.get("started_at")
    if not end:
        return []
    ttr = rec.get("time_to_restore_s")
    detected = iso(parse_iso(end) - float(ttr)) if isinstance(ttr, int | float) else end
    incident = f"{rec['id']}-incident"
    content = {
        "description": str(rec.get("message") or "a release failed its post-switch gate")[:500],
        "environment": env,
        "service": {"id": str(rec.get("app"))},
        "artifactId": artifact,
    }
    out = [("incident.detected", detected)]
    if rec.get("outcome") == "rolled_back":
        out.append(("incident.resolved", end))
    return [
        _envelope(
            {
                "context": _context(kind, f"{rec['id']}-{kind}", rec, str(ts)),
                "subject": {"id": incident, "source": env["source"], "content": content},
                "customDataContentType": "application/json",
                "customData": _custom(rec),
            }
        )
        for kind, ts in out
    ]


def to_cdevents(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    for rec in sorted(records, key=lambda r: r.get("seq") or 0):
        ts = rec.get("ended_at") or rec.get("started_at")
        app_env = (rec.get("app"), rec.get("environment"))
        env = {
            "id": str(rec.get("environment") or "default"),
            "source": f"{SOURCE}/{rec.get('app')}",
        }
        artifact = f"pkg:generic/{rec.get('app')}@{rec.get('version_to') or 'unknown'}"
        kind = None
        if rec["kind"] == "release":
            kind = "service.upgraded" if app_env in seen else "service.deployed"
            if rec.get("outcome") in ("succeeded", "rolled_back", "failed"):
                seen.add(app_env)
        elif rec["kind"] in ("rollback", "recover", "drill"):
            kind = "service.rolledback"
        if kind is not None and ts:
            out.append(
                _envelope(
                    {
                        "context": _context(kind, f"{rec['id']}-service", rec, ts),
                        "subject": {
                            "id": f"{rec.get('app')}",
                            "source": env["source"],
                            "content": {"environment": env, "artifactId": artifact},
                        },
                        "customDataContentType": "application/json",
                        "customData": _custom(rec),
                    }
                )
            )
        out += _incident(rec, env, artifact)
        for i, gate in enumerate(rec.get("gates") or []):
            if not ts:
                break
            out.append(
                _envelope(
                    {
                        "context": _context(
                            "testsuiterun.finished", f"{rec['id']}-gate-{i}", rec, ts
                        ),
                        "subject": {
                            "id": f"{rec['id']}-{gate.get('name')}",
                            "content": {
                                "environment": env,
                                "outcome": "success" if gate.get("passed") else "failure",
                                "testSuite": {
                                    "id": f"deployer-{gate.get('name')}",
                                    "name": f"{gate.get('name')} health gate",
                                },
                            },
                        },
                        "customDataContentType": "application/json",
                        "customData": {
                            "deployer": {k: gate.get(k) for k in (*GATE_STATS, "reason")}
                        },
                    }
                )
            )
    return out
