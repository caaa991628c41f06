#!/bin/sh
# Includes follow the path of a span. For every quoted #include in agent/ and collector/, the
# header's folder must be the file's own folder or one the rule table below allows: a stage may
# use the stages before it, never one after it (otlp/ including a receiver, decide/ a sink, the
# agent's core its exporters). Exit 1 with one line per include against the flow.
# Usage: check_layout.sh SOURCE_DIR
set -eu
cd "$1"

# folder: the folders its files may include from (besides their own and system headers).
allowed() {
  case "$1" in
    collector/base) echo "" ;;
    collector/otlp) echo "collector/base" ;;
    collector/decide) echo "collector/base collector/otlp agent" ;;
    collector/forward) echo "collector/base collector/otlp agent agent/export" ;;
    collector/signals) echo "collector/base collector/otlp" ;;
    collector/hold) echo "collector/base collector/otlp collector/decide collector/forward collector/signals" ;;
    collector/receive) echo "collector/base collector/otlp" ;;
    collector/admin) echo "collector/base collector/otlp collector/decide collector/forward collector/signals collector/hold collector/receive" ;;
    collector/config) echo "collector/base collector/otlp collector/decide collector/forward collector/signals collector/hold agent/export" ;;
    collector) echo "collector/base collector/otlp collector/decide collector/forward collector/signals collector/hold collector/receive collector/admin collector/config" ;;
    agent) echo "include" ;;
    agent/export) echo "include agent" ;;
    agent/grpc) echo "include agent agent/export" ;;
    *) echo "?" ;;
  esac
}

# Where each project header lives, by file name (names are unique across these folders).
index=$(find include agent collector -name '*.h' | sort)
where() {
  echo "$index" | awk -v n="$1" -F/ '$NF == n { sub("/[^/]*$", ""); print; exit }'
}

bad=0
checked=0
for f in $(find agent collector -name '*.[ch]' | sort); do
  dir=${f%/*}
  ok=$(allowed "$dir")
  if [ "$ok" = "?" ]; then
    echo "$f: folder $dir has no row in tests/check_layout.sh" >&2
    bad=1
    continue
  fi
  for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
    hdir=$(where "${h##*/}")
    [ -n "$hdir" ] || continue # generated (protobuf-c) headers
    checked=$((checked + 1))
    [ "$hdir" = "$dir" ] && continue
    case " $ok " in *" $hdir "*) continue ;; esac
    echo "$f includes $hdir/${h##*/}: against the flow (allowed: ${ok:-nothing})" >&2
    bad=1
  done
done
echo "check_layout: $checked includes checked"
exit $bad
