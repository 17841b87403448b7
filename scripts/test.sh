#!/usr/bin/env bash
# The whole test suite, from a clean clone: install, lint, type-check, test.
# The tests start their own sshd and nginx (and PostgreSQL) on private loopback ports and stop
# them at the end. Extra arguments go to pytest (e.g. scripts/test.sh -k lock).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=scripts/test.sh
. scripts/as_root.sh "$@"
bash scripts/install.sh
.venv/bin/ruff check deployer tests scripts bench examples migrations_safe
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -n "${DEPLOYER_TEST_WORKERS:-3}" --dist loadfile "$@"
