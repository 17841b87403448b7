"""Load a playbook from YAML, keeping each key's line so every error can point at it."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from deployer.errors import PlaybookError
from deployer.playbook.models import Playbook

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class LoadedPlaybook:
    """A validated playbook and where it came from (relative paths resolve from ``base``)."""

    model: Playbook
    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent

    def local_path(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()


class PlaybookProblems(PlaybookError):
    """One or more problems; the message has one line per problem."""

    def __init__(self, problems: list[PlaybookError]):
        self.problems = problems
        super(PlaybookError, self).__init__("\n".join(str(p) for p in problems))


def _compose(text: str, path: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlaybookError(f"invalid YAML: {problem}", path=path, line=line) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _walk(node, (), lines, path), lines


def _walk(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: str) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise PlaybookError(
                    "duplicate key",
                    path=path,
                    line=key_node.start_mark.line + 1,
                    key=_dotted((*loc, key)),
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _walk(value_node, (*loc, key), lines, path)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(child, (*loc, i), lines, path) for i, child in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for i in range(len(loc), -1, -1):
        if loc[:i] in lines:
            return lines[loc[:i]]
    return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of ``loc`` (for did-you-mean)."""
    model: type[BaseModel] | None = Playbook
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _message(err: dict[str, Any], loc: Loc) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc)
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown key{hint}"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind == "string_pattern_mismatch":
        return f"{msg} (got {err.get('input')!r})"
    return msg


def _problems(exc: ValidationError, lines: dict[Loc, int], path: str) -> list[PlaybookError]:
    out: list[PlaybookError] = []
    for err in exc.errors():
        loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        msg = _message(dict(err), loc)
        key = _dotted(loc)
        if (
            not loc
            and ":" in msg
            and msg.split(":", 1)[0].replace(".", "").replace("_", "").isalnum()
        ):
            # cross-field checks say "key.path: why"; point at that key's line
            key, msg = (s.strip() for s in msg.split(":", 1))
            loc = tuple(int(p) if p.isdigit() else p for p in key.split("."))
        out.append(PlaybookError(msg, path=path, line=_line_for(loc, lines), key=key))
    return out


def parse_playbook(text: str, path: str = "<playbook>") -> Playbook:
    data, lines = _compose(text, path)
    if not isinstance(data, dict):
        raise PlaybookError(
            "a playbook is a YAML mapping (app:, hosts:, colors:, ...)", path=path, line=1
        )
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc, lines, path)
        if len(problems) == 1:
            raise problems[0] from None
        raise PlaybookProblems(problems) from None


def load_playbook(path: str | Path) -> LoadedPlaybook:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlaybookError("no such playbook file", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"cannot read playbook: {exc}", path=str(p)) from None
    return LoadedPlaybook(parse_playbook(text, str(p)), p.resolve())
