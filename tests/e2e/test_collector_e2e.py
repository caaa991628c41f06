#!/usr/bin/python3
"""End-to-end test of tailtrace-collector with the real OpenTelemetry JS SDK as the client.

For one protocol (grpc, http/protobuf or http/json) it starts the collector with a file sink,
sends a traffic mix with traffic.js (normal, errored and slow three-span traces whose spans
arrive in separate batches and out of order), waits for the decisions, sends one late span per
trace, stops the collector with SIGTERM and checks the file sink:
  - every errored and every slow trace is kept complete (all spans), SampleRate 1;
  - the normal traces kept are exactly those the consistent ratio rule keeps (trace id's last
    56 bits >= threshold), and their number is within 5 sigma of ratio * count;
  - every kept span carries SampleRate (1 or 1/ratio), the decision reason and ot=th in
    tracestate; nothing is kept twice;
  - late spans follow their trace's decision (kept traces gain them, dropped ones do not).
A missing node, npm package or Python module is a failure, never a skip.

Usage: test_collector_e2e.py PROTOCOL   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import math
import os
import sys

from e2e_lib import (Collector, check_kept_spans, fail, metric_sum, new_workdir, require_env,
                     run_node, spans_of, wait_until)

RATIO = 0.25
N_NORMAL, N_ERRORS, N_SLOW = 600, 30, 30


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("grpc", "http/protobuf", "http/json"):
        fail("usage: test_collector_e2e.py grpc|http/protobuf|http/json")
    protocol = sys.argv[1]
    require_env()
    work = new_workdir()
    sink = os.path.join(work, "kept.jsonl")
    col = Collector(work, """
sink: {type: file, file: {path: "%s", format: json}}
policies:
  - {name: errors, type: errors}
  - {name: slow, type: latency, threshold: 1s}
  - {name: rest, type: ratio, ratio: %s}
""" % (sink, RATIO))
    total = N_NORMAL + N_ERRORS + N_SLOW
    try:
        main_traces = run_node(protocol, col.endpoint(protocol), os.path.join(work, "main.json"), {
            "TT_E2E_NORMAL": str(N_NORMAL), "TT_E2E_ERRORS": str(N_ERRORS),
            "TT_E2E_SLOW": str(N_SLOW), "TT_E2E_SLOW_MS": "2000"})
        col.wait_decided(total)
        late_traces = run_node(protocol, col.endpoint(protocol), os.path.join(work, "late.json"),
                               {"TT_E2E_PHASE": "late",
                                "TT_E2E_LATE_OF": os.path.join(work, "main.json")})
        wait_until("every late span to be handled", lambda: metric_sum(
            col.metrics(), "tailtrace_late_spans_total") >= total, 30, col.admin)
        m = col.metrics()
    finally:
        rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d; log in %s" % (rc, work))
    if metric_sum(m, "tailtrace_traces_decided_total") != total:
        fail("decided %d traces, sent %d" % (metric_sum(m, "tailtrace_traces_decided_total"),
                                             total))
    spans = [x for line in open(sink) for x in spans_of(json.loads(line))]
    late = {t["traceId"]: t["spanIds"][0] for t in late_traces}
    nspans, kept_normal = check_kept_spans(spans, main_traces, RATIO, late)
    sigma = math.sqrt(N_NORMAL * RATIO * (1 - RATIO))
    if abs(kept_normal - N_NORMAL * RATIO) > 5 * sigma:
        fail("kept %d of %d normal traces; ratio %.2f expects %.0f +- %.0f" %
             (kept_normal, N_NORMAL, RATIO, N_NORMAL * RATIO, 5 * sigma))
    late_kept = m.get('tailtrace_late_spans_total{decision="keep"}', -1)
    if late_kept != N_ERRORS + N_SLOW + kept_normal:
        fail("late spans forwarded: %d, want %d" % (late_kept, N_ERRORS + N_SLOW + kept_normal))
    print("OK %s: %d errored + %d slow kept complete, %d of %d normal kept (ratio %.2f), "
          "late spans followed decisions, %d spans checked" %
          (protocol, N_ERRORS, N_SLOW, kept_normal, N_NORMAL, RATIO, nspans))


if __name__ == "__main__":
    main()
