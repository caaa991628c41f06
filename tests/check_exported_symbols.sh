#!/bin/sh
# Fails when the shared library exports a defined symbol whose name does not start with tt_.
# Usage: check_exported_symbols.sh path/to/libtailtrace.so
set -eu
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}')
if [ -z "$syms" ]; then
  echo "no exported symbols found in $lib (expected the tt_ API)" >&2
  exit 1
fi
bad=$(printf '%s\n' "$syms" | grep -v '^tt_' || true)
if [ -n "$bad" ]; then
  echo "exported symbols without the tt_ prefix in $lib:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
echo "all $(printf '%s\n' "$syms" | wc -l) exported symbols start with tt_"
