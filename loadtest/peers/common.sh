# shellcheck shell=bash
# Shared defaults for the peers benchmark kit. Every value can be overridden from the env.
# Sourced by start-*.sh, stop.sh and run-peers.sh; never executed directly.

PEERS_DIR=${PEERS_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
WORKDIR=${PEERS_WORKDIR:-/tmp/peers-bench}      # pid files, logs, rendered configs, cache files

PYTHON=${PYTHON:-python3}

ORIGIN_HOST=${ORIGIN_HOST:-127.0.0.1}
ORIGIN_PORT=${ORIGIN_PORT:-18080}
ORIGIN_DELAY_MS=${ORIGIN_DELAY_MS:-200}

CACHE_TTL_S=${CACHE_TTL_S:-300}

NGINX_BIN=${NGINX_BIN:-nginx}
NGINX_HOST=${NGINX_HOST:-127.0.0.1}
NGINX_PORT=${NGINX_PORT:-18081}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
NGINX_CACHE_DIR=${NGINX_CACHE_DIR:-$WORKDIR/nginx/cache}
NGINX_SENDFILE=${NGINX_SENDFILE:-off}           # off: header+body leave in one write (see RESULTS.md)
NGINX_TCP_NOPUSH=${NGINX_TCP_NOPUSH:-off}         # only acts with sendfile on; on + sendfile stalls 64 KB hits ~44 ms

VARNISHD_BIN=${VARNISHD_BIN:-varnishd}
VARNISH_HOST=${VARNISH_HOST:-127.0.0.1}
VARNISH_PORT=${VARNISH_PORT:-18082}
VARNISH_ADMIN_PORT=${VARNISH_ADMIN_PORT:-18083}
VARNISH_MEM=${VARNISH_MEM:-512m}
VARNISH_PARAMS=${VARNISH_PARAMS:-}             # extra "-p name=value ..." for varnishd

REDIS_BIN=${REDIS_BIN:-redis-server}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-18379}
REDIS_CLUSTER_PORT=${REDIS_CLUSTER_PORT:-18391}   # three masters: this port and the next two

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# render TEMPLATE OUT: replace @VAR@ with the value of shell variable VAR.
render() {
    local tpl=$1 out=$2 var line
    local vars
    vars=$(grep -o '@[A-Z0-9_]*@' "$tpl" | sort -u | tr -d '@')
    cp "$tpl" "$out.tmp"
    for var in $vars; do
        [ -n "${!var+x}" ] || die "render: $var is not set (template $tpl)"
        line=${!var}
        line=${line//\\/\\\\}; line=${line//|/\\|}; line=${line//&/\\&}
        sed -i "s|@${var}@|${line}|g" "$out.tmp"
    done
    mv "$out.tmp" "$out"
}

# is_running PID: exists and is not a zombie (init may reap our orphans late)
is_running() {
    [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# pid_alive NAME: true if $WORKDIR/NAME.pid names a live process whose cmdline contains its binary.
pid_alive() {
    local name=$1 pidf="$WORKDIR/$1.pid" pid want
    [ -s "$pidf" ] || return 1
    pid=$(cat "$pidf")
    is_running "$pid" || return 1
    case $name in
        origin) want=origin.py ;;
        nginx) want=nginx ;;
        varnish) want=varnishd ;;
        redis | redis-cluster-*) want=redis-server ;;
        trove-*) want=" serve --config" ;;
        *) want=$name ;;
    esac
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$want"
}

# wait_http URL [TIMEOUT_S]: poll until the URL answers (any HTTP status).
wait_http() {
    local url=$1 t=${2:-15} i
    for ((i = 0; i < t * 10; i++)); do
        curl -s -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# wait_tcp HOST PORT [TIMEOUT_S]
wait_tcp() {
    local h=$1 p=$2 t=${3:-15} i
    for ((i = 0; i < t * 10; i++)); do
        (exec 3<>"/dev/tcp/$h/$p") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
