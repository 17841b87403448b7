"""Expand or contract: each pending revision's phase, from the linter's reading of it."""

from __future__ import annotations

from pathlib import Path

from deployer.lint.phases import classify, contract_rules, order_problem

HEAD = (
    "import sqlalchemy as sa\nfrom alembic import op\n\n"
    'revision = "{rev}"\ndown_revision = {down}\n\n\ndef upgrade() -> None:\n{body}\n'
)


def _chain(tmp_path: Path, *bodies: str) -> Path:
    down = "None"
    for i, body in enumerate(bodies, 1):
        rev = f"{i:04d}"
        (tmp_path / f"{rev}_x.py").write_text(HEAD.format(rev=rev, down=down, body=body))
        down = f'"{rev}"'
    return tmp_path


def test_contract_rules_come_from_the_rules_metadata() -> None:
    assert {"drop-column", "rename-table", "set-not-null", "column-type-change"} <= contract_rules()
    assert "require-concurrent-index-creation" not in contract_rules()


def test_a_revision_is_contract_when_a_contract_rule_flags_it_ignores_or_not(
    tmp_path: Path,
) -> None:
    folder = _chain(
        tmp_path,
        '    op.add_column("t", sa.Column("a", sa.Text))',
        '    op.drop_column("t", "b")  # deployer: ignore[drop-column] reason enough',
        '    op.add_column("t", sa.Column("c", sa.Text))\n    op.drop_column("t", "d")',
    )
    phases = classify(folder, None)
    assert [p.phase for p in phases] == ["expand", "contract", "contract"]  # mixed: contract
    assert phases[1].why[0].startswith("drop-column:")


def test_a_revision_may_say_which_it_is(tmp_path: Path) -> None:
    folder = _chain(
        tmp_path,
        '    # deployer: phase=contract\n    op.execute("UPDATE t SET a = 1")',
        '    op.drop_column("t", "b")',
    )
    second = folder / "0002_x.py"
    second.write_text('deployer_phase = "expand"\n' + second.read_text())
    phases = classify(folder, None)
    assert [p.phase for p in phases] == ["contract", "expand"]
    assert all(p.marked for p in phases)


def test_an_expand_after_a_contract_that_cannot_run_yet_is_named(tmp_path: Path) -> None:
    folder = _chain(
        tmp_path,
        '    op.add_column("t", sa.Column("a", sa.Text))',
        '    op.drop_column("t", "b")',
        '    op.add_column("t", sa.Column("c", sa.Text))',
    )
    phases = classify(folder, None)
    problem = order_problem(phases, set())
    assert problem and "expand revision 0003" in problem and "contract revision 0002" in problem
    assert order_problem(phases, {"0002"}) is None  # the contract may run first: fine
    assert order_problem(classify(folder, "0002"), set()) is None
