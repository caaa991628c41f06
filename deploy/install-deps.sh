#!/usr/bin/env bash
# Installs every build and test dependency of tailtrace from Debian's packages.
# Idempotent: when everything is present it only checks and returns (well under a second).
# Usage: deploy/install-deps.sh           (as root, or with sudo available)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libgrpc-dev
  libuv1-dev libcmocka-dev libcurl4-openssl-dev zlib1g-dev libyaml-dev
  libhttp-parser-dev libssl-dev redis-server
  python3 python3-grpcio python3-protobuf python3-yaml
  nodejs npm
  binutils curl ca-certificates openssl valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# node/npm may come from outside Debian (e.g. a nodesource build that bundles npm); accept them
# when the commands exist, since only the commands are needed.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do
    [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-deps: installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done" >&2
