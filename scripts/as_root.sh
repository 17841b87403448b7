# Sourced by scripts/demo.sh and scripts/test.sh before anything else: the test bed runs sshd
# and PostgreSQL's own user, so as a user the script says so and re-runs itself with sudo, or
# stops with one line when there is no sudo. Expects SCRIPT (its path) and the script's
# arguments in "$@".
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    echo "$SCRIPT: root is needed (sshd on loopback, the postgres user): re-running with sudo" >&2
    exec sudo --preserve-env=DEPLOYER_TEST_WORKERS,KEEP bash "$SCRIPT" "$@"
  fi
  echo "$SCRIPT: root is needed (sshd on loopback, the postgres user), and there is no sudo" >&2
  exit 1
fi
