#!/usr/bin/env bash
# `make run`: Trove in front of the bundled demo origin, until Ctrl-C.
#
#   demo origin  127.0.0.1:8000  a slow API: every answer takes 300 ms (trove demo-origin)
#   Redis        127.0.0.1:6380  reused if one answers there, else started if redis-server is installed,
#                                else Trove uses its in-process memory store
#   Trove        127.0.0.1:8080  the proxy, rules/demo.yaml
#   admin API    127.0.0.1:9090  purge, explain, entry, stats (no token: loopback only, for the demo)
set -euo pipefail
cd "$(dirname "$0")/.."
trove=.build/release/trove
config="${1:-rules/demo.yaml}"
pids=()

# Stops what the demo started, Trove first, so it never sees its Redis or origin vanish under it.
cleanup() {
  trap - EXIT INT TERM
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "demo stopped"
}
trap cleanup EXIT INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port, what
  for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done
  echo "run: $2 did not start on 127.0.0.1:$1; see the messages above" >&2
  exit 1
}

for port in 8000 8080 9090; do
  if listening "$port"; then
    echo "run: port $port is already in use; stop what uses it (a previous demo?) and run again" >&2
    exit 1
  fi
done

# The origin and Redis run in sessions of their own, so Ctrl-C reaches only Trove; cleanup stops them after it.
setsid "$trove" demo-origin --listen 127.0.0.1:8000 --delay 300ms &
pids+=($!)
wait_for 8000 "the demo origin"

store=()
if listening 6380; then
  echo "using the Redis already listening on 127.0.0.1:6380"
elif command -v redis-server >/dev/null 2>&1; then
  setsid redis-server --port 6380 --bind 127.0.0.1 --save '' --appendonly no --loglevel warning >/dev/null &
  pids+=($!)
  wait_for 6380 "redis-server"
  echo "started redis-server on 127.0.0.1:6380 for the demo"
else
  echo "no Redis: Trove uses its in-process memory store"
  store=(--memory)
fi

"$trove" serve --config "$config" "${store[@]}" &
pids+=($!)
wait_for 8080 "trove"
wait_for 9090 "trove's admin API"

show() {  # method, path: one request through Trove, with its cache headers and time
  curl -s -o /dev/null -X "$1" -D /tmp/trove-demo-headers -w '%{time_total}' "http://127.0.0.1:8080$2" > /tmp/trove-demo-time
  printf '  %-6s %-28s %-5s %5.0f ms   %s\n' "$1" "$2" \
    "$(grep -i '^X-Cache:' /tmp/trove-demo-headers | tr -d '\r' | cut -d' ' -f2)" \
    "$(awk '{print $1 * 1000}' /tmp/trove-demo-time)" \
    "$(grep -i '^Cache-Status:' /tmp/trove-demo-headers | tr -d '\r' | cut -d' ' -f2-)"
}

echo
echo "A few requests through Trove (the origin takes 300 ms per answer):"
show GET /api/v1/events?page=1
show GET /api/v1/events?page=1
show GET /api/v1/events/3
show GET /api/v1/events/3
show PUT /api/v1/events/3
show GET /api/v1/events/3
echo "The origin served $(curl -s 'http://127.0.0.1:8000/__stats' | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>/dev/null || echo '?') of those 6 requests."
cat <<'TXT'

Try it yourself (Ctrl-C stops the demo):
  curl -i http://127.0.0.1:8080/api/v1/events?page=2                 # MISS, then HIT
  curl -i -X PUT http://127.0.0.1:8080/api/v1/events/2               # a write: purges event:2 and the lists
  curl -i -H 'Authorization: Bearer alice' http://127.0.0.1:8080/api/v1/products/stats/asin-status
  curl -s 'http://127.0.0.1:9090/explain?request=GET%20/api/v1/events%3Fpage%3D2'
  curl -s -X POST -d '{"tags": ["events"]}' http://127.0.0.1:9090/purge
  curl -s http://127.0.0.1:9090/stats                                # hits, misses, hit ratio per route
  curl -s http://127.0.0.1:8000/__stats                              # what reached the origin
Edit rules/demo.yaml, check it with `.build/release/trove check -c rules/demo.yaml`, and run `make run` again.
TXT
wait "${pids[-1]}"
