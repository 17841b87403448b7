"""`deployer lint --prove`: run pending migrations in a scratch PostgreSQL database and
measure what each statement really does (locks taken and how long they are held, rewrites,
blocked writers and readers), then confirm or refute the static findings.

    scratch.py     the scratch database: refuse a production URL, create, drop, clean up
    fill.py        synthetic rows in the tables a revision touches
    instrument.py  per-statement measurements (pg_locks, relfilenode, lock probes)
    run.py         load the schema, run each revision (Alembic online, or .sql files)
    verdict.py     rule claims confirmed or not, hazards, exit status, text and JSON
"""
