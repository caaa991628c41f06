#!/bin/sh
# Runs every libFuzzer target built in BUILD (default build-fuzz, from `make fuzz`) for SECONDS
# each (default 20), starting from its committed seed corpus. New inputs go to a scratch
# directory, not into the repository. Exits non-zero on the first crash, leak or timeout, and
# leaves the reproducer in the scratch directory it names.
set -eu
BUILD=$(cd "${1:-build-fuzz}" && pwd)
SECONDS_EACH=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/tt-fuzz-XXXXXX)
n=0
for src in "$here"/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin="$BUILD/tests/fuzz/$name"
  if [ ! -x "$bin" ]; then
    echo "run_fuzzers: $bin is missing (build with make fuzz)" >&2
    exit 1
  fi
  mkdir -p "$scratch/$name"
  echo "== $name: ${SECONDS_EACH}s"
  rc=0
  (cd "$scratch/$name" && "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$scratch/$name" "$here/corpus/$name" >"$scratch/$name.log" 2>&1) || rc=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$name.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "$scratch/$name.log" >&2
    echo "run_fuzzers: $name failed (exit $rc); reproducer and log in $scratch" >&2
    exit 1
  fi
  n=$((n + 1))
done
echo "run_fuzzers: $n targets ran ${SECONDS_EACH}s each without a finding"
rm -rf "$scratch"
