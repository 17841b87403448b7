#!/usr/bin/env bash
# Install what deployer's demo, tests and benchmarks need on a Debian machine. Idempotent.
#   Debian packages: openssh-server, nginx-light, postgresql, wrk, python3-venv, procps,
#                    nodejs and npm (the tests validate examples/vercel.json with Vercel's code),
#                    tmux and chromium-headless-shell (the tests look at the live view in a real
#                    terminal and at `deployer report` in a real browser), prometheus (canary
#                    analysis queries a real one; the test bed starts it on its own port)
#   Python: a virtualenv in .venv with deployer and its dev extras (editable)
#   npm: tests/vercel_config's pinned packages (package-lock.json)
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v nginx >/dev/null || need+=(nginx-light)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || need+=(postgresql)
command -v wrk >/dev/null || need+=(wrk)
command -v ps >/dev/null || need+=(procps)
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v tmux >/dev/null || need+=(tmux)
command -v prometheus >/dev/null || need+=(prometheus)
command -v chromium-headless-shell >/dev/null || [ -x /usr/lib/chromium/chromium-headless-shell ] \
  || need+=(chromium-headless-shell)
if [ ${#need[@]} -gt 0 ]; then
  if [ -n "$SUDO" ] && ! command -v sudo >/dev/null; then
    echo "install: ${need[*]} must be installed, as root (there is no sudo here)" >&2
    exit 1
  fi
  echo "install: ${SUDO:+(with sudo) }apt-get install ${need[*]}" >&2
  # no daemon may start from the packages' scripts: the test bed starts its own, on its ports
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ "$made_policy" = 1 ]; then $SUDO rm -f "$policy"; fi
fi

stamp=.venv/.deployer-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "install: python virtualenv in .venv" >&2
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  touch "$stamp"
fi

vc=tests/vercel_config
if [ ! -d "$vc/node_modules" ] || [ "$vc/package-lock.json" -nt "$vc/node_modules" ]; then
  echo "install: npm ci in $vc (Vercel's config validation, for the tests)" >&2
  (cd "$vc" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$vc/node_modules"
fi
