"""`fleet:` in a playbook: how many hosts are prepared at once, how traffic moves across
them (batches, each gated), and how many may fail before the release is undone."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema

from deployer.playbook.fields import Duration, Strict

_COUNT = re.compile(r"^(\d+)(%?)$")


def _count(value: object) -> str:
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if not _COUNT.match(text):
        raise ValueError(f"expected a number of hosts or a percentage like 25%, got {value!r}")
    if text.endswith("%") and not 0 <= int(text[:-1]) <= 100:
        raise ValueError(f"a percentage is between 0% and 100%, got {text}")
    return text


Count = Annotated[
    str,
    BeforeValidator(_count),
    WithJsonSchema({"type": ["string", "integer"], "pattern": r"^\d+%?$"}),
]


def resolve(count: str, hosts: int, *, at_least_one: bool) -> int:
    """A count of hosts out of ``hosts``: a percentage rounds down (a batch: up, at least
    one host)."""
    m = _COUNT.match(count)
    assert m is not None
    n = int(m.group(1))
    if m.group(2):
        exact = hosts * n / 100
        n = math.ceil(exact) if at_least_one else math.floor(exact + 1e-9)
    return max(1, min(n, hosts)) if at_least_one else min(n, hosts)


class Fleet(Strict):
    parallel: int = Field(
        20, ge=1, le=500, description="Hosts prepared at once (each on its own connection)."
    )
    batch_size: Count | None = Field(
        None,
        description="Hosts whose traffic moves to the new color per batch (a number or a "
        "percentage); each batch is gated through the router before the next. Every host is "
        "prepared first (the idle color serves nobody). Default: all at once.",
    )
    max_failures: Count = Field(
        "0",
        description="Hosts that may fail (unreachable, a failed ship or start, a pre-switch "
        "gate that fails or times out; after the switch, a host whose direct probe fails "
        "while the others pass) while the release goes on: they are left out of the router "
        "(the others serve one version) and named. More, and the release is undone "
        "everywhere.",
    )

    connect_timeout: Duration = Field(
        10.0, gt=0, le=120, description="One SSH connection attempt's timeout."
    )
    connect_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="SSH connection attempts to a host (refused, timed out, reset) before it "
        "is unreachable, within twice `connect_timeout` in all; a host found unreachable is "
        "not tried again in the same operation (its undo steps fail at once, named).",
    )

    step_timeout: Duration = Field(
        600.0,
        gt=0,
        le=86400,
        description="Longest one host's step may run (a ship command, an upload, stopping a "
        "color) before it fails there, naming the host; the batch policy then decides. A host "
        "that stops answering is declared lost sooner (about 15 s, SSH and TCP keepalives).",
    )

    def batches(self, hosts: list[str]) -> list[list[str]]:
        if self.batch_size is None:
            return [list(hosts)]
        size = resolve(self.batch_size, len(hosts), at_least_one=True)
        return [hosts[i : i + size] for i in range(0, len(hosts), size)]

    def failures_allowed(self, hosts: int) -> int:
        return resolve(self.max_failures, hosts, at_least_one=False)
