"""Values read back from a host are input too: checked like a user's before they are used.

deployer runs as root on hosts it does not fully own. A version in the upstream file's
marker, a color's recorded version, the operation record beside the lock, a manifest: any
of them may have been written by someone else. Each is checked here with the same rules a
playbook value or ``--version`` meets, and a value that fails is refused with the host and
the place named (:class:`~deployer.errors.UntrustedError`, exit 7), never quoted around,
cut or guessed at. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deployer.commands import nginx
from deployer.errors import UntrustedError, printable
from deployer.playbook.variables import SAFE_VERSION

COLORS = ("blue", "green")
_OP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_REVISION = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _bad(where: str, what: str, value: object) -> UntrustedError:
    return UntrustedError(
        f"{where}: {what} {printable(value)!r} is not one deployer could have written; "
        "refusing to use it (someone else may have changed it: check the host)"
    )


def version(value: object, where: str) -> str:
    if not isinstance(value, str) or not SAFE_VERSION.fullmatch(value):
        raise _bad(where, "version", value)
    return value


def optional_version(value: object, where: str) -> str | None:
    return None if value in (None, "") else version(value, where)


def color(value: object, where: str) -> str:
    if value not in COLORS:
        raise _bad(where, "color", value)
    return str(value)


def optional_color(value: object, where: str) -> str | None:
    return None if value is None else color(value, where)


def op_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not _OP_ID.fullmatch(value):
        raise _bad(where, "operation id", value)
    return value


def revision(value: object, where: str) -> str:
    """An Alembic revision id (hex by default, any identifier when set by hand)."""
    if not isinstance(value, str) or not _REVISION.fullmatch(value):
        raise _bad(where, "revision", value)
    return value


def digest(value: object, where: str) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise _bad(where, "digest", value)
    return value


def upstream(text: object, name: str, where: str) -> str:
    """An upstream file deployer may write back into nginx (see
    :func:`deployer.commands.nginx.check_upstream`)."""
    if not isinstance(text, str):
        raise _bad(where, "upstream file", type(text).__name__)
    why = nginx.check_upstream(text, name)
    if why is not None:
        raise UntrustedError(
            f"{where}: the upstream file is not one deployer may put back ({why}); it must be "
            f"one `upstream {name} {{ server ...; }}` block: refusing to write it into nginx"
        )
    live = nginx.parse_live(text)
    if live is not None:
        version(live[1], f"{where}: the live marker")
    return text


def host_versions(value: object, where: str) -> dict[str, dict[str, str]]:
    """``{host: {color: version}}``."""
    out: dict[str, dict[str, str]] = {}
    for host, colors in _mapping(value, where).items():
        out[host] = {
            color(c, f"{where} ({host})"): version(v, f"{where} ({host} {c})")
            for c, v in _mapping(colors, f"{where} ({host})").items()
        }
    return out


def host_running(value: object, where: str) -> dict[str, dict[str, bool]]:
    """``{host: {color: running}}``."""
    out: dict[str, dict[str, bool]] = {}
    for host, colors in _mapping(value, where).items():
        row: dict[str, bool] = {}
        for c, up in _mapping(colors, f"{where} ({host})").items():
            if not isinstance(up, bool):
                raise _bad(f"{where} ({host} {c})", "running flag", up)
            row[color(c, f"{where} ({host})")] = up
        out[host] = row
    return out


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _bad(where, "record", type(value).__name__)
    return value


def op_record(doc: Mapping[str, Any], upstream_name: str, where: str) -> dict[str, Any]:
    """An operation record read from the router host (or a journal), every field the
    recovery uses checked: ids, versions, colors, the upstream to put back."""
    out = dict(doc)
    out["id"] = op_id(doc.get("id"), where)
    out["version"] = optional_version(doc.get("version"), f"{where}: version")
    out["from_version"] = optional_version(doc.get("from_version"), f"{where}: from_version")
    out["from_color"] = optional_color(doc.get("from_color"), f"{where}: from_color")
    if doc.get("to_color") is not None and doc.get("upstream_before") is not None:
        out["to_color"] = color(doc.get("to_color"), f"{where}: to_color")
    if "upstream_before" in doc:
        out["upstream_before"] = upstream(
            doc.get("upstream_before") or "", upstream_name, f"{where}: upstream_before"
        )
    if "versions_before" in doc:
        out["versions_before"] = host_versions(doc["versions_before"], f"{where}: versions")
    if "running_before" in doc:
        out["running_before"] = host_running(doc["running_before"], f"{where}: running")
    return out
