"""The migrate step of a release: lint gate, upgrade with timeouts, retry on lock timeout."""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, Deploy, demo_playbook, write_playbook

psycopg = pytest.importorskip("psycopg")
pytestmark = pytest.mark.testbed

PASSWORD = "hunter2-not-for-logs"
DROP_STATUS = '''"""contract: drop accounts.status"""
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.drop_column("accounts", "status")


def downgrade() -> None:
    pass
'''
ADD_COLUMN = DROP_STATUS.replace(
    'op.drop_column("accounts", "status")', 'op.add_column("accounts", sa.Column("x", sa.Text()))'
).replace("from alembic import op", "import sqlalchemy as sa\nfrom alembic import op")


@pytest.fixture
def migrating(deploy: Deploy, pg_bed, tmp_path: Path) -> Deploy:
    scripts = tmp_path / "migs"
    shutil.copytree(ROOT / "migrations_safe", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    name = f"rel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    deploy.db = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_bed.ports.pg}/{name}"  # type: ignore[attr-defined]
    deploy.scripts = scripts  # type: ignore[attr-defined]
    _write(deploy, [])
    return deploy


def _write(
    deploy: Deploy,
    acknowledge: list[dict[str, str]],
    lock_timeout: str = "2s",
    prove: dict[str, object] | None = None,
) -> None:
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    doc["migrate"] = {
        "scripts": str(deploy.scripts),  # type: ignore[attr-defined]
        "command": f"{sys.executable} -m alembic -c {deploy.scripts}/alembic.ini",  # type: ignore[attr-defined]
        "database_url": "${env:TEST_DATABASE_URL}",
        "lock_timeout": lock_timeout,
        "retries": 8,
        "acknowledge": acknowledge,
    }
    if prove is not None:
        doc["migrate"]["prove"] = prove
    write_playbook(deploy.path, doc)


def _release(deploy: Deploy, version: str, **env: str):  # type: ignore[no-untyped-def]
    return deploy.run(
        "-o",
        "json",
        "release",
        "-p",
        str(deploy.path),
        "--version",
        version,
        env={"TEST_DATABASE_URL": deploy.db, **env},  # type: ignore[attr-defined]
    )


def _revision(deploy: Deploy) -> str:
    with psycopg.connect(deploy.db.replace(f":{PASSWORD}", "")) as conn:  # type: ignore[attr-defined]
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0])


def test_release_lints_and_applies_pending_migrations(migrating: Deploy) -> None:
    proc = _release(migrating, "v1")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    mig = doc["migrations"]
    assert mig["from"] is None and mig["to"] == "0018"
    assert mig["applied"] == [f"{i:04d}" for i in range(1, 19)]
    assert mig["lint"]["errors"] == 0 and mig["attempts"] == 1
    assert [s["name"] for s in doc["steps"]].index("migrate") < [
        s["name"] for s in doc["steps"]
    ].index("start")
    again = json.loads(_release(migrating, "v2").stdout)
    assert again["migrations"]["applied"] == [] and again["outcome"] == "succeeded"
    folder = migrating.path.parent / "journal"
    journal = "".join(p.read_text() for p in folder.glob("*.journal"))
    assert PASSWORD.encode() not in (folder / "evidence.db").read_bytes()
    for text in (proc.stdout, proc.stderr, journal):
        assert PASSWORD not in text


def test_unsafe_pending_migration_aborts_until_acknowledged(migrating: Deploy) -> None:
    assert _release(migrating, "v1").returncode == 0
    (migrating.scripts / "versions" / "0017_drop_status.py").write_text(DROP_STATUS)  # type: ignore[attr-defined]
    proc = _release(migrating, "v2")
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert "0019 0017_drop_status.py:9 drop-column" in doc["message"]
    assert "expand the schema" in doc["message"]
    assert _revision(migrating) == "0018"
    assert migrating.live()["version"] == "v1"
    _write(
        migrating,
        [
            {
                "revision": "0019",
                "rule": "drop-column",
                "reason": "no running version reads accounts.status any more",
            }
        ],
    )
    ok = _release(migrating, "v3")
    assert ok.returncode == 0, ok.stderr
    mig = json.loads(ok.stdout)["migrations"]
    assert mig["applied"] == ["0019"] and mig["lint"]["acknowledged"][0]["rule"] == "drop-column"
    assert _revision(migrating) == "0019"
    # v1 may need what 0019 removed: a rollback to it is refused, naming the revision
    refused = migrating.run(
        "-o", "json", "rollback", "-p", str(migrating.path), env={"TEST_DATABASE_URL": migrating.db}
    )
    assert refused.returncode == 2 and "revision 0019 (drop-column" in refused.stderr
    # forced, it never migrates; it names what the database is ahead of v1 by
    back = migrating.run(
        "-o", "json", "rollback", "--force", "-p", str(migrating.path),
        env={"TEST_DATABASE_URL": migrating.db},
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    doc = json.loads(back.stdout)
    assert doc["version"] == "v1" and doc["steps"][0]["name"] == "check-database"
    assert (
        doc["migrations"]["ahead"] == ["0019"] and doc["migrations"]["version_revision"] == "0018"
    )
    assert doc["migrations"]["contract"][0]["rule"] == "drop-column"
    assert any("0019 contracts the schema" in w for w in doc["warnings"])
    assert _revision(migrating) == "0019"  # nothing ran backwards or forwards


def test_upgrade_is_retried_when_it_hits_lock_timeout(migrating: Deploy) -> None:
    assert _release(migrating, "v1").returncode == 0
    (migrating.scripts / "versions" / "0017_add_x.py").write_text(ADD_COLUMN)  # type: ignore[attr-defined]
    _write(migrating, [], lock_timeout="300ms")
    holding = threading.Event()
    saw_waiter = threading.Event()
    plain = migrating.db.replace(f":{PASSWORD}", "")  # type: ignore[attr-defined]

    def hold_lock() -> None:
        """Hold the lock until the migration waits for it, then past its lock_timeout."""
        with psycopg.connect(plain) as conn, psycopg.connect(plain, autocommit=True) as watch:
            conn.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            holding.set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                if waiting and waiting[0]:
                    saw_waiter.set()
                    break
                time.sleep(0.02)
            time.sleep(1.0)  # > lock_timeout (300ms): that attempt fails

    t = threading.Thread(target=hold_lock, daemon=True)
    t.start()
    assert holding.wait(10)
    proc = _release(migrating, "v2")
    t.join(10)
    assert saw_waiter.is_set(), "the migration never waited for the lock"
    assert proc.returncode == 0, proc.stderr
    mig = json.loads(proc.stdout)["migrations"]
    assert mig["applied"] == ["0019"] and mig["attempts"] >= 2


def test_a_vercel_release_migrates_from_this_machine_before_the_promote(
    pg_bed, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The Vercel target's migrate step: lint-gated, run locally against the database URL
    secret, before the promote; the password appears nowhere."""
    import os
    import subprocess

    import yaml
    from fake_vercel import FakeVercel, playbook_doc

    scripts = tmp_path / "migs"
    shutil.copytree(ROOT / "migrations_safe", scripts, ignore=shutil.ignore_patterns("__pycache__"))
    name = f"vc_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_bed.ports.pg}/{name}"
    with FakeVercel("tok-vc-1") as fake:
        fake.add("dpl_live", "b" * 40, created=1)
        fake.add("dpl_new", "c" * 40, created=2)
        fake.serve("dpl_live")
        doc = playbook_doc(fake, tmp_path)
        doc["gates"]["post_switch"].update(window="500ms", rate=10)
        doc["migrate"] = {
            "scripts": str(scripts),
            "command": f"{sys.executable} -m alembic -c {scripts}/alembic.ini",
            "database_url": "${env:TEST_DATABASE_URL}",
        }
        pb = tmp_path / "vercel.yml"
        pb.write_text(yaml.safe_dump(doc))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "deployer",
                "-o",
                "json",
                "release",
                "-p",
                str(pb),
                "--deployment",
                "dpl_new",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
            env={
                **os.environ,
                **fake.resolve_env(),
                "VERCEL_TOKEN": "tok-vc-1",
                "TEST_DATABASE_URL": db,
            },
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        names = [s["name"] for s in out["steps"]]
        assert names.index("migrate") < names.index("promote")
        assert out["migrations"]["to"] == "0018" and fake.production == "dpl_new"
        assert PASSWORD not in proc.stdout + proc.stderr
        with psycopg.connect(db.replace(f":{PASSWORD}", "")) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None and row[0] == "0018"


RETYPE_TOTAL = DROP_STATUS.replace(
    'op.drop_column("accounts", "status")',
    'op.alter_column("orders", "total", type_=sa.Float(), existing_type=sa.Numeric(12, 2))',
).replace("from alembic import op", "import sqlalchemy as sa\nfrom alembic import op")


def test_migrate_prove_refuses_a_rewrite_before_production_is_touched(
    migrating: Deploy, pg_bed
) -> None:
    """migrate.prove runs the pending revisions in a scratch database first: the lint
    finding is acknowledged, but the measured rewrite stops the release (exit 3) and the
    production database stays where it was; a cheap revision passes with the measurements
    in the release's record."""
    assert _release(migrating, "v1").returncode == 0
    admin = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres"
    base = f"prove_base_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{base}"')
    scratch = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_bed.ports.pg}/{base}"
    prove = {"url": "${env:PROVE_URL}", "rows": 2000, "lock_bound": "2s"}
    versions = migrating.scripts / "versions"  # type: ignore[attr-defined]
    (versions / "0017_retype_total.py").write_text(RETYPE_TOTAL)
    ack = [
        {"revision": "0019", "rule": "column-type-change", "reason": "orders is small, we think"}
    ]
    _write(migrating, ack, prove=prove)
    proc = _release(migrating, "v2", PROVE_URL=scratch)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert "migration prove" in doc["message"] and "rewrote orders" in doc["message"]
    assert doc["migrations"]["prove"]["passed"] is False
    assert _revision(migrating) == "0018" and migrating.live()["version"] == "v1"
    (versions / "0017_retype_total.py").write_text(ADD_COLUMN)
    _write(migrating, [], prove=prove)
    ok = _release(migrating, "v3", PROVE_URL=scratch)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    record = json.loads(ok.stdout)["migrations"]["prove"]
    assert record["passed"] is True and record["revisions"][0]["revision"] == "0019"
    assert record["revisions"][0]["access_exclusive_ms"]["accounts"] < 2000
    assert _revision(migrating) == "0019"
    for text in (proc.stdout, proc.stderr, ok.stdout, ok.stderr):
        assert PASSWORD not in text
    with psycopg.connect(admin) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'deployer_prove_%'"
        ).fetchone()
    assert left == (0,)
