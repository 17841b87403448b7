#!/usr/bin/env bash
# The whole test suite, from a clean clone: install, lint, type-check, test.
# The tests start their own sshd and nginx (and PostgreSQL) on private loopback ports and stop
# them at the end. Extra arguments go to pytest (e.g. scripts/test.sh -k lock).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then  # the test bed runs sshd and PostgreSQL's own user: root
  if command -v sudo >/dev/null; then
    echo "scripts/test.sh: root is needed (sshd on loopback, the postgres user): re-running with sudo" >&2
    exec sudo --preserve-env=DEPLOYER_TEST_WORKERS,KEEP bash "$0" "$@"
  fi
  echo "scripts/test.sh: root is needed (sshd on loopback, the postgres user), and there is no sudo" >&2
  exit 1
fi
bash scripts/install.sh
.venv/bin/ruff check deployer tests scripts bench examples migrations_safe
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -n "${DEPLOYER_TEST_WORKERS:-2}" --dist loadfile "$@"
