"""`migrate:` in a playbook: Alembic migrations, lint-gated (and optionally proved on a
scratch database) before the new color starts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from deployer.playbook.fields import Duration, Strict


class Acknowledge(Strict):
    revision: str = Field(description="The Alembic revision the finding is in.")
    rule: str = Field(description="The lint rule acknowledged (see `deployer lint --list`).")
    reason: str = Field(min_length=10, description="Why it is safe here (required).")


class Prove(Strict):
    url: str = Field(
        description="A PostgreSQL server for a scratch database (never production: deployer "
        "refuses a URL whose database has tables); use `${env:NAME}`. Runs locally, before "
        "the upgrade, with the chain up to the database's revision as the schema."
    )
    rows: int = Field(10_000, ge=0, le=10_000_000, description="Rows per touched table.")
    lock_bound: Duration = Field(
        1.0, description="Refuse the release when ACCESS EXCLUSIVE is held longer than this."
    )
    schema_from: str | None = Field(
        None,
        description="Local `pg_dump --schema-only` file at the database's revision, relative "
        "to the playbook (default: the chain itself builds the schema).",
    )
    i_know: bool = Field(False, description="Go on when the URL's database has tables.")


class Migrate(Strict):
    host: str | None = Field(None, description="Host that runs Alembic. Default: first app host.")
    scripts: str = Field(
        description="Local Alembic folder (with alembic.ini) of the version being released, "
        "relative to the playbook: the lint gate reads the pending revisions from it."
    )
    command: str = Field(
        description="How to run Alembic on the host, up to its subcommand (a template), e.g. "
        "`cd ${root}/releases/${version} && .venv/bin/alembic`."
    )
    database_url: str = Field(
        description="Database URL given to the command as DATABASE_URL; use `${env:NAME}`."
    )
    lock_timeout: Duration = Field(
        2.0, description="lock_timeout for the upgrade (PGOPTIONS and DEPLOYER_LOCK_TIMEOUT)."
    )
    statement_timeout: Duration = Field(60.0, description="statement_timeout for the upgrade.")
    retries: int = Field(
        5, ge=1, le=20, description="Attempts when the upgrade fails on a lock timeout."
    )
    acknowledge: list[Acknowledge] = Field(
        default_factory=list,
        description="Error-level findings accepted for one revision, each with a reason.",
    )
    prove: Prove | None = Field(
        None,
        description="Run the pending revisions in a scratch database first (`deployer lint "
        "--prove`) and refuse the release (exit 3, nothing migrated) on a rewrite, ACCESS "
        "EXCLUSIVE held over `lock_bound`, or a revision that fails.",
    )
    contract: Literal["deferred", "with-release"] = Field(
        "with-release",
        description="`deferred`: a release applies its expand revisions before the switch, up "
        "to the first contract revision (a drop, a rename, NOT NULL or a type the old version "
        "cannot write: `deployer lint --explain`), and defers the contract ones until no "
        "version that could be rolled back to needs the old shape (its rollback window "
        "closed, the old version stopped): then `deployer migrate --contract`, or the next "
        "release, runs them. `with-release`: every pending revision before the switch, "
        "contract ones only when acknowledged (`deployer init` writes `deferred`).",
    )
    contract_after: Duration | None = Field(
        None,
        ge=0,
        description="How long after a release's migrate step its deferred contract revisions "
        "may run. Default: its rollback window (the post-switch window plus "
        "rollback.keep_warm; on Vercel, 30 minutes).",
    )
