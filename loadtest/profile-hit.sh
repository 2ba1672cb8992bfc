#!/usr/bin/env bash
# CPU per cache hit, and where it goes: Trove's hit path under wrk, sampled by perf.
#
#   loadtest/profile-hit.sh [memory|redis|redis-local|redis-tracked] [2k|64k]   (default: memory 2k)
#   PERF=0 loadtest/profile-hit.sh                       CPU per request only, without perf's overhead
#
# Starts the peers origin (peers/origin.py), redis-server (for redis) and a release `trove serve` on
# loopback, warms one URL, then runs `wrk -t1 -c50 -d10s` against it while reading the CPU time Trove uses
# (/proc/PID/stat) and `perf record` samples where it goes. Prints CPU µs per request, user and kernel (the
# figure to compare before and after a change; throughput on this 2-core machine, shared with wrk, varies
# more) and the top symbols. Everything it starts is stopped on exit.
# This VM has no hardware counters (perf stat -e instructions: "not supported"), and valgrind 3.19's
# callgrind crashes on Swift's libdispatch, so CPU time and cpu-clock samples stand in for instruction counts.
set -euo pipefail
cd "$(dirname "$0")/.."
store=${1:-memory}
body=${2:-2k}
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-profile}
kit=loadtest/peers
# shellcheck source=peers/common.sh
. "$kit/common.sh"
PERF=${PERF:-1}
[ "$PERF" = 0 ] || command -v perf >/dev/null || die "perf is missing: apt-get install linux-perf (or PERF=0)"
command -v wrk >/dev/null || die "wrk is missing: scripts/install-deps.sh --bench"
swift build -c release --product trove >/dev/null
export TROVE_BIN=$PWD/.build/release/trove

started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() { trap - EXIT INT TERM; [ ${#started[@]} -eq 0 ] || "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$kit/start-origin.sh"; started=(origin)
case $store in redis | redis-local | redis-tracked) "$kit/start-redis.sh"; started=(redis "${started[@]}") ;; esac
"$kit/start-trove.sh" "trove-$store" 18094 18095 "$store"; started=("trove-$store" "${started[@]}")
pid=$(cat "$WORKDIR/trove-$store.pid")
case $body in
  2k) url="http://127.0.0.1:18094/api/events?page=$RANDOM" ;;
  64k) url="http://127.0.0.1:18094/api/big?kb=64&v=$RANDOM" ;;
  *) die "body: 2k or 64k" ;;
esac
curl -s -o /dev/null "$url"
wrk -t1 -c50 -d2s "$url" >/dev/null

cpu() { awk '{print $14, $15}' "/proc/$pid/stat"; }   # utime, stime in clock ticks
ticks=$(getconf CLK_TCK)
recorder=
if [ "$PERF" != 0 ]; then
  perf record -F 1999 -g -p "$pid" -o "$WORKDIR/perf.data" -- sleep 11 >/dev/null 2>&1 &
  recorder=$!
fi
sleep 0.5
read -r user0 system0 < <(cpu)
wrk -t1 -c50 -d10s "$url" | tee "$WORKDIR/wrk.txt" | grep -E "Requests/sec|Latency"
read -r user1 system1 < <(cpu)
[ -z "$recorder" ] || wait "$recorder" || true
requests=$(awk '/requests in/ {print $1}' "$WORKDIR/wrk.txt")
echo
echo "store=$store body=$body requests=$requests"
awk -v u=$((user1 - user0)) -v k=$((system1 - system0)) -v n="$requests" -v t="$ticks" \
  'BEGIN {printf "CPU per request: user %.1f µs, kernel %.1f µs, total %.1f µs\n", u/t/n*1e6, k/t/n*1e6, (u+k)/t/n*1e6}'
[ "$PERF" != 0 ] || exit 0
echo
echo "Top symbols (self, user and kernel):"
perf report -i "$WORKDIR/perf.data" --no-children --sort symbol -g none --percent-limit 0.8 2>/dev/null \
  | grep -E '^ +[0-9]' | cut -c1-160 | head -40
