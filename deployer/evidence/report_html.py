"""`deployer report`: one self-contained HTML page (inline CSS and SVG, no script, no network)
for the people who audit readiness: a release, rollback or drill with its timeline, the
post-switch window as a chart (requests, errors and p95, the switch and the rollback marked),
the gates, the migration lint result, the record's place in the evidence chain, and the
readiness score with the records that earn each point. Or a period: every record, the score
and DORA."""

from __future__ import annotations

from typing import Any

from deployer.evidence.html_parts import _e, _table
from deployer.evidence.report_canary import canary_section

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;
max-width:1040px;color:#1d2330;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid
#dde2ea;padding-bottom:4px}table{border-collapse:collapse;width:100%;margin:4px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}
th{background:#f6f8fb;font-weight:600}th,td{white-space:nowrap}td:last-child{white-space:normal}.ok{color:#137333}.bad{color:#b3261e}.warn{color:#9a6700}
.pill{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.pill.ok{background:#137333;color:#fff}.pill.bad{background:#b3261e;color:#fff}
.pill.warn{background:#9a6700;color:#fff}.muted{color:#5f6b7a}code{font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#444}.mono{font-family:ui-monospace,monospace}
"""
OUTCOME_CLASS = {"succeeded": "ok", "rolled_back": "warn"}


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}"
        "<p class=muted>Written by deployer report; self-contained (no script, no network).</p>"
        "</body></html>\n"
    )


def _marks(rec: dict[str, Any]) -> dict[str, float]:
    """When traffic moved, in seconds from the post-switch gate's start (the chart's 0)."""
    elapsed, ends, gate_start = 0.0, {}, None
    for step in rec.get("steps") or []:
        name = str(step.get("name", ""))
        if name == "post-switch-gate" and gate_start is None:
            gate_start = elapsed
        elapsed += float(step.get("seconds") or 0)
        if step.get("status") not in ("ok", "undone"):
            continue
        if name in ("switch", "promote") and "switch" not in ends:
            ends["switch"] = elapsed
        elif name.startswith("undo ") and any(w in name for w in ("switch", "promote")):
            ends["rollback"] = elapsed
    origin = gate_start if gate_start is not None else ends.get("switch", 0.0)
    return {k: round(max(0.0, v - origin), 3) for k, v in ends.items()}


def chart(timeline: list[list[float]], marks: dict[str, float], width: int = 960) -> str:
    """Requests (bars), errors (red bars) and p95 (a line, right axis) over the window."""
    height, left, right, top, bottom = 260, 48, 56, 16, 36
    if not timeline:
        return "<p class=muted>No post-switch samples in this record.</p>"
    step = timeline[1][0] - timeline[0][0] if len(timeline) > 1 else 1.0
    span = max(timeline[-1][0] + step, max(marks.values(), default=0) + step)
    plot_w, plot_h = width - left - right, height - top - bottom
    max_req = max(max(b[1] for b in timeline), 1)
    max_p95 = max(max(b[3] for b in timeline), 1.0)

    def x(t: float) -> float:
        return left + plot_w * t / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="post-switch window">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f8fafc" '
        'stroke="#d5dbe3"/>',
    ]
    bar_w = max(1.0, plot_w * step / span - 1)
    for t, req, err, _ in timeline:
        h_req = plot_h * req / max_req
        parts.append(
            f'<rect class="req" x="{x(t):.1f}" y="{top + plot_h - h_req:.1f}" '
            f'width="{bar_w:.1f}" height="{h_req:.1f}" fill="#8ab4f8"/>'
        )
        if err:
            h_err = plot_h * err / max_req
            parts.append(
                f'<rect class="err" x="{x(t):.1f}" y="{top + plot_h - h_err:.1f}" '
                f'width="{bar_w:.1f}" height="{h_err:.1f}" fill="#d93025"/>'
            )
    points = " ".join(
        f"{x(t + step / 2):.1f},{top + plot_h - plot_h * p95 / max_p95:.1f}"
        for t, req, _, p95 in timeline
        if req
    )
    if points:
        parts.append(
            f'<polyline class="p95" points="{points}" fill="none" stroke="#7e57c2" '
            'stroke-width="2"/>'
        )
    for name, t in marks.items():
        color = "#137333" if name == "switch" else "#b3261e"
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + plot_h}" '
            f'stroke="{color}" stroke-width="2" stroke-dasharray="5 3"/>'
            f'<text x="{x(t) + 4:.1f}" y="{top + 12}" style="fill:{color}">{name}</text>'
        )
    parts += [
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{max_req}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{width - right + 6}" y="{top + 10}">{max_p95:.0f} ms</text>',
        f'<text x="{left}" y="{height - 12}">0 s</text>',
        f'<text x="{left + plot_w}" y="{height - 12}" text-anchor="end">{span:.1f} s</text>',
        f'<text x="{left + plot_w / 2}" y="{height - 12}" text-anchor="middle">'
        "requests per slice (blue), errors (red), p95 latency (purple, right axis); "
        "seconds since the switch</text>",
        "</svg>",
    ]
    return "".join(parts)


def _score_section(score: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    rows = []
    for item in score.get("items", []):
        earned = item.get("earned")
        proof = ", ".join(
            f"<span class=mono>#{_e(by_id[e]['seq']) if e in by_id else ''} {_e(e[:12])}</span>"
            for e in item.get("evidence", [])
        )
        rows.append(
            [
                _e(item.get("title")),
                '<span class="ok">yes</span>' if earned else '<span class="bad">no</span>',
                proof if earned else _e(item.get("missing")),
            ]
        )
    head = (
        f"<p><b>{_e(score.get('item'))}</b>: {_e(score.get('points'))}/"
        f"{_e(score.get('max_points'))} points</p>"
    )
    return head + _table(["point", "earned", "the records that earn it / what is missing"], rows)


def schema_change(rec: dict[str, Any]) -> str:
    """What one record did to the schema, in a few words (empty when nothing)."""
    mig = rec.get("migrations") or {}
    said = []
    if mig.get("contracted"):
        said.append("contracted " + ", ".join(mig["contracted"]))
    expand = [r for r in mig.get("applied") or [] if r not in (mig.get("contracted") or [])]
    if expand:
        said.append("applied " + ", ".join(expand))
    if mig.get("deferred"):
        said.append("deferred " + ", ".join(mig["deferred"]))
    return "; ".join(said)


def _lint_section(rec: dict[str, Any]) -> str:
    lint = rec.get("lint") or ((rec.get("migrations") or {}).get("lint"))
    mig = rec.get("migrations") or {}
    if not lint and not mig:
        return "<p class=muted>No migration step in this operation.</p>"
    parts = []
    if mig.get("from") is not None or mig.get("to") is not None:
        applied = ", ".join(mig.get("applied") or []) or "none"
        parts.append(
            f"<p>Database {_e(mig.get('from') or 'base')} &rarr; {_e(mig.get('to'))}; "
            f"applied: {_e(applied)}.</p>"
        )
    if mig.get("contracted"):
        parts.append(
            f"<p>Deferred contract revisions run: <b>{_e(', '.join(mig['contracted']))}</b>.</p>"
        )
    if mig.get("deferred"):
        parts.append(
            "<p class=warn>Contract revisions deferred until the rollback window closed and "
            f"no version that needs the old schema runs: <b>{_e(', '.join(mig['deferred']))}</b>"
            " (<span class=mono>deployer migrate --contract</span> or the next release).</p>"
        )
    if lint:
        parts.append(
            f"<p>Lint gate: {_e(lint.get('errors', 0))} unacknowledged error(s), "
            f"{_e(lint.get('warnings', 0))} warning(s), "
            f"{len(lint.get('acknowledged') or [])} acknowledged.</p>"
        )
        rows = [
            [_e(b.get("revision")), _e(b.get("rule")), _e(b.get("message"))]
            for b in lint.get("blocking") or lint.get("findings") or []
        ]
        if rows:
            parts.append(_table(["revision", "rule", "finding"], rows))
    prove = mig.get("prove")
    if prove:
        verdict = "passed" if prove.get("passed") else "failed"
        parts.append(f"<p>Proved on a scratch database: {verdict}.</p>")
        for h in prove.get("hazards") or []:
            parts.append(f"<p class=bad>{_e(h)}</p>")
    return "".join(parts)


def _signed(rec: dict[str, Any]) -> str:
    """Whether the record carries a signed envelope, and the key id it names (checked by
    `deployer evidence verify --public-key`, not here: the page has no key)."""
    env = rec.get("envelope")
    if not isinstance(env, dict):
        return "Unsigned record (no DEPLOYER_SIGNING_KEY when it was written)."
    sigs = env.get("signatures")
    ids = (
        [str(s.get("keyid")) for s in sigs if isinstance(s, dict)] if isinstance(sigs, list) else []
    )
    shown = ", ".join(i[:16] for i in ids) or "?"
    return (
        f"Signed (in-toto statement in a DSSE envelope), key id {_e(shown)}: check it with "
        "<code>deployer evidence verify --public-key</code>."
    )


def operation_page(
    rec: dict[str, Any],
    chain: dict[str, Any],
    score: dict[str, Any],
    by_id: dict[str, dict[str, Any]],
) -> str:
    outcome = rec.get("outcome")
    cls = OUTCOME_CLASS.get(str(outcome), "bad")
    title = f"{rec.get('kind')} of {rec.get('app')} ({rec.get('environment')})"
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p><span class="pill {cls}">{_e(outcome)}</span> '
        f"{_e(rec.get('version_from') or '-')} &rarr; {_e(rec.get('version_to') or '-')} "
        f"({_e(rec.get('color_from') or '-')} &rarr; {_e(rec.get('color_to') or '-')}), "
        f"{_e(rec.get('started_at'))}, {_e(rec.get('duration_s'))} s, exit "
        f"{_e(rec.get('exit_code'))}</p>",
        f"<p>{_e(rec.get('message'))}</p>",
    ]
    if rec.get("time_to_restore_s") is not None:
        body.append(f"<p>Time to restore: <b>{_e(rec['time_to_restore_s'])} s</b></p>")
    body.append(f"<p>{_signed(rec)}</p>")
    for w in rec.get("warnings") or []:
        body.append(f"<p class=warn>warning: {_e(w)}</p>")
    body.append("<h2>Timeline</h2>")
    elapsed, rows = 0.0, []
    for step in rec.get("steps") or []:
        status = step.get("status")
        mark = {"ok": "ok", "failed": "bad", "undone": "warn"}.get(str(status), "muted")
        rows.append(
            [
                f"{elapsed:.2f} s",
                _e(step.get("name")),
                _e(step.get("host") or ""),
                f'<span class="{mark}">{_e(status)}</span>',
                f"{float(step.get('seconds') or 0):.2f} s",
                _e(step.get("detail") or step.get("error") or ""),
            ]
        )
        elapsed += float(step.get("seconds") or 0)
    body.append(_table(["at", "step", "host", "status", "took", "detail"], rows))
    post = next((g for g in rec.get("gates") or [] if g.get("name") == "post_switch"), None)
    body.append("<h2>Post-switch window</h2>")
    body.append(chart((post or {}).get("timeline") or [], _marks(rec)))
    body.append("<h2>Gates</h2>")
    gate_rows = [
        [
            _e(g.get("name")),
            _e(g.get("target")),
            _e(g.get("probes")),
            _e(g.get("errors")),
            f"{float(g.get('p95_ms') or 0):.1f} ms",
            '<span class="ok">pass</span>'
            if g.get("passed")
            else f'<span class="bad">fail</span> {_e(g.get("reason"))}',
        ]
        for g in rec.get("gates") or []
    ]
    body.append(_table(["gate", "url", "samples", "errors", "p95", "result"], gate_rows))
    canary = (rec.get("target") or {}).get("canary") or []
    if canary:
        body.append("<h2>Canary analysis</h2>")
        body.append(canary_section(canary, str(outcome)))
    body.append("<h2>Migrations</h2>")
    body.append(_lint_section(rec))
    body.append("<h2>Evidence chain</h2>")
    body.append(
        f"<p>Record <span class=mono>#{_e(rec.get('seq'))} {_e(rec.get('id'))}</span>, hash "
        f"<span class=mono>{_e(rec.get('hash'))}</span>, after "
        f"<span class=mono>{_e(rec.get('prev_hash'))}</span>. Chain of {_e(chain['records'])} "
        f"record(s): {'verified' if chain['ok'] else 'BROKEN: ' + _e(chain['problem'])}, head "
        f"<span class=mono>{_e(chain['head'])}</span>.</p>"
    )
    body.append("<h2>Readiness</h2>")
    body.append(_score_section(score, by_id))
    return _page(title, "".join(body))


def period_page(
    recs: list[dict[str, Any]], chain: dict[str, Any], score: dict[str, Any], since: str
) -> str:
    title = f"deployments over the last {since}"
    rows = [
        [
            _e(r.get("seq")),
            _e(r.get("kind")),
            _e(r.get("app")),
            f"{_e(r.get('version_from') or '-')} &rarr; {_e(r.get('version_to') or '-')}",
            f'<span class="{OUTCOME_CLASS.get(str(r.get("outcome")), "bad")}">'
            f"{_e(r.get('outcome'))}</span>",
            _e(r.get("started_at")),
            _e(r.get("time_to_restore_s") if r.get("time_to_restore_s") is not None else ""),
            _e(schema_change(r)),
        ]
        for r in recs
    ]
    d = score.get("dora") or {}
    dora = _table(
        ["metric", "value"],
        [
            ["deployment frequency", _e(f"{d.get('deployment_frequency_per_day')} / day")],
            ["change lead time", _e(f"{d.get('change_lead_time_s')} s")],
            ["change failure rate", _e(d.get("change_failure_rate"))],
            [
                "failed deployment recovery time",
                _e(f"{d.get('failed_deployment_recovery_time_s')} s"),
            ],
            ["deployment rework rate", _e(d.get("deployment_rework_rate"))],
        ],
    )
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{len(recs)} record(s); chain {'verified' if chain['ok'] else 'BROKEN'} "
        f"({_e(chain['records'])} records, head <span class=mono>{_e(chain['head'])}</span>)"
        "</p>",
        "<h2>Operations</h2>",
        _table(
            ["seq", "kind", "app", "versions", "outcome", "started", "restore s", "schema"],
            rows,
        ),
        "<h2>Readiness</h2>",
        _score_section(score, {r["id"]: r for r in recs}),
        "<h2>DORA</h2>",
        dora,
    ]
    return _page(title, "".join(body))
