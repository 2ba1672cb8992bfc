#!/usr/bin/env bash
# Trove beside nginx proxy_cache and Varnish, in one run: the same origin (peers/origin.py), the same load
# generator (wrk -t1), the same machine. Trove runs four times: with the Redis store (trove-redis), Redis with an
# in-process tier in strict mode (trove-local) and in tracked mode (trove-tracked), and the memory store
# (trove-memory).
#
#   loadtest/peers.sh                        the full run: ~30 min on a quiet machine
#   DURATION_S=3 REPS=1 loadtest/peers.sh    a quick look (not for the record)
#   SKIP_IDLE=1 SKIP_MISS=1 loadtest/peers.sh   without the idle connections and miss overhead parts
#
# Measures, per target: cache-hit throughput and latency (2 KB and 64 KB bodies, 50 and 256 connections),
# the cold-key stampede (200 concurrent requests for one uncached URL), redis-benchmark's ceiling, what each
# proxy adds to a miss (peers/miss-overhead.py: MISS_N misses in a row per target and round, REPS rounds), and
# resident memory across 8,000 idle keep-alive connections; then Trove beside the best peer and issue #17's
# targets, met or missed (peers/targets.py). Every knob of peers/run-peers.sh works here (see
# peers/README.md). Results: loadtest/results/peers-<date>/ (report.md is printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
kit=$root/loadtest/peers
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-peers}
export RUN_DIR=${RUN_DIR:-$root/loadtest/results/peers-$(date +%Y%m%d-%H%M)}
# shellcheck source=peers/common.sh
. "$kit/common.sh"

scripts/install-deps.sh --bench
log "building trove (release)"
swift build -c release --product trove >/dev/null
export TROVE_BIN=$root/.build/release/trove

started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#started[@]} -gt 0 ]; then "$kit/stop.sh" "${started[@]}" || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Started here (and stopped on exit) so that the idle-connections part can use them after run-peers.sh.
for service in origin redis nginx varnish; do
  pid_alive "$service" && die "$service is already running from an earlier run; stop it: PEERS_WORKDIR=$WORKDIR $kit/stop.sh"
  "$kit/start-$service.sh"
  started=("$service" "${started[@]}")
done
"$kit/start-trove.sh" trove-redis 18090 18092 redis
started=(trove-redis "${started[@]}")
"$kit/start-trove.sh" trove-memory 18091 18093 memory
started=(trove-memory "${started[@]}")
"$kit/start-trove.sh" trove-local 18096 18097 redis-local
started=(trove-local "${started[@]}")
"$kit/start-trove.sh" trove-tracked 18098 18099 redis-tracked
started=(trove-tracked "${started[@]}")
troves="trove-redis=127.0.0.1:18090 trove-memory=127.0.0.1:18091 trove-local=127.0.0.1:18096 trove-tracked=127.0.0.1:18098"

# The redis-server Trove's Redis store uses is part of what is measured: its CPU counts as each Redis target's.
redis_pid=$(cat "$WORKDIR/redis.pid")
EXTRA_SERVER_PIDS="trove-redis=$redis_pid trove-local=$redis_pid trove-tracked=$redis_pid" \
  EXTRA_PROXIES="$troves" "$kit/run-peers.sh"

if [ -z "${SKIP_MISS:-}" ]; then
  log "what each proxy adds to a miss: ${MISS_N:-500} misses in a row per target, ${REPS:-3} rounds"
  {
    echo
    echo "### What a miss costs over the origin's own answer"
    echo
    echo "Command: \`loadtest/peers/miss-overhead.py --n ${MISS_N:-500} --rounds ${REPS:-3} origin=127.0.0.1:$ORIGIN_PORT nginx=127.0.0.1:$NGINX_PORT varnish=127.0.0.1:$VARNISH_PORT $troves\`"
    echo "(each request a new key, the origin answering at once: \`delay_ms=0\`; one keep-alive connection)"
    echo
    # shellcheck disable=SC2086  # $troves is a list of name=address words
    "$PYTHON" "$kit/miss-overhead.py" --n "${MISS_N:-500}" --rounds "${REPS:-3}" --origin-url "http://127.0.0.1:$ORIGIN_PORT" \
      --out "$RUN_DIR/results.jsonl" origin=127.0.0.1:"$ORIGIN_PORT" nginx=127.0.0.1:"$NGINX_PORT" varnish=127.0.0.1:"$VARNISH_PORT" $troves
  } | tee -a "$RUN_DIR/report.md"
fi

if [ -z "${SKIP_IDLE:-}" ]; then
  log "idle keep-alive connections: resident memory up to ${IDLE_MAX:-8000} connections"
  # A cached URL on each, so every connection has served a hit before it idles.
  for target in 18081 18082 18090 18091 18096 18098; do curl -s -o /dev/null "http://127.0.0.1:$target/api/events?page=1"; done
  {
    echo
    echo "### Resident memory across idle keep-alive connections"
    echo
    echo "Command: \`loadtest/peers/idle-connections.py --max ${IDLE_MAX:-8000} nginx=127.0.0.1:18081 varnish=127.0.0.1:18082 $troves\`"
    echo
    # shellcheck disable=SC2086  # $troves is a list of name=address words
    "$PYTHON" "$kit/idle-connections.py" --max "${IDLE_MAX:-8000}" --out "$RUN_DIR/idle.jsonl" \
      nginx=127.0.0.1:18081 varnish=127.0.0.1:18082 $troves
  } | tee -a "$RUN_DIR/report.md"
fi
{
  echo
  "$PYTHON" "$kit/targets.py" "$RUN_DIR"
} | tee -a "$RUN_DIR/report.md"
gzip -f "$RUN_DIR/raw.log" 2>/dev/null || true
log "results: $RUN_DIR (report.md, results.jsonl, env.txt, raw.log.gz)"
