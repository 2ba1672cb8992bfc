#!/usr/bin/env bash
# What a verified identity costs on a hit: one Trove, one run, the same cached answer reached five ways.
#
#   loadtest/identity.sh [rounds]        (TROVE_BIN: default .build/release/trove)
#
# Routes (loadtest/peers/origin.py behind, /api/products/1..5, the memory store): an anonymous hit; a per-user hit keyed on
# {header.authorization|token|sha256}; and per-user hits keyed on {jwt.sub} with an HS256, an ES256 and an RS256
# token (keys made here with openssl, tokens signed here). Each is warmed, then `wrk -t1 -c50 -d5s` runs on it
# with its Authorization header while Trove's CPU time is read; the order rotates every round. Prints each run
# and the medians of requests/s and CPU µs per request. Compare the rows with each other, never with another
# machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
export PEERS_WORKDIR=${PEERS_WORKDIR:-/tmp/trove-identity}
kit=loadtest/peers
# shellcheck source=peers/common.sh
. "$kit/common.sh"
command -v openssl >/dev/null || die "openssl is missing (apt-get install openssl)"
command -v wrk >/dev/null || die "wrk is missing (apt-get install wrk)"
mkdir -p "$WORKDIR"
started=()
# shellcheck disable=SC2329  # invoked by the trap
cleanup() { trap - EXIT INT TERM; [ ${#started[@]} -eq 0 ] || "$kit/stop.sh" "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

secret=identity-bench-secret-0123456789abcdef
openssl ecparam -name prime256v1 -genkey -noout -out "$WORKDIR/ec.pem" 2>/dev/null
openssl ec -in "$WORKDIR/ec.pem" -pubout -out "$WORKDIR/ec.pub" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORKDIR/rsa.pem" 2>/dev/null
openssl rsa -in "$WORKDIR/rsa.pem" -pubout -out "$WORKDIR/rsa.pub" 2>/dev/null
# Tokens for user 42, valid for an hour: header.claims signed with openssl (ECDSA's DER signature made raw r||s).
tokens=$(python3 - "$WORKDIR" "$secret" <<'PY'
import base64, hashlib, hmac, json, subprocess, sys, time
work, secret = sys.argv[1], sys.argv[2].encode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
claims = b64(json.dumps({"sub": "42", "exp": int(time.time()) + 3600}).encode())
def signing_input(alg): return b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + claims
def openssl_sign(key, data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data.encode(), capture_output=True, check=True).stdout
def der_to_raw(der):  # SEQUENCE { INTEGER r, INTEGER s } → r||s, 32 bytes each
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        length = der[i + 1]; value = der[i + 2:i + 2 + length]; i += 2 + length
        out += value.lstrip(b"\0").rjust(32, b"\0")
    return out
hs = signing_input("HS256"); es = signing_input("ES256"); rs = signing_input("RS256")
print(hs + "." + b64(hmac.new(secret, hs.encode(), hashlib.sha256).digest()))
print(es + "." + b64(der_to_raw(openssl_sign(work + "/ec.pem", es))))
print(rs + "." + b64(openssl_sign(work + "/rsa.pem", rs)))
PY
)
hs256=$(sed -n 1p <<<"$tokens"); es256=$(sed -n 2p <<<"$tokens"); rs256=$(sed -n 3p <<<"$tokens")

cat >"$WORKDIR/identity.yaml" <<YAML
version: 1
admin: {listen: 127.0.0.1:18192, allow_unauthenticated: true}
origins:
  origin: {url: http://127.0.0.1:18080, timeout: 30s}
jwt:
  hs: {algorithm: HS256, secret: {env: BENCH_SECRET}}
  es: {algorithm: ES256, key_file: $WORKDIR/ec.pub}
  rs: {algorithm: RS256, key_file: $WORKDIR/rsa.pub}
routes:
  - {name: anonymous, match: GET /api/products/1, cache: {key: "a:{path}", ttl: 300s}}
  - {name: hashed, match: GET /api/products/2, cache: {key: "h:{header.authorization|token|sha256}", ttl: 300s, authenticated: true}}
  - {name: hs256, match: GET /api/products/3, jwt: hs, cache: {key: "hs:{jwt.sub}", ttl: 300s, authenticated: true}}
  - {name: es256, match: GET /api/products/4, jwt: es, cache: {key: "es:{jwt.sub}", ttl: 300s, authenticated: true}}
  - {name: rs256, match: GET /api/products/5, jwt: rs, cache: {key: "rs:{jwt.sub}", ttl: 300s, authenticated: true}}
  - {name: everything-else, match: ANY /**, pass: true}
YAML

"$kit/start-origin.sh"; started=(origin)
BENCH_SECRET=$secret TROVE_CONFIG=$WORKDIR/identity.yaml "$kit/start-trove.sh" trove-identity 18196 18192 memory >/dev/null
started=(trove-identity "${started[@]}")
pid=$(cat "$WORKDIR/trove-identity.pid")

declare -A path=([anonymous]=1 [hashed]=2 [hs256]=3 [es256]=4 [rs256]=5)
declare -A authorization=([anonymous]="" [hashed]="Bearer opaque-token-of-user-42" [hs256]="Bearer $hs256" [es256]="Bearer $es256"
  [rs256]="Bearer $rs256")
names=(anonymous hashed hs256 es256 rs256)
run() {  # run NAME → "req/s µs/req"
  local name=$1 url="http://127.0.0.1:18196/api/products/${path[$1]}" header=() u0 s0 u1 s1 requests
  [ -z "${authorization[$name]}" ] || header=(-H "Authorization: ${authorization[$name]}")
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${header[@]}" "$url")" = 200 ] || die "$name: the warming request failed"
  [ "$(curl -s -o /dev/null -D - "${header[@]}" "$url" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" {print $2}')" = HIT ] \
    || die "$name: not a hit after warming"
  wrk -t1 -c50 -d1s "${header[@]}" "$url" >/dev/null
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  requests=$(wrk -t1 -c50 -d5s "${header[@]}" "$url" | awk '/requests in/ {print $1}')
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  awk -v n="$requests" -v t=$(( (u1 - u0) + (s1 - s0) )) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f %.1f\n", n / 5, t / hz / n * 1e6}'
}
declare -A rps cpu
for ((round = 1; round <= rounds; round++)); do
  for ((i = 0; i < ${#names[@]}; i++)); do
    name=${names[$(( (i + round - 1) % ${#names[@]} ))]}
    read -r r c < <(run "$name")
    rps[$name]+="$r "; cpu[$name]+="$c "
    printf 'round %d %-9s %8s req/s %6s µs/req\n' "$round" "$name" "$r" "$c"
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo
printf '| hit | req/s (median) | CPU µs per hit (median) |\n|---|---|---|\n'
for name in "${names[@]}"; do
  # shellcheck disable=SC2086  # the lists are space-separated numbers
  printf '| %s | %s | %s |\n' "$name" "$(median ${rps[$name]})" "$(median ${cpu[$name]})"
done
