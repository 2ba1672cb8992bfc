#!/usr/bin/env bash
# stop.sh [origin|nginx|varnish|redis|redis-cluster-N|trove-redis|trove-memory ...]   (default: all of them)
# Stops only the processes whose pids the start-*.sh scripts recorded in $WORKDIR/*.pid.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
[ $# -gt 0 ] || set -- trove-redis trove-memory varnish nginx redis redis-cluster-1 redis-cluster-2 redis-cluster-3 origin
rc=0
for name in "$@"; do
    pidf="$WORKDIR/$name.pid"
    if ! pid_alive "$name"; then
        rm -f "$pidf"
        continue
    fi
    pid=$(cat "$pidf")
    kill -TERM "$pid" 2>/dev/null      # nginx master / varnish manager take their children down
    for _ in $(seq 1 100); do
        is_running "$pid" || break        # gone, or a zombie waiting for init to reap it
        sleep 0.1
    done
    if is_running "$pid"; then
        log "$name (pid $pid) ignored TERM for 10s, sending KILL"
        kill -KILL "$pid" 2>/dev/null || rc=1
    fi
    rm -f "$pidf"
    log "stopped $name (pid $pid)"
done
exit $rc
