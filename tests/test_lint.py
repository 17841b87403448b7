"""`deployer lint`: every rule's fixtures, both front ends, ignores, config and formats."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deployer.errors import InputError
from deployer.lint.config import LintConfig, load_config
from deployer.lint.rules import load_rules
from deployer.lint.runner import lint_paths

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "lint_fixtures"
RULES = sorted(load_rules())


def _rules(path: Path, **config: object) -> list[str]:
    return [f.rule for f in lint_paths([path], LintConfig(**config)).findings]  # type: ignore[arg-type]


def test_every_rule_has_fixtures_and_an_explanation() -> None:
    for rule_id in RULES:
        folder = FIXTURES / rule_id
        assert list(folder.glob("bad.*")) and list(folder.glob("good.*")), rule_id
        rule = load_rules()[rule_id]
        assert "Safe alternative" in rule.doc or "Satisfied by" in rule.doc, rule_id


@pytest.mark.parametrize(
    "fixture", sorted(FIXTURES.glob("*/bad.*")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_hazardous_variant_is_flagged_by_its_rule(fixture: Path) -> None:
    assert fixture.parent.name in _rules(fixture, postgres_version=11)


@pytest.mark.parametrize(
    "fixture", sorted(FIXTURES.glob("*/good.*")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_safe_variant_has_no_error(fixture: Path) -> None:
    result = lint_paths([fixture], LintConfig())
    assert fixture.parent.name not in [f.rule for f in result.findings]
    assert [f for f in result.findings if f.severity == "error"] == []


def test_migrations_safe_reports_nothing() -> None:
    result = lint_paths([ROOT / "migrations_safe"], LintConfig())
    assert result.findings == [], [f"{f.path}:{f.line} {f.rule}" for f in result.findings]
    assert len(result.migrations) >= 10


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_sql_findings_carry_line_and_column(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "m.sql",
        """\
        SET lock_timeout = '1s';
        -- build it
          CREATE INDEX ix_a ON t (a); CREATE INDEX ix_b ON t (b);
        """,
    )
    found = [(f.line, f.column, f.rule) for f in lint_paths([p]).findings]
    assert found == [(3, 3, "require-concurrent-index"), (3, 31, "require-concurrent-index")]


def test_alembic_findings_point_at_the_call(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "v1.py",
        """\
        from alembic import op
        import sqlalchemy as sa
        revision = "a1"
        down_revision = None

        def upgrade():
            op.execute("SET lock_timeout = '2s'")
            with op.batch_alter_table("accounts") as batch:
                batch.alter_column("name", new_column_name="display_name")
                batch.add_column(sa.Column("n", sa.Integer(), nullable=False))
            op.execute(sa.text(\"\"\"
                UPDATE accounts SET n = 1 WHERE id < 5;
                ALTER TABLE accounts ALTER COLUMN n SET NOT NULL;
            \"\"\"))
        """,
    )
    found = [(f.line, f.column, f.rule) for f in lint_paths([p]).findings]
    assert (9, 9, "rename-column") in found
    assert (10, 9, "add-column-not-null-without-default") in found
    assert (12, 9, "backfill-in-schema-transaction") in found
    assert (13, 9, "set-not-null") in found


def test_downgrade_is_linted_only_on_request(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "v.py",
        """\
        from alembic import op
        revision = "r"
        down_revision = None
        def upgrade():
            op.execute("SET lock_timeout = '2s'")
        def downgrade():
            op.drop_column("accounts", "status")
        """,
    )
    assert _rules(p) == []
    assert "drop-column" in _rules(p, include_downgrade=True)


def test_ignore_needs_a_reason_and_unused_ignores_are_reported(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "m.sql",
        """\
        SET lock_timeout = '1s';
        -- deployer: ignore[drop-column]
        ALTER TABLE a DROP COLUMN b;
        ALTER TABLE a DROP COLUMN c; -- deployer: ignore[drop-column] unused since v7
        -- deployer: ignore[truncate] nothing here truncates
        SELECT 1;
        """,
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert found == [(2, "ignore-without-reason"), (3, "drop-column"), (5, "unused-ignore")]


def test_parse_error_is_a_finding_and_other_files_are_still_linted(tmp_path: Path) -> None:
    _write(tmp_path, "a.sql", "ALTER TABLE x ADD COLUM y int;\n")
    _write(tmp_path, "b.py", "def upgrade(:\n")
    _write(tmp_path, "c.sql", "TRUNCATE t;\n")
    found = [(Path(f.path).name, f.line, f.rule) for f in lint_paths([tmp_path]).findings]
    assert ("a.sql", 1, "parse-error") in found
    assert ("b.py", 1, "parse-error") in found
    assert ("c.sql", 1, "truncate") in found


def _chain(tmp_path: Path) -> Path:
    head = 'from alembic import op\nrevision = "{r}"\ndown_revision = {d}\n'
    body = {
        "1_check.py": (
            '"r1"',
            "None",
            'op.create_check_constraint("ck_s", "accounts", "status IS NOT NULL", '
            "postgresql_not_valid=True)",
        ),
        "2_validate.py": (
            '"r2"',
            '"r1"',
            'op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_s")',
        ),
        "3_not_null.py": ('"r3"', '"r2"', 'op.alter_column("accounts", "status", nullable=False)'),
    }
    for name, (r, d, line) in body.items():
        (tmp_path / name).write_text(
            head.format(r=r.strip('"'), d=d).replace('revision = "', 'revision = "', 1)
            + f"def upgrade():\n    op.execute(\"SET lock_timeout = '1s'\")\n    {line}\n"
        )
    return tmp_path


def test_set_not_null_after_validated_check_in_earlier_revision_passes(tmp_path: Path) -> None:
    folder = _chain(tmp_path)
    assert _rules(folder) == []
    assert _rules(folder / "3_not_null.py") == []  # given alone, its siblings give context
    assert _rules(folder, postgres_version=11) == ["set-not-null"]  # needs PostgreSQL 12+


def test_start_after_skips_old_history(tmp_path: Path) -> None:
    folder = _chain(tmp_path)
    (folder / "2_validate.py").write_text(
        (folder / "2_validate.py")
        .read_text()
        .replace(
            'op.execute("ALTER TABLE accounts VALIDATE CONSTRAINT ck_s")',
            'op.execute("TRUNCATE accounts")',
        )
    )
    assert "truncate" in _rules(folder)
    assert "truncate" not in _rules(folder, start_after="r2")


def test_env_py_that_sets_lock_timeout_satisfies_the_rule(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    _write(
        versions,
        "v.py",
        """\
        from alembic import op
        import sqlalchemy as sa
        revision = "v"
        down_revision = None
        def upgrade():
            op.add_column("a", sa.Column("b", sa.Text()))
        """,
    )
    assert _rules(versions) == ["missing-lock-timeout"]
    (tmp_path / "env.py").write_text("connection.exec_driver_sql(\"SET lock_timeout = '2s'\")\n")
    assert _rules(versions) == []


def test_config_from_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [tool.deployer.lint]
        disable = ["truncate"]
        severity = { "drop-column" = "warning" }
        postgres_version = 10
        """)
    )
    cfg = load_config(tmp_path)
    assert cfg.disable == {"truncate"} and cfg.postgres_version == 10
    p = _write(
        tmp_path, "m.sql", "SET lock_timeout='1s';\nTRUNCATE t;\nALTER TABLE t DROP COLUMN c;\n"
    )
    findings = lint_paths([p], cfg).findings
    assert [(f.rule, f.severity) for f in findings] == [("drop-column", "warning")]


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "deployer.toml").write_text("[lint]\ndisabel = ['x']\n")
    with pytest.raises(InputError, match="unknown lint setting 'disabel'"):
        load_config(tmp_path)
    (tmp_path / "deployer.toml").write_text("[lint]\ndisable = ['no-such-rule']\n")
    with pytest.raises(InputError, match="unknown lint rule 'no-such-rule'"):
        lint_paths([tmp_path], load_config(tmp_path))


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_cli_exit_codes_and_json_format(tmp_path: Path) -> None:
    bad = FIXTURES / "drop-column" / "bad.sql"
    proc = _cli("lint", "--format", "json", str(bad))
    assert proc.returncode == 1
    findings = json.loads(proc.stdout)
    keys = {"path", "line", "column", "rule", "severity", "message", "hint", "table"}
    assert keys == set(findings[0])
    assert _cli("lint", str(FIXTURES / "drop-column" / "good.sql")).returncode == 0
    assert _cli("lint", str(tmp_path / "missing.sql")).returncode == 2
    assert _cli("lint", "--explain", "nope").returncode == 2


def test_cli_text_sarif_and_github(tmp_path: Path) -> None:
    bad = str(FIXTURES / "require-concurrent-index" / "bad.sql")
    text = _cli("lint", bad).stdout
    assert "require-concurrent-index" in text and "fix: use CONCURRENTLY" in text
    sarif = json.loads(_cli("lint", "--format", "sarif", bad).stdout)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for res in run["results"]:
        assert ids[res["ruleIndex"]] == res["ruleId"]
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    gh = _cli("lint", "--format", "github", bad).stdout.splitlines()
    line = next(g for g in gh if "title=require-concurrent-index::" in g)
    assert line.startswith("::error file=") and ",line=2,col=1," in line


def test_cli_explain_prints_the_rule_docs() -> None:
    proc = _cli("lint", "--explain", "set-not-null")
    assert proc.returncode == 0
    assert "VALIDATE CONSTRAINT" in proc.stdout and "ACCESS EXCLUSIVE" in proc.stdout


def test_cli_default_paths_come_from_alembic_ini() -> None:
    proc = _cli("lint", cwd=ROOT / "migrations_safe")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 error(s)" in proc.stdout


def test_ignore_on_the_closing_line_of_a_formatted_call_counts(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "v.py",
        """\
        from alembic import op
        revision = "r"
        down_revision = None
        def upgrade():
            op.execute("SET lock_timeout = '2s'")
            op.drop_column(
                "accounts", "name"
            )  # deployer: ignore[drop-column] contract step, unused since v7
            op.drop_column("accounts", "other")
        """,
    )
    assert [(f.line, f.rule) for f in lint_paths([p]).findings] == [(9, "drop-column")]


def test_sql_ignore_applies_to_a_multi_line_statement(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "m.sql",
        """\
        SET lock_timeout = '1s';
        -- a comment that is not an ignore
        ALTER TABLE accounts
          DROP COLUMN name; -- deployer: ignore[drop-column] contract step
        TRUNCATE t;
        """,
    )
    assert [(f.line, f.rule) for f in lint_paths([p]).findings] == [(5, "truncate")]


def test_lint_with_a_playbook_records_a_lint_gate(tmp_path: Path) -> None:
    pb = tmp_path / "p.yml"
    pb.write_text(
        (ROOT / "tests" / "test_playbook.py").read_text().split('GOOD = """\\\n')[1].split('"""')[0]
        + "journal_dir: .ev\n"
    )
    proc = _cli("lint", "-p", str(pb), str(FIXTURES / "truncate" / "bad.sql"))
    assert proc.returncode == 1
    listed = json.loads(_cli("-o", "json", "evidence", "list", "-p", str(pb)).stdout)
    assert [(r["kind"], r["outcome"], r["lint"]["errors"]) for r in listed] == [
        ("lint", "failed", 1)
    ]


BIND_MIGRATION = '''\
"""bind parameters, one statement the parser refuses, and a real hazard after it"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(sa.text("UPDATE accounts SET status = :s WHERE id = :id"))
    conn = op.get_bind()
    conn.execute("UPDATE accounts SET plan = %s WHERE id = %(id)s", {"id": 1})
    op.execute("SELEC broken FROM nowhere")
    op.drop_column("accounts", "legacy")
'''


def test_bind_parameters_parse_and_a_bad_statement_hides_nothing(tmp_path: Path) -> None:
    p = tmp_path / "0002_binds.py"
    p.write_text(BIND_MIGRATION)
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    # :name, %s and %(name)s are placeholders; the one bad statement is named, and the drop
    # after it is still checked
    assert (13, "parse-error") in found and (14, "drop-column") in found
    assert [r for _, r in found].count("parse-error") == 1


def test_parse_error_is_a_rule_like_any_other(tmp_path: Path) -> None:
    p = tmp_path / "0002_binds.py"
    p.write_text(
        BIND_MIGRATION.replace(
            'op.execute("SELEC broken FROM nowhere")',
            'op.execute("SELEC broken FROM nowhere")  # deployer: ignore[parse-error] '
            "vendor syntax our proxy rewrites",
        )
    )
    rules = _rules(p)
    assert "parse-error" not in rules and "unused-ignore" not in rules
    p.write_text(BIND_MIGRATION)
    assert "parse-error" not in _rules(p, disable={"parse-error"})
    warned = lint_paths([p], LintConfig(severity={"parse-error": "warning"})).findings
    assert {f.severity for f in warned if f.rule == "parse-error"} == {"warning"}


def test_a_sql_file_with_one_bad_statement_still_checks_the_rest(tmp_path: Path) -> None:
    p = tmp_path / "m.sql"
    p.write_text("SET lock_timeout = '2s';\nSELEC 1;\nALTER TABLE t DROP COLUMN c;\n")
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert (2, "parse-error") in found and (3, "drop-column") in found


def test_explain_parse_error_says_what_to_do() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "lint", "--explain", "parse-error"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0 and "ignore[parse-error]" in proc.stdout
    assert "Bind parameters" in proc.stdout


SUGAR = '''\
"""Column arguments that make Alembic emit more DDL after ADD COLUMN"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("SET lock_timeout = '2s'")
    op.add_column("orders", sa.Column("account_id", sa.Integer(), sa.ForeignKey("accounts.id")))
    op.add_column("orders", sa.Column("ref", sa.Text(), unique=True))
    op.add_column("orders", sa.Column("region", sa.Text(), index=True))
'''
BASE = """\
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True))
    op.create_table("orders", sa.Column("id", sa.Integer(), primary_key=True))
"""
OFFLINE_ENV = """\
from alembic import context

context.configure(url="postgresql+psycopg://", literal_binds=True, transactional_ddl=False)
with context.begin_transaction():
    context.run_migrations()
"""


def test_column_sugar_is_seen_as_the_ddl_alembic_renders(tmp_path: Path) -> None:
    """sa.ForeignKey in add_column, unique=True and index=True: the same findings from the
    Alembic script as from the SQL `alembic upgrade --sql` renders for it."""
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_base.py").write_text(BASE)
    (versions / "0002_sugar.py").write_text(SUGAR)
    (tmp_path / "env.py").write_text(OFFLINE_ENV)
    (tmp_path / "script.py.mako").write_text("")
    (tmp_path / "alembic.ini").write_text(f"[alembic]\nscript_location = {tmp_path}\n")
    from_script = sorted(
        (f.rule, f.line) for f in lint_paths([versions / "0002_sugar.py"]).findings
    )
    rules = {r for r, _ in from_script}
    assert {"constraint-without-not-valid", "unique-constraint-builds-index"} <= rules
    assert "require-concurrent-index" in rules
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(tmp_path / "alembic.ini"),
            "upgrade",
            "0001:0002",
            "--sql",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "FOREIGN KEY" in rendered and "UNIQUE" in rendered and "CREATE INDEX" in rendered
    sql = tmp_path / "rendered.sql"
    sql.write_text(rendered)
    from_sql = {f.rule for f in lint_paths([sql]).findings}
    assert rules - {"unused-ignore"} <= from_sql | {"missing-lock-timeout"}


def test_op_f_names_are_resolved_in_messages(tmp_path: Path) -> None:
    p = tmp_path / "0003_ix.py"
    p.write_text(
        'from alembic import op\nrevision = "0003"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_index(op.f("ix_orders_ref"), "orders", ["ref"])\n'
    )
    messages = [f.message for f in lint_paths([p]).findings if f.rule == "require-concurrent-index"]
    assert messages and "ix_orders_ref" in messages[0]


def test_text_to_varchar_without_length_is_not_a_rewrite(tmp_path: Path) -> None:
    body = (
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "0004"\n'
        "down_revision = None\n\n\ndef upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.alter_column("t", "a", type_=sa.String(), existing_type=sa.Text())\n'
        '    op.alter_column("t", "b", type_=sa.String(20), existing_type=sa.Text())\n'
        '    op.alter_column("t", "c", type_=sa.DateTime(precision=6), '
        "existing_type=sa.DateTime(precision=3))\n"
    )
    p = tmp_path / "0004_types.py"
    p.write_text(body)
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert found == [(10, "column-type-change")]  # only text -> varchar(20)


def test_enum_rewrites_are_flagged(tmp_path: Path) -> None:
    """sync_enum_values (alembic_postgresql_enum) and alter_column enum -> enum with
    postgresql_using rewrite every row (6.5 s of ACCESS EXCLUSIVE per 2 M rows measured)."""
    body = (
        "from alembic import op\nimport sqlalchemy as sa\n"
        "from alembic_postgresql_enum import TableReference\n"
        'revision = "0005"\ndown_revision = None\n\n\ndef upgrade() -> None:\n'
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.sync_enum_values("public", "status", ["a", "b", "c"],\n'
        '        [TableReference(table_schema="public", table_name="orders", '
        'column_name="status")])\n'
        '    op.alter_column("orders", "kind", type_=sa.Enum("x", "y", name="kind2"),\n'
        '        existing_type=sa.Enum("x", name="kind"), postgresql_using="kind::text::kind2")\n'
    )
    p = tmp_path / "0005_enum.py"
    p.write_text(body)
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert found == [(10, "column-type-change"), (12, "column-type-change")]
    messages = [f.message for f in lint_paths([p]).findings]
    assert "orders.status" in messages[0]


def test_dropping_the_indexes_of_a_dropped_table_is_one_finding(tmp_path: Path) -> None:
    p = tmp_path / "0006_drop.py"
    p.write_text(
        'from alembic import op\nrevision = "0006"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.drop_index(op.f("ix_legacy_ref"), table_name="legacy")\n'
        '    op.drop_table("legacy")\n'
    )
    assert _rules(p) == ["drop-table"]


def test_only_the_postgresql_branch_of_a_dialect_test_is_linted(tmp_path: Path) -> None:
    p = tmp_path / "0007_dialect.py"
    p.write_text(
        'from alembic import op\nrevision = "0007"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        "    bind = op.get_bind()\n"
        '    if bind.dialect.name == "sqlite":\n'
        '        op.drop_column("t", "sqlite_only")\n'
        "    else:\n"
        '        op.drop_column("t", "pg_col")\n'
        '    if op.get_bind().dialect.name != "postgresql":\n'
        '        op.execute("VACUUM FULL t")\n'
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert found == [(12, "drop-column")]


def test_a_schema_change_after_the_backfill_is_not_blamed_for_it(tmp_path: Path) -> None:
    p = tmp_path / "0008_order.py"
    p.write_text(
        'from alembic import op\nrevision = "0008"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        "    op.execute(\"UPDATE accounts SET plan = 'free' WHERE plan IS NULL AND id < 100\")\n"
        '    op.add_column("orders", sa.Column("note", sa.Text()))\n'
        "    op.execute(\"UPDATE orders SET note = '' WHERE id < 100\")\n"
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings if f.rule.startswith("backfill")]
    assert found == [(10, "backfill-in-schema-transaction")]  # only the UPDATE after it


def test_a_revision_given_alone_is_read_with_its_siblings(tmp_path: Path) -> None:
    """What a pre-commit hook does (only the staged file): step 3 of the safe SET NOT NULL
    knows the CHECK its siblings validated; only the given file is reported."""
    step3 = ROOT / "migrations_safe" / "versions" / "0010_status_set_not_null.py"
    result = lint_paths([step3])
    assert result.findings == [] and [m.revision for m in result.migrations] == ["0010"]
    alone = tmp_path / "0010_status_set_not_null.py"
    alone.write_text(step3.read_text())
    assert "set-not-null" in _rules(alone)  # without its chain it cannot know


def test_core_dml_and_constants_are_read_and_dynamic_sql_is_named(tmp_path: Path) -> None:
    p = tmp_path / "0009_core.py"
    p.write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        'revision = "0009"\ndown_revision = None\n'
        'DROP = "ALTER TABLE orders DROP COLUMN legacy"\n'
        't = sa.table("orders", sa.column("note"))\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        "    op.execute(DROP)\n"
        "    op.execute(t.update().values(note=''))\n"
        "    op.execute(sa.delete(t))\n"
        '    op.execute(f"VACUUM {DROP}")\n'
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert (11, "drop-column") in found  # the constant was resolved
    assert (12, "unbatched-backfill") in found and (13, "unbatched-backfill") in found
    assert (14, "unchecked-sql") in found
    messages = {f.rule: f.message for f in lint_paths([p]).findings}
    assert "orders" in messages["unbatched-backfill"]


def test_helper_functions_called_from_upgrade_are_followed(tmp_path: Path) -> None:
    p = tmp_path / "0010_helpers.py"
    p.write_text(
        "from alembic import op\n"
        'revision = "0010"\ndown_revision = None\n\n\n'
        "def _drop_legacy(table):\n"
        '    op.drop_column(table, "legacy")\n\n\n'
        "def _recurse():\n"
        "    _recurse()\n\n\n"
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    _drop_legacy("orders")\n'
        "    _recurse()\n"
    )
    assert "drop-column" in _rules(p)


def test_sarif_paths_are_relative_to_the_repository_root(tmp_path: Path) -> None:
    """Run from a subdirectory: the URI is still the path from the repository's root, with
    %SRCROOT% declared, so code scanning maps it wherever the command ran."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "lint",
            "lint_fixtures/truncate/bad.sql",
            "--format",
            "sarif",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT / "tests",
        check=False,
    )
    run = json.loads(proc.stdout)["runs"][0]
    location = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "tests/lint_fixtures/truncate/bad.sql", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == ROOT.resolve().as_uri() + "/"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deployer",
            "lint",
            str(ROOT / "tests" / "lint_fixtures" / "truncate" / "bad.sql"),
            "--format",
            "sarif",
            "--root",
            str(ROOT / "tests"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    location = json.loads(proc.stdout)["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == (
        "lint_fixtures/truncate/bad.sql"
    )


def test_messages_and_hints_fit_the_case(tmp_path: Path) -> None:
    p = tmp_path / "0011_msgs.py"
    p.write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        'revision = "0011"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.add_column("orders", sa.Column("state", sa.Text(), nullable=True))\n'
        '    op.alter_column("orders", "state", nullable=False)\n'
        '    op.create_check_constraint("ck_total", "orders", "total >= 0")\n'
    )
    by_rule = {f.rule: f for f in lint_paths([p]).findings}
    assert "constant server_default" in by_rule["set-not-null"].hint
    assert "reads and writes wait" in by_rule["constraint-without-not-valid"].message


def test_sql_through_a_chained_bind_is_read(tmp_path: Path) -> None:
    """op.get_bind().execute(...) and op.get_context().connection.execute(...) without a
    variable in between are read like conn.execute(...)."""
    p = tmp_path / "0011_chained.py"
    p.write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        'revision = "0011"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.get_bind().execute(sa.text("UPDATE orders SET note = :n"), {"n": ""})\n'
        '    op.get_context().connection.execute(sa.text("DELETE FROM orders"))\n'
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    assert (9, "unbatched-backfill") in found and (10, "unbatched-backfill") in found


def test_sqlite_histories_are_detected_and_globs_excluded(tmp_path: Path) -> None:
    """A folder that migrates SQLite (named for it, or whose env.py names only sqlite) is
    skipped when a folder is walked, and said so; given by name, a file is linted."""
    drop = 'from alembic import op\nrevision = "{r}"\ndown_revision = None\n\n\n' + (
        'def upgrade():\n    op.drop_column("t", "c")\n'
    )
    pg = tmp_path / "migrations" / "versions" / "postgresql"
    lite = tmp_path / "migrations" / "versions" / "sqlite"
    other = tmp_path / "other" / "versions"
    for folder in (pg, lite, other):
        folder.mkdir(parents=True)
        (folder / "0001.py").write_text(drop.format(r=folder.name))
    (tmp_path / "other" / "env.py").write_text('URL = "sqlite:///app.db"\n')
    result = lint_paths([tmp_path])
    assert {Path(f.path).parent.name for f in result.findings} == {"postgresql"}
    assert len(result.skipped) == 2
    assert _rules(lite / "0001.py") != []  # by name: linted
    config = LintConfig(exclude=["migrations/versions/postgresql"])
    assert lint_paths([tmp_path], config).findings == []
    out = _cli("lint", str(tmp_path), "--exclude", "migrations/*/postgresql")
    assert out.returncode == 0, out.stdout
    assert "skipped" in out.stdout and "SQLite history" in out.stdout


def test_sql_in_a_local_variable_and_core_select_are_read(tmp_path: Path) -> None:
    p = tmp_path / "0012_locals.py"
    p.write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n"
        'revision = "0012"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        "    conn = op.get_bind()\n"
        '    t = sa.table("orders", sa.column("id"))\n'
        "    rows = conn.execute(t.select())\n"
        '    query = sa.text("UPDATE orders SET note = :n WHERE id = :id")\n'
        "    conn.execute(query, {'n': '', 'id': 1})\n"
        '    wipe = "DELETE FROM orders"\n'
        "    op.execute(wipe)\n"
        "    wipe = build_sql()\n"
        "    op.execute(wipe)\n"
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings]
    # the SELECT and the UPDATE with WHERE are fine; the DELETE of every row is not; a
    # variable reassigned from a call is not readable any more
    assert found == [(15, "unbatched-backfill"), (17, "unchecked-sql")]


def test_a_keyed_update_of_another_table_after_a_rename_is_not_a_backfill(
    tmp_path: Path,
) -> None:
    p = tmp_path / "0013_rename.py"
    p.write_text(
        "from alembic import op\n"
        'revision = "0013"\ndown_revision = None\n\n\n'
        "def upgrade() -> None:\n"
        "    op.execute(\"SET lock_timeout = '2s'\")\n"
        '    op.rename_table("packages", "projects")\n'
        "    op.execute(\"UPDATE row_counts SET t = 'projects' WHERE t = 'packages'\")\n"
        '    op.execute("UPDATE projects SET flag = true WHERE id > 0")\n'
        '    op.execute("DELETE FROM audit")\n'
    )
    found = [(f.line, f.rule) for f in lint_paths([p]).findings if f.rule.startswith("backfill")]
    # the renamed table's own update, and every row of another table, hold the lock long
    assert found == [(10, "backfill-in-schema-transaction"), (11, "backfill-in-schema-transaction")]
