#!/usr/bin/env bash
# The rollout of docs/shadow.md, end to end, in front of the demo origin (`make shadow-demo`):
#
#   1. pass-through  Trove passes everything and writes a JSON access log of scripted traffic
#   2. suggest       `trove suggest` drafts rules from that log (every cacheable route in shadow)
#   3. shadow        the draft runs on the same traffic, plus one change made straight at the origin;
#                    `trove shadow` says what it would have served and why some answers would be stale
#   4. fix           the draft with what the report asked for; the same traffic reports nothing stale
#
# Everything listens on loopback (ports 18100-18102), runs a bounded number of requests, and is stopped at the
# end. WORK (default: a temporary directory) keeps the log, the drafts and the reports.
set -euo pipefail
cd "$(dirname "$0")/.."
trove=${TROVE:-.build/release/trove}
[ -x "$trove" ] || { echo "shadow-demo: build Trove first (swift build -c release), or set TROVE" >&2; exit 1; }
work=${WORK:-$(mktemp -d)}
origin=http://127.0.0.1:18100
proxy=http://127.0.0.1:18101
admin=http://127.0.0.1:18102
export TROVE_ADMIN_TOKEN=shadow-demo-token
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.1; done; echo "shadow-demo: nothing on port $1" >&2; exit 1; }
for port in 18100 18101 18102; do listening $port && { echo "shadow-demo: port $port is in use" >&2; exit 1; }; done

serve() {  # rules file, more options
  "$trove" serve -c "$1" --memory --listen 127.0.0.1:18101 --admin-listen 127.0.0.1:18102 --log-level error "${@:2}" >/dev/null &
  pids+=($!)
  wait_for 18101
  wait_for 18102
}
stop_trove() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

# The traffic: reads of the event list, of five events and of a summary, each event renamed once through Trove.
traffic() {  # round
  for id in 1 2 3 4 5; do
    for path in "/api/v1/events?page=1" "/api/v1/events/$id" "/api/v1/events/$id" "/api/v1/summary"; do
      curl -sf -o /dev/null "$proxy$path"
    done
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' -d "{\"title\": \"Round $1, event $id\"}" "$proxy/api/v1/events/$id"
    curl -sf -o /dev/null "$proxy/api/v1/events?page=1"
    curl -sf -o /dev/null "$proxy/api/v1/events/$id"
  done
}

# A change nobody tells Trove about: event 9 renamed at the origin itself, between two reads through Trove.
behind_the_back() {  # round
  curl -sf -o /dev/null "$proxy/api/v1/events/9"
  sleep 1
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' -d "{\"title\": \"Changed at the origin, round $1\"}" "$origin/api/v1/events/9"
  curl -sf -o /dev/null "$proxy/api/v1/events/9"
  curl -sf -o /dev/null "$proxy/api/v1/events/9"
}

"$trove" demo-origin --listen 127.0.0.1:18100 --delay 0ms >/dev/null &
pids+=($!)
wait_for 18100

echo "1. pass-through: every request forwarded, one JSON line each in $work/access.log"
cat > "$work/pass.yaml" <<EOF
version: 1
admin: {token: {env: TROVE_ADMIN_TOKEN}}
origins: {app: {url: "$origin"}}
routes:
  - {name: everything, match: ANY /**, pass: true}
EOF
serve "$work/pass.yaml" --access-log "$work/access.log" --access-log-format json
traffic 1
stop_trove
echo "   $(wc -l < "$work/access.log") requests recorded"

echo "2. suggest: a draft rules file from the log"
"$trove" suggest "$work/access.log" --origin "$origin" -o "$work/draft.yaml"
"$trove" check -c "$work/draft.yaml" | sed -n '/#  ROUTE/,$p'

echo "3. shadow: the draft on the same traffic, and a change at the origin behind Trove's back"
serve "$work/draft.yaml"
traffic 2
behind_the_back 2
"$trove" shadow --admin "$admin" | tee "$work/report-draft.txt"
"$trove" shadow --admin "$admin" --json > "$work/report-draft.json"
stop_trove

echo
echo "4. fix: ignore the summary's timestamp (the report's suggestion), and keep event detail entries 1 s at most"
sed -e 's|key: "summary-list"|key: "summary-list"\n      shadow: {ignore: [$.generated_at]}|' \
    -e '/name: event$/,/ttl:/ s|ttl: 1m|ttl: 1s|' "$work/draft.yaml" > "$work/fixed.yaml"
"$trove" check -c "$work/fixed.yaml" >/dev/null
serve "$work/fixed.yaml"
traffic 3
behind_the_back 3
"$trove" shadow --admin "$admin" | tee "$work/report-fixed.txt"
stop_trove
echo
echo "kept in $work: access.log, draft.yaml, fixed.yaml, report-draft.txt/.json, report-fixed.txt"
