#!/usr/bin/env bash
# What shadow mode costs, beside passing through and serving, in one run (docs/shadow.md, "What shadow costs"):
#
#   loadtest/shadow-cost.sh [ROUNDS]
#
# One Trove binary (TROVE, default .build/release/trove) in front of the demo origin (no delay), three ways: the
# route passed (`pass: true`), in shadow (`cache.shadow: true`, memory store), and served (cached, memory store).
# Each round runs `wrk -t1 -c20 -d6s` on one event (173 bytes) per way, in alternating order, reading Trove's CPU time;
# prints each run and the medians (req/s, Trove's CPU µs per request). Every request of pass and shadow reaches the
# origin, whose own CPU is left out. Loopback only; 3 ways × ROUNDS runs of 6 s.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
trove=${TROVE:-.build/release/trove}
[ -x "$trove" ] || { echo "shadow-cost: build Trove first (swift build -c release), or set TROVE" >&2; exit 1; }
command -v wrk >/dev/null || { echo "shadow-cost: wrk is missing: scripts/install-deps.sh --bench" >&2; exit 1; }
work=$(mktemp -d)
export TROVE_ADMIN_TOKEN=shadow-cost-benchmark-token
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done; echo "shadow-cost: nothing on port $1" >&2; exit 1; }

"$trove" demo-origin --listen 127.0.0.1:18110 --delay 0ms >/dev/null &
pids+=($!)
wait_for 18110

declare -A port=([pass]=18111 [shadow]=18112 [serve]=18113)
declare -A action=([pass]="pass: true" [shadow]='cache: {key: "event:{id}", ttl: 10m, shadow: true}' [serve]='cache: {key: "event:{id}", ttl: 10m}')
declare -A tpid
for way in pass shadow serve; do
  cat > "$work/$way.yaml" <<EOF
version: 1
listen: 127.0.0.1:${port[$way]}
admin: {listen: 127.0.0.1:$((port[$way] + 10)), token: {env: TROVE_ADMIN_TOKEN}}
origins: {app: {url: "http://127.0.0.1:18110"}}
routes:
  - {name: event, match: "GET /api/v1/events/{id}", $(echo "${action[$way]}")}
  - {name: rest, match: "ANY /**", pass: true}
EOF
  "$trove" serve -c "$work/$way.yaml" --memory --log-level error >/dev/null &
  pids+=($!)
  tpid[$way]=$!
  wait_for "${port[$way]}"
  curl -sf -o /dev/null "http://127.0.0.1:${port[$way]}/api/v1/events/3"   # stored, where it is stored
done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, in clock ticks
ticks=$(getconf CLK_TCK)
declare -A rates cpus
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  order=(pass shadow serve)
  [ $((round % 2)) -eq 0 ] && order=(serve shadow pass)
  for way in "${order[@]}"; do
    before=$(cpu "${tpid[$way]}")
    out=$(wrk -t1 -c20 -d6s "http://127.0.0.1:${port[$way]}/api/v1/events/3")
    after=$(cpu "${tpid[$way]}")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rate=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    micros=$(awk -v t=$((after - before)) -v hz="$ticks" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    printf 'round %d %-6s %9.0f req/s  %6s µs/req trove\n' "$round" "$way" "$rate" "$micros"
    rates[$way]+="$rate "
    cpus[$way]+="$micros "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }
echo
for way in pass shadow serve; do
  printf '%-6s median %9.0f req/s  %6s µs/req trove\n' "$way" "$(echo "${rates[$way]}" | median)" "$(echo "${cpus[$way]}" | median)"
done
