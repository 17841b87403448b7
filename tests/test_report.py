"""`deployer report`'s page from hostile record values: everything is escaped, nothing loads."""

from __future__ import annotations

from typing import Any

from deployer.evidence.report_html import operation_page

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def test_hostile_values_are_escaped() -> None:
    rec = {
        "kind": "release", "app": HOSTILE, "environment": "prod", "outcome": HOSTILE,
        "message": HOSTILE, "warnings": [HOSTILE], "seq": 1, "id": "abc", "hash": HOSTILE,
        "steps": [{"name": HOSTILE, "host": HOSTILE, "status": "ok", "seconds": 1,
                   "detail": HOSTILE}],
        "gates": [{"name": "post_switch", "target": HOSTILE, "probes": 1, "errors": 0,
                   "p95_ms": 1, "passed": False, "reason": HOSTILE,
                   "timeline": [[0, 1, 0, 1.0]]}],
        "lint": {"errors": 1, "blocking": [{"revision": HOSTILE, "rule": "x", "message": HOSTILE}]},
    }  # fmt: skip
    score = {"item": HOSTILE, "items": [{"title": HOSTILE, "earned": False, "missing": HOSTILE}]}
    chain = {"ok": False, "records": 1, "problem": HOSTILE, "head": HOSTILE}
    page = operation_page(rec, chain, score, {})
    for tag in ("<script", "<img"):  # as text (escaped) only, never as markup
        assert tag not in page
    assert "&lt;script&gt;" in page


def test_the_canary_steps_say_each_verdict_and_the_dry_run_beside_the_outcome() -> None:
    from deployer.analysis.judge import Rules, Sample, judge

    canary, stable = Sample(400, 60, [100.0] * 400), Sample(3000, 15, [100.0] * 3000)
    judged = judge(canary, stable, Rules()).to_dict()
    step = {
        "weight": 5, "verdict": "fail", "judge": judged, "dry_run": {"would": "abort"},
        "new": {"requests": 400, "errors": 60, "p95_ms": 100.0},
        "old": {"requests": 3000, "errors": 15, "p95_ms": 100.0, "note": HOSTILE},
    }  # fmt: skip
    rec = {"kind": "release", "outcome": "succeeded", "target": {"canary": [step]}}
    chain = {"ok": True, "records": 1, "problem": "", "head": "1:x"}
    page = operation_page(rec, chain, {"items": []}, {})
    assert "Canary analysis" in page
    assert "fail (dry-run: would abort; the release succeeded)" in page
    assert "60/400 (15.00%)" in page and "threshold +1.0%" in page


def test_the_canary_chart_shows_both_series_per_step() -> None:
    """Two steps: per panel (5xx ratio, p95) a canary and a stable bar each, scaled to the
    largest, labelled with the counts; hostile values from the record stay text."""
    from deployer.evidence.report_canary import canary_chart

    steps = [
        {"weight": 5, "new": {"requests": 40, "errors": 4, "p95_ms": 300.0},
         "old": {"requests": 760, "errors": 0, "p95_ms": 100.0}},
        {"weight": HOSTILE, "new": {"requests": "x", "errors": None},
         "old": {"requests": 500, "errors": 5, "p95_ms": 90.0}},
    ]  # fmt: skip
    svg = canary_chart(steps)
    assert svg.count('class="canary"') == 4 and svg.count('class="stable"') == 4
    assert "<title>canary 10%</title>" in svg and "<title>stable 1%</title>" in svg
    assert "<title>canary 300 ms</title>" in svg and 'height="152.0"' in svg  # the tallest
    assert "<title>stable 100 ms</title>" in svg and 'height="50.7"' in svg  # a third
    assert "5%: 40/760 req" in svg and "<script>" not in svg


def test_the_page_says_whether_the_record_is_signed_and_by_which_key() -> None:
    chain = {"ok": True, "records": 1, "problem": "", "head": "1:x"}
    rec: dict[str, Any] = {"kind": "release", "outcome": "succeeded"}
    assert "Unsigned record" in operation_page(rec, chain, {"items": []}, {})
    rec["envelope"] = {"payloadType": "x", "payload": "", "signatures": [{"keyid": "ab" * 32}]}
    page = operation_page(rec, chain, {"items": []}, {})
    assert "Signed (in-toto statement in a DSSE envelope), key id abababababababab" in page
    rec["envelope"]["signatures"] = [{"keyid": HOSTILE}]
    assert "<script>" not in operation_page(rec, chain, {"items": []}, {})
