#!/usr/bin/env bash
# start-trove.sh NAME PORT ADMIN_PORT redis|redis-local|redis-tracked|redis-cluster|memory
# (redis-local: the Redis store with an in-process tier of 256 MB in front of it, `store.local`, strict;
# redis-tracked: the same tier with `mode: tracked`.)
# Start `trove serve` (trove-peers.yaml) in the background in front of the origin; pid in $WORKDIR/NAME.pid.
# TROVE_BIN (default: .build/release/trove of this repository) is the binary; TROVE_CONFIG the rules (trove-peers.yaml).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"
name=${1:?name}; port=${2:?port}; admin=${3:?admin port}; store=${4:?redis or memory}
TROVE_BIN=${TROVE_BIN:-$PEERS_DIR/../../.build/release/trove}
[ -x "$TROVE_BIN" ] || die "$TROVE_BIN is missing: build it with 'swift build -c release'"
pid_alive "$name" && die "$name already running (pid $(cat "$WORKDIR/$name.pid")); run stop.sh $name"
mkdir -p "$WORKDIR"
config=${TROVE_CONFIG:-$PEERS_DIR/trove-peers.yaml}
case $store in
    redis) store_args=(--redis "redis://$REDIS_HOST:$REDIS_PORT/1") ;;
    redis-local | redis-tracked)
        store_args=(--redis "redis://$REDIS_HOST:$REDIS_PORT/1")
        mode=strict; [ "$store" = redis-tracked ] && mode=tracked
        # The same rules with `local:` added to `store:` (the tier has no command-line option).
        grep -q '^store:$' "$config" || die "$config has no block 'store:' to add the in-process tier to"
        sed "s/^store:\$/store:\\n  local: {size: 256MB, mode: $mode}/" "$config" >"$WORKDIR/$name.yaml"
        config=$WORKDIR/$name.yaml ;;
    redis-cluster) store_args=(--redis "redis-cluster://$REDIS_HOST:$REDIS_CLUSTER_PORT,$REDIS_HOST:$((REDIS_CLUSTER_PORT + 1)),$REDIS_HOST:$((REDIS_CLUSTER_PORT + 2))") ;;
    memory) store_args=(--memory) ;;
    *) die "store must be redis, redis-local, redis-tracked, redis-cluster or memory, not '$store'" ;;
esac
nohup "$TROVE_BIN" serve --config "$config" --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$admin" --origin "origin=http://$ORIGIN_HOST:$ORIGIN_PORT" "${store_args[@]}" \
    --log-level warning >"$WORKDIR/$name.log" 2>&1 </dev/null &
echo $! >"$WORKDIR/$name.pid"
wait_http "http://127.0.0.1:$admin/readyz" 15 || { cat "$WORKDIR/$name.log" >&2; die "$name did not come up"; }
log "$name up on 127.0.0.1:$port (pid $(cat "$WORKDIR/$name.pid"), $store store, admin on $admin)"
