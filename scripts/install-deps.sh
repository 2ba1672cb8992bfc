#!/usr/bin/env bash
# Installs the Debian packages Trove needs to build and test, and only those that are missing.
# Safe to run repeatedly: when everything is present it prints one line and changes nothing.
#
#   scripts/install-deps.sh            build + test dependencies (hiredis, libcurl, redis-server, python3-venv)
#   scripts/install-deps.sh --bench    also the load-test peers (wrk, nginx, varnish, redis-tools)
#
# Uses sudo only when not running as root.
set -euo pipefail

# python3-venv: hadolint (from PyPI) for `make lint`, which `make test` runs.
# zlib1g-dev: gzip bodies (compress-nio links zlib).
# openssl: the TLS Redis tests make their certificates with it.
packages=(libhiredis-dev libcurl4-openssl-dev zlib1g-dev redis-server pkg-config curl python3-venv openssl)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(wrk nginx varnish redis-tools curl iproute2)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all present (${packages[*]})"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: missing ${missing[*]}, and apt-get is not available." >&2
  echo "install-deps: install them with your package manager (hiredis >= 0.14, libcurl >= 7.68, redis >= 6)." >&2
  exit 1
fi

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-deps: missing ${missing[*]}; run this script as root or install sudo." >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# The package's own redis service is not what Trove uses (tests start their own redis-server on a free
# port), so do not let the install start one on 6379 where a container or CI has no init system.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
