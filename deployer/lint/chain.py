"""The order of a folder's Alembic revisions, from the graph their ``down_revision`` draws
(merges included), in time linear in the number of revisions whatever the shape: duplicate
ids, cycles, missing parents, long chains.

Alembic itself refuses a folder where two files declare one revision id ("Revision X is
present more than once") or where the revisions form a cycle ("Cycle is detected in
revisions"); the linter says so as one finding each, names the files, and still checks every
file's operations.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from deployer.lint.operations import Migration


@dataclass
class Chain:
    #: revisions base first, each after all of its parents (ties: by file name); then the
    #: files outside the graph (duplicates, cycles, plain files) by file name
    ordered: list[Migration] = field(default_factory=list)
    #: (the file whose id is taken, the file that declared it first)
    duplicates: list[tuple[Migration, Migration]] = field(default_factory=list)
    #: revisions that could not be ordered: in a cycle, or after one
    cyclic: list[Migration] = field(default_factory=list)
    #: revision id -> its parents among the graph's revisions
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: revision id -> the file that is that revision in the ordered graph
    nodes: dict[str, Migration] = field(default_factory=dict)

    def in_graph(self, mig: Migration) -> bool:
        return mig.revision is not None and self.nodes.get(mig.revision) is mig


def order(migs: Iterable[Migration]) -> Chain:
    chain = Chain()
    by_path = sorted(migs, key=lambda m: str(m.path))
    first: dict[str, Migration] = {}
    loose: list[Migration] = []
    for m in by_path:
        if not m.revision:
            loose.append(m)
        elif m.revision in first:
            chain.duplicates.append((m, first[m.revision]))
        else:
            first[m.revision] = m
    waiting: dict[str, int] = {}
    children: dict[str, list[str]] = {}
    for rev, m in first.items():
        parents = tuple(dict.fromkeys(p for p in m.parents if p in first and p != rev))
        chain.parents[rev] = parents
        waiting[rev] = len(parents)
        for p in parents:
            children.setdefault(p, []).append(rev)
    ready = [(str(m.path), rev) for rev, m in first.items() if waiting[rev] == 0]
    heapq.heapify(ready)
    while ready:
        _, rev = heapq.heappop(ready)
        chain.ordered.append(first[rev])
        for child in children.get(rev, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (str(first[child].path), child))
    chain.nodes = {m.revision: m for m in chain.ordered if m.revision}
    chain.cyclic = [first[r] for r, n in waiting.items() if n > 0]
    rest = loose + [m for m, _ in chain.duplicates] + chain.cyclic
    chain.ordered += sorted(rest, key=lambda m: str(m.path))
    return chain


def ancestors(chain: Chain, revision: str | None) -> set[str]:
    """``revision`` and every revision before it in the graph (all parents of merges)."""
    if not revision or revision not in chain.parents:
        return set()
    seen = {revision}
    stack = [revision]
    while stack:
        for p in chain.parents.get(stack.pop(), ()):
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen
