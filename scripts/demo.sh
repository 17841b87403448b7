#!/usr/bin/env bash
# The demo, from a clean clone: install, start the test bed, release v1 -> v2, then a broken
# v3 that deployer rolls back by itself. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then  # the test bed runs sshd and PostgreSQL's own user: root
  if command -v sudo >/dev/null; then
    echo "scripts/demo.sh: root is needed (sshd on loopback, the postgres user): re-running with sudo" >&2
    exec sudo --preserve-env=DEPLOYER_TEST_WORKERS,KEEP bash "$0" "$@"
  fi
  echo "scripts/demo.sh: root is needed (sshd on loopback, the postgres user), and there is no sudo" >&2
  exit 1
fi
bash scripts/install.sh
exec .venv/bin/python scripts/demo.py
