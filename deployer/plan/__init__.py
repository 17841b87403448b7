"""Playbook + observed state -> the saga's steps. Pure: no I/O, every value passed in.

A step has a *do* action and, where it changed something users could notice, an *undo*.
Steps before the pivot (the post-switch gate) are compensated in reverse when one fails;
steps after it (keep warm, stop the old color) only go forward.
"""

from __future__ import annotations

from typing import Any

from deployer.commands import alembic as alembic_cmd
from deployer.commands import files
from deployer.plan.actions import (
    Action,
    ArmDeadMan,
    CanaryShift,
    CheckDatabase,
    Commit,
    DisarmDeadMan,
    DrillVerdict,
    ForgetDeferred,
    Gate,
    Migrate,
    ProveSpec,
    Run,
    ScheduleStop,
    Step,
    StopColor,
    Switch,
    TargetAction,
    Upload,
    describe,
)
from deployer.plan.context import COLORS, Context, Observed, other
from deployer.playbook.variables import render_value
from deployer.values import Shell

__all__ = [
    "COLORS",
    "Action",
    "ArmDeadMan",
    "CanaryShift",
    "CheckDatabase",
    "Commit",
    "Context",
    "DisarmDeadMan",
    "DrillVerdict",
    "ForgetDeferred",
    "Gate",
    "Migrate",
    "Observed",
    "Run",
    "ScheduleStop",
    "Step",
    "StopColor",
    "Switch",
    "TargetAction",
    "Upload",
    "describe",
    "drill_plan",
    "other",
    "release_plan",
    "rollback_plan",
]


def prepare_steps(
    ctx: Context,
    color: str,
    version: str,
    observed: Observed | None = None,
    *,
    reuse: bool = False,
    migrate: bool = True,
    restore: Context | None = None,
) -> list[Step]:
    """Ship ``version`` to ``color`` on every host and start it (undo: stop it and put back
    the version the color had, so a later rollback never picks the failed one, and start
    that version again if it was warm, with ``restore``'s values: by default the playbook's
    vars without this run's ``--var`` overrides, which were meant for ``version``).

    With ``reuse`` (a rollback, a drill of the live version) the local folder is never
    uploaded (it holds newer code): it checks, before anything changes, that the version's
    directory is still on each host and starts it from there; only an ``upload.src`` that
    names the version (``builds/${version}``) is shipped, and only if missing (releases are
    immutable). ``migrate`` False: no migrate step (a rollback or drill never migrates)."""
    pb = ctx.pb
    checks: list[Step] = []
    steps: list[Step] = []
    starts: list[Step] = []
    for host in pb.app_hosts:
        before = observed.versions.get(host.name, {}).get(color) if observed else None
        warm = bool(observed and observed.running.get(host.name, {}).get(color))
        # undo: an aborted release leaves the previous color as warm as it found it
        again = restore or ctx.defaults()
        rewarm = again.rewarm(host, color, before) if warm and before else None
        steps.append(
            Step("stop-idle", host.name, ctx.stop(host, color), undo=rewarm, group="prepare")
        )
        for item in pb.ship:
            if item.upload is not None:
                dest = ctx.value(item.upload.dest, host, color, version)
                versioned = "${version}" in item.upload.src
                if reuse and not versioned:
                    check = Run(host.name, (files.require_release(dest, version),))
                    checks.append(Step(f"check:{item.label}", host.name, check, group="check"))
                    continue
                src = ctx.loaded.local_path(item.upload.src.replace("${version}", version))
                upload = Upload(host.name, src, dest, version)
                clean = Run(host.name, (files.clean_staging(dest),))  # a half upload
                steps.append(
                    Step(f"ship:{item.label}", host.name, upload, undo=clean, group="prepare")
                )
            elif item.run is not None:
                cmd = ctx.shell(item.run, host, color, version)
                run = Run(host.name, (cmd,))
                steps.append(Step(f"ship:{item.label}", host.name, run, group="prepare"))
        state_dir = ctx.value(pb.state_dir, host, color, version)
        start = (
            ctx.shell(pb.service.start, host, color, version),
            files.write_state(state_dir, color, version),
        )
        stop = ctx.stop(host, color)
        undo = StopColor(
            host.name, color, stop.command.then(files.restore_state(state_dir, color, before))
        )
        starts.append(Step("start", host.name, Run(host.name, start), undo=undo, group="start"))
    if pb.migrate is not None and migrate:
        live: list[tuple[str, Any]] = []
        if observed is not None and observed.live_color:
            pre, port = pb.gates.pre_switch, pb.colors.port(observed.live_color)
            live = [
                (
                    f"http://{h.reach}:{port}{pre.path}",
                    ctx.expectation(pre, h, observed.live_color, observed.live_version or ""),
                )
                for h in pb.app_hosts
            ]
        running = sorted(
            {
                v
                for h, row in (observed.versions.items() if observed else ())
                for c, v in row.items()
                if observed is not None and observed.running.get(h, {}).get(c)
            }
        )
        window = pb.gates.post_switch.window + pb.rollback.keep_warm
        steps.append(migrate_step(ctx, color, version, tuple(live), tuple(running), window))
    return checks + steps + starts


def migrate_step(
    ctx: Context,
    color: str,
    version: str,
    live_checks: tuple[tuple[str, Any], ...] = (),
    running: tuple[str, ...] = (),
    window: float = 0.0,
) -> Step:
    """Migrations before the new color starts (the old one keeps serving): expand ones only
    (`migrate.contract: deferred`), or every pending one (`with-release`)."""
    m = ctx.pb.migrate
    assert m is not None
    host = ctx.pb.migrate_host
    command = ctx.shell(m.command, host, color, version)
    url = render_value(m.database_url, ctx.values(host, color, version), ctx.env)

    def run(*args: str) -> Shell:
        assert m is not None
        return alembic_cmd.alembic(command, url, m.lock_timeout, m.statement_timeout, *args)

    action = Migrate(
        host.name,
        ctx.loaded.local_path(m.scripts),
        run("current"),
        run("upgrade", "head"),
        m.retries,
        tuple(m.acknowledge),
        ctx.state_dir(host),
        version,
        _prove_spec(ctx, host, color, version),
        m.contract,
        (command, url, m.lock_timeout, m.statement_timeout),
        live_checks,
        tuple(v for v in running if v != version),
        running,
        m.contract_after if m.contract_after is not None else window,
    )
    undo = ForgetDeferred() if m.contract == "deferred" else None
    return Step("migrate", host.name, action, undo=undo)


def _prove_spec(ctx: Context, host: Any, color: str, version: str) -> ProveSpec | None:
    p = ctx.pb.migrate.prove if ctx.pb.migrate else None
    if p is None:
        return None
    return ProveSpec(
        render_value(p.url, ctx.values(host, color, version), ctx.env),
        p.rows,
        p.lock_bound,
        ctx.loaded.local_path(p.schema_from) if p.schema_from else None,
        p.i_know,
    )


def check_database_step(ctx: Context, color: str, version: str, force: bool = False) -> Step:
    m = ctx.pb.migrate
    assert m is not None
    host = ctx.pb.migrate_host
    command = ctx.shell(m.command, host, color, version)
    url = render_value(m.database_url, ctx.values(host, color, version), ctx.env)
    current = alembic_cmd.alembic(command, url, m.lock_timeout, m.statement_timeout, "current")
    action = CheckDatabase(
        host.name, ctx.loaded.local_path(m.scripts), current, ctx.state_dir(host), version, force
    )
    return Step("check-database", host.name, action)


def switch_steps(ctx: Context, observed: Observed, color: str, version: str) -> list[Step]:
    """Pre-switch gate, the switch (undo: the previous upstream), post-switch gate, finish."""
    pb = ctx.pb
    pre = pb.gates.pre_switch
    first = pb.app_hosts[0]
    pre_urls = [f"http://{h.reach}:{pb.colors.port(color)}{pre.path}" for h in pb.app_hosts]
    post = pb.gates.post_switch
    post_url = pb.router.url.rstrip("/") + post.path
    router = pb.router_host.name
    margin = pb.router.dead_man_margin
    dead_man = bool(margin and observed.live_color and observed.upstream_text)
    canary = canary_steps(ctx, observed, color, version)
    deadline = post.window + post.timeout + margin
    # a canary step with no verdict yet goes on up to its analysis's max_pause
    deadline += sum(
        max(float(getattr(s.do, "pause", 0.0)), float(pb.strategy.analysis.max_pause)) + 10.0
        for s in canary
    )
    if pb.fleet.failures_allowed(len(pb.app_hosts)):  # hosts taken out: the gate runs again
        deadline += post.window + post.timeout
    # one gate per host, in the lane that started it (the same group as "start")
    steps = [
        Step(
            "pre-switch-gate",
            h.name,
            Gate(
                "pre_switch",
                (url,),
                ctx.expectation(pre, h, color, version),
                ((h.name, ctx.shell(pb.service.status, h, color)),),
            ),
            group="start",
        )
        for h, url in zip(pb.app_hosts, pre_urls, strict=True)
    ]
    expect_post = ctx.expectation(post, first, color, version)
    diagnose = tuple((h.name, u) for h, u in zip(pb.app_hosts, pre_urls, strict=True))
    restore = Switch(observed.live_color, observed.live_version, observed.upstream_text)
    batches = pb.fleet.batches([h.name for h in pb.app_hosts])
    if len(batches) > 1 and observed.live_color and canary == []:
        steps += batch_steps(ctx, observed, color, version, batches, dead_man, deadline)
    else:
        steps += [
            Step(
                "switch",
                router,
                Switch(color, version, ctx.upstream(color, version), forward=True),
                undo=restore,
            ),
            Step(
                "post-switch-gate",
                None,
                Gate("post_switch", (post_url,), expect_post, diagnose=diagnose),
            ),
        ]
    if dead_man and len(batches) == 1:  # bounds users' exposure if deployer dies after it
        arm = Step(
            "arm-dead-man",
            router,
            ArmDeadMan(observed.upstream_text, deadline, grace=pb.router.dead_man_grace),
            undo=DisarmDeadMan(must_not_have_fired=False),
        )
        steps.insert(next(i for i, s in enumerate(steps) if s.name == "switch"), arm)
    at = next(i for i, s in enumerate(steps) if s.name == "switch")
    steps[at:at] = canary
    steps.append(Step("commit", router, Commit(dead_man)))  # the last step before the pivot
    if observed.live_color:
        old = observed.live_color
        steps += [
            Step("stop-old-later", h.name, ctx.stop_later(h, old), after_pivot=True, group="finish")
            for h in pb.app_hosts
        ]
    steps += prune_steps(ctx, observed, color, version)
    return steps


def batch_steps(
    ctx: Context,
    observed: Observed,
    color: str,
    version: str,
    batches: list[list[str]],
    dead_man: bool,
    deadline: float,
) -> list[Step]:
    """Traffic moved batch by batch, each gated through the router before the next; the
    first switch's undo puts the previous upstream back for all (the later ones need none).
    The dead-man watchdog is armed again before each switch (its deadline is one batch's)."""
    pb = ctx.pb
    router, post = pb.router_host.name, pb.gates.post_switch
    post_url = pb.router.url.rstrip("/") + post.path
    live = (str(observed.live_color), observed.live_version or "")
    expect = ctx.expectation(post, pb.app_hosts[0], color, version)
    port = pb.colors.port(color)
    moved: set[str] = set()
    steps: list[Step] = []
    n = len(batches)
    for k, batch in enumerate(batches, 1):
        moved |= set(batch)
        last = k == n
        suffix = "" if last else f":batch-{k}"
        if dead_man:
            steps.append(
                Step(
                    f"arm-dead-man{suffix}",
                    router,
                    ArmDeadMan(
                        observed.upstream_text,
                        deadline,
                        rearm=k > 1,
                        grace=pb.router.dead_man_grace,
                    ),
                    undo=DisarmDeadMan(must_not_have_fired=False),
                )
            )
        conf = (
            ctx.upstream(color, version)
            if last
            else ctx.batch_upstream(live, (color, version), set(moved), (k, n))
        )
        undo = Switch(*live, observed.upstream_text) if k == 1 else None
        steps.append(
            Step(f"switch{suffix}", router, Switch(color, version, conf, forward=True), undo=undo)
        )
        diagnose = tuple(
            (h, f"http://{pb.host(h).reach}:{port}{pb.gates.pre_switch.path}") for h in batch
        )
        about = f"after batch {k}/{n} ({', '.join(batch)})"
        gate = Gate("post_switch", (post_url,), expect, about=about, diagnose=diagnose)
        steps.append(Step(f"post-switch-gate{suffix}", None, gate))
    return steps


def canary_steps(ctx: Context, observed: Observed, color: str, version: str) -> list[Step]:
    """`strategy: canary`: a weighted step per weight below 100, each analysed; the first
    one's undo puts the previous upstream back (the later ones need none). None on a first
    release: there is no old color to send the rest of the traffic to, or to compare with."""
    st = ctx.pb.strategy
    if st.kind != "canary" or not observed.live_color or not observed.upstream_text:
        return []
    old, old_version = observed.live_color, observed.live_version or ""
    servers = tuple((s, c) for c in (old, color) for s in ctx.servers(c))
    prom = st.analysis.prometheus
    values = ctx.values(ctx.pb.app_hosts[0], color, version)
    queries = tuple(
        (name, str(render_value(q.query, values, ctx.env)), q.min, q.max)
        for name, q in (prom.queries.items() if prom else ())
    )
    counts: tuple[tuple[str, str, str], ...] = ()
    if prom is not None and prom.judge is not None:
        stable = ctx.values(ctx.pb.app_hosts[0], old, old_version)
        counts = tuple(
            (name, str(render_value(q, values, ctx.env)), str(render_value(q, stable, ctx.env)))
            for name, q in (
                ("requests", prom.judge.requests),
                ("errors", prom.judge.errors),
                ("slow", prom.judge.slow),
            )
            if q is not None
        )
    access_log = ctx.pb.router.access_log
    out = []
    for i, spec in enumerate(s for s in st.steps if s.weight < 100):
        shift = CanaryShift(
            color,
            version,
            old,
            spec.weight,
            spec.pause,
            ctx.canary_upstream((old, old_version), (color, version), spec.weight),
            servers,
            ctx.value(str(access_log), ctx.pb.router_host) if access_log else "",
            st.analysis,
            st.inconclusive,
            queries,
            counts,
        )
        undo = Switch(old, observed.live_version, observed.upstream_text) if i == 0 else None
        out.append(Step(f"canary-{spec.weight}%", ctx.pb.router_host.name, shift, undo=undo))
    return out


def prune_steps(ctx: Context, observed: Observed, color: str, version: str) -> list[Step]:
    """Keep the newest ``keep_releases`` versions under each ``…/${version}`` upload
    directory, never the new one nor the warm one."""
    pb = ctx.pb
    protect = [v for v in (version, observed.live_version) if v]
    out = []
    for host in pb.app_hosts:
        for item in pb.ship:
            if item.upload is None or not item.upload.dest.rstrip("/").endswith("/${version}"):
                continue
            dest = ctx.value(item.upload.dest, host, color, version)
            parent = dest.rstrip("/").rsplit("/", 1)[0]
            cmd = files.prune_releases(parent, pb.keep_releases, protect)
            run = Run(host.name, (cmd,))
            out.append(Step("prune-releases", host.name, run, after_pivot=True, group="finish"))
    return out


def release_plan(ctx: Context, observed: Observed, version: str) -> list[Step]:
    color = observed.idle_color
    return prepare_steps(ctx, color, version, observed) + switch_steps(
        ctx, observed, color, version
    )


def rollback_plan(ctx: Context, observed: Observed) -> tuple[str, list[Step]]:
    """Back to the idle color's recorded version: switch if it is warm, else redeploy it."""
    version = observed.idle_version()
    if version is None:
        from deployer.errors import AbortedError

        raise AbortedError(
            f"no previous version recorded for the idle color {observed.idle_color}; "
            "nothing to roll back to"
        )
    color = observed.idle_color
    database = [check_database_step(ctx, color, version)] if ctx.pb.migrate else []
    if observed.idle_running_everywhere():
        keep = [
            Step("keep-warm", h.name, Run(h.name, (files.cancel_stop(ctx.state_dir(h), color),)))
            for h in ctx.pb.app_hosts
        ]
        return version, database + keep + switch_steps(ctx, observed, color, version)
    steps = prepare_steps(ctx, color, version, observed, reuse=True, migrate=False)
    return version, database + steps + switch_steps(ctx, observed, color, version)


def drill_plan(
    ctx: Context, observed: Observed, version: str, *, broken: Context | None = None
) -> list[Step]:
    """A release of ``version`` to the idle color that always ends switched back: prepare
    (never migrating; the live version's directory is reused, not uploaded), pre-switch gate,
    dead-man watchdog, switch, post-switch gate, then the drill's verdict, which rolls back the
    way a failing gate does. ``broken``: the values that make the build fail its gate."""
    build = broken or ctx
    color = observed.idle_color
    reuse = version == observed.live_version
    steps = prepare_steps(build, color, version, observed, reuse=reuse, migrate=False, restore=ctx)
    switch = [
        s
        for s in switch_steps(build, observed, color, version)
        if not s.after_pivot and not isinstance(s.do, Commit)
    ]
    return steps + switch + [Step("drill-verdict", None, DrillVerdict(broken is not None))]
