#!/usr/bin/python3
"""End-to-end test of tailtrace-collector with the real OpenTelemetry JS SDK as the client.

For one protocol (grpc, http/protobuf or http/json) it starts the collector on ephemeral
loopback ports with a file sink, sends a traffic mix with tests/e2e/traffic.js (normal, errored
and slow three-span traces whose spans arrive in separate batches and out of order), waits for
the decisions, sends one late span per trace, stops the collector with SIGTERM and checks the
file sink:
  - every errored and every slow trace is kept complete (all spans), SampleRate 1;
  - the normal traces kept are exactly those the consistent ratio rule keeps (trace id's last
    56 bits >= threshold), and their number is within 5 sigma of ratio * count;
  - every kept span carries SampleRate (1 or 1/ratio), the decision reason and ot=th in
    tracestate; nothing is kept twice;
  - late spans follow their trace's decision (kept traces gain them, dropped ones do not).
Exit status 0 on success; a missing node, npm package or Python module is a failure.

Usage: test_collector_e2e.py PROTOCOL   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

RATIO = 0.25
SLOW_MS = 2000
N_NORMAL, N_ERRORS, N_SLOW = 600, 30, 30


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def metrics(admin):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def metric_sum(m, prefix):
    return sum(v for k, v in m.items() if k == prefix or k.startswith(prefix + "{"))


def wait_until(what, pred, timeout, admin=None):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except OSError:
            pass
        time.sleep(0.1)
    if admin is not None:
        try:
            print("\n".join("%s %g" % kv for kv in sorted(metrics(admin).items())
                            if not kv[0].startswith("tailtrace_decision_latency")))
        except OSError:
            pass
    fail("timed out waiting for " + what)


def threshold(ratio):
    # The rule documented in docs/collector.md (OpenTelemetry consistent probability sampling):
    # keep when the trace id's last 56 bits, as an integer, are >= 2^56 - round(ratio * 2^56).
    return (1 << 56) - round(ratio * (1 << 56))


def ratio_keeps(trace_id_hex):
    return int(trace_id_hex[-14:], 16) >= threshold(RATIO)


def attr_value(v):
    for k in ("intValue", "stringValue", "doubleValue", "boolValue"):
        if k in v:
            return int(v[k]) if k == "intValue" else v[k]
    return None


def run_node(src, protocol, endpoint, manifest, env_extra):
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(src, "tests", "js", "node_modules")
    env.update(env_extra)
    r = subprocess.run(["node", os.path.join(src, "tests", "e2e", "traffic.js"), protocol,
                        endpoint, manifest], env=env, timeout=120, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
        fail("traffic.js exited with %d" % r.returncode)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("grpc", "http/protobuf", "http/json"):
        fail("usage: test_collector_e2e.py grpc|http/protobuf|http/json")
    protocol = sys.argv[1]
    src = os.environ.get("TT_SOURCE_DIR")
    binary = os.environ.get("TT_COLLECTOR_BIN")
    if not src or not binary:
        fail("TT_SOURCE_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    if not os.path.isdir(os.path.join(src, "tests", "js", "node_modules", "@opentelemetry")):
        fail("the OpenTelemetry JS packages are missing: run tests/js/install.sh")

    work = tempfile.mkdtemp(prefix="tt-e2e-")
    grpc_port, http_port, admin = free_port(), free_port(), free_port()
    sink = os.path.join(work, "kept.jsonl")
    cfg = os.path.join(work, "collector.yaml")
    with open(cfg, "w") as f:
        f.write("""
receivers:
  otlp_grpc: {endpoint: "127.0.0.1:%d"}
  otlp_http: {endpoint: "127.0.0.1:%d"}
admin: {endpoint: "127.0.0.1:%d"}
workers: 2
decision:
  root_grace: 1500ms
  idle_timeout: 4s
  max_trace_age: 60s
  tick: 20ms
sink:
  type: file
  file: {path: "%s", format: json}
log: {level: warn}
shutdown: {deadline: 10s}
policies:
  - {name: errors, type: errors}
  - {name: slow, type: latency, threshold: 1s}
  - {name: rest, type: ratio, ratio: %s}
""" % (grpc_port, http_port, admin, sink, RATIO))

    log = open(os.path.join(work, "collector.log"), "w")
    proc = subprocess.Popen([binary, "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until("the collector to be ready", lambda: urllib.request.urlopen(
            "http://127.0.0.1:%d/readyz" % admin, timeout=2).status == 200, 20)
        endpoint = ("http://127.0.0.1:%d" % grpc_port if protocol == "grpc"
                    else "http://127.0.0.1:%d/v1/traces" % http_port)
        main_manifest = os.path.join(work, "main.json")
        run_node(src, protocol, endpoint, main_manifest, {
            "TT_E2E_NORMAL": str(N_NORMAL), "TT_E2E_ERRORS": str(N_ERRORS),
            "TT_E2E_SLOW": str(N_SLOW), "TT_E2E_SLOW_MS": str(SLOW_MS)})
        total = N_NORMAL + N_ERRORS + N_SLOW
        wait_until("every trace to be decided", lambda: (
            metric_sum(metrics(admin), "tailtrace_traces_decided_total") >= total and
            metrics(admin)["tailtrace_traces_held"] == 0), 60, admin)
        late_manifest = os.path.join(work, "late.json")
        run_node(src, protocol, endpoint, late_manifest, {
            "TT_E2E_PHASE": "late", "TT_E2E_LATE_OF": main_manifest})
        wait_until("every late span to be handled", lambda: metric_sum(
            metrics(admin), "tailtrace_late_spans_total") >= total, 30, admin)
        m = metrics(admin)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            fail("the collector did not exit within 30 s of SIGTERM")
    if rc != 0:
        fail("the collector exited with %d; log in %s" % (rc, work))
    if metric_sum(m, "tailtrace_traces_decided_total") != total:
        fail("decided %d traces, sent %d" % (metric_sum(m, "tailtrace_traces_decided_total"),
                                             total))

    # Read the file sink: every kept span, by trace.
    kept = {}
    seen = set()
    with open(sink) as f:
        for line in f:
            doc = json.loads(line)
            for rs in doc.get("resourceSpans", []):
                res = {a["key"]: attr_value(a["value"])
                       for a in rs.get("resource", {}).get("attributes", [])}
                if res.get("service.name") != "tt-e2e":
                    fail("resource lost: %r" % res)
                for ss in rs.get("scopeSpans", []):
                    if ss.get("scope", {}).get("name") != "tt-e2e-traffic":
                        fail("scope lost: %r" % ss.get("scope"))
                    for sp in ss.get("spans", []):
                        if sp["spanId"] in seen:
                            fail("span %s kept twice" % sp["spanId"])
                        seen.add(sp["spanId"])
                        kept.setdefault(sp["traceId"], []).append(sp)

    main = json.load(open(main_manifest))["traces"]
    late = {t["traceId"]: t["spanIds"][0] for t in json.load(open(late_manifest))["traces"]}
    rate_for = {"error": 1, "slow": 1, "normal": round(1 / RATIO)}
    kept_normal = 0
    expected_normal = 0
    for t in main:
        tid, cat = t["traceId"], t["category"]
        want = cat != "normal" or ratio_keeps(tid)
        expected_normal += cat == "normal" and want
        spans = kept.get(tid, [])
        if not want:
            if spans:
                fail("%s trace %s should have been dropped, %d spans kept" % (cat, tid, len(spans)))
            continue
        kept_normal += cat == "normal"
        ids = {s["spanId"] for s in spans}
        missing = (set(t["spanIds"]) | {late[tid]}) - ids
        if missing:
            fail("%s trace %s kept incomplete: missing %s" % (cat, tid, sorted(missing)))
        for s in spans:
            attrs = {a["key"]: attr_value(a["value"]) for a in s.get("attributes", [])}
            if attrs.get("SampleRate") != rate_for[cat]:
                fail("%s span %s: SampleRate %r, want %d" % (cat, s["spanId"],
                                                             attrs.get("SampleRate"),
                                                             rate_for[cat]))
            if not any(k.startswith("tailtrace.") for k in attrs):
                fail("span %s carries no decision reason attribute" % s["spanId"])
            if "ot=th:" not in s.get("traceState", ""):
                fail("span %s: no ot=th in tracestate %r" % (s["spanId"], s.get("traceState")))
    extra = set(kept) - {t["traceId"] for t in main}
    if extra:
        fail("kept traces that were never sent: %s" % sorted(extra)[:3])
    sigma = math.sqrt(N_NORMAL * RATIO * (1 - RATIO))
    if abs(kept_normal - N_NORMAL * RATIO) > 5 * sigma:
        fail("kept %d of %d normal traces; ratio %.2f expects %.0f +- %.0f" %
             (kept_normal, N_NORMAL, RATIO, N_NORMAL * RATIO, 5 * sigma))
    late_kept = m.get('tailtrace_late_spans_total{decision="keep"}', -1)
    if late_kept != N_ERRORS + N_SLOW + expected_normal:
        fail("late spans forwarded: %d, want %d" % (late_kept,
                                                    N_ERRORS + N_SLOW + expected_normal))
    print("OK %s: %d errored + %d slow kept complete, %d of %d normal kept (ratio %.2f), "
          "late spans followed decisions, %d spans checked" %
          (protocol, N_ERRORS, N_SLOW, kept_normal, N_NORMAL, RATIO, len(seen)))


if __name__ == "__main__":
    main()
