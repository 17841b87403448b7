"""`gates:` in a playbook: the pre-switch gate (the new color, directly) and the post-switch
gate (through the router)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from deployer.playbook.fields import Duration, StatusCode, Strict


class PreSwitchGate(Strict):
    path: str = Field("/health", description="Path probed on the idle color, directly.")
    expect_status: StatusCode = Field(200, description="Status every probe must return.")
    expect_body: str | None = Field(None, description="Text the body must contain.")
    expect_json: dict[str, Any] | None = Field(
        None,
        description="JSON fields (dotted paths) and the values they must have; "
        "`${version}` and `${color}` are substituted.",
    )
    timeout: Duration = Field(2.0, description="Timeout of one probe.")
    interval: Duration = Field(0.5, description="Pause between probes.")
    successes: int = Field(3, ge=1, description="Consecutive successes needed.")
    max_p95: Duration | None = Field(
        None, description="Largest p95 latency allowed over the probes. Default: no limit."
    )
    budget: Duration = Field(60.0, description="Total time allowed before the gate fails.")


class PostSwitchGate(Strict):
    path: str = Field("/health", description="Path sampled through the router.")
    expect_status: StatusCode = Field(
        200, description="Status a sample must return to count as ok."
    )
    window: Duration = Field(30.0, description="How long traffic is watched after the switch.")
    rate: float = Field(10.0, gt=0, le=1000, description="Samples per second.")
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Largest share of failed samples allowed."
    )
    max_p95: Duration = Field(1.0, description="Largest p95 latency allowed.")
    timeout: Duration = Field(2.0, description="Timeout of one sample.")


class Gates(Strict):
    def worst_case_seconds(self) -> float:
        pre, post = self.pre_switch, self.post_switch
        return pre.budget + pre.timeout + post.window + post.timeout

    pre_switch: PreSwitchGate = Field(
        default_factory=PreSwitchGate, description="Gate on the idle color before the switch."
    )
    post_switch: PostSwitchGate = Field(
        default_factory=PostSwitchGate, description="Gate through the router after the switch."
    )
