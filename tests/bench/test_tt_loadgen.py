#!/usr/bin/python3
"""tt_loadgen sends exactly what it reports, in the shape it was asked for, and the collector's
counters agree.

For each protocol, against the real collector (policies: errors, latency 1s, ratio 0, so a trace
is kept exactly when it carries an error or a slow root):
  - the spans and requests tt_loadgen reports are the spans and requests the collector counted;
  - every trace arrives whole and once: traces decided == traces sent, no late or duplicate span,
    although each trace is spread over several requests out of order;
  - traces kept by `errors` == error traces sent, kept by `latency` == slow traces sent;
  - a second run with another seed shares no trace id with the first (no late span);
  - another shape (4-span traces, 3 attributes, 2 requests a trace) arrives as requested:
    spans per trace from the collector's counters, attributes from the file sink;
  - a gzip bomb is refused (exit 0) and a closed port is a failure (exit 1).

Usage: test_tt_loadgen.py BUILD_DIR"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
LOADGEN = os.path.join(BUILD, "bench", "tt_loadgen")
COLLECTOR = os.path.join(BUILD, "collector", "tailtrace-collector")
WORK = tempfile.mkdtemp(prefix="tt-test-loadgen-")
FAILS = []


def check(cond, what):
    print("%s: %s" % ("ok" if cond else "FAIL", what), flush=True)
    if not cond:
        FAILS.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def metrics(admin):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out


def msum(m, name, **labels):
    return sum(v for k, v in m.items() if k.split("{", 1)[0] == name and
               all('%s="%s"' % kv in k for kv in labels.items()))


def loadgen(*args, expect_rc=0):
    p = subprocess.run([LOADGEN] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=120)
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != expect_rc:
        print(p.stdout, p.stderr)
    check(p.returncode == expect_rc, "tt_loadgen %s exits %d (got %d)" % (
        " ".join(map(str, args[:4])), expect_rc, p.returncode))
    return {d["name"]: d["value"] for d in lines}


def start_collector(sink):
    """The collector on fresh ports; a port picked free but taken before the collector bound it
    (errno 98) makes it exit at once, and new ports are tried."""
    for attempt in range(4):
        grpc, http, admin = free_port(), free_port(), free_port()
        cfg = os.path.join(WORK, "c%d.yaml" % attempt)
        with open(cfg, "w") as f:
            f.write("""receivers:
  otlp_grpc: {endpoint: "127.0.0.1:%d"}
  otlp_http: {endpoint: "127.0.0.1:%d"}
admin: {endpoint: "127.0.0.1:%d"}
workers: 2
log: {level: warn}
decision: {root_grace: 300ms, drop_delay: 0s, tick: 20ms}
memory: {budget: 512MiB}
sink: {type: file, file: {path: "%s"}}
policies:
  - {type: errors}
  - {type: latency, threshold: 1s}
  - {type: ratio, ratio: 0}
""" % (grpc, http, admin, sink))
        log = open(cfg + ".log", "w")
        coll = subprocess.Popen([COLLECTOR, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
        end = time.time() + 20
        while time.time() < end and coll.poll() is None:
            try:
                metrics(admin)
                return coll, log, grpc, http, admin
            except OSError:
                time.sleep(0.05)
        coll.kill()
        coll.wait(10)
        log.close()
        with open(cfg + ".log") as f:
            if '"errno":98' not in f.read():
                break
    print("the collector did not start; log %s" % (cfg + ".log"))
    sys.exit(1)


def main():
    sink = os.path.join(WORK, "kept.jsonl")
    coll, log, grpc, http, admin = start_collector(sink)
    try:
        def settle(expect_traces):
            end = time.time() + 30
            while time.time() < end:
                m = metrics(admin)
                # Every accepted span taken by a shard and final (shards take their inbox once
                # a tick): kept, dropped or a duplicate.
                final = (msum(m, "tailtrace_spans_kept_total") +
                         msum(m, "tailtrace_spans_dropped_total") +
                         msum(m, "tailtrace_spans_duplicate_total"))
                if (msum(m, "tailtrace_traces_decided_total") >= expect_traces and
                        m["tailtrace_traces_held"] == 0 and
                        final == msum(m, "tailtrace_spans_accepted_total")):
                    return m
                time.sleep(0.1)
            return metrics(admin)

        m0 = metrics(admin)
        traces_total = 0
        for proto, port, seed in (("http", http, 101), ("grpc", grpc, 202)):
            n = 9000  # 30 groups of 30 traces x 10 spans
            r = loadgen("--port", port, "--protocol", proto, "--spans", n, "--seconds", 60,
                        "--error-fraction", 0.05, "--slow-fraction", 0.05, "--seed", seed)
            traces_total += r["loadgen_traces_sent"]
            m1 = settle(traces_total)
            d = lambda name, **lab: msum(m1, name, **lab) - msum(m0, name, **lab)  # noqa: E731
            check(r["loadgen_spans_sent"] == n and r["loadgen_spans_accepted"] == n,
                  "%s: %d spans sent and accepted (%s, %s)" % (
                      proto, n, r["loadgen_spans_sent"], r["loadgen_spans_accepted"]))
            check(d("tailtrace_spans_received_total") == n,
                  "%s: collector received %d spans (%s)" % (
                      proto, n, d("tailtrace_spans_received_total")))
            check(d("tailtrace_requests_total") == r["loadgen_requests"],
                  "%s: collector counted the %s requests sent (%s)" % (
                      proto, r["loadgen_requests"], d("tailtrace_requests_total")))
            check(r["loadgen_traces_sent"] == n / 10 and
                  d("tailtrace_traces_decided_total") == r["loadgen_traces_sent"],
                  "%s: every trace decided once, whole (%s sent, %s decided)" % (
                      proto, r["loadgen_traces_sent"], d("tailtrace_traces_decided_total")))
            check(d("tailtrace_late_spans_total") == 0 and
                  d("tailtrace_spans_duplicate_total") == 0,
                  "%s: no late or duplicate span" % proto)
            errs, slow = r["loadgen_error_traces_sent"], r["loadgen_slow_traces_sent"]
            check(errs > 0 and slow > 0, "%s: error and slow traces were sent (%s, %s)" % (
                proto, errs, slow))
            check(d("tailtrace_traces_decided_total", decision="keep", reason="errors") == errs,
                  "%s: error traces kept == error traces sent (%s)" % (proto, errs))
            check(d("tailtrace_traces_decided_total", decision="keep", reason="latency") == slow,
                  "%s: slow traces kept == slow traces sent (%s)" % (proto, slow))
            check(d("tailtrace_traces_decided_total", decision="keep") == errs + slow,
                  "%s: nothing else kept" % proto)
            check(r["loadgen_wire_bytes_per_span"] > 300, "%s: spans of about 370 bytes (%s)" % (
                proto, r["loadgen_wire_bytes_per_span"]))
            m0 = m1

        # The same seeds again would repeat ids (late spans); new seeds must not.
        r = loadgen("--port", http, "--spans", 3000, "--seed", 303, "--error-fraction", 0,
                    "--slow-fraction", 0)
        traces_total += r["loadgen_traces_sent"]
        m1 = settle(traces_total)
        check(msum(m1, "tailtrace_late_spans_total") == 0 and
              msum(m1, "tailtrace_traces_decided_total") - msum(
                  m0, "tailtrace_traces_decided_total") == r["loadgen_traces_sent"],
              "another seed shares no trace id with the earlier runs")
        m0 = m1
        r = loadgen("--port", http, "--spans", 3000, "--seed", 101, "--error-fraction", 0,
                    "--slow-fraction", 0, "--conns", 1)
        m1 = settle(traces_total)
        check(msum(m1, "tailtrace_late_spans_total") - msum(m0, "tailtrace_late_spans_total") > 0,
              "the same seed repeats trace ids (the check above can fail)")
        m0 = m1

        # Another shape: 4-span traces, 3 attributes, 2 requests a trace, all errors (kept, so
        # the file sink shows the attributes).
        size0 = os.path.getsize(sink) if os.path.exists(sink) else 0
        r = loadgen("--port", grpc, "--protocol", "grpc", "--spans", 800, "--spans-per-trace", 4,
                    "--attrs", 3, "--request-spans", 40, "--spread", 2, "--error-fraction", 1,
                    "--slow-fraction", 0, "--seed", 404)
        traces_total += r["loadgen_traces_sent"]
        m1 = settle(traces_total + 0)
        dt = msum(m1, "tailtrace_traces_decided_total") - msum(m0, "tailtrace_traces_decided_total")
        ds = msum(m1, "tailtrace_spans_accepted_total") - msum(m0, "tailtrace_spans_accepted_total")
        check(r["loadgen_spans_sent"] == 800 and dt == 200 and ds == 800,
              "4-span traces: 800 spans as 200 whole traces (%s spans, %s traces)" % (ds, dt))
        check(r["loadgen_requests"] == 800 / 40, "requests of 40 spans (%s requests)" % (
            r["loadgen_requests"]))
        time.sleep(0.5)
        attrs = set()
        with open(sink) as f:
            f.seek(size0)
            for line in f:
                for rs in json.loads(line).get("resourceSpans", []):
                    for ss in rs.get("scopeSpans", []):
                        for sp in ss.get("spans", []):
                            attrs.add(len([a for a in sp.get("attributes", [])
                                           if not a["key"].startswith("tailtrace.") and
                                           a["key"] != "SampleRate"]))
        check(attrs == {3}, "3 attributes a span in the kept spans (%s)" % sorted(attrs))

        r = loadgen("--port", grpc, "--protocol", "grpc", "--gzip-bomb", 64)
        check(r.get("loadgen_bomb_refused") == 1, "a gzip bomb is refused")
        check(coll.poll() is None, "the collector is still running")
    finally:
        coll.terminate()
        try:
            coll.wait(20)
        except subprocess.TimeoutExpired:
            coll.kill()
        log.close()
    closed = free_port()
    loadgen("--port", closed, "--spans", 300, expect_rc=1)
    loadgen("--port", closed, "--protocol", "grpc", "--spans", 300, "--timeout-ms", 3000,
            expect_rc=1)
    if FAILS:
        print("%d check(s) failed; work dir %s" % (len(FAILS), WORK))
        return 1
    subprocess.run(["rm", "-rf", WORK])
    return 0


if __name__ == "__main__":
    sys.exit(main())
