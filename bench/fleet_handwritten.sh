#!/bin/bash
# The hand-written side of bench/fleet_bench.py: what a team's own rollout script does, the
# same steps as a deployer release, every host at once, one SSH session per host.
#   fleet_handwritten.sh KEY KNOWN_HOSTS ROUTER_PORT FLEET ARCHIVE UPSTREAM RELOAD VERSION LIVE BLUE GREEN ADDR...
set -u
key=$1 known=$2 router_port=$3 fleet=$4 archive=$5 upstream=$6 reload=$7 version=$8 live=$9
blue=${10} green=${11}
shift 11
if [ "$live" = blue ]; then idle=green port=$green; else idle=blue port=$blue; fi
ssh_opts=(-i "$key" -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o BatchMode=yes)
i=0
for addr in "$@"; do
  i=$((i+1))
  root="$fleet/web$i/app"
  # stop the idle color, ship, link, start, wait until it answers: one session
  ssh "${ssh_opts[@]}" "root@$addr" "set -e
    if [ -x $root/$idle/appctl.sh ]; then $root/$idle/appctl.sh stop $root $idle; fi
    mkdir -p $root/releases/$version && tar -xzf - -C $root/releases/$version
    ln -sfn $root/releases/$version $root/$idle
    APP_HOST=0.0.0.0 $root/$idle/appctl.sh start $root $idle $port $version -1
    for n in \$(seq 1 300); do curl -fs -o /dev/null http://$addr:$port/health && exit 0; sleep 0.05; done
    exit 1" < "$archive" &
done
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
[ $fail = 0 ] || { echo "a host failed" >&2; exit 1; }
servers=""
for addr in "$@"; do servers+="    server $addr:$port;"$'\n'; done
# rewrite the upstream and reload, on the router host (over SSH, as deployer does)
printf '# deployer: live=%s version=%s\nupstream demo {\n%s}\n' "$idle" "$version" "$servers" |
  ssh "${ssh_opts[@]}" -p "$router_port" root@127.0.0.1 "cat > $upstream.new && mv $upstream.new $upstream && $reload"
