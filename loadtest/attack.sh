#!/usr/bin/env bash
# What one hostile client costs a running Trove, measured while a normal load runs (issue #12): 20,000 idle
# connections and 500 slowloris clients during a `wrk` load (its throughput and errors, and the admin API's
# answers, during the attack), and resident memory with 50 clients that pipeline large GETs and never read.
#
#   loadtest/attack.sh                                   the whole run (~3 min)
#   PHASES=slowloris loadtest/attack.sh                  one phase (idle, slowloris, pipeline)
#   TROVE_BIN=/path/to/old/trove LABEL=82e390b loadtest/attack.sh   another build, for a before/after
#   ATTACK_ARGS="--idle 2000 --seconds 5" loadtest/attack.sh       smaller (attack/attack.py --help lists them)
#
# Trove runs with loadtest/attack/trove-attack.yaml (the peers benchmark's rules, large answers stored, the
# default limits but a 15 s send timeout) and the Redis store, in front of peers/origin.py. Results: loadtest/results/attack-DATE[-LABEL]/
# (report.md, results.jsonl, env.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
kit=$root/loadtest/peers
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-attack}
# shellcheck source=peers/common.sh
. "$kit/common.sh"
label=${LABEL:-}
out=${RUN_DIR:-$root/loadtest/results/attack-$(date +%Y%m%d-%H%M)${label:+-$label}}

scripts/install-deps.sh --bench >/dev/null
if [ -z "${TROVE_BIN:-}" ]; then
  log "building trove (release)"
  swift build -c release --product trove >/dev/null
  TROVE_BIN=$root/.build/release/trove
fi
export TROVE_BIN TROVE_CONFIG=${TROVE_CONFIG:-$root/loadtest/attack/trove-attack.yaml}

started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#started[@]} -gt 0 ]; then "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$kit/start-origin.sh"; started=(origin)
"$kit/start-redis.sh"; started=(redis "${started[@]}")
"$kit/start-trove.sh" trove-attack 18094 18095 redis; started=(trove-attack "${started[@]}")
pid=$(cat "$WORKDIR/trove-attack.pid")

mkdir -p "$out"
{
  echo "command: PHASES=${PHASES:-idle,slowloris,pipeline} ATTACK_ARGS='${ATTACK_ARGS:-}' TROVE_CONFIG=${TROVE_CONFIG#"$root"/} ${0}"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "trove: $TROVE_BIN ($("$TROVE_BIN" --version 2>/dev/null || echo '?'); source $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'))"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
  echo "wrk: $(wrk --version 2>&1 | head -1)"
} >"$out/env.txt"

python3 "$root/loadtest/attack/attack.py" --proxy 127.0.0.1:18094 --admin 127.0.0.1:18095 --pid "$pid" \
  --phases "${PHASES:-idle,slowloris,pipeline}" --out "$out/results.jsonl" ${ATTACK_ARGS:-} >"$out/report.body.md"
alive=yes
is_running "$pid" || alive=no
{
  echo "# Trove under attack (loadtest/attack.sh)"
  echo
  echo '```'
  cat "$out/env.txt"
  echo '```'
  echo
  echo "Trove still running after every phase: $alive."
  echo
  cat "$out/report.body.md"
} >"$out/report.md"
rm "$out/report.body.md"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/env.txt"
cat "$out/report.md"
log "results in ${out#"$root"/}"
