#!/bin/sh
# Start, stop or check one color of __APP__ (written by `deployer init --target nginx`).
#   appctl.sh start  ROOT COLOR PORT
#   appctl.sh stop   ROOT COLOR      (succeeds when it is not running)
#   appctl.sh status ROOT COLOR      (exit 0 when running)
# Replace the `exec` line with how your app starts; it must listen on 127.0.0.1:$PORT and
# serve /health (with the version it runs, for the pre-switch gate's expect_json).
set -eu
cmd=$1 root=$2 color=$3
pidfile="$root/$color.pid"
# a zombie (exited, not yet reaped) counts as stopped
alive() { s=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$s" ] && [ "${s#Z}" = "$s" ]; }
running() { [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; }
case "$cmd" in
  start)
    port=$4
    here=$(cd "$(dirname "$0")/.." && pwd)
    if running; then echo "$color already running (pid $(cat "$pidfile"))" >&2; exit 1; fi
    cd "$here"
    # detached (setsid), output to a log, no terminal: it outlives the SSH session
    PORT=$port setsid sh -c 'exec ./start.sh' >"$root/$color.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
      kill "$pid"
      i=0
      while alive "$pid" && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    ;;
  status)
    running
    ;;
  *) echo "usage: appctl.sh start|stop|status ROOT COLOR [PORT]" >&2; exit 2 ;;
esac
