#!/usr/bin/env bash
# The demo, from a clean clone: install, start the test bed, release v1 -> v2, then a broken
# v3 that deployer rolls back by itself. Run as root (or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT=scripts/demo.sh
. scripts/as_root.sh "$@"
bash scripts/install.sh
exec .venv/bin/python scripts/demo.py
