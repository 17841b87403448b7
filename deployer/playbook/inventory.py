"""Hosts from an Ansible inventory (INI or YAML), so a fleet already listed there is not
listed twice. A faithful reader of Ansible's own formats, not Ansible itself (a large
dependency for a few hundred lines of parsing):

- INI: ``[group]`` sections of ``host key=value ...`` lines, ``[group:vars]`` and
  ``[group:children]``; hosts before any section are ``ungrouped``; ``#`` and ``;``
  comments; ranges ``web[01:03]``, ``db-[a:c]``, ``node[0:10:5]``.
- YAML: ``group: {hosts: {name: vars}, vars: {...}, children: {group: ...}}`` from ``all``
  down; ranges in host names too.

Variables are merged as Ansible does for these: ``all`` < parent group < child group < host.
``ansible_host``, ``ansible_port``, ``ansible_user`` and ``ansible_ssh_private_key_file``
become a host's address, port, user and key.
"""

from __future__ import annotations

import re
import shlex
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer.errors import printable
from deployer.playbook.reading import BoundedLoader, UnreadableFile, read_bounded

RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\]")
#: the most hosts an inventory may expand to (ranges multiply: `web[0000:9999999]` alone
#: would be ten million names)
MAX_HOSTS = 10_000
MAX_BYTES = 1024 * 1024


class InventoryError(ValueError):
    """The inventory cannot be read: a one-line reason (and its line, when known)."""


@dataclass
class Group:
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


def expand(pattern: str, limit: int = MAX_HOSTS) -> list[str]:
    """``web[01:03].x`` -> web01.x, web02.x, web03.x (Ansible's host ranges); refused
    when it would make more than ``limit`` names (counted before any is made)."""
    m = RANGE.search(pattern)
    if not m:
        return [pattern]
    lo, hi, step = m.group(1), m.group(2), int(m.group(3) or 1)
    head, tail = pattern[: m.start()], pattern[m.end() :]
    shown = printable(m.group(0), 40)
    if step < 1:
        raise InventoryError(f"host range {shown!r}: the step must be at least 1")
    letters = string.ascii_letters
    if lo.isdigit() and hi.isdigit():
        first, last = int(lo), int(hi)
        count = (last - first) // step + 1 if last >= first else 0
        width = len(lo) if lo.startswith("0") else 0
    elif len(lo) == 1 and len(hi) == 1 and lo in letters and hi in letters:
        first, last = letters.index(lo), letters.index(hi)
        count = (last - first) // step + 1 if last >= first else 0
    else:
        raise InventoryError(f"host range {shown!r}: give numbers or single letters")
    if count <= 0:
        raise InventoryError(f"host range {shown!r} is empty")
    if count > limit:
        raise InventoryError(f"host range {shown!r} makes more than {limit} hosts")
    if lo.isdigit():
        values = [str(i).zfill(width) for i in range(first, last + 1, step)]
    else:
        values = list(letters[first : last + 1 : step])
    out: list[str] = []
    for v in values:
        out += expand(head + v + tail, max(1, limit - len(out)))
        if len(out) > limit:
            raise InventoryError(f"{printable(pattern, 60)!r} makes more than {limit} hosts")
    return out


def _value(text: str) -> Any:
    """A variable's value as Ansible reads it (YAML), nesting bounded as in playbooks."""
    try:
        return yaml.load(text, Loader=BoundedLoader)  # a SafeLoader
    except yaml.YAMLError:
        return text


def parse_ini(text: str) -> dict[str, Group]:
    groups: dict[str, Group] = {"all": Group(), "ungrouped": Group()}
    section, kind = "ungrouped", "hosts"
    total = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            m = re.fullmatch(r"\[([^\]:]+)(?::(vars|children))?\]", line)
            if not m:
                raise InventoryError(f"line {lineno}: not a section header: {line[:60]!r}")
            section, kind = m.group(1), m.group(2) or "hosts"
            groups.setdefault(section, Group())
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"line {lineno}: {exc}") from None
        if not words:
            continue
        group = groups.setdefault(section, Group())
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise InventoryError(f"line {lineno}: a [{section}:vars] line is key=value")
            group.vars[key.strip()] = _value(value.strip())
        elif kind == "children":
            group.children.append(words[0])
            groups.setdefault(words[0], Group())
        else:
            host_vars = {}
            for word in words[1:]:
                key, sep, value = word.partition("=")
                if not sep:
                    raise InventoryError(f"line {lineno}: {word!r} is not key=value")
                host_vars[key] = _value(value)
            names = expand(words[0])
            total += len(names)
            if total > MAX_HOSTS:
                raise InventoryError(f"line {lineno}: more than {MAX_HOSTS} hosts")
            for name in names:
                group.hosts.setdefault(name, {}).update(host_vars)
    return groups


def _mapping(value: Any, what: str) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InventoryError(f"{what}: a mapping expected, not {type(value).__name__}")
    return value


def parse_yaml(text: str) -> dict[str, Group]:
    try:
        doc = yaml.load(text, Loader=BoundedLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise InventoryError(f"not YAML: {printable(str(exc).splitlines()[0], 120)}") from None
    if not isinstance(doc, dict):
        raise InventoryError("a YAML inventory is a mapping of groups (all: ...)")
    groups: dict[str, Group] = {}
    total = 0

    def walk(name: str, body: Any, depth: int) -> None:
        nonlocal total
        if depth > 32:
            raise InventoryError(f"group {printable(name, 40)!r}: children nested too deep")
        group = groups.setdefault(str(name), Group())
        if body is None:
            return
        where = f"group {printable(name, 40)!r}"
        if not isinstance(body, dict):
            raise InventoryError(f"{where}: hosts:, vars: and children: expected")
        for host, hvars in _mapping(body.get("hosts"), f"{where} hosts").items():
            names = expand(str(host))
            total += len(names)
            if total > MAX_HOSTS:
                raise InventoryError(f"more than {MAX_HOSTS} hosts")
            for h in names:
                group.hosts.setdefault(h, {}).update(_mapping(hvars, f"host {printable(h, 40)!r}"))
        group.vars.update(_mapping(body.get("vars"), f"{where} vars"))
        for child, cbody in _mapping(body.get("children"), f"{where} children").items():
            if str(child) not in group.children:
                group.children.append(str(child))
            walk(str(child), cbody, depth + 1)

    for name, body in doc.items():
        walk(str(name), body, 0)
    if "all" in groups:
        groups["all"].children += [
            g for g in groups if g != "all" and g not in groups["all"].children
        ]
    return groups


def hosts_in(groups: dict[str, Group], name: str) -> dict[str, dict[str, Any]]:
    """Every host of ``name`` (its children's included), with its variables merged as
    Ansible merges them: ``all``, then each group by depth (a child over its parent; groups
    at the same depth by name), then the host's own."""
    if name not in groups:
        known = ", ".join(sorted(g for g in groups if g != "ungrouped"))
        raise InventoryError(f"no group {name!r} in the inventory (groups: {known})")
    parents: dict[str, set[str]] = {g: set() for g in groups}
    for g, group in groups.items():
        for child in group.children:
            parents.setdefault(child, set()).add(g)
    depth: dict[str, int] = {}

    def depth_of(g: str, seen: tuple[str, ...] = ()) -> int:
        if g == "all":
            return 0
        if g in seen:
            raise InventoryError(f"group {g!r} is its own child")
        if g not in depth:
            ups = parents.get(g) or {"all"}
            depth[g] = 1 + max(depth_of(p, (*seen, g)) for p in ups)
        return depth[g]

    def below(g: str, seen: tuple[str, ...] = ()) -> set[str]:
        if g in seen:
            raise InventoryError(f"group {g!r} is its own child")
        out = {g}
        for child in groups[g].children:
            out |= below(child, (*seen, g))
        return out

    def above(g: str) -> set[str]:
        out = {g, "all"}
        for p in parents.get(g, ()):
            out |= above(p)
        return out

    wanted = set(groups) if name == "all" else below(name)
    found: dict[str, dict[str, Any]] = {}
    for g in sorted(wanted):
        for host in groups[g].hosts:
            found.setdefault(host, {})
    for host in found:
        direct = [g for g in groups if host in groups[g].hosts]
        chain = set().union(*(above(g) for g in direct)) if direct else {"all"}
        merged: dict[str, Any] = {}
        for g in sorted(chain, key=lambda x: (depth_of(x), x)):
            merged.update(groups[g].vars)
        for g in sorted(direct, key=lambda x: (depth_of(x), x)):
            merged.update(groups[g].hosts[host])
        found[host] = merged
    return found


def playbook_hosts(path: Path, group: str, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``hosts:`` entries for ``group`` of the inventory at ``path``."""
    try:
        text = read_bounded(path, "inventory", MAX_BYTES)
    except UnreadableFile as exc:
        where = f" (line {exc.line})" if exc.line else ""
        raise InventoryError(f"{exc}{where}") from None
    stripped = text.lstrip()
    is_yaml = path.suffix in (".yml", ".yaml") or (
        stripped
        and not stripped.startswith("[")
        and re.match(r"^[\w.-]+:\s*$", stripped.splitlines()[0])
    )
    groups = parse_yaml(text) if is_yaml else parse_ini(text)
    found = hosts_in(groups, group)
    if not found:
        raise InventoryError(f"group {group!r} has no hosts")
    out = []
    for name, hvars in found.items():
        entry = {k: v for k, v in defaults.items() if v is not None}
        entry["name"] = name
        entry["address"] = str(hvars.get("ansible_host", name))
        if "ansible_port" in hvars:
            port = hvars["ansible_port"]
            if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
                raise InventoryError(
                    f"host {printable(name, 40)!r}: ansible_port {printable(port, 20)!r} "
                    "is not a port number"
                )
            entry["port"] = int(port)
        if "ansible_user" in hvars:
            entry["user"] = str(hvars["ansible_user"])
        if "ansible_ssh_private_key_file" in hvars:
            entry["key"] = str(hvars["ansible_ssh_private_key_file"])
        out.append(entry)
    return out
