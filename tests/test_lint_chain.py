"""Chain shapes real Alembic histories have: duplicate revision ids, cycles, missing parents,
merges, long chains. Each lints in time linear in the revisions and says what Alembic
itself would refuse. The fixtures are written here (never copied from a project)."""

from __future__ import annotations

import time
from pathlib import Path

from deployer.lint.chain import ancestors, order
from deployer.lint.config import LintConfig
from deployer.lint.runner import lint_paths

LOCK = "    op.execute(\"SET lock_timeout = '1s'\")\n"


def _rev(folder: Path, name: str, rev: str, down: str, *body: str) -> Path:
    path = folder / name
    lines = "".join(f"    {b}\n" for b in body) or "    pass\n"
    path.write_text(
        f'from alembic import op\nrevision = "{rev}"\ndown_revision = {down}\n\n\n'
        f"def upgrade():\n{LOCK}{lines}"
    )
    return path


def test_a_revision_id_declared_twice_is_one_error_naming_both_files(tmp_path: Path) -> None:
    _rev(tmp_path, "a_first.py", "r1", "None")
    _rev(tmp_path, "b_second.py", "r2", '"r1"')
    _rev(tmp_path, "c_copy.py", "r2", '"r1"', 'op.drop_column("t", "c")')
    res = lint_paths([tmp_path])
    dup = [f for f in res.findings if f.rule == "duplicate-revision"]
    assert len(dup) == 1 and dup[0].path.endswith("c_copy.py") and dup[0].severity == "error"
    assert "b_second.py" in dup[0].message
    # the copy's operations are still checked
    assert any(f.rule == "drop-column" and f.path.endswith("c_copy.py") for f in res.findings)


def test_forty_copies_with_repeated_ids_lint_at_once(tmp_path: Path) -> None:
    """Issue 25: 53 revisions plus 40 copies never finished (1.6 GB after 60 s)."""
    down = "None"
    for i in range(53):
        _rev(tmp_path, f"{i:03d}_r.py", f"r{i}", down, f'op.add_column("t{i}", "c")')
        down = f'"r{i}"'
    for i in range(40):
        _rev(tmp_path, f"copy_{i:03d}.py", f"r{i % 5}", "None" if i % 5 == 0 else f'"r{i % 5 - 1}"')
    t0 = time.monotonic()
    res = lint_paths([tmp_path])
    took = time.monotonic() - t0
    assert sum(f.rule == "duplicate-revision" for f in res.findings) == 40
    assert took < 5, took


def test_a_cycle_is_one_error_and_every_file_is_still_checked(tmp_path: Path) -> None:
    _rev(tmp_path, "a.py", "r1", '"r3"')
    _rev(tmp_path, "b.py", "r2", '"r1"', 'op.drop_table("old")')
    _rev(tmp_path, "c.py", "r3", '"r2"')
    res = lint_paths([tmp_path])
    cycle = [f for f in res.findings if f.rule == "revision-cycle"]
    assert len(cycle) == 1 and all(r in cycle[0].message for r in ("r1", "r2", "r3"))
    assert any(f.rule == "drop-table" for f in res.findings)


def test_a_missing_parent_makes_a_root(tmp_path: Path) -> None:
    _rev(tmp_path, "a.py", "r5", '"gone"')
    _rev(tmp_path, "b.py", "r6", '"r5"')
    chain = order(lint_paths([tmp_path]).migrations)
    assert [m.revision for m in chain.ordered] == ["r5", "r6"] and not chain.cyclic


def _merge_history(folder: Path, merge_name: str) -> None:
    """A NOT NULL CHECK validated on one branch, a merge, then SET NOT NULL: safe whatever the
    merge file is called."""
    _rev(folder, "0001_base.py", "base", "None")
    _rev(
        folder,
        "0002_check.py",
        "check",
        '"base"',
        'op.create_check_constraint("ck_s", "accounts", "status IS NOT NULL", '
        "postgresql_not_valid=True)",
        'op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_s")',
    )
    _rev(folder, "0003_other.py", "other", '"base"')
    _rev(folder, merge_name, "merge", '("check", "other")')
    _rev(
        folder,
        "0005_not_null.py",
        "notnull",
        '"merge"',
        'op.alter_column("accounts", "status", nullable=False)',
    )


def test_merges_are_ordered_by_the_graph_not_by_file_name(tmp_path: Path) -> None:
    for name in ("0000_merge.py", "0004_merge.py"):
        folder = tmp_path / name
        folder.mkdir()
        _merge_history(folder, name)
        res = lint_paths([folder])
        order_ = [m.revision for m in res.migrations]
        assert order_.index("merge") > max(order_.index("check"), order_.index("other")), order_
        assert order_[-1] == "notnull"
        assert not [f for f in res.findings if f.rule == "set-not-null"], (name, res.findings)


def test_start_after_skips_every_ancestor_of_a_merge(tmp_path: Path) -> None:
    _merge_history(tmp_path, "0004_merge.py")
    res = lint_paths([tmp_path], LintConfig(start_after="merge"))
    assert [m.revision for m in res.migrations] == ["notnull"]
    assert ancestors(order(res.migrations), "x") == set()


def _long_chain(folder: Path, n: int, merges: int = 0) -> None:
    down = "None"
    every = n // merges if merges else 0
    for i in range(n):
        if every and i % every == every - 1 and i > 1:
            _rev(folder, f"{i:05d}_side.py", f"s{i}", f'"r{i - 2}"')
            down = f'("r{i - 1}", "s{i}")'
        _rev(folder, f"{i:05d}_r.py", f"r{i}", down)
        down = f'"r{i}"'


def test_a_10000_revision_chain_lints_in_seconds(tmp_path: Path) -> None:
    _long_chain(tmp_path, 10_000)
    t0 = time.monotonic()
    res = lint_paths([tmp_path])
    took = time.monotonic() - t0
    assert len(res.migrations) == 10_000 and not res.findings
    print(f"\n10,000-revision chain: {took:.2f}s")
    assert took < 5, took


def test_a_chain_with_200_merges_lints_in_order(tmp_path: Path) -> None:
    _long_chain(tmp_path, 1_000, merges=200)
    t0 = time.monotonic()
    res = lint_paths([tmp_path])
    took = time.monotonic() - t0
    revs = [m.revision for m in res.migrations]
    assert len(revs) == 1_200 and not res.findings
    assert revs.index("r999") == len(revs) - 1
    print(f"\n1,000 revisions with 200 merges: {took:.2f}s")
    assert took < 5, took


def test_a_loop_over_module_constants_is_read_once_per_value(tmp_path: Path) -> None:
    """The real pattern of issue 25: a module-level tuple of (schema, table) pairs, an
    f-string ALTER per pair, and op.alter_column on the loop variable."""
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nrevision = "r1"\ndown_revision = None\n'
        'SCHEMA = "public"\n'
        'TABLES = (("public", "answers"), ("billing", "questions"))\n'
        'RENAMED = ["questions", "answers"]\n\n\n'
        "def upgrade():\n" + LOCK + "    for schema, table in TABLES:\n"
        '        op.execute(f"ALTER TABLE {schema}.{table} ALTER COLUMN value TYPE JSON '
        'USING value::json")\n'
        "    for questions_table in RENAMED:\n"
        '        op.alter_column(questions_table, "text", new_column_name="title")\n'
        '    for t in ("a", "b"):\n'
        '        op.execute(f"CREATE INDEX ix_{t} ON {SCHEMA}.{t} (x)")\n'
        "    for row in op.get_bind().execute(sa.text('SELECT 1')):\n"
        '        op.execute(f"ALTER TABLE {row.name} ADD COLUMN c int")\n'
    )
    found = [(f.rule, f.table, f.message) for f in lint_paths([tmp_path]).findings]
    types = sorted(t for r, t, _ in found if r == "column-type-change")
    assert types == ["answers", "questions"], found
    renames = sorted(m for r, _, m in found if r == "rename-column")
    assert len(renames) == 2 and all("None" not in m for m in renames), renames
    assert any("questions.text" in m for m in renames), renames
    indexes = sorted(t for r, t, _ in found if r == "require-concurrent-index")
    assert indexes == ["a", "b"], found
    # a loop over a query's rows is read once: its SQL is built at run time
    assert any(r == "unchecked-sql" for r, _, _ in found)


def _one(tmp_path: Path, *body: str) -> list[tuple[str, str]]:
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "r1"\n'
        "down_revision = None\n\n\ndef upgrade():\n" + LOCK + "".join(f"    {b}\n" for b in body)
    )
    return [(f.rule, f.message) for f in lint_paths([tmp_path]).findings]


def test_constructs_real_histories_use_are_read_without_false_alarms(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        'op.execute("CREATE TEMPORARY TABLE scratch AS SELECT id FROM t; DROP TABLE scratch")',
        'op.execute("DROP TABLE IF EXISTS rebuilt")',
        'op.execute("CREATE TABLE rebuilt (id int)")',
        'op.get_bind().execute("DELETE FROM t WHERE id IN %s", ((1, 2),))',
        'op.get_bind().execute(sa.text("UPDATE t SET x = 1 WHERE id IN :ids"))',
        'op.execute(sa.schema.CreateSchema("billing"))',
        'op.execute(sa.schema.CreateSequence(sa.Sequence("s")))',
        "op.execute(pg_insert(t).values(id=1).on_conflict_do_nothing())",
    )
    rules = [r for r, _ in found]
    assert "drop-table" not in rules, found
    assert "parse-error" not in rules, found
    assert "unchecked-sql" not in rules, found


def test_what_cannot_be_read_says_what_it_is(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        "op.execute(\"DO $$ BEGIN EXECUTE 'ALTER TABLE t DROP COLUMN c'; END $$\")",
        'op.execute(sa.schema.CreateIndex(sa.Index("ix", t.c.x)))',
        *(['op.execute(f"ANALYZE {name}")'] * 1),
    )
    messages = [m for r, m in found if r == "unchecked-sql"]
    assert any("DO block" in m for m in messages), found
    assert any("CreateIndex" in m for m in messages), found
    assert any("built at run time" in m for m in messages), found


def test_a_sequence_default_rewrites_the_table(tmp_path: Path) -> None:
    found = _one(
        tmp_path,
        'op.add_column("t", sa.Column("n", sa.Integer, '
        'server_default=sa.Sequence("t_n").next_value()))',
    )
    assert any(r == "add-column-rewrite" and "nextval" in m for r, m in found), found


def test_identical_findings_on_one_line_are_one(tmp_path: Path) -> None:
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nrevision = "r1"\ndown_revision = None\n\n\n'
        "def upgrade():\n" + LOCK + "    for t in ('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'):\n"
        '        op.execute(f"ANALYZE {t} {columns()}"); op.execute(f"VACUUM {t} {opts()}")\n'
    )
    found = [(f.line, f.rule) for f in lint_paths([tmp_path]).findings]
    # eight unrolled iterations, each still built at run time: one warning per call, not 8
    assert found.count((9, "unchecked-sql")) == 2, found


def test_concurrently_in_an_autocommit_block_says_what_helps(tmp_path: Path) -> None:
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nrevision = "r1"\ndown_revision = None\n\n\n'
        "def upgrade():\n"
        "    with op.get_context().autocommit_block():\n"
        '        op.create_index("ix", "t", ["x"], postgresql_concurrently=True)\n'
    )
    found = [f for f in lint_paths([tmp_path]).findings if f.rule == "missing-lock-timeout"]
    assert len(found) == 1 and "CONCURRENTLY" in found[0].message
    assert "not SET LOCAL" in found[0].hint and "INVALID index" in found[0].hint


def test_only_what_runs_on_postgresql_is_read(tmp_path: Path) -> None:
    """Dialect tests real histories write: a URL's prefix, a helper that returns the
    dialect test, and an early return on every database but one."""
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "r1"\ndown_revision = None\n'
        "\n\ndef is_postgres():\n"
        '    return op.get_context().dialect.name == "postgresql"\n'
        "\n\ndef upgrade():\n" + LOCK + "    url = str(op.get_bind().engine.url)\n"
        '    if url.startswith("mysql"):\n'
        '        op.execute("ALTER TABLE t MODIFY c DATETIME(6)")\n'
        "    if is_postgres():\n"
        '        op.drop_index("ix_a", "t")\n'
        "    else:\n"
        '        op.execute("DROP INDEX IF EXISTS ix_b")\n'
        "    if not is_postgres():\n"
        '        op.execute("PRAGMA foreign_keys=OFF")\n'
    )
    (tmp_path / "r2.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "r2"\ndown_revision = "r1"\n'
        "\n\ndef upgrade():\n"
        "    bind = op.get_bind()\n"
        "    if bind.dialect.name != 'mysql':\n"
        "        return\n"
        "    for table in ('a', 'b'):\n"
        "        op.execute(f'ALTER TABLE {table} CONVERT TO CHARACTER SET utf8mb4')\n"
    )
    found = [(Path(f.path).name, f.rule, f.table) for f in lint_paths([tmp_path]).findings]
    assert not [f for f in found if f[1] == "parse-error"], found
    assert ("r1.py", "require-concurrent-index", "t") in found  # ix_a, table given positionally
    assert not [f for f in found if f[0] == "r2.py"], found


def test_a_local_list_of_column_lists_is_unrolled(tmp_path: Path) -> None:
    (tmp_path / "r1.py").write_text(
        'from alembic import op\nrevision = "r1"\ndown_revision = None\n\n\n'
        "def upgrade():\n" + LOCK + "    tbl_name = 'nodes'\n"
        "    indexes = [(['reservation'], 'reservation_idx'), (['driver'], 'driver_idx')]\n"
        "    for fields, idx_name in indexes:\n"
        "        op.create_index(idx_name, tbl_name, fields, unique=False)\n"
    )
    found = [(f.rule, f.table, f.message) for f in lint_paths([tmp_path]).findings]
    built = [m for r, t, m in found if r == "require-concurrent-index" and t == "nodes"]
    assert len(built) == 2 and any("driver_idx" in m for m in built), found
