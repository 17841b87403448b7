"""Lint rules: one file each, registered by :func:`rule`.

A rule is a function ``check(op, ctx) -> str | None`` (the message, or None when the operation
is fine) or, with ``scope="migration"``, ``check(ctx) -> list[(op, message)]``. Its module
docstring is the explanation ``deployer lint --explain ID`` prints: what it catches, which lock
it takes or what it breaks for the old color, and the safe alternative.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from deployer.lint import operations as k
from deployer.lint.operations import Migration, Operation

Severity = Literal["error", "warning"]


@dataclass
class Context:
    """What a rule may know besides the operation itself."""

    migration: Migration
    pg_version: int = 14
    created_tables: set[str] = field(default_factory=set)  # created earlier in this migration
    validated_not_null: set[tuple[str, str]] = field(default_factory=set)  # earlier revisions
    lock_timeout_in_env: bool = False

    @property
    def operations(self) -> list[Operation]:
        return self.migration.operations

    def is_new(self, table: str | None) -> bool:
        return table is not None and table in self.created_tables

    def is_dropped(self, table: str | None) -> bool:
        """The table is dropped in this migration (its indexes go with it: one finding, on
        the DROP TABLE, says it all)."""
        return table is not None and any(
            o.kind == k.DROP_TABLE and o.table == table for o in self.migration.operations
        )


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    summary: str
    hint: str
    doc: str
    check: Callable[..., Any]
    scope: Literal["operation", "migration"] = "operation"
    #: what `deployer lint --prove` can confirm on a real PostgreSQL (see CLAIMS)
    claim: str | None = None
    #: "contract": what it flags removes or tightens something the old version uses (a drop,
    #: a rename, a type it cannot write, NOT NULL it may not satisfy): a revision with such a
    #: finding is a contract-phase revision (deferred past the rollback window, see
    #: deployer.lint.phases); "expand": anything else
    phase: Literal["expand", "contract"] = "expand"
    #: the hazard is the *duration* of a scan, rewrite or index build: on a table the
    #: table-stats file says is small (deployer.lint.stats) the finding is a warning
    size_dependent: bool = False


#: what a rule claims, as `--prove` measures it on the finding's table
CLAIMS = {
    "rewrite": "the table is rewritten (a new relfilenode)",
    "access-exclusive": "ACCESS EXCLUSIVE is taken on the table (reads and writes wait)",
    "blocks-writes": "a concurrent INSERT/UPDATE/DELETE on the table has to wait",
    "blocks-row-writes": "a concurrent UPDATE of an existing row has to wait",
    "backfill-under-lock": "the UPDATE/DELETE runs while writes to the table wait",
    "fails": "the statement fails (on a table with rows, or in a transaction)",
    "no-lock-timeout": "lock_timeout is 0 when the first table lock is taken",
}


REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    severity: Severity,
    hint: str,
    *,
    scope: Literal["operation", "migration"] = "operation",
    claim: str | None = None,
    phase: Literal["expand", "contract"] = "expand",
    size_dependent: bool = False,
) -> Callable[[Any], Any]:
    assert claim is None or claim in CLAIMS, claim

    def register(check: Callable[..., Any]) -> Callable[..., Any]:
        module = sys.modules[check.__module__]
        doc = (module.__doc__ or "").strip()
        REGISTRY[id] = Rule(
            id, severity, doc.splitlines()[0] if doc else id, hint, doc, check, scope, claim,
            phase, size_dependent,
        )  # fmt: skip
        return check

    return register


def load_rules() -> dict[str, Rule]:
    """Import every rule module once (each registers itself)."""
    if not REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
    return REGISTRY
