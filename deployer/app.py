"""The composition root: the one place that picks the concrete parts (the host pool, the
playbook's target) and hands them to the engine. The CLI builds every engine here; the engine
itself never names a target (`tests/test_layers.py` keeps it so)."""

from __future__ import annotations

from deployer.engine.hosts import HostPool
from deployer.engine.operations import Engine
from deployer.plan import Context
from deployer.ports import Reporter, Target


def build_engine(
    ctx: Context, *, reporter: Reporter | None = None, accept_new_host_key: bool = False
) -> Engine:
    hosts = HostPool(ctx, accept_new_host_key=accept_new_host_key)
    return Engine(ctx, hosts, make_target(ctx, hosts), reporter=reporter)


def make_target(ctx: Context, hosts: HostPool) -> Target:
    """The playbook's ``target``: a new platform is a module in :mod:`deployer.targets` and
    one line here."""
    name = getattr(ctx.pb, "target", "nginx")
    if name == "vercel":
        from deployer.targets.vercel import VercelTarget

        return VercelTarget(ctx, hosts)
    from deployer.targets.nginx import NginxTarget

    return NginxTarget(ctx, hosts)
