"""The layers stay as designed (cli -> app -> targets -> engine -> adapters -> core), with no
import circles, so new targets, strategies and rules land as modules, not as branches.

Every import counts: module level, inside functions, and under ``TYPE_CHECKING`` (a type
that crosses a layer is a dependency that crosses it).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "deployer"

#: the floor each top-level part of the package stands on (a part may import its own floor
#: and the ones below, never above)
FLOOR = {
    "values": 0,
    "errors": 1,
    "redaction": 1,
    "progress": 1,
    "gates": 2,
    "playbook": 2,
    "lint": 2,
    "evidence": 2,
    "commands": 3,  # command builders: above the playbook, which never needs them
    "trust": 4,
    "plan": 4,
    "ports": 5,
    "adapters": 6,
    "prove": 6,
    "analysis": 6,  # its sources read logs and query Prometheus (I/O); the judge is plain math
    "engine": 7,
    "targets": 8,
    "app": 9,
    "cli": 10,
    "__main__": 11,
    "__init__": 11,  # the package's public API may re-export from anywhere below
}
#: libraries that do I/O: the core (floors below the adapters) never imports them
IO_LIBRARIES = {"fabric", "paramiko", "invoke", "httpx", "rich", "sqlalchemy", "psycopg", "sqlite3"}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the deployer modules (and external top-level packages) it imports."""
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    out: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out[mod] |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out[mod].add(node.module)
                for alias in node.names:  # `from deployer import trust` imports a module
                    full = f"{node.module}.{alias.name}"
                    if full in modules:
                        out[mod].add(full)
    return out


def _part(module: str) -> str:
    parts = module.split(".")
    if parts == ["deployer"]:
        return "__init__"
    return parts[1]


IMPORTS = _imports()


def test_every_part_has_a_floor() -> None:
    parts = {_part(m) for m in IMPORTS}
    assert parts <= set(FLOOR), f"give {sorted(parts - set(FLOOR))} a floor in FLOOR"


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_imports_point_down(module: str) -> None:
    mine = FLOOR[_part(module)]
    up = []
    for target in IMPORTS[module]:
        if target != "deployer" and not target.startswith("deployer."):
            top = target.split(".")[0]
            if mine < FLOOR["adapters"] and top in IO_LIBRARIES:
                up.append(f"{target} (an I/O library, in the core)")
            continue
        if target == "deployer":
            continue
        theirs = FLOOR[_part(target)]
        if theirs > mine and _part(target) != _part(module):
            up.append(f"{target} (floor {theirs} > {mine})")
    assert not up, f"{module} imports upward: {', '.join(sorted(up))}"


def test_the_engine_names_no_target_and_the_adapters_no_engine() -> None:
    """The issue's three directions, said plainly (FLOOR implies them)."""
    for module, targets in IMPORTS.items():
        part = _part(module)
        named = {_part(t) for t in targets if t.startswith("deployer.")}
        if part in ("playbook", "commands", "plan", "values", "errors", "evidence", "lint"):
            assert not named & {"engine", "adapters", "targets", "cli", "app"}, module
        if part == "engine":
            assert not named & {"targets", "cli", "app"}, module
        if part == "adapters":
            assert not named & {"engine", "targets", "cli", "app"}, module


def test_no_import_circles() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    graph = {m: {t for t in ts if t in IMPORTS} for m, ts in IMPORTS.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"
