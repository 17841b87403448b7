#!/usr/bin/env python3
"""Lint 1,000 generated migrations with deployer and, on the same .sql files, squawk.

    .venv/bin/python bench/lint_bench.py [--files 1000] [--repeat 3]

Each migration has 6 statements drawn from a mix of safe and hazardous ones (indexes,
columns, constraints, backfills, renames). deployer is timed in one process (the library
call) and as a command (with interpreter start-up); squawk-cli (from PyPI, installed into
this virtualenv if missing) as a command on all .sql files at once. Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deployer.lint.config import LintConfig  # noqa: E402
from deployer.lint.runner import Linter  # noqa: E402

# (SQL, Alembic) pairs for the same statement
STATEMENTS = [
    ("CREATE INDEX ix_{t}_a ON {t} (a);", 'op.create_index("ix_{t}_a", "{t}", ["a"])'),
    (
        "CREATE INDEX CONCURRENTLY ix_{t}_b ON {t} (b);",
        'op.create_index("ix_{t}_b", "{t}", ["b"], postgresql_concurrently=True)',
    ),
    (
        "ALTER TABLE {t} ADD COLUMN c text;",
        'op.add_column("{t}", sa.Column("c", sa.Text(), nullable=True))',
    ),
    (
        "ALTER TABLE {t} ADD COLUMN d text NOT NULL;",
        'op.add_column("{t}", sa.Column("d", sa.Text(), nullable=False))',
    ),
    (
        "ALTER TABLE {t} ADD COLUMN e uuid DEFAULT gen_random_uuid();",
        'op.add_column("{t}", sa.Column("e", sa.Uuid(), '
        'server_default=sa.text("gen_random_uuid()")))',
    ),
    ("ALTER TABLE {t} ALTER COLUMN f SET NOT NULL;", 'op.alter_column("{t}", "f", nullable=False)'),
    (
        "ALTER TABLE {t} ADD CONSTRAINT fk_{t} FOREIGN KEY (g) REFERENCES u (id) NOT VALID;",
        'op.create_foreign_key("fk_{t}", "{t}", "u", ["g"], ["id"], postgresql_not_valid=True)',
    ),
    (
        "ALTER TABLE {t} ADD CONSTRAINT ck_{t} CHECK (h > 0);",
        'op.create_check_constraint("ck_{t}", "{t}", "h > 0")',
    ),
    ("ALTER TABLE {t} DROP COLUMN i;", 'op.drop_column("{t}", "i")'),
    ("ALTER TABLE {t} RENAME COLUMN j TO k;", 'op.alter_column("{t}", "j", new_column_name="k")'),
    ("UPDATE {t} SET l = 1 WHERE id < 1000;", 'op.execute("UPDATE {t} SET l = 1 WHERE id < 1000")'),
    (
        "CREATE TABLE {t}_new (id bigint PRIMARY KEY, m text);",
        'op.create_table("{t}_new", sa.Column("id", sa.BigInteger(), primary_key=True))',
    ),
]


def generate(folder: Path, files: int, per_file: int = 6) -> tuple[Path, Path]:
    rng = random.Random(42)
    sql_dir, py_dir = folder / "sql", folder / "alembic"
    sql_dir.mkdir()
    py_dir.mkdir()
    prev = None
    for n in range(files):
        picks = [rng.choice(STATEMENTS) for _ in range(per_file)]
        t = f"t{n % 50}"
        sql = "SET lock_timeout = '2s';\n" + "\n".join(s.format(t=t) for s, _ in picks) + "\n"
        (sql_dir / f"{n:04d}.sql").write_text(sql)
        body = "\n".join("    " + a.format(t=t) for _, a in picks)
        (py_dir / f"{n:04d}_m.py").write_text(
            f'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "r{n}"\n'
            f"down_revision = {prev!r}\n\n\ndef upgrade():\n"
            f"    op.execute(\"SET lock_timeout = '2s'\")\n{body}\n"
        )
        prev = f"r{n}"
    return sql_dir, py_dir


def best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def squawk_bin() -> str | None:
    found = shutil.which("squawk") or (Path(sys.executable).parent / "squawk")
    if Path(found).exists():
        return str(found)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "squawk-cli"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        print(f"squawk-cli could not be installed: {proc.stderr.strip()[:200]}")
        return None
    candidate = Path(sys.executable).parent / "squawk"
    return str(candidate) if candidate.exists() else shutil.which("squawk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="deployer-lint-bench-"))
    rows = []
    try:
        sql_dir, py_dir = generate(work, args.files)
        for label, folder in (
            ("deployer (library), .py", py_dir),
            ("deployer (library), .sql", sql_dir),
        ):
            secs, res = best(lambda f=folder: Linter(LintConfig()).lint([f]), args.repeat)
            rows.append((label, secs, len(res.findings)))  # type: ignore[attr-defined]
        for label, folder in (
            ("deployer lint (command), .py", py_dir),
            ("deployer lint (command), .sql", sql_dir),
        ):
            cmd = [sys.executable, "-m", "deployer", "lint", "--format", "json", str(folder)]
            secs, proc = best(
                lambda c=cmd: subprocess.run(c, capture_output=True, text=True, check=False),
                args.repeat,
            )
            rows.append((label, secs, len(json.loads(proc.stdout))))  # type: ignore[attr-defined]
        squawk = squawk_bin()
        if squawk:
            files = sorted(str(p) for p in sql_dir.glob("*.sql"))
            cmd = [squawk, "--reporter", "json", *files]
            secs, proc = best(
                lambda: subprocess.run(cmd, capture_output=True, text=True, check=False),
                args.repeat,
            )
            try:
                count = len(json.loads(proc.stdout))  # type: ignore[attr-defined]
            except ValueError:
                count = -1
            version = subprocess.run(
                [squawk, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            rows.append((f"{version} (command), .sql", secs, count))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{args.files} migrations x 6 statements; best of {args.repeat}\n")
    print(f"{'tool':38} {'seconds':>8} {'files/s':>9} {'findings':>9}")
    for label, secs, count in rows:
        print(f"{label:38} {secs:8.3f} {args.files / secs:9.0f} {count:9d}")
    ref = {label: secs for label, secs, _ in rows}
    sq = next((s for label, s, _ in rows if label.startswith("squawk")), None)
    if sq:
        ratio = ref["deployer lint (command), .sql"] / sq
        print(f"\ndeployer lint / squawk on the same .sql files (both as commands): {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
