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
# a zombie (exited, not yet reaped by its parent) counts as stopped
alive() { s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
running() { [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; }
case "$cmd" in
  start)
    port=$4 version=$5 unhealthy=$6 slow_after=${7:--1} delay=${8:-0}
    fail_every=${9:-0} slow_ms=${10:-0}
    here=$(cd "$(dirname "$0")" && pwd)
    if running; then echo "$color already running (pid $(cat "$pidfile"))" >&2; exit 1; fi
    setsid "${APP_PYTHON:-python3}" "$here/app.py" --host "${APP_HOST:-127.0.0.1}" --port "$port" --color "$color" --version "$version" \
      --unhealthy-after "$unhealthy" --slow-after "$slow_after" --health-delay "$delay" \
      --fail-every "$fail_every" --slow-ms "$slow_ms" \
      >"$root/$color.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
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
