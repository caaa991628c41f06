#!/usr/bin/python3
"""End-to-end tests of forwarding: the JS SDK sends traffic to tailtrace-collector, which
forwards kept traces over OTLP to tests/peers/otlp_receiver.py standing in for the backend.

Scenarios (argument):
  jaeger-grpc  Jaeger stand-in, OTLP/gRPC, insecure: every kept span arrives once, complete,
               with SampleRate, decision reason and ot=th; the file sink holds the same spans.
  jaeger-http  the same over OTLP/HTTP protobuf.
  honeycomb    Honeycomb stand-in (HTTP) that answers 401 without the right x-honeycomb-team:
               the key comes from the environment through ${HONEYCOMB_API_KEY} in the YAML and
               everything arrives; a second collector with a wrong key has its batches counted
               as permanent failures, not retried, and nothing arrives.
  mtls         a backend that serves TLS and requires a client certificate, reached by two
               exporters at once (fan-out): gRPC and HTTP/protobuf, each with the configured CA,
               client certificate and key; each receives every kept span once.
  outage       the backend is down (nothing listens): kept batches go to the disk spool; the
               collector is killed with SIGKILL and restarted against the now-running backend:
               every kept span arrives exactly once.
A missing node, npm package or Python module is a failure, never a skip.
"""
import os
import sys
import time

from e2e_lib import (Collector, Peer, check_kept_spans, fail, free_port, make_certs, new_workdir,
                     require_env, run_node, spans_of, wait_until)

RATIO = 0.25
TRAFFIC = {"TT_E2E_NORMAL": "200", "TT_E2E_ERRORS": "20", "TT_E2E_SLOW": "20",
           "TT_E2E_SLOW_MS": "2000"}
TOTAL = 240
POLICIES = """
policies:
  - {name: errors, type: errors}
  - {name: slow, type: latency, threshold: 1s}
  - {name: rest, type: ratio, ratio: %s}
""" % RATIO


def exporter_yaml(name, protocol, endpoint, extra=""):
    return """
exporters:
  - name: %s
    protocol: %s
    endpoint: "%s"
    insecure: true
    retry_initial: 50ms
    retry_max: 300ms
    timeout: 2s
%s""" % (name, protocol, endpoint, extra)


def delivered(peer, proto=None):
    return [x for _, req in peer.accepted_requests(proto) for x in spans_of(req)]


def send_and_decide(col, work):
    traces = run_node("grpc", col.endpoint("grpc"), os.path.join(work, "main.json"), TRAFFIC)
    col.wait_decided(TOTAL)
    return traces


def kept_span_count(traces):
    return sum(len(t["spanIds"]) for t in traces
               if t["category"] != "normal" or
               int(t["traceId"][-14:], 16) >= (1 << 56) - round(RATIO * (1 << 56)))


def expect_all_delivered(peer, traces, what, admin=None):
    want_spans = kept_span_count(traces)
    wait_until("%s: %d spans at the backend" % (what, want_spans),
               lambda: peer.stat("spans") >= want_spans, 60, admin)
    nspans, kept_normal = check_kept_spans(delivered(peer), traces, RATIO)
    return nspans, kept_normal


def scenario_jaeger(protocol):
    work = new_workdir()
    peer = Peer(work)
    endpoint = ("127.0.0.1:%d" % peer.grpc if protocol == "grpc"
                else "http://127.0.0.1:%d/v1/traces" % peer.http)
    sink = os.path.join(work, "kept.jsonl")
    col = Collector(work, 'sink: {type: file, file: {path: "%s"}}\n' % sink + POLICIES +
                    exporter_yaml("jaeger", protocol, endpoint))
    try:
        traces = send_and_decide(col, work)
        nspans, kept_normal = expect_all_delivered(peer, traces, "jaeger")
        m = col.metrics()
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    import json
    local = {sp["spanId"] for line in open(sink) for _, _, sp in spans_of(json.loads(line))}
    remote = {sp["spanId"] for _, _, sp in delivered(peer)}
    if local != remote:
        fail("file sink and backend disagree: %d vs %d spans" % (len(local), len(remote)))
    sent = m.get('tailtrace_exporter_spans_total{exporter="jaeger",outcome="sent"}', -1)
    if sent != nspans:
        fail("exporter metrics say %d spans sent, the backend holds %d" % (sent, nspans))
    print("OK jaeger over %s: %d spans delivered once each (%d normal traces kept)" %
          (protocol, nspans, kept_normal))


def scenario_honeycomb():
    work = new_workdir()
    peer = Peer(work, ["--require-header", "x-honeycomb-team=hc-secret-key"])
    endpoint = "http://127.0.0.1:%d/v1/traces" % peer.http
    headers = "    headers:\n      x-honeycomb-team: ${HONEYCOMB_API_KEY}\n"
    os.environ["HONEYCOMB_API_KEY"] = "hc-secret-key"
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("honeycomb", "http/protobuf", endpoint, headers))
    try:
        if "hc-secret-key" in open(col.cfg).read():
            fail("the API key must not be written into the config file")
        traces = send_and_decide(col, work)
        nspans, _ = expect_all_delivered(peer, traces, "honeycomb")
    finally:
        rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    # A wrong key: 401 is permanent, counted, never retried; nothing more arrives.
    os.environ["HONEYCOMB_API_KEY"] = "wrong-key"
    before = peer.stat("spans")
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("honeycomb", "http/protobuf", endpoint, headers))
    try:
        send_and_decide(col, work)
        key = 'tailtrace_exporter_batches_total{exporter="honeycomb",outcome="failed_permanent"}'
        wait_until("the refused batches to be counted", lambda: col.metrics().get(key, 0) > 0,
                   30, col.admin)
        time.sleep(0.5)
        m = col.metrics()
    finally:
        col.stop()
        peer.stop()
    retried = m.get('tailtrace_exporter_batches_total{exporter="honeycomb",outcome="retried"}')
    if retried != 0:
        fail("a 401 was retried %r times" % retried)
    if peer_spans_after(peer) != before:
        fail("spans arrived with a wrong key")
    print("OK honeycomb: %d spans delivered with the key from the environment; a wrong key was "
          "refused, counted and not retried" % nspans)


def peer_spans_after(peer):
    return len(delivered(peer))


def scenario_outage():
    work = new_workdir()
    spool = os.path.join(work, "spool")
    down = free_port()  # nothing listens here: the backend is down
    extra = "    spool: {dir: \"%s\", max_size: 64MiB}\n    queue_size: 64KiB\n" % spool
    ports = (free_port(), free_port(), free_port())
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("jaeger", "grpc", "127.0.0.1:%d" % down, extra), ports)
    traces = send_and_decide(col, work)
    spooled = 'tailtrace_exporter_spool_batches{exporter="jaeger"}'
    queued = 'tailtrace_exporter_queue_bytes{exporter="jaeger"}'
    handed = 'tailtrace_export_batches_total{outcome="ok"}'

    want_spans = kept_span_count(traces)

    def all_spooled():
        # Every kept span has left the shards (a trace counts as decided before its shard hands
        # the framed batch to the exporter, so the decision count alone is not enough), every
        # batch the pipeline handed over is on disk, and none waits in memory.
        m = col.metrics()
        return (m.get("tailtrace_spans_exported_total", 0) >= want_spans and
                m.get(spooled, 0) == m.get(handed) and m.get(queued, 1) == 0)
    wait_until("every kept batch to reach the spool", all_spooled, 30, col.admin)
    col.stop(sig=9)  # SIGKILL: no chance to flush anything
    peer = Peer(work)
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("jaeger", "grpc", "127.0.0.1:%d" % peer.grpc, extra), ports)
    try:
        nspans, _ = expect_all_delivered(peer, traces, "replay after SIGKILL", col.admin)
        wait_until("the spool to drain", lambda: col.metrics().get(spooled, 1) == 0, 30,
                   col.admin)
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the restarted collector exited with %d" % rc)
    print("OK outage: %d kept spans spooled, survived SIGKILL and arrived once each" % nspans)


def scenario_mtls():
    work = new_workdir()
    c = make_certs(work)
    peer = Peer(work, ["--tls-cert", c["server.pem"], "--tls-key", c["server.key"],
                       "--tls-client-ca", c["ca.pem"]], tls_ca=c["ca.pem"])
    tls = ('    ca_file: "%s"\n    cert_file: "%s"\n    key_file: "%s"\n' %
           (c["ca.pem"], c["client.pem"], c["client.key"]))
    yaml = ("sink: {type: none}\n" + POLICIES +
            exporter_yaml("tls-grpc", "grpc", "https://127.0.0.1:%d" % peer.grpc, tls)
            .replace("    insecure: true\n", "") +
            exporter_yaml("tls-http", "http/protobuf", "https://127.0.0.1:%d/v1/traces" %
                          peer.http, tls).replace("exporters:\n", "")
            .replace("    insecure: true\n", ""))
    col = Collector(work, yaml)
    try:
        traces = send_and_decide(col, work)
        want = sum(len(t["spanIds"]) for t in traces
                   if t["category"] != "normal" or
                   int(t["traceId"][-14:], 16) >= (1 << 56) - round(RATIO * (1 << 56)))
        wait_until("both exporters to deliver %d spans" % want,
                   lambda: peer.stat("spans") >= 2 * want, 60, col.admin)
        for proto in ("grpc", "http"):
            check_kept_spans(delivered(peer, proto), traces, RATIO)
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    print("OK mtls: %d kept spans delivered once over gRPC and once over HTTP, both with a "
          "configured CA and client certificate" % want)


def main():
    require_env()
    what = sys.argv[1] if len(sys.argv) == 2 else ""
    if what == "jaeger-grpc":
        scenario_jaeger("grpc")
    elif what == "jaeger-http":
        scenario_jaeger("http/protobuf")
    elif what == "honeycomb":
        scenario_honeycomb()
    elif what == "outage":
        scenario_outage()
    elif what == "mtls":
        scenario_mtls()
    else:
        fail("usage: test_forward_e2e.py jaeger-grpc|jaeger-http|honeycomb|mtls|outage")


if __name__ == "__main__":
    main()
