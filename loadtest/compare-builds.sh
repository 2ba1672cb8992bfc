#!/usr/bin/env bash
# Two trove builds side by side on the hit path, alternating, so that the machine's drift hits both alike.
#
#   loadtest/compare-builds.sh OLD_BINARY NEW_BINARY [memory|redis] [2k|64k] [rounds]
#
# Each round starts each build (in front of peers/origin.py, with redis-server for redis), warms one URL,
# and runs `wrk -t1 -c50 -d8s` on it while reading the build's CPU time; the order alternates every round.
# Prints every run and the medians: requests/s and CPU µs per request (the steadier of the two here).
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?old trove binary}; new=${2:?new trove binary}
store=${3:-memory}; body=${4:-2k}; rounds=${5:-5}
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-compare}
kit=loadtest/peers
# shellcheck source=peers/common.sh
. "$kit/common.sh"
for binary in "$old" "$new"; do [ -x "$binary" ] || die "$binary is not an executable"; done
started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() { trap - EXIT INT TERM; [ ${#started[@]} -eq 0 ] || "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
"$kit/start-origin.sh"; started=(origin)
if [ "$store" = redis ]; then "$kit/start-redis.sh"; started=(redis "${started[@]}"); fi

run() {  # run LABEL BINARY → "req/s µs/req"
  local label=$1 binary=$2 pid url requests u0 s0 u1 s1
  TROVE_BIN=$binary "$kit/start-trove.sh" "trove-$label" 18096 18097 "$store" >/dev/null 2>&1
  pid=$(cat "$WORKDIR/trove-$label.pid")
  case $body in
    2k) url="http://127.0.0.1:18096/api/events?page=$RANDOM$RANDOM" ;;
    64k) url="http://127.0.0.1:18096/api/big?kb=64&v=$RANDOM$RANDOM" ;;
  esac
  curl -s -o /dev/null "$url"
  wrk -t1 -c50 -d1s "$url" >/dev/null
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  requests=$(wrk -t1 -c50 -d8s "$url" | awk '/requests in/ {print $1}')
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  "$kit/stop.sh" "trove-$label" >/dev/null 2>&1
  awk -v n="$requests" -v t=$(( (u1 - u0) + (s1 - s0) )) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {printf "%.0f %.1f\n", n / 8, t / hz / n * 1e6}'
}

declare -a old_rps old_cpu new_rps new_cpu
for ((round = 1; round <= rounds; round++)); do
  if ((round % 2)); then order=(old new); else order=(new old); fi
  for which in "${order[@]}"; do
    if [ "$which" = old ]; then read -r rps cpu < <(run old "$old"); old_rps+=("$rps"); old_cpu+=("$cpu")
    else read -r rps cpu < <(run new "$new"); new_rps+=("$rps"); new_cpu+=("$cpu"); fi
    printf 'round %d %-3s %8s req/s %6s µs/req\n' "$round" "$which" "$rps" "$cpu"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
printf 'old %s: median %s req/s, %s µs/req\n' "$old" "$(median "${old_rps[@]}")" "$(median "${old_cpu[@]}")"
printf 'new %s: median %s req/s, %s µs/req\n' "$new" "$(median "${new_rps[@]}")" "$(median "${new_cpu[@]}")"
