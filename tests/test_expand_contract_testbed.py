"""Expand/contract run by deployer (`migrate.contract: deferred`), on the bed's PostgreSQL,
under load through nginx.

The example app reads one column of `accounts` on every answer (APP_DB_COLUMN): v1 reads
`name`, v2 reads `display_name`. A release of v2 brings 0002 (expand: add display_name) and
0003 (contract: drop name). Deferred, the contract never runs while v1 could be rolled back
to, so a rollback never meets a schema v1 cannot read.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, Deploy, demo_playbook, write_playbook
from loadgen import Load

psycopg = pytest.importorskip("psycopg")
pytestmark = [pytest.mark.testbed, pytest.mark.slow]

HEAD = '''"""{doc}"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = {down}


def upgrade() -> None:
{body}


def downgrade() -> None:
    pass
'''
CREATE = (
    '    op.create_table("accounts", sa.Column("id", sa.Integer, primary_key=True), '
    'sa.Column("name", sa.Text))\n    op.execute("INSERT INTO accounts (name) VALUES (\'a\')")'
)
EXPAND = '    op.add_column("accounts", sa.Column("display_name", sa.Text, nullable=True))'
CONTRACT = (
    "    # deployer: ignore[drop-column] the release with 0002 stopped reading accounts.name\n"
    '    op.drop_column("accounts", "name")'
)
SLOW_CONTRACT = '    op.execute("SELECT pg_sleep(4)")\n' + CONTRACT
EXPAND_2 = '    op.add_column("accounts", sa.Column("tier", sa.Text, nullable=True))'
# an "expand" that breaks the running version (marked so, wrongly): the live check catches it
BREAKING = (
    "    # deployer: phase=expand\n"
    "    # deployer: ignore[rename-column] deliberately wrong, for the test\n"
    '    op.alter_column("accounts", "name", new_column_name="full_name")'
)


def _revision(path: Path, rev: str, down: str | None, body: str, doc: str = "a step") -> None:
    down_text = f'"{down}"' if down else "None"
    text = HEAD.format(doc=doc, rev=rev, down=down_text, body=body)
    (path / "versions" / f"{rev}_step.py").write_text(text)


@pytest.fixture
def db(pg_bed: Any, deploy: Deploy, tmp_path: Path) -> dict[str, Any]:
    scripts = tmp_path / "migs"
    (scripts / "versions").mkdir(parents=True)
    for name in ("env.py", "alembic.ini", "script.py.mako"):
        shutil.copy(ROOT / "migrations_safe" / name, scripts / name)
    _revision(scripts, "0001", None, CREATE, "create accounts")
    name = f"ec_{uuid.uuid4().hex[:8]}"
    admin = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:{pg_bed.ports.pg}/{name}"
    return {"scripts": scripts, "url": url}


def _playbook(deploy: Deploy, db: dict[str, Any], **migrate: Any) -> dict[str, Any]:
    doc = demo_playbook(deploy.bed, deploy.root, deploy.path.parent / "journal")
    svc = doc["service"]
    # what a version's code reads is part of the version: v1 reads `name`, later ones
    # `display_name` (a rollback restarts a version exactly as it was released)
    svc["start"] = (
        "case ${version} in v1) c=name;; *) c=display_name;; esac; "
        f"APP_PYTHON={sys.executable} APP_DB_URL={db['url']} APP_DB_COLUMN=$c " + svc["start"]
    )
    doc["migrate"] = {
        "scripts": str(db["scripts"]),
        "command": f"{sys.executable} -m alembic -c {db['scripts']}/alembic.ini",
        "database_url": db["url"],
        "contract": "deferred",
        **migrate,
    }
    doc["rollback"]["keep_warm"] = "500ms"
    write_playbook(deploy.path, doc)
    return doc


def _at(db: dict[str, Any]) -> tuple[str, list[str]]:
    with psycopg.connect(db["url"]) as conn:
        rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        cols = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'accounts' ORDER BY ordinal_position"
            ).fetchall()
        ]
    return str(rev), cols


def _json(proc: Any) -> dict[str, Any]:
    return dict(json.loads(proc.stdout))


def test_a_failed_release_rolls_back_onto_a_schema_the_old_version_reads(
    deploy: Deploy, db: dict[str, Any]
) -> None:
    _playbook(deploy, db)
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", EXPAND)
    _revision(db["scripts"], "0003", "0002", CONTRACT)
    with Load(deploy.url + "/", rate=100, threads=2, seconds=60) as load:
        proc = deploy.run(
            "-o", "json", "release", "-p", str(deploy.path), "--version", "v2",
            "--var", "unhealthy_after=5",
        )  # fmt: skip
        time.sleep(1.0)
        load.stop.set()
    assert proc.returncode == 4, proc.stderr
    doc = _json(proc)
    assert doc["migrations"]["deferred"] == ["0003"], doc["migrations"]
    rev, cols = _at(db)
    assert rev == "0002" and "name" in cols and "display_name" in cols
    assert deploy.live()["version"] == "v1"
    # the old version, back in front of users, on the schema the rollback met: no error
    with Load(deploy.url + "/", rate=100, threads=2, seconds=10) as after:
        time.sleep(3.0)
    assert after.stats.requests > 150 and after.stats.versions.keys() == {"v1"}
    assert after.stats.server_errors == 0 and not after.stats.failures, after.stats.statuses
    status = _json(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert status["deferred_contract"] is None  # the contract went with the failed release


def test_a_deferred_contract_runs_only_after_the_window_then_first_in_the_next_release(
    deploy: Deploy, db: dict[str, Any]
) -> None:
    _playbook(deploy, db, contract_after="8s")
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", EXPAND)
    _revision(db["scripts"], "0003", "0002", CONTRACT)
    with Load(deploy.url + "/", rate=100, threads=2, seconds=90) as load:
        proc = deploy.run(
            "-o", "json", "release", "-p", str(deploy.path), "--version", "v2",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert _json(proc)["migrations"]["deferred"] == ["0003"]
        assert _at(db)[0] == "0002"
        status = _json(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
        assert status["deferred_contract"]["revisions"] == ["0003"]
        early = deploy.run("-o", "json", "migrate", "-p", str(deploy.path), "--contract")
        assert early.returncode == 5, early.stderr
        assert "closes at" in _json(early)["message"] or "still runs" in _json(early)["message"]
        time.sleep(8.5)  # the window (8 s) has closed, v1 (keep_warm 500ms) is stopped
        _revision(db["scripts"], "0004", "0003", EXPAND_2)
        nxt = deploy.run(
            "-o", "json", "release", "-p", str(deploy.path), "--version", "v3",
        )  # fmt: skip
        time.sleep(0.5)
        load.stop.set()
    assert nxt.returncode == 0, nxt.stderr
    mig = _json(nxt)["migrations"]
    assert mig["contracted"] == ["0003"] and mig["to"] == "0004", mig
    rev, cols = _at(db)
    assert rev == "0004" and "name" not in cols and "tier" in cols
    assert load.stats.server_errors == 0 and not load.stats.failures, load.stats.statuses
    # a rollback goes back to v2 (warm), which brought the contract itself: allowed
    back = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert back.returncode == 0 and deploy.live()["version"] == "v2", back.stderr
    evidence = json.loads(
        deploy.run("-o", "json", "evidence", "list", "-p", str(deploy.path)).stdout
    )
    assert [r["kind"] for r in evidence][-2:] == ["release", "rollback"]


def test_migrate_contract_after_the_window_and_a_killed_run_is_finished(
    deploy: Deploy, db: dict[str, Any], tmp_path: Path
) -> None:
    _playbook(deploy, db, contract_after="1s")
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", EXPAND)
    _revision(db["scripts"], "0003", "0002", SLOW_CONTRACT)
    proc = deploy.run(
        "-o", "json", "release", "-p", str(deploy.path), "--version", "v2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    time.sleep(2.0)
    killed = deploy.spawn("migrate", "-p", str(deploy.path), "--contract")
    time.sleep(2.0)  # inside the revision's pg_sleep
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    # another runner: a fresh checkout of the playbook (its own journal)
    other = tmp_path / "runner2"
    other.mkdir()
    doc = json.loads(json.dumps(_playbook(deploy, db, contract_after="1s")))
    doc["journal_dir"] = str(other / "journal")
    pb = write_playbook(other / "demo.yml", doc)
    deadline = time.monotonic() + 30
    while True:
        fin = deploy.run("-o", "json", "migrate", "-p", str(pb), "--contract")
        if fin.returncode != 5 or time.monotonic() > deadline:
            break
        time.sleep(1.0)  # the killed run's lock is taken over once its process is gone
    assert fin.returncode == 0, fin.stderr + "\n" + fin.stdout
    rev, cols = _at(db)
    assert rev == "0003" and "name" not in cols
    status = _json(deploy.run("-o", "json", "status", "-p", str(pb)))
    assert status["deferred_contract"] is None
    records = json.loads(deploy.run("-o", "json", "evidence", "list", "-p", str(pb)).stdout)
    assert records[-1]["kind"] == "migration"
    assert deploy.live()["version"] == "v2"
    # v1 (stopped: a rollback would start it again) reads `name`, which 0003 removed
    refused = deploy.run("-o", "json", "rollback", "-p", str(pb))
    assert refused.returncode == 2, refused.stderr
    assert "revision 0003 (drop-column" in _json(refused)["message"]
    assert "--force" in _json(refused)["message"] and deploy.live()["version"] == "v2"


def test_the_report_shows_the_release_that_deferred_and_the_run_that_contracted(
    deploy: Deploy, db: dict[str, Any], tmp_path: Path
) -> None:
    _playbook(deploy, db, contract_after="1s")
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", EXPAND)
    _revision(db["scripts"], "0003", "0002", CONTRACT)
    assert deploy.release("v2").returncode == 0
    time.sleep(1.5)
    ran = deploy.run("-o", "json", "migrate", "-p", str(deploy.path), "--contract")
    assert ran.returncode == 0, ran.stderr
    period = tmp_path / "period.html"
    made = deploy.run("report", "-p", str(deploy.path), "--since", "1d", "-O", str(period))
    assert made.returncode == 0, made.stderr
    rows = re.findall(r"<tr>(.*?)</tr>", period.read_text())
    cells = [re.sub(r"<[^>]+>", "", r).replace("&rarr;", "->") for r in rows]
    assert any("release" in c and "deferred 0003" in c and "applied 0002" in c for c in cells)
    assert any("migration" in c and "contracted 0003" in c for c in cells), cells
    one = tmp_path / "one.html"
    assert deploy.run("report", "-p", str(deploy.path), "-O", str(one)).returncode == 0
    page = one.read_text()
    assert "migration of" in page and "Deferred contract revisions run: <b>0003" in page


def test_a_contract_before_an_expand_is_refused_before_anything_runs(
    deploy: Deploy, db: dict[str, Any]
) -> None:
    _playbook(deploy, db)
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", EXPAND)
    _revision(db["scripts"], "0003", "0002", CONTRACT)
    _revision(db["scripts"], "0004", "0003", EXPAND_2)
    proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 2, proc.stderr
    message = _json(proc)["message"]
    assert "expand revision 0004" in message and "contract revision 0003" in message
    assert _at(db)[0] == "0001" and not (deploy.root / "releases" / "v2").exists()


def test_an_expand_that_breaks_the_running_version_aborts_before_the_switch(
    deploy: Deploy, db: dict[str, Any]
) -> None:
    _playbook(deploy, db)
    assert deploy.release("v1").returncode == 0
    _revision(db["scripts"], "0002", "0001", BREAKING)
    proc = deploy.run("-o", "json", "release", "-p", str(deploy.path), "--version", "v2")
    assert proc.returncode == 3, proc.stderr
    message = _json(proc)["message"]
    assert "broke the running version" in message
    assert "does not serve blue (v1) healthily" in message  # the facts, said
    status = _json(deploy.run("-o", "json", "status", "-p", str(deploy.path)))
    assert status["live_version"] == "v1"  # users were never switched
