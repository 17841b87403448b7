#!/bin/sh
# Test hook: the first time NAME is reached, mark it (DIR/NAME.reached) and pause, so a test
# can send a signal while that step is in flight. Later calls (undos) pass straight through.
#   pause.sh DIR NAME SECONDS
dir=$1 name=$2 seconds=${3:-1.5}
if mkdir "$dir/$name.once" 2>/dev/null; then
  : > "$dir/$name.reached"
  sleep "$seconds"
fi
exit 0
