#!/usr/bin/python3
"""Instructions per span of libtailtrace's hot path, counted by callgrind beside bench_agent's
nanoseconds (docs/benchmarks-agent.md, "Realistic spans").

Runs `bench_agent semconv QUEUE SPANS` under callgrind twice, once collecting only the loop of
8-attribute spans (semconv_spans) and once only the loop of plain spans (plain_spans), and divides
each loop's instruction count (its callees included: span start, attribute setters, span end) by
the spans it ran. Prints one JSON object a line:
  instructions per 8-attribute span, per plain span, and per attribute ((8-attr - plain) / 8).
Only the application thread's instructions are counted; the exporter thread's are not. Under
callgrind the program runs tens of times slower, one thread at a time, so the queue may drop a
different share than at full speed: the share dropped in the run is printed too (a dropped span
costs fewer instructions).

Usage: bench_agent_callgrind.py BENCH_AGENT [QUEUE [SPANS]]   (defaults 2048, 200000)
Exits 1 when valgrind is missing or a count cannot be read.
"""
import json
import os
import re
import subprocess
import sys
import tempfile


def fail(msg):
    print("bench_agent_callgrind: " + msg, file=sys.stderr)
    sys.exit(1)


def run(bench, queue, spans, fn, work):
    out = os.path.join(work, fn + ".cg")
    r = subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=" + fn,
                        "--callgrind-out-file=" + out, bench, "semconv", str(queue), str(spans)],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        fail("valgrind exited with %d: %s" % (r.returncode, r.stderr[-800:]))
    figures = {}
    for line in r.stdout.splitlines():
        d = json.loads(line)
        figures[d["name"]] = d["value"]
    ran = figures.get("semconv_spans_per_loop")
    instr = None
    with open(out) as f:
        for line in f:
            m = re.match(r"(summary|totals):\s+(\d+)", line)
            if m:
                instr = int(m.group(2))
    if not ran or not instr:
        fail("no instruction count for %s (spans %r, instructions %r)" % (fn, ran, instr))
    return instr / ran, figures


def main():
    if len(sys.argv) < 2 or len(sys.argv) > 4:
        fail("usage: bench_agent_callgrind.py BENCH_AGENT [QUEUE [SPANS]]")
    bench = sys.argv[1]
    queue = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    spans = int(sys.argv[3]) if len(sys.argv) > 3 else 200000
    with tempfile.TemporaryDirectory(prefix="tt-callgrind-") as work:
        i8, f8 = run(bench, queue, spans, "semconv_spans", work)
        i0, f0 = run(bench, queue, spans, "plain_spans", work)
    drop8 = f8.get("semconv_dropped_8_attributes_queue_%d" % queue, -1)
    drop0 = f0.get("semconv_dropped_0_attributes_queue_%d" % queue, -1)
    for name, value, unit in (
            ("callgrind_8_attributes_queue_%d" % queue, i8, "instructions/span"),
            ("callgrind_0_attributes_queue_%d" % queue, i0, "instructions/span"),
            ("callgrind_per_attribute_queue_%d" % queue, (i8 - i0) / 8, "instructions/attribute"),
            ("callgrind_dropped_8_attributes_queue_%d" % queue, drop8, "%"),
            ("callgrind_dropped_0_attributes_queue_%d" % queue, drop0, "%")):
        print(json.dumps({"name": name, "value": round(value, 1), "unit": unit}))


if __name__ == "__main__":
    main()
