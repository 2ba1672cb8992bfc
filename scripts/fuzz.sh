#!/usr/bin/env bash
# Runs libFuzzer on each of Trove's parsers for a bounded time (`make fuzz`).
#
#   scripts/fuzz.sh                       every target, FUZZ_SECONDS (60) each
#   FUZZ_SECONDS=600 scripts/fuzz.sh rules target     some targets, longer
#
# Targets (Sources/TroveFuzz/FuzzTargets.swift): rules, template, target, headers, resp, framing, accesslog, shadow. The binary is built with
# -sanitize=fuzzer in .build-fuzz/. Each run starts from fuzz/corpus/TARGET; what it finds that covers new code
# is merged back there (minimized: commit it), and an input that crashes or breaks an invariant is written to
# fuzz/findings/ with the command that reproduces it. Copy a finding into fuzz/regressions/TARGET and fix it:
# `make test` replays the corpus and every regression (Tests/TroveFuzzTests).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(rules template target headers resp framing accesslog shadow)

echo "fuzz: building trove-fuzz with -sanitize=fuzzer (.build-fuzz; the first build takes several minutes)"
swift build --product trove-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING --scratch-path .build-fuzz >/dev/null
binary=.build-fuzz/x86_64-unknown-linux-gnu/debug/trove-fuzz
[ -x "$binary" ] || binary=$(find .build-fuzz -name trove-fuzz -type f -perm -u+x | head -1)
mkdir -p fuzz/findings
status=0
for target in "${targets[@]}"; do
  [ -d "fuzz/corpus/$target" ] || { echo "fuzz: no target '$target' (rules, template, target, headers, resp, framing, accesslog, shadow)" >&2; exit 2; }
  work=$(mktemp -d)
  echo "fuzz: $target for ${seconds}s (corpus fuzz/corpus/$target: $(find "fuzz/corpus/$target" -type f | wc -l) inputs)"
  # Swift's own crash handler would take the signal before libFuzzer could save the input.
  if ! SWIFT_BACKTRACE=enable=no TROVE_FUZZ=$target "$binary" "$work" "fuzz/corpus/$target" \
      -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="fuzz/findings/$target-" -print_final_stats=1 >"$work.log" 2>&1; then
    status=1
    echo "fuzz: $target FOUND A PROBLEM:"
    grep -E "Fatal error|ERROR: libFuzzer|Test unit written" "$work.log" | sed 's/^/  /'
    for finding in fuzz/findings/"$target"-*; do
      [ -e "$finding" ] && echo "  reproduce: swift build --product trove-fuzz && TROVE_FUZZ=$target .build/debug/trove-fuzz $finding"
    done
  fi
  grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$work.log" | sed "s/^/  $target /" || true
  # Keep what covers new code, minimized against what is committed.
  SWIFT_BACKTRACE=enable=no TROVE_FUZZ=$target "$binary" -merge=1 "fuzz/corpus/$target" "$work" >/dev/null 2>&1 || true
  echo "fuzz: $target corpus now $(find "fuzz/corpus/$target" -type f | wc -l) inputs"
  rm -rf "$work" "$work.log"
done
exit $status
