#!/usr/bin/python3
"""What the golden signals (docs/signals.md) cost the collector, printed as JSON lines like the
other bench tools ({"name", "value", "unit", ...}); no figure is compared with a threshold.

Three settings of the `signals:` section, on the same traffic (tt_loadgen's default shape: traces
of 10 spans, a SERVER root and 9 CLIENT children, 8 attributes a span):
  off      signals: {enabled: false}
  default  the defaults: SERVER and CONSUMER spans and roots, so one span in ten is counted
  every    span_kinds: [server, client]: every span counted
  every_dims  the same and two dimensions: http.route (the second of the spans' 8 attributes)
           and rpc.method (absent, so every counted span's attributes are walked to their end)

Groups (both by default):
  callgrind  the collector under valgrind --tool=callgrind while tt_loadgen sends a fixed number
             of spans over OTLP/HTTP: instructions per accepted span in the receiver's handler
             (tt__pipeline_handle, inclusive) and in the whole process, and per counted span in
             tt__red_count (inclusive)
  cpu        bench/bench_load.py's fixed-rate run (50 000 spans/s, 2 workers, OTLP/HTTP): the
             collector's CPU-seconds per million spans, rounds alternating the settings

Usage: /usr/bin/python3 bench/bench_signals.py [--build DIR] [--quick] [callgrind] [cpu]
--quick: a few thousand spans and seconds (the ctest), figures that only show it can measure."""
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_load as bl  # noqa: E402  (its Collector, Loadgen, steady_run and emit)

SETTINGS = {
    "off": "signals: {enabled: false}\n",
    "default": "",
    "every": "signals: {span_kinds: [server, client]}\n",
    "every_dims": "signals: {span_kinds: [server, client], dimensions: [http.route, rpc.method]}\n",
}
QUICK = False


def counted_spans(c):
    m = c.metrics()
    return sum(v for k, v in m.items() if k.startswith("tailtrace_span_requests_total{"))


def inclusive_ir(out_file, function):
    """The inclusive instruction count of one function from callgrind_annotate."""
    r = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out_file],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise bl.Unmeasured("callgrind_annotate failed: " + r.stderr[-300:])
    for line in r.stdout.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\*\s+)?\S*:%s(?:\s|$)" % re.escape(
            function), line)
        if m:
            return int(m.group(1).replace(",", ""))
    return 0


def total_ir(out_file):
    with open(out_file) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise bl.Unmeasured("no totals in " + out_file)


def bench_callgrind():
    spans = 3000 if QUICK else 40000
    rate = 2000
    for name, yaml in SETTINGS.items():
        out = os.path.join(bl.WORK, "callgrind-%s.out" % name)
        real = bl.collector_bin
        # The collector started through valgrind: bench_load's Collector runs collector_bin().
        wrapper = os.path.join(bl.WORK, "valgrind-collector.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s "
                    "--trace-children=no %s \"$@\"\n" % (out, real()))
        os.chmod(wrapper, 0o755)
        bl.collector_bin = lambda: wrapper
        try:
            c = bl.Collector("cg_" + name, bl.BENCH_DECISION + "sink: {type: null}\n" +
                             bl.DEFAULT_POLICIES + yaml, workers=2)
        finally:
            bl.collector_bin = real
        try:
            lg = bl.Loadgen(c.port("http"), "http", spans / rate + 60, rate=rate, conns=2,
                            spans=spans)
            r = lg.result()
            accepted = bl.wait_until(lambda: c.metrics()["tailtrace_spans_accepted_total"] >=
                                     r["loadgen_spans_sent"], 60)
            if not accepted:
                raise bl.Unmeasured("the collector under callgrind did not accept every span")
            acc = c.metrics()["tailtrace_spans_accepted_total"]
            counted = counted_spans(c) if name != "off" else 0
        finally:
            c.proc.send_signal(signal.SIGTERM)
            try:
                c.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                c.stop()
                raise bl.Unmeasured("the collector under callgrind did not exit")
            c.stop()
        handle = inclusive_ir(out, "tt__pipeline_handle")
        red = inclusive_ir(out, "tt__red_count")
        total = total_ir(out)
        ctx = dict(setting=name, spans_accepted=int(acc), spans_counted=int(counted),
                   sender="tt_loadgen --rate %d --conns 2 --spans %d (OTLP/HTTP)" % (rate, spans))
        bl.emit("callgrind_handler_instructions_per_span", handle / acc, "instructions", **ctx)
        bl.emit("callgrind_process_instructions_per_span", total / acc, "instructions", **ctx)
        if counted:
            bl.emit("callgrind_red_count_instructions_per_counted_span", red / counted,
                    "instructions", **ctx)


def bench_cpu():
    seconds, warm = (4, 1.5) if QUICK else (14, 4)
    results = {}
    for rnd in range(1 if QUICK else 3):
        for name, yaml in SETTINGS.items():
            c = bl.Collector("cpu_" + name, bl.BENCH_DECISION + "sink: {type: null}\n" +
                             bl.DEFAULT_POLICIES + yaml, workers=2)
            try:
                s = bl.steady_run(c, "http", seconds, warm, rate=bl.FIXED_RATE, conns=2)
            finally:
                c.stop()
            bl.emit("signals_cpu_s_per_million_spans", s["cpu_per_m"], "cpu-s", setting=name,
                    round=rnd, offered_spans_per_s=bl.FIXED_RATE,
                    accepted_spans_per_s=round(s["accepted_per_s"]), window_s=s["window_s"])
            results.setdefault(name, []).append(s["cpu_per_m"])
    for name, vals in results.items():
        vals = sorted(vals)
        bl.emit("signals_cpu_s_per_million_spans_median", vals[len(vals) // 2], "cpu-s",
                setting=name, rounds=len(vals), min=round(vals[0], 3), max=round(vals[-1], 3))


def main():
    global QUICK
    args = sys.argv[1:]
    groups = []
    while args:
        a = args.pop(0)
        if a == "--build":
            bl.BUILD = os.path.abspath(args.pop(0))
        elif a == "--quick":
            QUICK = True
            bl.QUICK = True
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        elif a in ("callgrind", "cpu"):
            groups.append(a)
        else:
            print("unknown argument %s" % a, file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    bl.note("machine: %d cores, load average %s, build %s, quick %s, %s" % (
        os.cpu_count(), open("/proc/loadavg").read().split()[0:3], bl.BUILD, QUICK,
        time.strftime("%Y-%m-%d %H:%M:%S %Z")))
    failed = []
    try:
        for g in groups or ["callgrind", "cpu"]:
            try:
                globals()["bench_" + g]()
            except bl.Unmeasured as e:
                failed.append(g)
                bl.note("group %s could not be measured: %s" % (g, e))
                bl.kill_all()
    finally:
        bl.kill_all()
    if failed:
        bl.note("not measured: %s (logs in %s)" % (", ".join(failed), bl.WORK))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
