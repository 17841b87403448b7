"""The access-log analysis of a canary step, without a router: lines attributed to colors,
and each rule's verdict."""

from __future__ import annotations

import pytest

from deployer.analysis.canary import Side, attribute, judge
from deployer.playbook.strategy_model import LogAnalysis, Strategy

SERVERS = {"127.0.0.1:8001": "blue", "10.0.0.2:8002": "green"}


@pytest.mark.parametrize(
    ("line", "seen"),
    [
        ('2026-11-29T01:00:00+00:00 127.0.0.1:8001 200 0.004 0.003 "GET /"', ("blue", False, 3.0)),
        ('2026-11-29T01:00:00+00:00 10.0.0.2:8002 502 0.010 0.009 "GET /x"', ("green", True, 9.0)),
        # a retry: the last upstream answered
        (
            '2026-11-29T01:00:00+00:00 127.0.0.1:8001, 10.0.0.2:8002 500 0.2 0.1, 0.05 "GET /"',
            ("green", True, 50.0),
        ),
        ('2026-11-29T01:00:00+00:00 - 404 0.000 - "GET /favicon.ico"', None),  # nginx itself
        ('2026-11-29T01:00:00+00:00 192.0.2.9:80 200 0.1 0.1 "GET /"', None),  # not ours
        ("garbage", None),
    ],
)
def test_lines_are_attributed_by_upstream_address(line: str, seen: object) -> None:
    assert attribute(line, SERVERS) == seen


def side(requests: int, errors: int, ms: float) -> Side:
    return Side(requests, errors, [ms] * requests)


def test_each_rule() -> None:
    a = LogAnalysis(min_requests=20, max_p95=None, max_p95_ratio=2.0)
    healthy = side(1000, 0, 5)
    assert judge(side(40, 0, 5), healthy, a, final=True) == ("pass", "")
    assert judge(side(40, 0, 5), healthy, a, final=False) == (None, "")  # keep watching
    fast = judge(side(6, 6, 5), healthy, a, final=False)  # fails before the pause ends
    assert fast[0] == "fail" and "5xx rate 100.0%" in fast[1]
    relative = judge(side(100, 4, 5), healthy, a, final=True)  # 4% < 5%, but the old has 0%
    assert relative[0] == "fail" and "over 1.0%" in relative[1]
    noisy_old = side(1000, 30, 5)  # the old color fails 3% too: 4% is no worse than 2x + 1%
    assert judge(side(100, 4, 5), noisy_old, a, final=True)[0] == "pass"
    slow = judge(side(40, 0, 80), healthy, a, final=True)
    assert slow[0] == "fail" and "2 x the old color's 5 ms" in slow[1]
    # 16 ms against 5 ms is over 2x, but a few milliseconds are noise (p95_slack 50 ms)
    assert judge(side(40, 0, 16), healthy, a, final=True)[0] == "pass"
    strict = LogAnalysis(min_requests=20, max_p95=None, max_p95_ratio=2.0, p95_slack=0)
    assert judge(side(40, 0, 16), healthy, strict, final=True)[0] == "fail"
    assert judge(side(5, 0, 5), healthy, a, final=True)[0] == "inconclusive"
    absolute = LogAnalysis(max_p95=0.01)
    assert judge(side(40, 0, 12), side(1000, 0, 10), absolute, final=True)[0] == "fail"


def test_steps_must_increase_and_end_at_100() -> None:
    with pytest.raises(ValueError, match="last step"):
        Strategy(kind="canary", steps=[{"weight": 5}, {"weight": 50}])
    with pytest.raises(ValueError, match="increase"):
        Strategy(kind="canary", steps=[{"weight": 50}, {"weight": 5}, {"weight": 100}])


def test_every_log_format_deployer_writes_is_the_one_it_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`deployer init`'s nginx snippet and the test bed's nginx.conf use LOG_FORMAT."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from deployer.values import LOG_FORMAT

    wanted = re.search(r"'(.*)'", LOG_FORMAT).group(1)  # type: ignore[union-attr]
    subprocess.run([sys.executable, "-m", "deployer", "init"], cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    root = Path(__file__).resolve().parent.parent
    for text in ((tmp_path / "deploy/nginx.conf").read_text(),
                 (root / "scripts/testbed.py").read_text()):  # fmt: skip
        block = re.search(r"log_format deployer (.*?);", text, re.DOTALL).group(1)  # type: ignore[union-attr]
        assert "".join(re.findall(r"'([^']*)'", block)) == wanted
