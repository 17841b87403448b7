"""The Vercel target's own plan actions (wait for a deployment, promote, roll back), and what
the rolling-release steps need of the target: shared by :mod:`deployer.targets.vercel` and
:mod:`deployer.targets.vercel_rolling`, which import this module and never each other's
upper half."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from deployer.plan import TargetAction

if TYPE_CHECKING:
    from deployer.adapters.vercel import VercelApi
    from deployer.plan import Context
    from deployer.playbook.vercel_model import VercelPlaybook


class RollingHost(Protocol):
    """What a rolling release's steps use of the Vercel target."""

    ctx: Context
    pb: VercelPlaybook
    api: VercelApi
    project_id: str
    facts: dict[str, Any]

    def _plain_headers(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class WaitReady(TargetAction):
    deployment: str

    def describe(self) -> list[str]:
        return [f"GET /v13/deployments/{self.deployment} until READY (ERROR/CANCELED: abort)"]


@dataclass(frozen=True)
class _Move(TargetAction):
    """Production to ``deployment``, followed until production serves it."""

    switches_traffic = True
    endpoint = ""
    deployment: str
    url: str
    version: str

    def describe(self) -> list[str]:
        return [
            f"POST {self.endpoint}/{self.deployment}, then follow the project until "
            "production serves it"
        ]


class Promote(_Move):
    """A release; the undo of a rollback."""

    endpoint = "/v10/projects/{project}/promote"


class RollBack(_Move):
    """The undo of a release; `deployer rollback`."""

    endpoint = "/v1/projects/{project}/rollback"
