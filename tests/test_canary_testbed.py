"""Analysed canary releases through the test bed's real nginx, under >= 200 req/s: each step
judged on the access log (what users got), new color against old in the same window."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, Deploy
from loadgen import Load

pytestmark = [pytest.mark.testbed, pytest.mark.slow]

START = (
    "${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} ${unhealthy_after} "
    "-1 0 ${fail_every} ${slow_ms}"
)


def canary(deploy: Deploy, **analysis: Any) -> None:
    doc = yaml.safe_load(deploy.path.read_text())
    doc["vars"].update(fail_every="0", slow_ms="0")
    doc["service"]["start"] = START
    doc["strategy"] = {
        "kind": "canary",
        "steps": [{"weight": 10, "pause": "3s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}],
        "analysis": {"min_requests": 20, "interval": "250ms", "max_pause": "40s", **analysis},
    }
    deploy.path.write_text(yaml.safe_dump(doc))


def release(
    deploy: Deploy, version: str, *var: str, rate: float = 200, seconds: float = 60
) -> tuple[Any, dict[str, Any]]:
    extra = [a for v in var for a in ("--var", v)]
    with Load(deploy.url + "/", rate=rate, threads=8 if rate > 20 else 2, seconds=seconds) as load:
        proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", version,
                          *extra, timeout=max(120, seconds + 40))  # fmt: skip
        load.stop.set()
    doc = json.loads(proc.stdout)
    return load.stats, {"code": proc.returncode, **doc}


def test_a_healthy_canary_runs_every_step_with_no_error(deploy: Deploy) -> None:
    canary(deploy)
    assert deploy.release("v1").returncode == 0  # the first release: no canary (nothing to
    plan = deploy.run("plan", "-p", str(deploy.path), "--version", "v2")  # compare with)
    assert "canary-10%" in plan.stdout and "canary-50%" in plan.stdout
    assert "10% to green" in plan.stdout
    stats, doc = release(deploy, "v2")
    assert doc["code"] == 0, doc["message"]
    assert stats.requests >= 1000 and stats.server_errors == 0 and not stats.failures
    steps = doc["target"]["canary"]
    assert [s["weight"] for s in steps] == [10, 50] and all(s["verdict"] == "pass" for s in steps)
    assert all(s["new"]["requests"] >= 20 and s["old"]["requests"] > 0 for s in steps)
    assert steps[0]["new"]["requests"] < steps[0]["old"]["requests"]  # 10% of the traffic
    assert deploy.live()["version"] == "v2"
    names = [s["name"] for s in doc["steps"]]
    assert names.index("canary-10%") < names.index("canary-50%") < names.index("switch")


def test_an_always_failing_release_is_aborted_at_the_first_step(deploy: Deploy) -> None:
    canary(deploy)
    assert deploy.release("v1").returncode == 0
    stats, doc = release(deploy, "v2", "fail_every=1")
    assert doc["code"] == 4, doc["message"]
    assert "canary step 10% failed" in doc["message"] and "5xx rate" in doc["message"]
    steps = doc["target"]["canary"]
    assert len(steps) == 1 and steps[0]["verdict"] == "fail"
    assert deploy.live()["version"] == "v1"
    # users saw a tenth of the failures a blue-green switch would have cost (bench/)
    assert 0 < stats.server_errors <= 40, stats.server_errors


def test_a_release_failing_one_request_in_ten_is_caught_by_the_relative_rule(
    deploy: Deploy,
) -> None:
    canary(deploy, max_error_rate=0.5)  # the absolute limit would let 10% through
    assert deploy.release("v1").returncode == 0
    _, doc = release(deploy, "v2", "fail_every=10")
    assert doc["code"] == 4, doc["message"]
    assert "canary step" in doc["message"] and "old color 0.0%" in doc["message"]
    assert deploy.live()["version"] == "v1"


def test_a_slow_release_is_caught_by_the_latency_judge(deploy: Deploy) -> None:
    canary(deploy)
    assert deploy.release("v1").returncode == 0
    _, doc = release(deploy, "v2", "slow_ms=120")  # slower by more than p95_slack (50 ms)
    assert doc["code"] == 4, doc["message"]
    assert "latency: worse by the margin" in doc["message"], doc["message"]
    assert deploy.live()["version"] == "v1"


def test_a_step_with_too_few_requests_follows_the_policy(deploy: Deploy, tmp_path: Path) -> None:
    """No load at all: the judge has no evidence either way ("not yet") until max_pause, then
    the step is inconclusive; `abort` rolls back, `proceed` goes on."""
    canary(deploy, max_pause="1s")
    assert deploy.release("v1").returncode == 0
    aborted = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    message = json.loads(aborted.stdout)["message"]
    assert aborted.returncode == 4 and "no verdict within max_pause" in message, message
    assert "a verdict needs 20" in message, message
    doc = yaml.safe_load(deploy.path.read_text())
    doc["strategy"]["inconclusive"] = "proceed"
    deploy.path.write_text(yaml.safe_dump(doc))
    went_on = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v3")
    assert went_on.returncode == 0, went_on.stdout
    verdicts = [s["verdict"] for s in json.loads(went_on.stdout)["target"]["canary"]]
    assert verdicts == ["inconclusive", "inconclusive"]


P95 = (
    "histogram_quantile(0.95, sum by (le) "
    '(rate(app_request_seconds_bucket{version="${version}"}[10s])))'
)
ERRORS = 'sum(rate(app_requests_total{version="${version}",status=~"5.."}[10s])) or vector(0)'


def with_prometheus(deploy: Deploy, url: str, **queries: Any) -> None:
    """The canary above, the app serving /metrics (a Python with prometheus_client), and
    Prometheus queries judged at the end of each step; the log rules made lenient."""
    canary(deploy, latency_slack="1s")  # the log judge lets 40 ms through
    doc = yaml.safe_load(deploy.path.read_text())
    doc["service"]["start"] = f"APP_PYTHON={sys.executable} " + START
    doc["strategy"]["analysis"]["prometheus"] = {"url": url, "queries": queries, "timeout": "2s"}
    deploy.path.write_text(yaml.safe_dump(doc))


def test_prometheus_queries_pass_a_healthy_canary_and_abort_a_slow_one(
    deploy: Deploy, prom_bed: Any
) -> None:
    with_prometheus(
        deploy,
        prom_bed.prom_url,
        p95={"query": P95, "max": 0.02},
        errors={"query": ERRORS, "max": 0.5},
    )
    assert deploy.release("v1").returncode == 0
    _, healthy = release(deploy, "v2")
    assert healthy["code"] == 0, healthy["message"]
    values = healthy["target"]["canary"][0]["prometheus"]
    assert values["errors"] == 0 and 0 < values["p95"] < 0.02
    _, slow = release(deploy, "v3", "slow_ms=40")  # the log rules let it through
    assert slow["code"] == 4, slow["message"]
    assert "Prometheus p95" in slow["message"] and "not <= 0.02" in slow["message"]
    assert deploy.live()["version"] == "v2"


COUNT = 'sum(app_requests_total{version="${version}"})'
FAILED = 'sum(app_requests_total{version="${version}",status=~"5.."}) or vector(0)'
SLOW = (  # slower than 25 ms: every request minus the 25 ms bucket
    'sum(app_request_seconds_count{version="${version}"}) '
    '- sum(app_request_seconds_bucket{version="${version}",le="0.025"})'
)


def test_the_judge_fed_from_prometheus_counts_passes_healthy_and_fails_broken(
    deploy: Deploy, prom_bed: Any
) -> None:
    """`analysis.prometheus.judge`: requests, 5xx and slow requests counted by Prometheus
    per side (each query rendered for the canary's version, then the stable one's); the
    same statistical judge decides, the access log unread."""
    canary(deploy, latency_slack="1s")
    doc = yaml.safe_load(deploy.path.read_text())
    doc["service"]["start"] = f"APP_PYTHON={sys.executable} " + START
    doc["strategy"]["analysis"]["prometheus"] = {
        "url": prom_bed.prom_url,
        "timeout": "2s",
        "judge": {"requests": COUNT, "errors": FAILED, "slow": SLOW},
    }
    deploy.path.write_text(yaml.safe_dump(doc))
    assert deploy.release("v1").returncode == 0
    plan = deploy.run("plan", "-p", str(deploy.path), "--version", "v2").stdout
    assert 'version="v2"' in plan and 'version="v1"' in plan and "Prometheus counts" in plan
    _, healthy = release(deploy, "v2")
    assert healthy["code"] == 0, healthy["message"]
    first = healthy["target"]["canary"][0]
    assert first["verdict"] == "pass" and first["new"]["requests"] >= 20, first
    assert "slow" in first["new"] and "slow" in first["old"], first
    names = [m["name"] for m in first["judge"]["metrics"]]
    assert names == ["errors", "latency"], first["judge"]
    assert " slow (" in first["judge"]["metrics"][1]["canary"], first["judge"]
    _, broken = release(deploy, "v3", "fail_every=1")
    assert broken["code"] == 4, broken["message"]
    assert "canary step 10% failed" in broken["message"], broken["message"]
    assert deploy.live()["version"] == "v2"


def test_an_unreachable_prometheus_is_inconclusive_never_a_pass(deploy: Deploy) -> None:
    with_prometheus(deploy, "http://127.0.0.1:9", errors={"query": ERRORS, "max": 0.5})
    assert deploy.release("v1").returncode == 0
    _, aborted = release(deploy, "v2")
    assert aborted["code"] == 4 and "no answer" in aborted["message"], aborted["message"]
    doc = yaml.safe_load(deploy.path.read_text())
    doc["strategy"]["inconclusive"] = "proceed"
    deploy.path.write_text(yaml.safe_dump(doc))
    _, went_on = release(deploy, "v3")
    assert went_on["code"] == 0, went_on["message"]
    assert {s["verdict"] for s in went_on["target"]["canary"]} == {"inconclusive"}


def _thin(deploy: Deploy, **analysis: Any) -> None:
    """5 req/s in all, half of it to the canary, one step: the judge's margins wide enough
    that the evidence of a minute or so decides (the simulator's prediction: a healthy
    canary passes and an always-failing one fails, each in every one of 200 runs)."""
    doc = yaml.safe_load(deploy.path.read_text())
    doc["vars"].update(fail_every="0", slow_ms="0")
    doc["service"]["start"] = START
    doc["strategy"] = {
        "kind": "canary",
        "steps": [{"weight": 50, "pause": "2s"}, {"weight": 100}],
        "analysis": {
            "min_requests": 10, "interval": "250ms", "max_pause": "150s",
            "error_margin": 0.2, "latency_margin": 1.0, **analysis,
        },
    }  # fmt: skip
    deploy.path.write_text(yaml.safe_dump(doc))


@pytest.mark.slow
def test_on_thin_traffic_the_judge_passes_a_healthy_canary_and_fails_a_broken_one(
    deploy: Deploy,
) -> None:
    from deployer.analysis.judge import Rules

    sys.path.insert(0, str(ROOT / "bench"))
    import canary_judge_bench as sim

    rng = __import__("random").Random(26)
    rules = Rules(error_margin=0.2, latency_margin=1.0)
    predicted = {
        bad: {sim.one_run(rng, 5.0, 0.5, bad, 150.0, rules)[0] for _ in range(200)}
        for bad in ((0.0, 100.0), (1.0, 100.0))
    }
    assert predicted == {(0.0, 100.0): {"pass"}, (1.0, 100.0): {"fail"}}, predicted
    _thin(deploy)
    assert deploy.release("v1").returncode == 0
    _, healthy = release(deploy, "v2", rate=5, seconds=200)
    assert healthy["code"] == 0, healthy["message"]
    step = healthy["target"]["canary"][0]
    assert step["verdict"] == "pass" and step["judge"]["verdict"] == "pass", step
    stats, broken = release(deploy, "v3", "fail_every=1", rate=5, seconds=200)
    assert broken["code"] == 4, broken["message"]
    # the fail-fast limit (5 errors over the limits) or the judge: whichever is first
    assert "canary step 50% failed" in broken["message"], broken["message"]
    assert deploy.live()["version"] == "v2"
    print(
        f"\nthin traffic: healthy passed in {step['seconds']:.0f}s; broken failed after "
        f"{broken['target']['canary'][0]['seconds']:.0f}s, {stats.server_errors} 5xx seen"
    )


@pytest.mark.slow
def test_dry_run_records_a_would_be_abort_while_the_release_completes(deploy: Deploy) -> None:
    """One request in four to / fails on the canary: the judge says fail, dry-run records
    it and goes on; the post-switch gate (samples /health, which stays fine) passes."""
    _thin(deploy, mode="dry-run")
    assert deploy.release("v1").returncode == 0
    _, doc = release(deploy, "v2", "fail_every=4", rate=5, seconds=200)
    assert doc["code"] == 0, doc["message"]
    step = doc["target"]["canary"][0]
    assert step["verdict"] == "fail" and step["dry_run"] == {"would": "abort"}, step
    assert deploy.live()["version"] == "v2"
