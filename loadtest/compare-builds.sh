#!/usr/bin/env bash
# Two trove builds (or one build on two stores) side by side on the hit path, alternating, so that the
# machine's drift hits both alike.
#
#   loadtest/compare-builds.sh OLD_BINARY NEW_BINARY [STORE|OLD_STORE,NEW_STORE] [2k|64k] [rounds]
#
# STORE is memory, redis, redis-local or redis-tracked (Redis with a 256 MB in-process tier, `store.local`, strict
# or tracked) or redis-cluster
# (three masters made with `redis-cli --cluster create`); two stores
# separated by a comma give each side its own, e.g. one binary on a single Redis beside a cluster:
#
#   loadtest/compare-builds.sh .build/release/trove .build/release/trove redis,redis-cluster 2k 5
#
# Each round starts each side (in front of peers/origin.py; the Redis servers are started once, up front), warms
# one URL, and runs `wrk -t1 -c50 -d8s` on it while reading the CPU time of trove and of the Redis servers it
# uses; the order alternates every round. Prints every run and the medians: requests/s, trove's CPU µs per
# request (the steadier figure here) and Redis' (summed over a cluster's servers).
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old trove binary}; new=${2:?new trove binary}
stores=${3:-memory}; body=${4:-2k}; rounds=${5:-5}
old_store=${stores%,*}; new_store=${stores#*,}
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-compare}
kit=loadtest/peers
# shellcheck source=peers/common.sh
. "$kit/common.sh"
for binary in "$old" "$new"; do [ -x "$binary" ] || die "$binary is not an executable"; done
for store in "$old_store" "$new_store"; do
  case $store in memory | redis | redis-local | redis-tracked | redis-cluster) ;; *) die "a store is memory, redis, redis-local, redis-tracked or redis-cluster, not '$store'" ;; esac
done
started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() { trap - EXIT INT TERM; [ ${#started[@]} -eq 0 ] || "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$kit/start-origin.sh"; started=(origin)
if [[ $old_store == redis* && $old_store != redis-cluster ]] || [[ $new_store == redis* && $new_store != redis-cluster ]]; then "$kit/start-redis.sh"; started=(redis "${started[@]}"); fi
if [ "$old_store" = redis-cluster ] || [ "$new_store" = redis-cluster ]; then
  started=(redis-cluster-1 redis-cluster-2 redis-cluster-3 "${started[@]}")
  "$kit/start-redis-cluster.sh"
fi

redis_pids() {  # redis_pids STORE → the pids of the Redis servers that store uses
  case $1 in
    redis | redis-local | redis-tracked) cat "$WORKDIR/redis.pid" ;;
    redis-cluster) cat "$WORKDIR"/redis-cluster-{1,2,3}.pid ;;
  esac
}

cpu_ticks() {  # cpu_ticks PID... → user + system clock ticks, summed
  local total=0 pid u s
  for pid in "$@"; do read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat"); total=$((total + u + s)); done
  echo "$total"
}

run() {  # run LABEL BINARY STORE → "req/s trove-µs/req redis-µs/req"
  local label=$1 binary=$2 store=$3 pid url requests t0 t1 r0 r1
  local -a redis=()
  TROVE_BIN=$binary "$kit/start-trove.sh" "trove-$label" 18096 18097 "$store" >/dev/null 2>&1
  pid=$(cat "$WORKDIR/trove-$label.pid")
  mapfile -t redis < <(redis_pids "$store")
  case $body in
    2k) url="http://127.0.0.1:18096/api/events?page=$RANDOM$RANDOM" ;;
    64k) url="http://127.0.0.1:18096/api/big?kb=64&v=$RANDOM$RANDOM" ;;
  esac
  curl -s -o /dev/null "$url"
  wrk -t1 -c50 -d1s "$url" >/dev/null
  t0=$(cpu_ticks "$pid"); r0=$(cpu_ticks "${redis[@]}")
  requests=$(wrk -t1 -c50 -d8s "$url" | awk '/requests in/ {print $1}')
  t1=$(cpu_ticks "$pid"); r1=$(cpu_ticks "${redis[@]}")
  "$kit/stop.sh" "trove-$label" >/dev/null 2>&1
  awk -v n="$requests" -v t=$((t1 - t0)) -v r=$((r1 - r0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.0f %.1f %.1f\n", n / 8, t / hz / n * 1e6, r / hz / n * 1e6}'
}

declare -a old_rps old_cpu old_redis new_rps new_cpu new_redis
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then order=(old new); else order=(new old); fi
  for which in "${order[@]}"; do
    if [ "$which" = old ]; then read -r rps cpu redis < <(run old "$old" "$old_store"); old_rps+=("$rps"); old_cpu+=("$cpu"); old_redis+=("$redis")
    else read -r rps cpu redis < <(run new "$new" "$new_store"); new_rps+=("$rps"); new_cpu+=("$cpu"); new_redis+=("$redis"); fi
    printf 'round %d %-3s %8s req/s %6s µs/req trove %6s µs/req redis\n' "$round" "$which" "$rps" "$cpu" "$redis"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
printf 'old %s (%s): median %s req/s, %s µs/req trove, %s µs/req redis\n' "$old" "$old_store" "$(median "${old_rps[@]}")" \
  "$(median "${old_cpu[@]}")" "$(median "${old_redis[@]}")"
printf 'new %s (%s): median %s req/s, %s µs/req trove, %s µs/req redis\n' "$new" "$new_store" "$(median "${new_rps[@]}")" \
  "$(median "${new_cpu[@]}")" "$(median "${new_redis[@]}")"
