"""Load a playbook from YAML, keeping each key's line so every error can point at it."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ValidationError

from deployer.errors import PlaybookError, printable
from deployer.playbook.models import Playbook
from deployer.playbook.reading import (
    MAX_DEPTH,
    BoundedLoader,
    UnreadableFile,
    read_bounded,
)

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


#: a hostile file is refused past these (see also :mod:`deployer.playbook.reading`)
MAX_NODES = 20_000  # after alias expansion (a real playbook has a few hundred)

_SURROGATE = re.compile("[\ud800-\udfff]")
_STANDARD = "tag:yaml.org,2002:"
_COLLECTION_TAGS = {f"{_STANDARD}map", f"{_STANDARD}seq", f"{_STANDARD}omap"}


def _line_at(text: str, position: int | None) -> int | None:
    if position is None:
        return None
    return text.count("\n", 0, max(0, position)) + 1


def _compose(text: str, path: str) -> tuple[Any, dict[Loc, int]]:
    try:
        node = yaml.compose(text, Loader=BoundedLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else _line_at(text, getattr(exc, "position", None))
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None)
        problem = problem or str(exc).splitlines()[0]
        raise PlaybookError(f"invalid YAML: {printable(problem)}", path=path, line=line) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return None, lines
    return _Walker(path, lines).walk(node, (), 0), lines


class _Walker:
    """Nodes -> plain values, with each key's line. Aliases are followed (they are how YAML
    shares values) but counted: a file that expands past :data:`MAX_NODES` or nests past
    :data:`MAX_DEPTH` (an alias bomb, a recursive alias) is refused, never expanded."""

    def __init__(self, path: str, lines: dict[Loc, int]):
        self.path, self.lines, self.nodes = path, lines, 0
        self.loader = yaml.SafeLoader("")

    def _error(self, message: str, node: yaml.Node, loc: Loc) -> PlaybookError:
        return PlaybookError(
            message, path=self.path, line=node.start_mark.line + 1, key=_dotted(loc)
        )

    def walk(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self._error(
                f"more than {MAX_NODES} values after expanding aliases (an alias bomb?)", node, loc
            )
        if depth > MAX_DEPTH:
            raise self._error(
                f"nested deeper than {MAX_DEPTH} levels (a recursive alias?)", node, loc
            )
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if (
            isinstance(node, yaml.MappingNode | yaml.SequenceNode)
            and node.tag not in _COLLECTION_TAGS
        ):
            raise self._error(f"unknown tag {printable(node.tag)}", node, loc)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(child, (*loc, i), depth + 1) for i, child in enumerate(node.value)]
        return self._scalar(node, loc)

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        explicit = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        try:
            self.loader.flatten_mapping(node)  # `<<: *base` merge keys, as YAML 1.1 says
        except yaml.YAMLError as exc:
            raise self._error(
                f"invalid merge: {printable(getattr(exc, 'problem', exc))}", node, loc
            ) from None
        out: dict[str, Any] = {}
        seen_explicit: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(
                    "a key must be a plain name, not a list or a mapping", key_node, loc
                )
            key = self._scalar(key_node, loc)
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise self._error(f"a key must be a name, not {type(key).__name__}", key_node, loc)
            key = str(key)
            if id(key_node) in explicit:  # a merged value may be overridden, once
                if key in seen_explicit:
                    raise self._error("duplicate key", key_node, (*loc, key))
                seen_explicit.add(key)
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = self.walk(value_node, (*loc, key), depth + 1)
            self.lines[(*loc, key)] = key_node.start_mark.line + 1
        return out

    def _scalar(self, node: yaml.Node, loc: Loc) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            why = getattr(exc, "problem", None) or str(exc).splitlines()[0] or type(exc).__name__
            raise self._error(f"bad value: {printable(why)}", node, loc) from None
        if isinstance(value, str) and _SURROGATE.search(value):
            # a "\ud800" escape: a string no file, shell or API can carry; refused here,
            # not at the first write that tries to encode it
            raise self._error("a lone surrogate (\\uD800-\\uDFFF) is not text", node, loc)
        return value


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for i in range(len(loc), -1, -1):
        if loc[:i] in lines:
            return lines[loc[:i]]
    return None


def _model_at(loc: Loc, root: type[BaseModel] = Playbook) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of ``loc`` (for did-you-mean)."""
    model: type[BaseModel] | None = root
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


def _message(err: dict[str, Any], loc: Loc, root: type[BaseModel] = Playbook) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc, root)
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
        return f"{msg} (got {printable(err.get('input'))!r})"
    return msg


def _problems(
    exc: ValidationError, lines: dict[Loc, int], path: str, root: type[BaseModel] = Playbook
) -> list[PlaybookError]:
    out: list[PlaybookError] = []
    for err in exc.errors():
        loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
        msg = _message(dict(err), loc, root)
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


def _model_for(data: dict[Any, Any], lines: dict[Loc, int], path: str) -> type[BaseModel]:
    """The model the playbook's ``target`` names (default: nginx)."""
    from deployer.playbook.vercel_model import VercelPlaybook

    targets: dict[str, type[BaseModel]] = {"nginx": Playbook, "vercel": VercelPlaybook}
    target = data.get("target", "nginx")
    if not isinstance(target, str) or target not in targets:
        raise PlaybookError(
            f"unknown target {printable(target)!r} (known: {', '.join(targets)})",
            path=path,
            line=_line_for(("target",), lines),
            key="target",
        )
    return targets[target]


def parse_playbook(text: str, path: str = "<playbook>") -> Playbook:
    """The validated playbook. A `target: vercel` playbook is a
    :class:`~deployer.playbook.vercel_model.VercelPlaybook`, typed here as its nginx sibling:
    it has every attribute the shared code (engine, lock, migrate, evidence) uses, and only
    the targets read the rest (``deployer.targets``)."""
    data, lines = _compose(text, path)
    if not isinstance(data, dict):
        raise PlaybookError(
            "a playbook is a YAML mapping (app:, hosts:, colors:, ...)", path=path, line=1
        )
    model = _model_for(data, lines, path)
    _hosts_from_inventory(data, lines, path)
    try:
        return cast(Playbook, model.model_validate(data))
    except ValidationError as exc:
        problems = _problems(exc, lines, path, model)
        if len(problems) == 1:
            raise problems[0] from None
        raise PlaybookProblems(problems) from None


def _hosts_from_inventory(data: dict[str, Any], lines: dict[Loc, int], path: str) -> None:
    """`inventory: {path, group, ...}` fills `hosts:` from an Ansible inventory."""
    inv = data.get("inventory")
    if not isinstance(inv, dict):
        return
    line = _line_for(("inventory",), lines)
    if "hosts" in data:
        raise PlaybookError(
            "give hosts or inventory, not both", path=path, line=line, key="inventory"
        )
    from deployer.playbook.inventory import InventoryError, playbook_hosts

    where = inv.get("path")
    if not isinstance(where, str) or not where:
        raise PlaybookError("the inventory file's path", path=path, line=line, key="inventory.path")
    file = Path(where) if Path(where).is_absolute() else Path(path).parent / where
    defaults = {k: inv.get(k) for k in ("user", "key", "known_hosts", "port")}
    try:
        data["hosts"] = playbook_hosts(file, str(inv.get("group") or "all"), defaults)
    except InventoryError as exc:
        raise PlaybookError(f"{file}: {exc}", path=path, line=line, key="inventory") from None


def load_playbook(path: str | Path) -> LoadedPlaybook:
    p = Path(path)
    shown = str(p)
    try:
        text = read_bounded(p, "playbook")
    except UnreadableFile as exc:
        raise PlaybookError(str(exc), path=shown, line=exc.line) from None
    return LoadedPlaybook(parse_playbook(text, shown), p.resolve())
