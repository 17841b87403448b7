"""A canary step judged on what users got: the router's access log.

The log (nginx `log_format deployer`, see :data:`deployer.values.LOG_FORMAT`) is read
on the router host incrementally, over the connection deployer already holds: only the bytes
written since the step began. Each request is attributed to a color by its upstream address;
requests nginx answered itself (no upstream) are not anyone's. The new color is judged against
the old one in the same window: its 5xx rate (absolute, and relative to the old color's) and
its p95 (absolute, and as a ratio of the old color's). A step with too few requests for a
verdict is inconclusive and follows the playbook's policy.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field
from typing import Any

from deployer import progress
from deployer.analysis.judge import Rules, Sample, Verdict
from deployer.analysis.judge import judge as judge_sprt
from deployer.analysis.prom_counts import PromCounts
from deployer.commands import nginx
from deployer.errors import GateFailed
from deployer.gates import percentile

LINE = re.compile(r"^\S+ (?P<addr>.+?) (?P<status>\d{3}) (?P<rt>[\d.]+|-) (?P<urt>.+?) \"")
ADDRESS = re.compile(r"[\w.\-\[\]:]+:\d+")


@dataclass
class Side:
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)

    #: counted slow requests (a source that counts instead of timing); None: not counted
    slow: int | None = None

    @classmethod
    def of(cls, sample: Sample) -> Side:
        return cls(sample.requests, sample.errors, list(sample.latencies_ms), sample.slow)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "p95_ms": round(self.p95_ms, 1),
        }
        if self.slow is not None:
            out["slow"] = self.slow
        return out


def attribute(line: str, servers: dict[str, str]) -> tuple[str, bool, float] | None:
    """(color, 5xx, latency ms) of one access-log line, or None (not an upstream request)."""
    m = LINE.match(line)
    if not m:
        return None
    addresses = ADDRESS.findall(m.group("addr"))
    if not addresses or addresses[-1] not in servers:
        return None
    times = [t for t in m.group("urt").replace(",", " ").replace(":", " ").split() if t != "-"]
    try:
        seconds = float(times[-1]) if times else float(m.group("rt"))
    except ValueError:
        seconds = 0.0
    return servers[addresses[-1]], m.group("status").startswith("5"), seconds * 1000


def judge(new: Side, old: Side, a: Any, final: bool) -> tuple[str | None, str]:
    """("fail" | "pass" | "inconclusive" | None to keep watching, why)."""
    limit = min(a.max_error_rate, old.error_rate * a.max_error_ratio + a.error_slack)
    over = new.error_rate > limit
    if over and new.errors >= a.fail_fast_errors:
        return "fail", (
            f"5xx rate {new.error_rate:.1%} over {limit:.1%} ({new.errors} of {new.requests}; "
            f"old color {old.error_rate:.1%})"
        )
    if not final:
        return None, ""
    if new.requests < a.min_requests:
        return "inconclusive", f"{new.requests} request(s), fewer than {a.min_requests}"
    if over:
        return "fail", (
            f"5xx rate {new.error_rate:.1%} over {limit:.1%} ({new.errors} of {new.requests}; "
            f"old color {old.error_rate:.1%})"
        )
    if a.max_p95 is not None and new.p95_ms > a.max_p95 * 1000:
        return "fail", f"p95 {new.p95_ms:.0f} ms over {a.max_p95 * 1000:.0f} ms"
    # a ratio of tiny latencies is noise (17 ms against 44 ms on a busy machine): the new
    # color must also be slower by more than `p95_slack`
    slower = new.p95_ms > old.p95_ms * a.max_p95_ratio
    if old.requests >= a.min_requests and slower and new.p95_ms - old.p95_ms > a.p95_slack * 1000:
        return "fail", (
            f"p95 {new.p95_ms:.0f} ms over {a.max_p95_ratio:g} x the old color's "
            f"{old.p95_ms:.0f} ms"
        )
    return "pass", ""


def prometheus(url: str, queries: Any, timeout: float) -> tuple[str, str, dict[str, Any]]:
    """("pass" | "fail" | "inconclusive", why, {name: value}) of the step's queries, through
    Prometheus's HTTP API. No answer, an error or an empty result is inconclusive: a
    query that cannot be evaluated never passes."""
    import httpx

    values: dict[str, Any] = {}
    verdict, why = "pass", ""
    for name, query, low, high in queries:
        try:
            resp = httpx.get(
                url.rstrip("/") + "/api/v1/query",
                params={"query": query},
                timeout=timeout,
                trust_env=False,
            )
            doc = resp.json()
            result = doc["data"]["result"] if doc.get("status") == "success" else []
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            values[name] = None
            verdict, why = "inconclusive", f"Prometheus {name}: no answer ({type(exc).__name__})"
            continue
        samples = [float(r["value"][1]) for r in result if "value" in r]
        samples = [v for v in samples if v == v]  # NaN: no data either
        if not samples:
            values[name] = None
            if verdict == "pass":
                verdict, why = "inconclusive", f"Prometheus {name}: empty result"
            continue
        value = max(samples)
        values[name] = value
        if (high is not None and value > high) or (low is not None and value < low):
            bound = f"<= {high:g}" if high is not None and value > high else f">= {low:g}"
            return "fail", f"Prometheus {name} = {value:g}, not {bound}", values
    return verdict, why, values


class LogReader:
    """The access log's new lines since the step began (rotation: from the start again)."""

    def __init__(self, runner: Any, path: str):
        self.runner, self.path = runner, path
        self.offset = int((runner.run(nginx.log_size(path)).stdout.strip() or "0").split()[0])
        self.carry = ""

    def _read(self) -> tuple[int, bytes]:
        out: str = self.runner.run(nginx.log_read(self.path, self.offset), timeout=30).stdout
        size_text, _, data = out.partition("\n")
        return int(size_text.strip() or "0"), base64.b64decode(data.strip() or b"")

    def lines(self) -> list[str]:
        size, data = self._read()
        if size < self.offset:  # rotated: the new file from its start
            self.offset, self.carry = 0, ""
            size, data = self._read()
        self.offset += len(data)
        text = self.carry + data.decode("utf-8", errors="replace")
        *complete, self.carry = text.split("\n")
        return complete


def run_step(router: Any, step: Any, record: list[dict[str, Any]]) -> str:
    """Shift ``step.weight`` percent to the new color and watch it for ``step.pause``
    (several routers: every router's access log, each read from its own host)."""
    a = step.analysis
    counts = getattr(step, "counts", ())
    source = None
    if counts:  # Prometheus counts, canary and stable, instead of the access log
        source = PromCounts(
            a.prometheus.url,
            {
                "canary": {name: canary_q for name, canary_q, _ in counts},
                "stable": {name: stable_q for name, _, stable_q in counts},
            },
            a.prometheus.timeout,
        )
    readers = (
        []
        if source is not None
        else [
            LogReader(r.runner, log or step.access_log)
            for r, log in zip(router.each, router.access_logs, strict=True)
        ]
    )
    reload_s = router.switch(step.conf)
    if source is not None:
        source.start()
    servers = dict(step.servers)
    sides = {step.color: Side(), step.old_color: Side()}
    started = time.monotonic()
    rules = rules_for(a, slow_margin=a.prometheus.judge.slow_margin if source else 0.05)
    counted: tuple[Sample, Sample] | None = None
    max_pause = max(step.pause, a.max_pause)
    verdict, why = None, ""
    stats: Verdict | None = None
    prom_values: dict[str, Any] = {}
    while True:
        elapsed = time.monotonic() - started
        final, bound = elapsed >= step.pause, elapsed >= max_pause
        for line in (line for reader in readers for line in reader.lines()):
            seen = attribute(line, servers)
            if seen is not None and seen[0] in sides:
                side = sides[seen[0]]
                side.requests += 1
                side.errors += seen[1]
                side.latencies_ms.append(seen[2])
        if source is not None:
            counted = source.samples() or counted
            if counted is not None:
                sides = {step.color: Side.of(counted[0]), step.old_color: Side.of(counted[1])}
        new, old = sides[step.color], sides[step.old_color]
        if source is not None and counted is not None:
            stats = judge_sprt(counted[0], counted[1], rules, bound)
        else:
            stats = statistical(new, old, rules, final=bound)
        if source is not None and source.problem:
            stats.decided_by = f"{source.problem}; {stats.decided_by}"
        progress.emit(
            "canary", weight=step.weight, new=new.to_dict(), old=old.to_dict(),
            elapsed=elapsed, pause=step.pause, judge=stats.verdict,
        )  # fmt: skip
        verdict, why = decide(new, old, a, stats, final, bound)
        if verdict in ("pass", "inconclusive") and step.queries:
            prom_verdict, prom_why, prom_values = prometheus(
                a.prometheus.url, step.queries, a.prometheus.timeout
            )
            if prom_verdict != "pass" and (verdict == "pass" or prom_verdict == "fail"):
                verdict, why = prom_verdict, prom_why
        if verdict is not None:
            break
        wait = step.pause - elapsed if not final else max_pause - elapsed
        time.sleep(min(a.interval, max(0.0, wait)) or 0.05)
    acted = verdict
    if a.mode == "dry-run" and verdict in ("fail", "inconclusive"):
        acted = "pass"  # recorded, never acted on: only the post-switch gate acts
    entry: dict[str, Any] = {
        "weight": step.weight,
        "color": step.color,
        "seconds": round(time.monotonic() - started, 3),
        "reload_s": round(reload_s, 3),
        "new": new.to_dict(),
        "old": old.to_dict(),
        "verdict": verdict,
        "reason": why,
        "judge": stats.to_dict() if stats is not None else None,
    }
    if a.mode == "dry-run":
        would = verdict == "fail" or (verdict == "inconclusive" and step.inconclusive == "abort")
        entry["dry_run"] = {"would": "abort" if would else "proceed"}
    if step.queries:
        entry["prometheus"] = prom_values
    record.append(entry)
    summary = f"{step.weight}% to {step.color}: {_said(new)}; {step.old_color}: {_said(old)}"
    if acted == "fail" or (acted == "inconclusive" and step.inconclusive == "abort"):
        raise GateFailed(f"canary step {step.weight}% failed: {why} ({summary})")
    if a.mode == "dry-run" and acted != verdict:
        return summary + f" (dry-run: the judge said {verdict}: {why}; would have aborted)"
    return summary + (f" (inconclusive: {why}; proceeding)" if verdict == "inconclusive" else "")


def rules_for(a: Any, **overrides: Any) -> Rules:
    """The judge's rules from the playbook's `analysis` (``overrides``: a source's own)."""
    return Rules(
        error_margin=a.error_margin,
        latency_margin=a.latency_margin,
        latency_slack_ms=a.latency_slack * 1000,
        min_requests=min(a.min_requests, 100),
        **overrides,
    )


def _said(side: Side) -> str:
    if side.slow is not None:
        return f"{side.requests} req, {side.errors} 5xx, {side.slow} slow"
    if not side.latencies_ms and side.requests:  # counted, not timed
        return f"{side.requests} req, {side.errors} 5xx"
    return f"{side.requests} req, {side.errors} 5xx, p95 {side.p95_ms:.0f} ms"


def statistical(new: Side, old: Side, rules: Rules, final: bool = False) -> Verdict:
    return judge_sprt(
        Sample(new.requests, new.errors, new.latencies_ms),
        Sample(old.requests, old.errors, old.latencies_ms),
        rules,
        final,
    )


def decide(
    new: Side, old: Side, a: Any, stats: Verdict, final: bool, bound: bool
) -> tuple[str | None, str]:
    """The step's verdict now, or None to keep watching. A clear failure acts at once: the
    statistical judge's fail, or `fail_fast_errors` 5xx over the error limits. A pass needs
    the judge's pass (every metric shown not worse by its margin), `pause` over, and the
    canary's p95 under `max_pause`'s absolute `max_p95` if set. "Not yet" extends the step
    up to `max_pause`, where the judge takes its final look (a 97.5% bound on each undecided
    metric) and what is still undecided is inconclusive. (The thresholds alone used to decide at the
    end of `pause`: on thin traffic they failed healthy canaries on noise and passed bad ones
    for lack of data.)"""
    fast, why = judge(new, old, a, final=False)
    if fast == "fail":
        return "fail", why
    if stats.verdict == "fail":
        return "fail", stats.why()
    if not final:
        return None, ""
    if stats.verdict == "pass":
        if a.max_p95 is not None and new.p95_ms > a.max_p95 * 1000:
            return "fail", f"p95 {new.p95_ms:.0f} ms over {a.max_p95 * 1000:.0f} ms"
        return "pass", stats.why()
    if bound:
        return "inconclusive", f"no verdict within max_pause {a.max_pause:g}s: {stats.why()}"
    return None, ""
