#!/usr/bin/env bash
# Large answers that are not stored, through Trove and beside nginx's proxy_pass in the same run (issue #14):
#   1. 50 clients downloading 100 MB each at 1 MB/s for 20 s: the proxy's resident memory growth;
#   2. time to first byte for an origin that sends its first 64 KiB at once and the rest over 5 s (and the
#      origin's own, straight);
#   3. throughput of 100 MB downloads read as fast as possible;
#   4. a stored 50 MB entry (a large entry: chunks in Redis, one body in memory, a file in nginx's cache), once
#      warm: the same slow clients (resident memory growth of the proxy, not of Redis) and hit throughput,
#      for Trove with Redis, Trove with its memory store, and nginx.
# Every phase is bounded in count and time. Results: loadtest/results/stream-DATE/{report.md,*.json}.
#
#   loadtest/stream.sh                 # TROVE_BIN (.build/release/trove), STREAM_CLIENTS, STREAM_SECONDS to change
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-stream}
kit=loadtest/peers
# shellcheck source=peers/common.sh
. "$kit/common.sh"
clients=${STREAM_CLIENTS:-50}; seconds=${STREAM_SECONDS:-20}
out=loadtest/results/stream-$(date -u +%Y%m%d-%H%M)
mkdir -p "$out"
cut -d' ' -f1-3 /proc/loadavg >"$out/load-before.txt"
command -v nginx >/dev/null || die "nginx is missing: apt-get install nginx"
command -v "$REDIS_BIN" >/dev/null || die "redis-server is missing: apt-get install redis-server"
started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() { trap - EXIT INT TERM; [ ${#started[@]} -eq 0 ] || "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ORIGIN_DELAY_MS=0 "$kit/start-origin.sh"; started=(origin)
"$kit/start-trove.sh" trove 18090 18092 memory; started=(trove "${started[@]}")
"$kit/start-nginx.sh"; started=(nginx "${started[@]}")
"$kit/start-redis.sh"; started=(redis "${started[@]}")
"$kit/start-trove.sh" trove-redis 18094 18096 redis; started=(trove-redis "${started[@]}")
trove_redis_url=http://127.0.0.1:18094
trove_url=http://127.0.0.1:18090; nginx_url=http://$NGINX_HOST:$NGINX_PORT; origin_url=http://$ORIGIN_HOST:$ORIGIN_PORT
bench() { "$PYTHON" "$kit/stream_bench.py" "$@"; }

log "1/4: $clients clients × 100 MB at 1 MB/s for ${seconds}s through Trove, then nginx"
bench slow "$trove_url/stream?mb=100" --clients "$clients" --seconds "$seconds" --pids "$(cat "$WORKDIR/trove.pid")" >"$out/slow-trove.json"
bench slow "$nginx_url/stream?mb=100" --clients "$clients" --seconds "$seconds" --pids "$(cat "$WORKDIR/nginx.pid")" >"$out/slow-nginx.json"
log "2/4: time to first byte (first 64 KiB at once, the rest over 5 s), 3 at once: origin, Trove, nginx"
for side in origin trove nginx; do
  url_var=${side}_url
  bench ttfb "${!url_var}/stream?mb=8&spread_ms=5000" --count 3 >"$out/ttfb-$side.json"
done
log "3/4: 100 MB downloads, 3 one after another, alternating: Trove, nginx"
for round in 1 2; do
  bench throughput "$trove_url/stream?mb=100" --count 3 >"$out/throughput-trove-$round.json"
  bench throughput "$nginx_url/stream?mb=100" --count 3 >"$out/throughput-nginx-$round.json"
done
stored="/stored/stream?mb=50"
log "4/4: a stored 50 MB entry: warm, then $clients slow clients and 3 fast downloads each: Trove+Redis, Trove+memory, nginx"
for side in trove_redis trove nginx; do
  url_var=${side}_url
  pid_name=${side//_/-}
  bench throughput "${!url_var}$stored" --count 1 >"$out/stored-warm-$side.json"
  # What the slow clients get must be a hit, or this phase measures the origin.
  cache=$(curl -s -o /dev/null -D - "${!url_var}$stored" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }')
  echo "$cache" >"$out/stored-x-cache-$side.txt"
  [[ $cache == HIT* ]] || die "$side did not store the 50 MB entry (X-Cache: ${cache:-none})"
  bench slow "${!url_var}$stored" --clients "$clients" --seconds "$seconds" --pids "$(cat "$WORKDIR/$pid_name.pid")" \
    >"$out/stored-slow-$side.json"
  bench throughput "${!url_var}$stored" --count 3 >"$out/stored-throughput-$side.json"
done
command -v redis-cli >/dev/null && redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" info memory | tr -d '\r' \
  | grep -E '^used_memory:' >"$out/stored-redis-memory.txt" || true

"$PYTHON" - "$out" "$clients" "$seconds" <<'PY' >"$out/report.md"
import glob, json, os, platform, statistics, subprocess, sys
out, clients, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda name: json.load(open(os.path.join(out, name)))
def through(side):
    rates = sum((load(os.path.basename(f))["mb_per_s"] for f in sorted(glob.glob(os.path.join(out, "throughput-%s-*.json" % side)))), [])
    return statistics.median(rates)
slow_t, slow_n = load("slow-trove.json"), load("slow-nginx.json")
tt = {side: load("ttfb-%s.json" % side)["median_ms"] for side in ("origin", "trove", "nginx")}
mb = lambda b: "%.1f MiB" % (b / 1048576)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print("# Streaming answers that are not stored: Trove beside nginx\n")
print("`loadtest/stream.sh` at %s; %d cores (%s); load averages (1, 5, 15 min) before: %s.\n" % (
    commit, os.cpu_count(), cpu, open(os.path.join(out, "load-before.txt")).read().strip()))
print("| | Trove | nginx (`proxy_pass`, buffering on) |\n|---|---:|---:|")
print("| resident memory growth, %s clients × 100 MB read at 1 MB/s for %s s | %s | %s |" % (
    clients, seconds, mb(slow_t["rss_growth"]), mb(slow_n["rss_growth"])))
print("| bytes the clients read in that time | %s | %s |" % (mb(slow_t["received"]), mb(slow_n["received"])))
print("| client errors | %d | %d |" % (slow_t["error_count"], slow_n["error_count"]))
print("| time to first byte (origin straight: %.1f ms) | %.1f ms | %.1f ms |" % (tt["origin"], tt["trove"], tt["nginx"]))
print("| 100 MB download, median of 6 | %.0f MB/s | %.0f MB/s |" % (through("trove"), through("nginx")))
print("\n## A stored 50 MB entry, once warm\n")
print("| | Trove, Redis store | Trove, memory store | nginx (`proxy_cache`, on disk) |\n|---|---:|---:|---:|")
sides = ("trove_redis", "trove", "nginx")
stored = {side: load("stored-slow-%s.json" % side) for side in sides}
fast = {side: statistics.median(load("stored-throughput-%s.json" % side)["mb_per_s"]) for side in sides}
print("| resident memory growth of the proxy, %s clients read it at 1 MB/s for %s s | %s |" % (
    clients, seconds, " | ".join(mb(stored[side]["rss_growth"]) for side in sides)))
print("| bytes the clients read in that time | %s |" % " | ".join(mb(stored[side]["received"]) for side in sides))
print("| client errors | %s |" % " | ".join(str(stored[side]["error_count"]) for side in sides))
print("| 50 MB hit, median of 3 | %s |" % " | ".join("%.0f MB/s" % fast[side] for side in sides))
redis_memory = open(os.path.join(out, "stored-redis-memory.txt")).read().strip() if os.path.exists(os.path.join(out, "stored-redis-memory.txt")) else ""
print("\nTrove keeps an entry over 1 MiB in Redis as 1 MiB chunks beside a small head, and serves it a chunk at a "
      "time: a client holds one chunk while it reads. Redis itself afterwards: %s." % (redis_memory or "not read (no redis-cli)"))
print("\nThe clients, the origin (Python) and both proxies share the machine's cores: compare the columns, not "
      "absolute figures. nginx spills to a temporary file when its client is slower than the origin "
      "(`proxy_max_temp_file_size` 1 GiB), so its memory stays flat too; Trove holds `limits.stream_window` "
      "(256 KiB) per exchange and pauses the origin instead of writing to disk.")
PY
cat "$out/report.md"
