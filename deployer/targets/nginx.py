"""The nginx target: app hosts over SSH, two colors, an upstream file switched gracefully."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from deployer import trust
from deployer.adapters.nginx import untrusted_path
from deployer.adapters.ship import build, upload
from deployer.commands import dead_man, files, nginx
from deployer.engine.hosts import HostPool
from deployer.errors import (
    AbortedError,
    DeployerError,
    HostError,
    HostKeyError,
    InputError,
    RecoveryNeededError,
    UntrustedError,
)
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
from deployer.values import Shell, join


class NginxTarget:
    def __init__(self, ctx: Context, hosts: HostPool):
        self.ctx, self.pb, self.hosts = ctx, ctx.pb, hosts
        self.canary: list[dict[str, Any]] = []  # each canary step's measurements and verdict
        #: what this release shipped: local source -> SHA-256 of its tree (the evidence's
        #: in-toto subject); every host gets the same build, so one entry per source
        self.shipped: dict[str, str] = {}
        self.left_out: dict[str, str] = {}
        #: the upstream this release last switched to, before hosts were left out of it
        self._forward: str | None = None
        #: the operation this target works for (its id marks every upstream it writes, and
        #: fences every switch back: see :meth:`_fenced`)
        self.op: dict[str, Any] = {}

    def begin(self, op: dict[str, Any]) -> None:
        self.op = dict(op)

    @property
    def upstream_name(self) -> str:
        return self.pb.router.upstream_name or self.pb.app

    def leave_out(self, hosts: dict[str, str]) -> None:
        self.left_out = dict(hosts)

    def take_out(self, hosts: dict[str, str]) -> str:
        """The upstream this release last switched to, without ``hosts``' servers (the
        same graceful switch; the op id stays on it, so a switch back is still fenced)."""
        if self._forward is None:
            raise DeployerError("this release switched no upstream to take hosts out of")
        new = sorted(set(hosts) - set(self.left_out))
        self.left_out = dict(hosts)
        out = sorted(self.left_out)
        addresses = [a for h in out for a in self.ctx.host_servers(h)]
        seconds = self.hosts.router.switch(nginx.leave_out(self._forward, out, addresses))
        return f"{', '.join(new)} taken out of the router after {seconds:.3f}s"

    # ----- what serves -----
    def observe(self, *, tolerant: bool = False) -> Observed:
        routers = self._routers()
        # the first router with deployer's upstream (a router just added has none yet: the
        # release writes it there too)
        text = next((t for v, t in routers.values() if v), next(iter(routers.values()))[1])
        live = nginx.parse_live(text)
        versions: dict[str, dict[str, str]] = {}
        running: dict[str, dict[str, bool]] = {}

        def look(host: Host) -> list[list[str]] | HostError:
            statuses = {c: self.ctx.shell(self.pb.service.status, host, c) for c in COLORS}
            state_dir = self.ctx.state_dir(host)
            cmd = files.observe_host(state_dir, statuses, self.ctx.owned_paths(host))
            try:
                res = self.hosts.runner(host.name).run(cmd, check=False)
                if res.exit_status == files.UNTRUSTED_PATH:
                    raise untrusted_path(host.name, res.stderr, "state_dir or an upload's dest")
                pairs = [line.split(" ", 1) for line in res.stdout.splitlines() if " " in line]
                for color, version in pairs:  # read back from the host: input
                    if color in COLORS:
                        trust.version(version, f"{host.name}: {state_dir}/{color}.version")
            except (HostKeyError, UntrustedError) as exc:
                if tolerant and isinstance(exc, UntrustedError):
                    return exc  # `deployer status` shows it for this host
                raise  # an unknown key or a hostile value is never a host merely "down"
            except HostError as exc:
                return exc
            return pairs

        hosts = self.pb.app_hosts
        workers = max(1, min(len(hosts), self.pb.fleet.parallel))
        with ThreadPoolExecutor(workers, thread_name_prefix="observe") as pool:
            seen = list(pool.map(look, hosts))  # every host at once
        unreachable = {
            h.name: str(r) for h, r in zip(hosts, seen, strict=True) if isinstance(r, HostError)
        }
        allowed = len(hosts) if tolerant else self.pb.fleet.failures_allowed(len(hosts))
        if unreachable and len(unreachable) > allowed:
            raise next(r for r in seen if isinstance(r, HostError))
        for host, pairs in zip(hosts, seen, strict=True):
            if isinstance(pairs, HostError):  # within max_failures: left out from the start
                continue
            versions[host.name] = {k: v for k, v in pairs if k in COLORS}
            running[host.name] = {c: ["up", c] in pairs for c in COLORS}
        extra: dict[str, Any] = {"unreachable": unreachable} if unreachable else {}
        if len(routers) > 1:
            extra["routers"] = {n: list(v[0]) if v[0] else None for n, v in routers.items()}
        return Observed(
            live[0] if live else None,
            live[1] if live else None,
            text,
            versions,
            running,
            extra=extra,
        )

    def _routers(self) -> dict[str, tuple[tuple[str, str] | None, str]]:
        """Each router's (live color and version, upstream file text), the text checked as
        one deployer may write back (a restore after a failure puts it back)."""
        routers = self.hosts.router
        texts = routers.read_all() if len(routers.each) > 1 else {routers.names[0]: routers.read()}
        for name, text in texts.items():
            trust.upstream(text, self.upstream_name, f"router {name}: {routers.upstream_file}")
        return {n: (nginx.parse_live(t), t) for n, t in texts.items()}

    @staticmethod
    def _agreed(observed: Observed) -> None:
        """Routers that disagree on the live color are refused: there is no idle color to
        release to (or roll back to) without hurting someone. A router without deployer's
        upstream (just added) does not disagree: the switch writes it there too."""
        lives = observed.extra.get("routers") or {}
        if len({tuple(v) for v in lives.values() if v}) <= 1:
            return
        said = ", ".join(
            f"{n} serves {v[0]} ({v[1] or '-'})" if v else f"{n} has no deployer upstream"
            for n, v in lives.items()
        )
        raise AbortedError(
            f"the routers disagree: {said}; put every router's upstream file back to the "
            "same one (copy it from one router, test, reload), then run again"
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
        self._agreed(observed)
        return version, observed, release_plan(self.ctx, observed, version)

    def rollback_plan(self, observed: Observed) -> tuple[str, Observed, list[Step]]:
        self._agreed(observed)
        version, steps = rollback_plan(self.ctx, observed)
        return version, observed, steps

    def drill_plan(
        self, observed: Observed, version: str | None, broken: Context | None
    ) -> tuple[str, Observed, list[Step]]:
        self._agreed(observed)
        version = version or observed.live_version
        if not version:
            raise AbortedError(
                f"the router does not say which version {observed.live_color} runs: "
                "give the drill one with --version"
            )
        return version, observed, drill_plan(self.ctx, observed, version, broken=broken)

    def check_drill(self, *, broken: bool, version: str | None) -> None:
        if broken and not self.pb.drill.broken_vars:
            raise InputError(
                "--broken: the playbook has no drill.broken_vars saying how to make a build "
                "whose post-switch gate fails (e.g. drill: {broken_vars: {unhealthy_after: "
                '"5"}})'
            )

    def op_record(self, observed: Observed) -> dict[str, Any]:
        return {
            "upstream_before": observed.upstream_text,
            "versions_before": {h: dict(v) for h, v in observed.versions.items()},
            "running_before": {h: dict(r) for h, r in observed.running.items()},
        }

    def recovery_plan(self, op: dict[str, Any]) -> tuple[Observed, list[Step]]:
        op = trust.op_record(op, self.upstream_name, "the operation record")
        self.op = dict(op)
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
                runner, limit = self.hosts.runner(host), self.pb.fleet.step_timeout
                said = upload(runner, src, dest, version, timeout=limit)
                self.shipped[str(src)] = build(src)[0]  # cached: the build just shipped
                return said
            case CanaryShift():
                from deployer.analysis.canary import run_step

                return run_step(
                    router, replace(action, conf=self._marked(action.conf)), self.canary
                )
            case Switch(conf=conf, color=color, version=version, forward=forward):
                if not conf:
                    return "no previous upstream to restore"
                if forward:
                    conf = self._forward = self._marked(conf)
                else:
                    done = self._fenced(conf)
                    if done is not None:
                        return done
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
            case ArmDeadMan(conf=conf, seconds=seconds, rearm=rearm, grace=grace):
                fired = router.arm_dead_man(conf, seconds, grace)
                if fired is not None and rearm:
                    raise DeployerError(
                        f"{dead_man.fired_text(fired)} before this batch: the release is late, "
                        "undoing it"
                    )
                return (
                    f"the router switches back by itself unless called off: at once if "
                    f"deployer stops, after {grace:g}s without a beat, at most {seconds:g}s"
                )
            case DisarmDeadMan(must_not_have_fired=strict):
                fired = router.disarm_dead_man()
                if fired is None:
                    return "dead-man watchdog called off"
                what = dead_man.fired_text(fired)
                if strict:
                    raise DeployerError(what)
                return what
            case StopColor(host=host, command=command):
                drained = router.wait_drained()
                self.hosts.runner(host).run(command, timeout=min(120, self.pb.fleet.step_timeout))
                return f"old nginx workers drained in {drained:.2f}s"
            case ScheduleStop(host=host, color=color, seconds=seconds, command=command):
                drained = router.wait_drained()
                self.hosts.runner(host).run(command)
                return (
                    f"old nginx workers drained in {drained:.2f}s; {color} stays warm "
                    f"for {seconds:g}s"
                )
        return None

    def _marked(self, conf: str) -> str:
        op_id = self.op.get("id")
        return nginx.mark_op(conf, str(op_id)) if op_id else conf

    def _fenced(self, conf: str) -> str | None:
        """Before a switch back: every router must still hold what this operation wrote
        (its id in the upstream file), or already the upstream being put back (then there is
        nothing to do: the text returned says so). Anything else means someone changed the
        router since (a later release, a recover elsewhere, a hand edit): nothing is
        changed, and the error says what the router holds."""
        op_id = self.op.get("id")
        if not op_id:
            return None
        routers = self.hosts.router
        texts = routers.read_all() if len(routers.each) > 1 else {routers.names[0]: routers.read()}
        if all(t == conf for t in texts.values()):
            return "the router already serves the previous upstream"
        mine = (self.op.get("to_color"), self.op.get("version"))
        for name, text in texts.items():
            owner = nginx.op_of(text)
            if text == conf or owner == op_id:
                continue
            live = nginx.parse_live(text)
            if owner is None and live is not None and live == mine:
                continue  # written by this operation before upstreams carried an op id
            serves = (
                f"{live[0]} ({live[1] or '-'})" if live else "an upstream deployer did not write"
            )
            by = f"written by operation {owner}" if owner else "not marked by any operation"
            record = self.ctx.value(self.pb.lock.path, self.pb.router_host) + ".operation"
            raise RecoveryNeededError(
                f"router {name} now serves {serves}, {by}, not by {op_id}: it was changed "
                "since (a later release, a recover elsewhere, a hand edit); nothing was "
                "switched back. Check it with `deployer status`; if what it serves is right, "
                f"remove the operation record {record} on {self.pb.router_host.name} so "
                "releases can go on"
            )
        return None

    def result_facts(self, observed: Observed | None) -> dict[str, Any] | None:
        facts: dict[str, Any] = {}
        if self.canary:
            facts["canary"] = self.canary
        if self.shipped:
            facts["artifacts"] = [{"src": k, "sha256": v} for k, v in sorted(self.shipped.items())]
        return facts or None

    def close(self) -> None:
        pass

    def dead_man_off(self) -> Shell | None:
        """The primary router's timer, called off in the commit's round trip. Several
        routers: the others' timers are called off first; if one of them had fired, the
        commit is refused the same way (the primary's timer is called off with it)."""
        routers = self.hosts.router
        fired = routers.disarm_others()
        off = dead_man.disarm(routers.upstream_file)
        if fired is None:
            return off
        return Shell.around(
            f"{off.text} >/dev/null; echo {join(['fired ' + fired]).text}",
            f"{off.shown}; report that {fired}",
            off,
        )

    # ----- status -----
    def status(self, observed: Observed) -> dict[str, Any]:
        """Per host: reachable or not (and why), in rotation or not (from the servers the
        router's upstream actually names), each color's recorded version and whether it
        runs (None: unknown, the host could not be asked), and whether the router sends it
        traffic. Nothing is inferred from the live color alone."""
        routed_to = set(nginx.servers(observed.upstream_text))
        unreachable = dict(observed.extra.get("unreachable") or {})
        health = self._health(observed)
        hosts = []
        for h in self.pb.app_hosts:
            why = unreachable.get(h.name)
            routed = {c for c in COLORS if f"{h.reach}:{self.pb.colors.port(c)}" in routed_to}
            hosts.append(
                {
                    "host": h.name,
                    "address": h.reach,
                    "reachable": why is None,
                    "unreachable": why,
                    "in_rotation": bool(routed),
                    "health": why or health.get(h.name),
                    "colors": {
                        c: _color_status(observed, h.name, c, c in routed, known=why is None)
                        for c in COLORS
                    },
                }
            )
        doc: dict[str, Any] = {"hosts": hosts}
        lives = observed.extra.get("routers")
        if lives:
            doc["routers"] = [
                {"host": n, "live_color": v[0] if v else None, "live_version": v[1] if v else None}
                for n, v in lives.items()
            ]
            said = [f"{n} {v[0]} ({v[1] or '-'})" if v else f"{n} -" for n, v in lives.items()]
            doc["lines"] = ["routers: " + ", ".join(said)]
        return doc

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


def _color_status(
    observed: Observed, host: str, color: str, routed: bool, *, known: bool
) -> dict[str, Any]:
    """A color is live on a host only if the router's upstream names it *and* it runs
    there; routed to but not running (a host added since, a crashed process) is said as
    such. ``known`` False (the host could not be asked): its version and running are None."""
    running = observed.running.get(host, {}).get(color, False) if known else None
    return {
        "version": observed.versions.get(host, {}).get(color) if known else None,
        "running": running,
        "routed": routed,
        "live": routed and running is True,
    }
