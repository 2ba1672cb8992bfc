#!/usr/bin/env bash
# Run the public HTTP caching test suite (https://cache-tests.fyi, github.com/http-tests/cache-tests)
# against Trove and, beside it in the same run, nginx and Varnish in their stock "honour the origin"
# configurations, then write a side-by-side report.
#
#   conformance/cache-tests/run.sh                   # trove nginx varnish
#   conformance/cache-tests/run.sh trove             # only Trove
#   CACHE_TESTS_DIR=~/src/cache-tests conformance/cache-tests/run.sh
#
# CACHE_TESTS_DIR  a checkout of the suite (default .build/cache-tests, cloned at $CACHE_TESTS_REF and
#                  `npm install`ed when absent: needs git, npm and network access to GitHub and npm).
# OUT              where results go (default conformance/cache-tests/results/$(date +%Y%m%d)).
# TROVE_BIN        the trove binary (default .build/release/trove, built when absent).
#
# Every server listens on a free loopback port and is stopped when the script exits. One run takes
# about 30 s per implementation (the suite pauses 3 s between some requests).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE_TESTS_DIR=${CACHE_TESTS_DIR:-$ROOT/.build/cache-tests}
CACHE_TESTS_REF=${CACHE_TESTS_REF:-main}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d)}
TROVE_BIN=${TROVE_BIN:-$ROOT/.build/release/trove}
IMPLEMENTATIONS=("$@")
[ ${#IMPLEMENTATIONS[@]} -gt 0 ] || IMPLEMENTATIONS=(trove nginx varnish)

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

for impl in "${IMPLEMENTATIONS[@]}"; do
    case $impl in
        trove) ;;
        nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || die "nginx is not installed: sudo apt-get install -y nginx-light (or drop 'nginx')" ;;
        varnish) command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || die "varnishd is not installed: sudo apt-get install -y varnish (or drop 'varnish')" ;;
        *) die "unknown implementation '$impl': choose from trove, nginx, varnish" ;;
    esac
done
command -v node >/dev/null || die "node (>= 18) is not installed: sudo apt-get install -y nodejs npm"

if [ ! -f "$CACHE_TESTS_DIR/test-engine/cli.mjs" ]; then
    say "Fetching the suite into $CACHE_TESTS_DIR ($CACHE_TESTS_REF)"
    git clone --quiet https://github.com/http-tests/cache-tests "$CACHE_TESTS_DIR" \
        || die "could not clone github.com/http-tests/cache-tests; clone it yourself and set CACHE_TESTS_DIR"
    git -C "$CACHE_TESTS_DIR" checkout --quiet "$CACHE_TESTS_REF"
fi
if [ ! -d "$CACHE_TESTS_DIR/node_modules" ]; then
    (cd "$CACHE_TESTS_DIR" && npm install --omit=dev --no-audit --no-fund >/dev/null) \
        || die "npm install failed in $CACHE_TESTS_DIR"
fi
if [ ! -x "$TROVE_BIN" ]; then
    say "Building trove (release)"
    (cd "$ROOT" && swift build -c release --product trove >/dev/null)
fi

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/trove-cache-tests.XXXXXX")
chmod 755 "$WORKDIR"  # nginx workers run as another user when started by root
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORKDIR"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {  # port, name, log
    local deadline=$((SECONDS + 30))
    until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { cat "$3" >&2; die "$2 did not start listening on 127.0.0.1:$1"; }
        sleep 0.1
    done
}
render() { sed -e "s|@WORKDIR@|$WORKDIR|g" -e "s|@LISTEN@|127.0.0.1:$2|g" -e "s|@ADMIN@|127.0.0.1:$3|g" \
    -e "s|@ORIGIN@|127.0.0.1:$ORIGIN_PORT|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" "$1"; }

# The suite's origin: answers each test's requests with the headers the test asks for.
ORIGIN_PORT=$(free_port)
(cd "$CACHE_TESTS_DIR" && exec env npm_config_protocol=http npm_config_port="$ORIGIN_PORT" \
    npm_config_pidfile="$WORKDIR/origin.pid" node test-engine/server/server.mjs) >"$WORKDIR/origin.log" 2>&1 &
PIDS+=($!)
wait_port "$ORIGIN_PORT" "the suite's origin" "$WORKDIR/origin.log"

mkdir -p "$OUT"
for impl in "${IMPLEMENTATIONS[@]}"; do
    port=$(free_port)
    case $impl in
        trove)
            render "$HERE/trove.yaml" "$port" "$(free_port)" >"$WORKDIR/trove.yaml"
            "$TROVE_BIN" serve -c "$WORKDIR/trove.yaml" >"$WORKDIR/trove.log" 2>&1 &
            PIDS+=($!); version=$("$TROVE_BIN" --version) ;;
        nginx)
            render "$HERE/nginx.conf.in" "$port" 0 >"$WORKDIR/nginx.conf"
            "$(command -v nginx || echo /usr/sbin/nginx)" -c "$WORKDIR/nginx.conf" -e "$WORKDIR/nginx-error.log" >"$WORKDIR/nginx.log" 2>&1 &
            PIDS+=($!); version=$("$(command -v nginx || echo /usr/sbin/nginx)" -v 2>&1 | sed 's/.*: //') ;;
        varnish)
            render "$HERE/varnish.vcl.in" "$port" 0 >"$WORKDIR/varnish.vcl"
            "$(command -v varnishd || echo /usr/sbin/varnishd)" -F -j none -n "$WORKDIR/varnish" -a "127.0.0.1:$port" \
                -T "127.0.0.1:$(free_port)" -f "$WORKDIR/varnish.vcl" -s malloc,64m -t 0 >"$WORKDIR/varnish.log" 2>&1 &
            PIDS+=($!); version=$("$(command -v varnishd || echo /usr/sbin/varnishd)" -V 2>&1 | head -1 | sed 's/^varnishd (\(.*\) revision.*/\1/') ;;
    esac
    wait_port "$port" "$impl" "$WORKDIR/$impl.log"
    say "Running the suite against $impl ($version) on 127.0.0.1:$port"
    started=$SECONDS
    (cd "$CACHE_TESTS_DIR" && npm_config_base="http://127.0.0.1:$port" npm_config_id='' \
        node --no-warnings test-engine/cli.mjs) >"$OUT/$impl.json" 2>"$WORKDIR/$impl-cli.log" &
    cli=$!
    while kill -0 "$cli" 2>/dev/null; do
        [ -t 2 ] && printf '\r  %3ds' $((SECONDS - started)) >&2
        sleep 1
    done
    wait "$cli" || { cat "$WORKDIR/$impl-cli.log" >&2; die "the suite's client failed against $impl"; }
    [ -t 2 ] && printf '\r' >&2
    node -e 'JSON.parse(require("fs").readFileSync(process.argv[1]))' "$OUT/$impl.json" \
        || { cat "$WORKDIR/$impl-cli.log" >&2; die "no results from $impl"; }
    echo "$impl $version" >>"$WORKDIR/versions"
    kill "${PIDS[-1]}" 2>/dev/null || true; wait "${PIDS[-1]}" 2>/dev/null || true
    say "  done in $((SECONDS - started)) s"
done

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    # A copy that is not a git checkout says what it is in a VERSION file.
    echo "suite: $(git -C "$CACHE_TESTS_DIR" rev-parse HEAD 2>/dev/null || cat "$CACHE_TESTS_DIR/VERSION" 2>/dev/null || echo "$CACHE_TESTS_DIR")"
    echo "trove: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet || echo '+dirty')"
    cat "$WORKDIR/versions"
    echo "node: $(node --version)"
    echo "machine: $(nproc) cpu, $(uname -sr)"
} >"$OUT/env.txt"
node "$HERE/summary.mjs" "$CACHE_TESTS_DIR" "$OUT" "${IMPLEMENTATIONS[@]}" >"$OUT/report.md"
say "Report: $OUT/report.md"
sed -n '1,/^## Every test/p' "$OUT/report.md" | sed '$d'
