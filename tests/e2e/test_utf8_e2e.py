#!/usr/bin/python3
"""One span with a string that is not UTF-8 must not cost its neighbours (issue 17, item 6).

Starts the real tailtrace-collector (file sink, every trace kept) and sends it, over one
transport (grpc, http/protobuf or http/json), one request of N valid spans and one span whose
attribute value is Latin-1 ("Z\\xfcrich"). The request is encoded here by hand, independently of
the collector's code; gRPC goes through python3-grpcio. Checks:
  - the answer is a success with partial_success.rejected_spans = 1 and an error message that
    says the string is not UTF-8;
  - exactly the N valid spans reach the file sink, the bad one never does;
  - the counters agree: refused{cause="invalid_utf8"} = 1, received = accepted + refused.
A missing Python module is a failure, never a skip.

Usage: test_utf8_e2e.py PROTOCOL   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import os
import shutil
import struct
import sys
import urllib.request

from e2e_lib import Collector, fail, metric_sum, new_workdir, spans_of, wait_until

N = 20
BAD = b"Z\xfcrich"  # Latin-1, as a misconfigured client sends it
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def kv(key, value):
    return field(1, key) + field(2, field(1, value))


def ids(i):
    return bytes([0x10, i + 1]) + bytes(13) + bytes([i + 1]), bytes([0x20]) + bytes(6) + bytes(
        [i + 1])


def span_pb(i, city):
    tid, sid = ids(i)
    return (field(1, tid) + field(2, sid) + field(5, b"GET /orders") + varint(6 << 3) +
            varint(2) + fixed64(7, 1700000000000000000 + i) +
            fixed64(8, 1700000000001000000 + i) + field(9, kv(b"city", city)))


def request_pb(spans):
    scope = field(1, field(1, b"utf8-e2e"))
    resource = field(1, field(1, kv(b"service.name", b"utf8-e2e")))
    return field(1, resource + field(2, scope + b"".join(field(2, s) for s in spans)))


def span_json(i, city):
    tid, sid = ids(i)
    return (b'{"traceId":"' + tid.hex().encode() + b'","spanId":"' + sid.hex().encode() +
            b'","name":"GET /orders","kind":2,"startTimeUnixNano":"%d","endTimeUnixNano":"%d",'
            b'"attributes":[{"key":"city","value":{"stringValue":"' % (
                1700000000000000000 + i, 1700000000001000000 + i) + city + b'"}}]}')


def request_json(spans):
    return (b'{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
            b'{"stringValue":"utf8-e2e"}}]},"scopeSpans":[{"scope":{"name":"utf8-e2e"},'
            b'"spans":[' + b",".join(spans) + b"]}]}]}")


def partial_success_pb(body):
    """(rejected_spans, error_message) from ExportTraceServiceResponse bytes."""
    def fields(b):
        i = 0
        while i < len(b):
            tag, i = read_varint(b, i)
            if tag & 7 == 0:
                v, i = read_varint(b, i)
                yield tag >> 3, v
            elif tag & 7 == 2:
                n, i = read_varint(b, i)
                yield tag >> 3, b[i:i + n]
                i += n
            else:
                fail("unexpected wire type %d in the response" % (tag & 7))

    def read_varint(b, i):
        v = shift = 0
        while True:
            v |= (b[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not b[i - 1] & 0x80:
                return v, i

    rejected, message = 0, ""
    for num, v in fields(body):
        if num == 1:
            for pnum, pv in fields(v):
                if pnum == 1:
                    rejected = pv
                elif pnum == 2:
                    message = pv.decode()
    return rejected, message


def send(protocol, col, good_spans):
    if protocol == "grpc":
        try:
            import grpc
        except ImportError:
            fail("python3-grpcio is needed for the gRPC case")
        body = request_pb([span_pb(i, "Zürich".encode()) for i in range(N)] + [span_pb(N, BAD)])
        with grpc.insecure_channel("127.0.0.1:%d" % col.grpc) as ch:
            export = ch.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            return partial_success_pb(export(body, timeout=10))
    if protocol == "http/protobuf":
        body = request_pb([span_pb(i, "Zürich".encode()) for i in range(N)] + [span_pb(N, BAD)])
        ctype = "application/x-protobuf"
    else:
        body = request_json([span_json(i, "Zürich".encode()) for i in range(N)] +
                            [span_json(N, BAD)])
        ctype = "application/json"
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % col.http, data=body,
                                 headers={"Content-Type": ctype}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            fail("HTTP status %d" % r.status)
        answer = r.read()
    if protocol == "http/protobuf":
        return partial_success_pb(answer)
    ps = json.loads(answer).get("partialSuccess", {})
    return int(ps.get("rejectedSpans", 0)), ps.get("errorMessage", "")


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("grpc", "http/protobuf", "http/json"):
        fail("usage: test_utf8_e2e.py grpc|http/protobuf|http/json")
    protocol = sys.argv[1]
    work = new_workdir()
    sink = os.path.join(work, "kept.jsonl")
    col = Collector(work, """
sink: {type: file, file: {path: "%s", format: json}}
policies:
  - {name: all, type: ratio, ratio: 1}
""" % sink)
    try:
        rejected, message = send(protocol, col, N)
        wait_until("every trace to be decided", lambda: (
            metric_sum(col.metrics(), "tailtrace_traces_decided_total") >= N and
            col.metrics()["tailtrace_traces_held"] == 0), 30, col.admin)
        m = col.metrics()
    finally:
        rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d; log in %s" % (rc, work))
    if rejected != 1 or "invalid UTF-8" not in message:
        fail("partial_success: rejected_spans=%d error_message=%r, want 1 and the reason" %
             (rejected, message))
    spans = [sp for line in open(sink) for _, _, sp in spans_of(json.loads(line))]
    want = {ids(i)[1].hex() for i in range(N)}
    got = [sp["spanId"] for sp in spans]
    if len(got) != N or set(got) != want:
        fail("file sink holds %d spans %s, want the %d valid ones" % (len(got), sorted(got), N))
    refused_utf8 = m.get('tailtrace_spans_refused_total{cause="invalid_utf8"}', -1)
    received = m["tailtrace_spans_received_total"]
    accepted = m["tailtrace_spans_accepted_total"]
    refused = metric_sum(m, "tailtrace_spans_refused_total")
    if refused_utf8 != 1 or received != N + 1 or received != accepted + refused:
        fail("counters: refused_utf8=%g received=%g accepted=%g refused=%g" %
             (refused_utf8, received, accepted, refused))
    shutil.rmtree(work)
    print("OK %s: %r; %d valid spans in the file sink, the bad one refused and counted" %
          (protocol, message, N))


if __name__ == "__main__":
    main()
