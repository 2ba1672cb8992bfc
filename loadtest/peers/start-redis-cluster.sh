#!/usr/bin/env bash
# Start a Redis Cluster of three masters (no replicas, no persistence) in the background, made the way operators
# make one (`redis-cli --cluster create`); pids in $WORKDIR/redis-cluster-{1,2,3}.pid. Its seeds are
# 127.0.0.1:$REDIS_CLUSTER_PORT and the next two ports (bus ports 10000 above each).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
nodes=()
for i in 1 2 3; do
    pid_alive "redis-cluster-$i" && die "redis-cluster-$i already running; run stop.sh redis-cluster-1 redis-cluster-2 redis-cluster-3"
    port=$((REDIS_CLUSTER_PORT + i - 1))
    dir="$WORKDIR/redis-cluster-$i"
    rm -rf "$dir" && mkdir -p "$dir"
    nohup "$REDIS_BIN" --bind "$REDIS_HOST" --port "$port" --save '' --appendonly no --daemonize no \
        --protected-mode yes --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
        --dir "$dir" --logfile "$dir/redis.log" >/dev/null 2>&1 </dev/null &
    echo $! >"$WORKDIR/redis-cluster-$i.pid"
    wait_tcp "$REDIS_HOST" "$port" 15 || { cat "$dir/redis.log" >&2; die "redis-cluster-$i did not come up"; }
    nodes+=("$REDIS_HOST:$port")
done
redis-cli --cluster create "${nodes[@]}" --cluster-yes >"$WORKDIR/redis-cluster-create.log" 2>&1 \
    || { cat "$WORKDIR/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
for _ in $(seq 1 150); do
    ok=0
    for node in "${nodes[@]}"; do
        redis-cli -h "${node%:*}" -p "${node#*:}" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && ok=$((ok + 1))
    done
    [ "$ok" -eq 3 ] && break
    sleep 0.1
done
[ "$ok" -eq 3 ] || die "the cluster did not reach cluster_state:ok"
log "redis cluster up on ${nodes[*]}"
