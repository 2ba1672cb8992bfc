#!/usr/bin/env bash
# Trove beside nginx proxy_cache and Varnish, in one run: the same origin (peers/origin.py), the same load
# generator (wrk -t1), the same machine. Trove runs twice: with the Redis store and with the memory store.
#
#   loadtest/peers.sh                        the full run: ~25 min on a quiet machine
#   DURATION_S=3 REPS=1 loadtest/peers.sh    a quick look (not for the record)
#   SKIP_IDLE=1 loadtest/peers.sh            without the 10,000 idle connections part
#
# Measures, per target: cache-hit throughput and latency (2 KB and 64 KB bodies, 50 and 256 connections),
# the cold-key stampede (200 concurrent requests for one uncached URL), redis-benchmark's ceiling, and
# resident memory across 10,000 idle keep-alive connections. Every knob of peers/run-peers.sh works here
# (see peers/README.md). Results: loadtest/results/peers-<date>/ (report.md is printed at the end).
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

# The redis-server Trove's Redis store uses is part of what is measured: its CPU counts as trove-redis's.
EXTRA_SERVER_PIDS="trove-redis=$(cat "$WORKDIR/redis.pid")" \
  EXTRA_PROXIES="trove-redis=127.0.0.1:18090 trove-memory=127.0.0.1:18091" "$kit/run-peers.sh"

if [ -z "${SKIP_IDLE:-}" ]; then
  log "idle keep-alive connections: resident memory up to ${IDLE_MAX:-10000} connections"
  # A cached URL on each, so every connection has served a hit before it idles.
  for target in 18081 18082 18090 18091; do curl -s -o /dev/null "http://127.0.0.1:$target/api/events?page=1"; done
  {
    echo
    echo "### Resident memory across idle keep-alive connections"
    echo
    echo "Command: \`loadtest/peers/idle-connections.py --max ${IDLE_MAX:-10000} nginx=127.0.0.1:18081 varnish=127.0.0.1:18082 trove-redis=127.0.0.1:18090 trove-memory=127.0.0.1:18091\`"
    echo
    "$PYTHON" "$kit/idle-connections.py" --max "${IDLE_MAX:-10000}" --out "$RUN_DIR/idle.jsonl" \
      nginx=127.0.0.1:18081 varnish=127.0.0.1:18082 trove-redis=127.0.0.1:18090 trove-memory=127.0.0.1:18091
  } | tee -a "$RUN_DIR/report.md"
fi
gzip -f "$RUN_DIR/raw.log" 2>/dev/null || true
log "results: $RUN_DIR (report.md, results.jsonl, env.txt, raw.log.gz)"
