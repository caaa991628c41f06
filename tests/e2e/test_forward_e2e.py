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
  healthy-kill the backend is up but slow (each request held 2 s, then accepted) and the
               exporter has spool.mode always: once every kept batch is on disk or delivered,
               with some still waiting, the collector is killed with SIGKILL and restarted
               against a fast backend: every kept span arrives; duplicates (the at-least-once
               window between the backend's answer and the consumed mark) are counted and
               printed, not failed.
  big-trace    kept traffic includes one trace of about 6 MiB (an error trace sent straight to
               the collector's OTLP/HTTP receiver by a small Python client built on the peer's
               generated classes) next to the JS traffic; the exporter speaks gRPC to the peer,
               whose grpcio server keeps its default 4 MiB receive limit: every kept span,
               the big trace's included, must arrive once (split at max_request_size).
  hung-sigterm, hung-sigterm-always, hung-sigterm-nospool
               the backend accepts every request and never answers (over gRPC; over HTTP for
               -always), the exporter has its default 10 s timeout, as long as the shutdown
               deadline. With kept traces held behind the hung request, SIGTERM: the
               collector must exit with status 0 (the watchdog's is 3) and log no missed
               deadline. With a spool (mode on_failure, or always), the spool's files then hold
               every kept span, counted exactly from the records, and a restart against a
               working backend delivers every kept span once; without one, the loss is logged
               with its exact span count.
A missing node, npm package or Python module is a failure, never a skip.
"""
import json
import os
import struct
import sys
import time
import urllib.request

from e2e_lib import (Collector, Peer, check_kept_spans, fail, free_port, make_certs, new_workdir,
                     ratio_keeps, require_env, run_node, spans_of, wait_until)

RATIO = 0.25
TRAFFIC = {"TT_E2E_NORMAL": "200", "TT_E2E_ERRORS": "20", "TT_E2E_SLOW": "20",
           "TT_E2E_SLOW_MS": "2000"}
TOTAL = 240
# Forwarding is under test here, not late evidence: drops are final at once, so every trace is
# decided (and counted) at root + grace and the scenarios' timing is what it is meant to be.
POLICIES = """
decision: {drop_delay: 0s}
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
               if t["category"] != "normal" or ratio_keeps(t["traceId"], RATIO))


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
    sent = m.get('tailtrace_exporter_spans_total{exporter="jaeger",outcome="delivered"}', -1)
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
    # The memory queue must hold what arrives during one send attempt (docs/forwarding.md): a
    # 64 KiB queue, the size of the whole test's output, dropped a batch under TSan while the
    # first attempt to the dead port was still in flight.
    extra = "    spool: {dir: \"%s\", max_size: 64MiB}\n    queue_size: 1MiB\n" % spool
    ports = (free_port(), free_port(), free_port())
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("jaeger", "grpc", "127.0.0.1:%d" % down, extra), ports)
    traces = send_and_decide(col, work)
    spooled = 'tailtrace_exporter_spool_batches{exporter="jaeger"}'
    queued = 'tailtrace_exporter_queue_bytes{exporter="jaeger"}'
    handed = 'tailtrace_sink_batches_total{sink="jaeger",outcome="accepted"}'

    want_spans = kept_span_count(traces)

    def all_spooled():
        # Every kept span has left the shards (a trace counts as decided before its shard hands
        # the framed batch to the exporter, so the decision count alone is not enough), every
        # batch the pipeline handed over is on disk, and none waits in memory.
        m = col.metrics()
        return (m.get("tailtrace_spans_kept_total", 0) >= want_spans and
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


def post_fault(peer, fault):
    req = urllib.request.Request("http://127.0.0.1:%d/_control/fault" % peer.http,
                                 data=json.dumps(fault).encode(), method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        if r.status != 200:
            fail("the peer refused the fault %r" % fault)


def scenario_healthy_kill():
    work = new_workdir()
    spool = os.path.join(work, "spool")
    slow = Peer(work)
    post_fault(slow, {"proto": "grpc", "kind": "delay", "seconds": 2, "times": 100000})
    extra = "    spool: {dir: \"%s\", mode: always}\n" % spool
    ports = (free_port(), free_port(), free_port())

    def config(endpoint):
        # A slow answer is not a failure: the attempt's deadline outlasts the backend's delay.
        return ("sink: {type: none}\n" + POLICIES +
                exporter_yaml("jaeger", "grpc", endpoint, extra).replace("timeout: 2s",
                                                                         "timeout: 30s"))
    col = Collector(work, config("127.0.0.1:%d" % slow.grpc), ports)
    traces = send_and_decide(col, work)
    want_spans = kept_span_count(traces)
    spooled = 'tailtrace_exporter_spool_batches{exporter="jaeger"}'
    queued = 'tailtrace_exporter_queue_bytes{exporter="jaeger"}'
    sent = 'tailtrace_exporter_batches_total{exporter="jaeger",outcome="delivered"}'
    retried = 'tailtrace_exporter_batches_total{exporter="jaeger",outcome="retried"}'
    handed = 'tailtrace_sink_batches_total{sink="jaeger",outcome="accepted"}'
    seen = {}

    def all_on_disk():
        # Every kept span has left the shards (decided is counted before the hand-over, so it
        # is not enough), none waits in the memory queue, every batch handed over is spooled or
        # sent (a batch just sent may still be counted in the spool until its mark, hence >=),
        # and some are still waiting: the SIGKILL must catch batches in flight.
        m = col.metrics()
        seen.update(m)
        return (m.get("tailtrace_spans_kept_total", 0) >= want_spans and
                m.get(queued, 1) == 0 and m.get(spooled, 0) >= 1 and
                m.get(spooled, 0) + m.get(sent, 0) >= m.get(handed, 1 << 62))
    wait_until("every kept batch to be on disk or delivered, some still waiting", all_on_disk,
               60, col.admin)
    if seen.get(retried, 0) != 0:
        fail("a slow but healthy backend caused %r retries" % seen.get(retried))
    col.stop(sig=9)  # SIGKILL: no chance to flush anything
    at_kill = (seen.get(spooled), seen.get(sent), seen.get(handed))
    # The slow backend finishes the request it holds, as a real one would store it: this is the
    # at-least-once window. Its length only changes the duplicates printed below, no verdict.
    time.sleep(3)
    slow.stop()
    fast = Peer(work)
    col = Collector(work, config("127.0.0.1:%d" % fast.grpc), ports)
    try:
        def union():
            return {sp["spanId"] for _, _, sp in delivered(slow) + delivered(fast)}
        wait_until("every kept span at one backend or the other after the restart",
                   lambda: len(union()) >= want_spans, 60, col.admin)
        wait_until("the spool to drain", lambda: col.metrics().get(spooled, 1) == 0, 30,
                   col.admin)
        replayed = col.metrics().get(sent, 0)
    finally:
        rc = col.stop()
        fast.stop()
    if rc != 0:
        fail("the restarted collector exited with %d" % rc)
    everything = delivered(slow) + delivered(fast)
    unique, ids = [], set()
    for res, scope, sp in everything:
        if sp["spanId"] not in ids:
            ids.add(sp["spanId"])
            unique.append((res, scope, sp))
    nspans, _ = check_kept_spans(unique, traces, RATIO)
    if replayed < 1 or not delivered(fast):
        fail("nothing was replayed from the spool after SIGKILL (in the spool at the kill: %r)" %
             at_kill[0])
    dups = len(everything) - len(unique)
    print("OK healthy-kill: %d kept spans; at SIGKILL %d batches were in the spool and %d sent "
          "of %d handed to the exporter; the restart replayed %d batches; nothing missing; "
          "%d spans delivered twice (at-least-once window)" %
          (nspans, at_kill[0], at_kill[1], at_kill[2], replayed, dups))


def big_trace_request(nspans, pad):
    """An ExportTraceServiceRequest holding one error trace of nspans spans, each carrying a
    `pad`-byte attribute, built with the generated classes the peer uses."""
    sys.path.insert(0, os.path.join(os.environ["TT_SOURCE_DIR"], "tests", "peers"))
    from otlp_receiver import generate_classes
    pb, _ = generate_classes(os.path.join(os.environ["TT_SOURCE_DIR"], "proto"))
    req = pb.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "tt-e2e-big"
    ss = rs.scope_spans.add()
    ss.scope.name = "tt-e2e-big-scope"
    trace_id = b"\x7b" + os.urandom(15)
    now = time.time_ns()
    for i in range(nspans):
        sp = ss.spans.add()
        sp.trace_id = trace_id
        sp.span_id = (0x5100000000000000 + i + 1).to_bytes(8, "big")
        if i > 0:
            sp.parent_span_id = (0x5100000000000001).to_bytes(8, "big")
        sp.name = "big-%d" % i
        sp.kind = 1
        sp.start_time_unix_nano = now + i
        sp.end_time_unix_nano = now + i + 1000
        a = sp.attributes.add()
        a.key, a.value.string_value = "pad", "x" * pad
    ss.spans[0].status.code = 2  # an error: the errors policy keeps the trace
    return trace_id.hex(), req.SerializeToString()


def scenario_big_trace():
    work = new_workdir()
    peer = Peer(work)  # grpcio's default receive limit: 4 MiB
    col = Collector(work, "sink: {type: none}\n" + POLICIES +
                    exporter_yaml("jaeger", "grpc", "127.0.0.1:%d" % peer.grpc))
    big_spans = 1500
    trace_hex, body = big_trace_request(big_spans, 4000)
    if len(body) <= (5 << 20):
        fail("the big trace is only %d bytes" % len(body))
    failed = 'tailtrace_exporter_batches_total{exporter="jaeger",outcome="failed_permanent"}'
    try:
        post = urllib.request.Request(col.endpoint("http"), data=body, method="POST",
                                      headers={"Content-Type": "application/x-protobuf"})
        with urllib.request.urlopen(post, timeout=60) as r:
            if r.status != 200:
                fail("the collector answered %d to the big trace" % r.status)
        traces = run_node("grpc", col.endpoint("grpc"), os.path.join(work, "main.json"),
                          TRAFFIC)
        col.wait_decided(TOTAL + 1)
        want = kept_span_count(traces) + big_spans
        # A refused request is permanent: stop waiting as soon as one is counted.
        wait_until("%d kept spans at the backend (or a refused batch)" % want,
                   lambda: peer.stat("spans") >= want or col.metrics().get(failed, 0) > 0,
                   90, col.admin)
        m = col.metrics()
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    if m.get(failed, 0) > 0:
        fail("the backend refused %d batches permanently (too big?); %d of %d spans arrived" %
             (m.get(failed), peer_spans_after(peer), want))
    big, rest, big_requests = [], [], 0
    for _, req in peer.accepted_requests():
        spans = list(spans_of(req))
        mine = [x for x in spans if x[2]["traceId"] == trace_hex]
        big_requests += 1 if mine else 0
        big += mine
        rest += [x for x in spans if x[2]["traceId"] != trace_hex]
    nspans, _ = check_kept_spans(rest, traces, RATIO)
    names = [sp["name"] for _, _, sp in big]
    if sorted(names) != sorted("big-%d" % i for i in range(big_spans)):
        fail("the big trace arrived with %d spans (%d distinct) of %d" %
             (len(names), len(set(names)), big_spans))
    for res, scope, sp in big:
        if res.get("service.name") != "tt-e2e-big" or scope.get("name") != "tt-e2e-big-scope":
            fail("a span of the big trace lost its resource or scope: %r %r" % (res, scope))
    if big_requests < 2:
        fail("the big trace arrived in %d request(s)" % big_requests)
    print("OK big-trace: a %d-byte trace of %d spans arrived whole in %d requests under the "
          "gRPC peer's 4 MiB limit, with %d other kept spans, each once" %
          (len(body), big_spans, big_requests, nspans))


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
        want = kept_span_count(traces)
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


def spool_contents(spool_dir):
    """(records, spans) waiting in a spool directory, read from the segment files themselves
    (the layout in collector/forward/spool.h; an exporter's record starts with its span count,
    4 bytes little-endian), not from the collector."""
    records = spans = 0
    for name in sorted(os.listdir(spool_dir)):
        if not name.startswith("seg-"):
            continue
        data = open(os.path.join(spool_dir, name), "rb").read()
        off = 0
        while off + 24 <= len(data):
            magic, _, flags, _, length = struct.unpack_from("<IBBHI", data, off)
            if magic != 0x31535454 or off + 24 + length > len(data):
                fail("%s: damaged record at offset %d" % (name, off))
            if not flags & 0x01:
                records += 1
                spans += struct.unpack_from("<I", data, off + 24)[0]
            off += 24 + length
    return records, spans


def log_lines(work, msg_part):
    out = []
    for line in open(os.path.join(work, "collector.log")):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if msg_part in e.get("msg", ""):
            out.append(e)
    return out


def scenario_hung_sigterm(protocol, spool_mode):
    work = new_workdir()
    spool = os.path.join(work, "spool")
    hung = Peer(work)
    post_fault(hung, {"proto": "any", "kind": "hang", "seconds": 600, "times": 1000000})
    extra = '    spool: {dir: "%s", mode: %s}\n' % (spool, spool_mode) if spool_mode else ""
    ports = (free_port(), free_port(), free_port())

    def config(peer):
        endpoint = ("127.0.0.1:%d" % peer.grpc if protocol == "grpc"
                    else "http://127.0.0.1:%d/v1/traces" % peer.http)
        # The default attempt timeout (10 s), as long as the shutdown deadline (Collector: 10s).
        return ("sink: {type: none}\n" + POLICIES +
                exporter_yaml("jaeger", protocol, endpoint, extra).replace("    timeout: 2s\n",
                                                                           ""))
    col = Collector(work, config(hung), ports)
    traces = send_and_decide(col, work)
    want = kept_span_count(traces)
    wait_until("every kept span handed to the exporter and a request held by the backend",
               lambda: (col.metrics().get("tailtrace_spans_kept_total", 0) >= want and
                        hung.stat("requests") >= 1), 30, col.admin)
    t0 = time.time()
    rc = col.stop(timeout=60)
    took = time.time() - t0  # printed, never asserted: the watchdog's status 3 is the check
    if rc != 0:
        fail("SIGTERM with a hung backend: exit status %d after %.1f s (3 is the watchdog's)" %
             (rc, took))
    if log_lines(work, "shutdown deadline passed"):
        fail("the shutdown deadline was missed")
    lost = log_lines(work, "were lost")
    if not spool_mode:
        hung.stop()
        if len(lost) != 1 or lost[0].get("spans") != want:
            fail("want one log line counting %d lost spans, got %r" % (want, lost))
        print("OK hung-sigterm without a spool: exit status 0 after %.1f s; the loss of %d kept "
              "spans in %d batches was logged" % (took, want, lost[0].get("batches")))
        return
    if lost:
        fail("spans were lost although a spool is configured: %r" % lost)
    records, spans = spool_contents(spool)
    if spans != want:
        fail("the spool holds %d spans in %d batches, want every kept span: %d" %
             (spans, records, want))
    hung.stop()
    peer = Peer(work)
    col = Collector(work, config(peer), ports)
    try:
        nspans, _ = expect_all_delivered(peer, traces, "replay after SIGTERM", col.admin)
        wait_until("the spool to drain", lambda: col.metrics().get(
            'tailtrace_exporter_spool_batches{exporter="jaeger"}', 1) == 0, 30, col.admin)
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the restarted collector exited with %d" % rc)
    if nspans != want:
        fail("%d spans delivered after the restart, want %d" % (nspans, want))
    print("OK hung-sigterm (%s, spool mode %s): exit status 0 after %.1f s; the spool held all "
          "%d kept spans in %d batches; after the restart each arrived once" %
          (protocol, spool_mode, took, want, records))


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
    elif what == "healthy-kill":
        scenario_healthy_kill()
    elif what == "hung-sigterm":
        scenario_hung_sigterm("grpc", "on_failure")
    elif what == "hung-sigterm-always":
        scenario_hung_sigterm("http/protobuf", "always")
    elif what == "hung-sigterm-nospool":
        scenario_hung_sigterm("grpc", None)
    elif what == "big-trace":
        scenario_big_trace()
    else:
        fail("usage: test_forward_e2e.py jaeger-grpc|jaeger-http|honeycomb|mtls|outage|"
             "healthy-kill|big-trace|hung-sigterm|hung-sigterm-always|hung-sigterm-nospool")


if __name__ == "__main__":
    main()
