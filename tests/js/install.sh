#!/bin/sh
# Installs the OpenTelemetry JS SDK packages used as a real OTLP client by the wire tests, exactly
# as pinned in package-lock.json, into tests/js/node_modules (git-ignored). A quick no-op when the
# installed tree already matches the lock file.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/js/install.sh: npm not found (deploy/install-deps.sh installs nodejs and npm)" >&2
  exit 1
fi
stamp=node_modules/.tt-lock-stamp
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
