#!/usr/bin/env bash
# `make demo`: the collector (examples/demo.yaml) and the example services shop and orders, a few
# seconds of mixed traffic (ok, failing, slow checkouts), then what the collector decided: traces
# kept and dropped by reason, read from its admin /metrics, and where the kept traces are.
# Every process it starts is stopped when it exits, also on Ctrl-C.
#
# Usage: examples/demo.sh [BUILD_DIR]         (BUILD_DIR defaults to build)
# Environment (all optional): DEMO_SECONDS (traffic, default 5, at most 60), TT_DEMO_DIR (scratch
# directory, default a new one under /tmp), and the loopback addresses TT_DEMO_OTLP_HTTP
# (127.0.0.1:14318), TT_DEMO_OTLP_GRPC (127.0.0.1:14317), TT_DEMO_ADMIN (127.0.0.1:13134),
# TT_DEMO_SHOP (127.0.0.1:18080), TT_DEMO_ORDERS (127.0.0.1:18081).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
collector=$build/collector/tailtrace-collector
for bin in "$collector" "$build/examples/shop" "$build/examples/orders"; do
  if [ ! -x "$bin" ]; then
    echo "demo: $bin is missing: build first (make demo does)" >&2
    exit 1
  fi
done
seconds=${DEMO_SECONDS:-5}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ] || [ "$seconds" -gt 60 ]; then
  echo "demo: DEMO_SECONDS must be a whole number of seconds from 1 to 60, not '$seconds'" >&2
  exit 1
fi
export TT_DEMO_OTLP_HTTP=${TT_DEMO_OTLP_HTTP:-127.0.0.1:14318}
export TT_DEMO_OTLP_GRPC=${TT_DEMO_OTLP_GRPC:-127.0.0.1:14317}
export TT_DEMO_ADMIN=${TT_DEMO_ADMIN:-127.0.0.1:13134}
shop=${TT_DEMO_SHOP:-127.0.0.1:18080}
orders=${TT_DEMO_ORDERS:-127.0.0.1:18081}
dir=${TT_DEMO_DIR:-$(mktemp -d /tmp/tailtrace-demo.XXXXXX)}
mkdir -p "$dir"
export TT_DEMO_TRACES=$dir/kept-traces.jsonl

pids=()
slow_pids=() # requests in flight in the background
stop_all() {
  # In order: the services first, so their last spans reach the collector, which goes last; each
  # by its own pid.
  local p
  for p in "${slow_pids[@]+"${slow_pids[@]}"}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]+"${pids[@]}"}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap stop_all EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

# Waits (at most $2 tenths of a second) until curl gets any HTTP answer from URL $1.
wait_http() {
  local i
  for ((i = 0; i < $2; i++)); do
    if curl -s -o /dev/null --max-time 1 "$1"; then
      return 0
    fi
    sleep 0.1
  done
  echo "demo: nothing answered at $1; logs in $dir" >&2
  exit 1
}

"$collector" --config "$here/demo.yaml" >"$dir/collector.log" 2>&1 &
collector_pid=$!
wait_http "http://$TT_DEMO_ADMIN/healthz" 100

# The services export to the collector every 200 ms (the SDK default is 5 s).
export OTEL_EXPORTER_OTLP_ENDPOINT=http://$TT_DEMO_OTLP_HTTP
export OTEL_BSP_SCHEDULE_DELAY=200
"$build/examples/orders" --listen "$orders" >"$dir/orders.log" 2>&1 &
pids=("$!" "${pids[@]+"${pids[@]}"}")
"$build/examples/shop" --listen "$shop" --orders "$orders" >"$dir/shop.log" 2>&1 &
pids=("$!" "${pids[@]+"${pids[@]}"}")
pids+=("$collector_pid") # stopped last
wait_http "http://$orders/" 100
wait_http "http://$shop/" 100

echo "demo: sending checkouts to shop at $shop for $seconds s (ok, ?fail=1 and ?slow=1) ..."
ok=0 failed=0 slow=0 n=0
end=$((SECONDS + seconds))
# At most 50 requests a second, whatever the machine, so the run stays bounded.
while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt $((50 * seconds)) ]; do
  n=$((n + 1))
  case $((n % 10)) in
    3)
      curl -s -o /dev/null --max-time 10 "http://$shop/checkout?user=$n&fail=1" || true
      failed=$((failed + 1))
      ;;
    7)
      # A slow checkout takes 1.2 s: sent in the background so the others keep flowing.
      curl -s -o /dev/null --max-time 10 "http://$shop/checkout?user=$n&slow=1" &
      slow_pids+=("$!")
      slow=$((slow + 1))
      ;;
    *)
      curl -s -o /dev/null --max-time 10 "http://$shop/checkout?user=$n" || true
      ok=$((ok + 1))
      ;;
  esac
  sleep 0.02
done
for p in "${slow_pids[@]+"${slow_pids[@]}"}"; do
  wait "$p" || true
done
sent=$((ok + failed + slow))

metric() { # metric NAME [LABEL-FILTER]: the sum of the series of NAME matching the filter
  curl -s --max-time 2 "http://$TT_DEMO_ADMIN/metrics" |
    awk -v n="$1" -v f="${2:-}" '$1 == n || index($1, n "{") == 1 { if (f == "" || index($1, f)) s += $2 } END { printf "%d\n", s }'
}

echo "demo: sent $sent checkouts: $ok ok, $failed failing, $slow slow; waiting for the decisions ..."
# Every trace is decided about root_grace + drop_delay (2 s) after its last span is exported.
for ((i = 0; i < 200; i++)); do
  if [ "$(metric tailtrace_traces_decided_total)" -ge "$sent" ] &&
    [ "$(metric tailtrace_traces_held)" -eq 0 ]; then
    break
  fi
  sleep 0.1
done

echo
echo "tailtrace-collector (http://$TT_DEMO_ADMIN/metrics):"
printf '  spans received   %d\n' "$(metric tailtrace_spans_received_total)"
# A trace counts once its first span arrives: decided ones plus those still held.
printf '  traces received  %d\n' \
  "$(($(metric tailtrace_traces_decided_total) + $(metric tailtrace_traces_held)))"
for pair in keep:kept drop:dropped; do
  decision=${pair%%:*}
  line=""
  for reason in errors latency ratio rate_limit attribute no_match; do
    v=$(metric tailtrace_traces_decided_total "decision=\"$decision\",reason=\"$reason\"")
    if [ "$v" -gt 0 ]; then
      line="$line $reason $v,"
    fi
  done
  line=${line%,}
  printf '  traces %-9s %d  (by reason:%s)\n' "${pair#*:}" \
    "$(metric tailtrace_traces_decided_total "decision=\"$decision\"")" "${line:- none}"
done
echo
echo "kept traces (OTLP/JSON, one request per line): $TT_DEMO_TRACES"
echo "logs: $dir/{collector,shop,orders}.log"
echo "to send kept traces to Jaeger instead, add the exporters: entry of deploy/jaeger.yaml to"
echo "examples/demo.yaml (docs/forwarding.md)."
