"""`deployer docs`: every playbook key with its type, default and meaning, from the model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from deployer.errors import InputError
from deployer.playbook.loader import _inner_model
from deployer.playbook.models import Playbook, parse_duration


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return text.replace("typing.", "").replace("deployer.playbook.models.", "")


def _is_duration(field: Any) -> bool:
    return any(getattr(m, "func", None) is parse_duration for m in field.metadata)


def _duration_text(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def _rows(model: type[BaseModel], prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        inner = _inner_model(field.annotation)
        is_list = "list[" in str(field.annotation)
        default: Any = None
        if field.default is not PydanticUndefined and field.default is not None:
            default = field.default
        if is_list:
            kind = "list"
        elif _is_duration(field):
            kind = "duration"
            default = _duration_text(default) if default is not None else None
        else:
            kind = inner.__name__ if inner else _type_name(field.annotation)
        rows.append(
            {
                "key": key + ("[]" if is_list else ""),
                "type": kind,
                "required": field.is_required(),
                "default": default,
                "description": field.description or "",
            }
        )
        if inner is not None:
            rows += _rows(inner, f"{key}{'[]' if is_list else ''}.")
    return rows


def reference(section: str | None = None) -> list[dict[str, Any]]:
    """Every key of the nginx playbook, then the keys only a `target: vercel` playbook has
    (its shared sections are the same models)."""
    from deployer.playbook.vercel_model import VercelPlaybook

    rows = _rows(Playbook, "")
    known = {r["key"] for r in rows}
    rows += [r for r in _rows(VercelPlaybook, "") if r["key"] not in known]
    if section:
        picked = [
            r
            for r in rows
            if r["key"] == section
            or r["key"].startswith(section + ".")
            or r["key"].startswith(section + "[]")
        ]
        if not picked:
            top = sorted({r["key"].split(".")[0].removesuffix("[]") for r in rows})
            raise InputError(f"no playbook section {section!r}; sections: {', '.join(top)}")
        return picked
    return rows
