"""The composition root: the one place that picks the concrete parts (the host pool, the
playbook's target) and hands them to the engine. The CLI builds every engine here; the engine
itself never names a target (`tests/test_layers.py` keeps it so)."""

from __future__ import annotations

from deployer.adapters.pgstate import PgLock, PgOperationState
from deployer.engine.hosts import HostPool
from deployer.engine.locking import DeployLock
from deployer.engine.operations import Engine
from deployer.engine.opstate import OperationState
from deployer.plan import Context
from deployer.playbook.variables import render_value
from deployer.ports import Lock, NullReporter, OperationRecord, Reporter, Target


def build_engine(
    ctx: Context,
    *,
    reporter: Reporter | None = None,
    accept_new_host_key: bool = False,
    state_url: str | None = None,
) -> Engine:
    hosts = HostPool(ctx, accept_new_host_key=accept_new_host_key)
    lock, record = make_state(ctx, hosts, reporter or NullReporter(), state_url)
    return Engine(ctx, hosts, make_target(ctx, hosts), lock, record, reporter=reporter)


def make_state(
    ctx: Context, hosts: HostPool, reporter: Reporter, state_url: str | None
) -> tuple[Lock, OperationRecord]:
    """Where the lock and the unfinished operation's record live: in PostgreSQL when
    ``--state-url`` or ``lock.url`` names one (any runner reaches it; the lock is a session
    advisory lock, freed when its holder's session ends), else beside the lock directory on
    the router host (for Vercel: this machine)."""
    pb = ctx.pb
    url = state_url or _rendered(ctx, pb.lock.url)
    if url:
        scope = f"{pb.app}/{pb.environment}"
        return PgLock(url, scope, pb.lock.ttl), PgOperationState(url, scope)
    router = pb.router_host
    lock = DeployLock(
        hosts.runner(router.name),
        ctx.value(pb.lock.path, router),
        pb.lock.ttl,
        reporter,
        heartbeat_runner=lambda: hosts.fresh_runner(router.name),
    )
    return lock, OperationState(hosts.runner(router.name), lock.path)


def _rendered(ctx: Context, template: str | None) -> str | None:
    if not template:
        return None
    from deployer.values import Secret

    value = render_value(template, ctx.values(ctx.pb.router_host), ctx.env)
    return value.value if isinstance(value, Secret) else value


def make_target(ctx: Context, hosts: HostPool) -> Target:
    """The playbook's ``target``: a new platform is a module in :mod:`deployer.targets` and
    one line here."""
    name = getattr(ctx.pb, "target", "nginx")
    if name == "vercel":
        from deployer.targets.vercel import VercelTarget

        return VercelTarget(ctx, hosts)
    from deployer.targets.nginx import NginxTarget

    return NginxTarget(ctx, hosts)
