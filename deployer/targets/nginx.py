"""The nginx target: app hosts over SSH, two colors, an upstream file switched gracefully."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from deployer.adapters.ship import upload
from deployer.commands import files, nginx
from deployer.commands.shell import Shell
from deployer.engine.hosts import HostPool
from deployer.errors import AbortedError, DeployerError, HostError, HostKeyError, InputError
from deployer.gates import Expectation
from deployer.plan import (
    COLORS,
    Action,
    ArmDeadMan,
    CanaryShift,
    Context,
    DisarmDeadMan,
    Observed,
    ScheduleStop,
    Step,
    StopColor,
    Switch,
    Upload,
    drill_plan,
    release_plan,
    rollback_plan,
)
from deployer.playbook.models import Host


class NginxTarget:
    def __init__(self, ctx: Context, hosts: HostPool):
        self.ctx, self.pb, self.hosts = ctx, ctx.pb, hosts
        self.canary: list[dict[str, Any]] = []  # each canary step's measurements and verdict
        self.left_out: dict[str, str] = {}

    def leave_out(self, hosts: dict[str, str]) -> None:
        self.left_out = dict(hosts)

    # ----- what serves -----
    def observe(self) -> Observed:
        text = self.hosts.router.read()
        live = nginx.parse_live(text)
        versions: dict[str, dict[str, str]] = {}
        running: dict[str, dict[str, bool]] = {}

        def look(host: Host) -> list[list[str]] | HostError:
            statuses = {c: self.ctx.shell(self.pb.service.status, host, c) for c in COLORS}
            cmd = files.observe_host(self.ctx.state_dir(host), statuses)
            try:
                lines = self.hosts.runner(host.name).run(cmd).stdout.splitlines()
            except HostKeyError:
                raise  # an unknown or changed key is never a host merely "down"
            except HostError as exc:
                return exc
            return [line.split(" ", 1) for line in lines if " " in line]

        hosts = self.pb.app_hosts
        workers = max(1, min(len(hosts), self.pb.fleet.parallel))
        with ThreadPoolExecutor(workers, thread_name_prefix="observe") as pool:
            seen = list(pool.map(look, hosts))  # every host at once
        unreachable = {
            h.name: str(r) for h, r in zip(hosts, seen, strict=True) if isinstance(r, HostError)
        }
        if unreachable and len(unreachable) > self.pb.fleet.failures_allowed(len(hosts)):
            raise next(r for r in seen if isinstance(r, HostError))
        for host, pairs in zip(hosts, seen, strict=True):
            if isinstance(pairs, HostError):  # within max_failures: left out from the start
                continue
            versions[host.name] = {k: v for k, v in pairs if k in COLORS}
            running[host.name] = {c: ["up", c] in pairs for c in COLORS}
        extra = {"unreachable": unreachable} if unreachable else {}
        return Observed(
            live[0] if live else None,
            live[1] if live else None,
            text,
            versions,
            running,
            extra=extra,
        )

    def serving(self, live: str, version: str) -> tuple[str, Expectation, dict[str, Any]]:
        post = self.pb.gates.post_switch
        url = self.pb.router.url.rstrip("/") + post.path
        return url, self.ctx.expectation(post, self.pb.app_hosts[0], live, version), {}

    # ----- plans -----
    def release_plan(
        self, observed: Observed, version: str, candidate: str | None
    ) -> tuple[str, Observed, list[Step]]:
        if candidate is not None:
            raise InputError(
                "--deployment is for targets that promote a built deployment (vercel); "
                "the nginx target ships --version to the idle color"
            )
        return version, observed, release_plan(self.ctx, observed, version)

    def rollback_plan(self, observed: Observed) -> tuple[str, Observed, list[Step]]:
        version, steps = rollback_plan(self.ctx, observed)
        return version, observed, steps

    def drill_plan(
        self, observed: Observed, version: str | None, broken: Context | None
    ) -> tuple[str, Observed, list[Step]]:
        version = version or observed.live_version
        if not version:
            raise AbortedError(
                f"the router does not say which version {observed.live_color} runs: "
                "give the drill one with --version"
            )
        return version, observed, drill_plan(self.ctx, observed, version, broken=broken)

    def op_record(self, observed: Observed) -> dict[str, Any]:
        return {
            "upstream_before": observed.upstream_text,
            "versions_before": {h: dict(v) for h, v in observed.versions.items()},
            "running_before": {h: dict(r) for h, r in observed.running.items()},
        }

    def recovery_plan(self, op: dict[str, Any]) -> tuple[Observed, list[Step]]:
        if "upstream_before" not in op:
            return Observed(None, None, ""), []
        observed = Observed(
            op.get("from_color"),
            op.get("from_version"),
            str(op.get("upstream_before") or ""),
            op.get("versions_before") or {},
            op.get("running_before") or {},
        )
        version = str(op.get("version") or "")
        return observed, release_plan(self.ctx, observed, version) if version else []

    # ----- actions -----
    def execute(self, action: Action) -> str | None:
        router = self.hosts.router
        match action:
            case Upload(host=host, src=src, dest=dest, version=version):
                return upload(self.hosts.runner(host), src, dest, version)
            case CanaryShift():
                from deployer.canary import run_step

                return run_step(router.runner, router, action, self.canary)
            case Switch(conf=conf, color=color, version=version, forward=forward):
                if not conf:
                    return "no previous upstream to restore"
                out = sorted(self.left_out) if forward else []
                if out:
                    addresses = [a for h in out for a in self.ctx.host_servers(h)]
                    conf = nginx.leave_out(conf, out, addresses)
                seconds = router.switch(conf)
                without = f" without {', '.join(out)}" if out else ""
                return (
                    f"traffic on {color or 'previous'} ({version or '-'}){without} "
                    f"after {seconds:.3f}s"
                )
            case ArmDeadMan(conf=conf, seconds=seconds):
                router.arm_dead_man(conf, seconds)
                return f"the router switches back by itself after {seconds:g}s unless called off"
            case DisarmDeadMan(must_not_have_fired=strict):
                fired = router.disarm_dead_man()
                if fired is None:
                    return "dead-man timer called off"
                when, _, status = fired.partition(" ")
                what = f"the dead-man switch had switched traffic back at {when} (exit {status})"
                if strict:
                    raise DeployerError(what)
                return what
            case StopColor(host=host, command=command):
                drained = router.wait_drained()
                self.hosts.runner(host).run(command, timeout=120)
                return f"old nginx workers drained in {drained:.2f}s"
            case ScheduleStop(host=host, color=color, seconds=seconds, command=command):
                drained = router.wait_drained()
                self.hosts.runner(host).run(command)
                return (
                    f"old nginx workers drained in {drained:.2f}s; {color} stays warm "
                    f"for {seconds:g}s"
                )
        return None

    def result_facts(self, observed: Observed | None) -> dict[str, Any] | None:
        return {"canary": self.canary} if self.canary else None

    def close(self) -> None:
        pass

    def dead_man_off(self) -> Shell | None:
        return nginx.disarm_dead_man(self.hosts.router.upstream_file)

    # ----- status -----
    def status(self, observed: Observed) -> dict[str, Any]:
        out = set(nginx.left_out(observed.upstream_text))
        unreachable = dict(observed.extra.get("unreachable") or {})
        health = self._health(observed)
        hosts = [
            {
                "host": h.name,
                "address": h.reach,
                "in_rotation": bool(observed.live_color) and h.name not in out,
                "health": unreachable.get(h.name) or health.get(h.name),
                "colors": {c: _color_status(observed, h.name, c) for c in COLORS},
            }
            for h in self.pb.app_hosts
        ]
        return {"hosts": hosts}

    def _health(self, observed: Observed) -> dict[str, str]:
        """Each host's live color, probed once directly (not through the router): "ok" or
        what was wrong."""
        live = observed.live_color
        if not live:
            return {}
        from deployer.adapters import http

        pre = self.pb.gates.pre_switch
        urls = {
            h.name: f"http://{h.reach}:{self.pb.colors.port(live)}{pre.path}"
            for h in self.pb.app_hosts
        }
        expect = self.ctx.expectation(pre, self.pb.app_hosts[0], live, observed.live_version or "")
        expect = Expectation(expect.status)  # the version may differ per host: say it, not fail
        return http.probe_each(urls, expect, timeout=min(pre.timeout, 3.0))

    def changes(self, before: Observed, after: Observed) -> list[str]:
        out = []
        if after.live_color != before.live_color:
            out.append(f"the router serves {after.live_color}, not {before.live_color}")
        for host in self.pb.app_hosts:
            for c in COLORS:
                v0 = before.versions.get(host.name, {}).get(c)
                v1 = after.versions.get(host.name, {}).get(c)
                if v0 != v1:
                    out.append(f"{host.name}: {c} records {v1 or 'nothing'}, not {v0 or 'nothing'}")
                r0 = before.running.get(host.name, {}).get(c, False)
                r1 = after.running.get(host.name, {}).get(c, False)
                if r0 != r1:
                    state = "running" if r1 else "stopped"
                    out.append(f"{host.name}: {c} is {state} now, not before the drill")
        return out


def _color_status(observed: Observed, host: str, color: str) -> dict[str, Any]:
    """A color is live on a host only if the router sends it traffic *and* it runs there;
    routed to but not running (a host added since, a crashed process) is said as such."""
    running = observed.running.get(host, {}).get(color, False)
    routed = color == observed.live_color
    return {
        "version": observed.versions.get(host, {}).get(color),
        "running": running,
        "routed": routed,
        "live": routed and running,
    }
