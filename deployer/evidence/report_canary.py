"""The operation page's canary section: per step, the canary's and the stable color's series
side by side (a chart), and the judge's verdict per metric with its numbers (a table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployer.evidence.html_parts import _e, _table


def canary_chart(steps: list[dict[str, Any]], width: int = 960) -> str:
    """Per canary step, the canary's and the stable color's series side by side: 5xx ratio
    (left panel) and p95 latency (right panel), each pair labelled with its request counts."""
    height, top, bottom, gap = 220, 20, 48, 40
    panel_w = (width - gap * 3) / 2
    plot_h = height - top - bottom
    colors = {"canary": "#f29900", "stable": "#1a73e8"}

    def num(value: Any) -> float:
        return float(value) if isinstance(value, int | float) else 0.0

    def side(c: dict[str, Any], key: str) -> dict[str, Any]:
        return c.get(key) or {}

    def ratio(d: dict[str, Any]) -> float:
        requests = num(d.get("requests"))
        return num(d.get("errors")) / requests * 100 if requests else 0.0

    def p95(d: dict[str, Any]) -> float:
        return num(d.get("p95_ms"))

    panels: list[tuple[str, Callable[[dict[str, Any]], float], str]] = [
        ("5xx ratio", ratio, "%"),
        ("p95 latency", p95, " ms"),
    ]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="canary and stable per step">'
    ]
    for i, (title, value, unit) in enumerate(panels):
        x0 = gap + i * (panel_w + gap)
        series = [(value(side(c, "new")), value(side(c, "old"))) for c in steps]
        top_value = max([v for pair in series for v in pair] + [1e-9])
        parts.append(
            f'<rect x="{x0:.1f}" y="{top}" width="{panel_w:.1f}" height="{plot_h}" '
            'fill="#f8fafc" stroke="#d5dbe3"/>'
            f'<text x="{x0:.1f}" y="{top - 6}">{title} (top {top_value:.3g}{unit})</text>'
        )
        slot = panel_w / max(1, len(steps))
        bar = max(2.0, min(40.0, slot / 3))
        for j, (c, pair) in enumerate(zip(steps, series, strict=True)):
            for k, (name, v) in enumerate(zip(("canary", "stable"), pair, strict=True)):
                h = plot_h * v / top_value
                bx = x0 + j * slot + slot / 2 - bar + k * bar
                parts.append(
                    f'<rect class="{name}" x="{bx:.1f}" y="{top + plot_h - h:.1f}" '
                    f'width="{bar - 1:.1f}" height="{h:.1f}" fill="{colors[name]}">'
                    f"<title>{name} {v:.3g}{unit}</title></rect>"
                )
            label = f"{_e(c.get('weight'))}%: {_e(side(c, 'new').get('requests'))}/"
            label += f"{_e(side(c, 'old').get('requests'))} req"
            parts.append(
                f'<text x="{x0 + j * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle">{label}</text>'
            )
    parts.append(
        f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle">each step: canary '
        "(orange) and stable (blue) over the same interval; requests canary/stable</text>"
        "</svg>"
    )
    return "".join(parts)


def canary_section(steps: list[dict[str, Any]], outcome: str) -> str:
    """Each canary step: the judge's verdict per metric with its numbers and, in dry-run
    mode, what it would have done beside what the release actually did."""
    rows = []
    for c in steps:
        judged = c.get("judge") or {}
        would = (c.get("dry_run") or {}).get("would")
        verdict = _e(c.get("verdict"))
        if would:
            verdict += f" (dry-run: would {_e(would)}; the release {_e(outcome)})"
        new, old = c.get("new") or {}, c.get("old") or {}
        rows.append(
            [
                f"{_e(c.get('weight'))}%",
                "step",
                verdict,
                f"{_e(new.get('requests'))} req, {_e(new.get('errors'))} 5xx, "
                f"p95 {_e(new.get('p95_ms'))} ms",
                f"{_e(old.get('requests'))} req, {_e(old.get('errors'))} 5xx, "
                f"p95 {_e(old.get('p95_ms'))} ms",
                _e(judged.get("decided_by") or c.get("reason") or ""),
            ]
        )
        for m in judged.get("metrics") or []:
            rows.append(
                [
                    "",
                    _e(m.get("name")),
                    _e(m.get("verdict")),
                    _e(m.get("canary")),
                    _e(m.get("stable")),
                    f"{_e(m.get('difference'))}; threshold {_e(m.get('threshold'))}; "
                    f"log-likelihood ratio {_e(m.get('llr'))} {_e(m.get('note') or '')}",
                ]
            )
    table = _table(["weight", "metric", "verdict", "canary", "stable", "why"], rows)
    return canary_chart(steps) + table
