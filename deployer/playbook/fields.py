"""The value types playbook keys are made of: durations, status codes, host names, paths,
and the strict base model (unknown keys rejected, frozen)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from deployer.errors import printable

_DURATION = re.compile(r"^[ ]*([0-9]{1,9}(?:\.[0-9]{1,6})?)[ ]*(ms|s|m|h)[ ]*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: the longest duration any key accepts: a week (a release never waits longer)
MAX_DURATION = 7 * 24 * 3600.0


def parse_duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s")
    seconds: float | None = None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.fullmatch(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None:
        raise ValueError("must be a duration like 30s (digits 0-9, then ms, s, m or h)")
    if seconds > MAX_DURATION:
        raise ValueError("must be at most 168h")
    return seconds


def _status(code: int) -> int:
    if not 100 <= code <= 599:
        raise ValueError("must be an HTTP status code (100-599)")
    return code


StatusCode = Annotated[int, AfterValidator(_status)]
_HOSTNAME = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])$"
)
_SSH_ADDRESS = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}|\[[0-9A-Fa-f:.]{2,45}\])$"
)
NGINX_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _address(value: str) -> str:
    if not _HOSTNAME.fullmatch(value):
        raise ValueError(
            f"{printable(value)!r} is not a host name or address nginx accepts "
            "(letters, digits, . - _, or [IPv6])"
        )
    return value


def _ssh_address(value: str) -> str:
    if not _SSH_ADDRESS.fullmatch(value):
        raise ValueError(f"{printable(value)!r} is not a host name or IP address")
    return value


def _path(value: str) -> str:
    if not value.strip() or not value.strip("/ "):
        raise ValueError("must be a path below the root (not empty, not /)")
    if "\x00" in value or "\n" in value:
        raise ValueError("must not contain NUL or newline characters")
    return value


Path_ = Annotated[str, AfterValidator(_path)]


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": ["string", "number"], "pattern": r"^\d+(\.\d+)?(ms|s|m|h)$"}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: an address to connect to over SSH
SshAddress = Annotated[str, AfterValidator(_ssh_address)]
#: an address nginx and the gates reach the app at
AppAddress = Annotated[str, AfterValidator(_address)]
