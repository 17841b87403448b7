#!/bin/sh
# Start, stop or check one color of the example app.
#   appctl.sh start  ROOT COLOR PORT VERSION UNHEALTHY_AFTER [SLOW_AFTER HEALTH_DELAY
#                    FAIL_EVERY SLOW_MS]
#   appctl.sh stop   ROOT COLOR
#   appctl.sh status ROOT COLOR
# APP_PYTHON chooses the interpreter (one with prometheus_client serves /metrics); APP_HOST
# the address it listens on (127.0.0.1 by default; 0.0.0.0 on a host the router reaches).
set -eu
cmd=$1 root=$2 color=$3
pidfile="$root/$color.pid"
# a zombie (exited, not yet reaped by its parent) counts as stopped. Linux: the state is
# read from /proc with the shell's own `read` (no process started: `ps` costs ~13 ms, and
# deployer asks every host's two colors before a release and in `status`); elsewhere `ps`.
alive() {
  case $1 in '' | *[!0-9]*) return 1 ;; esac
  if [ -r /proc/self/stat ]; then
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) } # the state follows the last ") ": the command name may hold anything
    [ "${s%% *}" != Z ]
  else
    s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]
  fi
}
running() { [ -f "$pidfile" ] && { read -r pid <"$pidfile"; } 2>/dev/null && alive "$pid"; }
case "$cmd" in
  start)
    port=$4 version=$5 unhealthy=$6 slow_after=${7:--1} delay=${8:-0}
    fail_every=${9:-0} slow_ms=${10:-0}
    case $0 in */*) here=${0%/*} ;; *) here=. ;; esac # no process started: see alive()
    if running; then echo "$color already running (pid $pid)" >&2; exit 1; fi
    setsid "${APP_PYTHON:-python3}" "$here/app.py" --host "${APP_HOST:-127.0.0.1}" --port "$port" --color "$color" --version "$version" \
      --unhealthy-after "$unhealthy" --slow-after "$slow_after" --health-delay "$delay" \
      --fail-every "$fail_every" --slow-ms "$slow_ms" \
      >"$root/$color.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    ;;
  stop)
    if running; then
      kill "$pid"
      i=0
      while alive "$pid" && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  status)
    running
    ;;
  *) echo "usage: appctl.sh start|stop|status ROOT COLOR ..." >&2; exit 2 ;;
esac
