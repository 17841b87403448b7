"""Targets: where traffic is switched. One module per platform behind
:class:`deployer.ports.Target`; the playbook's ``target`` picks it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.engine.hosts import HostPool
    from deployer.plan import Context
    from deployer.ports import Target


def make_target(ctx: Context, hosts: HostPool) -> Target:
    name = getattr(ctx.pb, "target", "nginx")
    if name == "vercel":
        from deployer.targets.vercel import VercelTarget

        return VercelTarget(ctx, hosts)
    from deployer.targets.nginx import NginxTarget

    return NginxTarget(ctx, hosts)
