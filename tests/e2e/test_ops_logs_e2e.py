#!/usr/bin/python3
"""The collector says what it does, refusals are visible, every line is JSON (issue 18).

Runs the real tailtrace-collector on loopback ephemeral ports, with stdout and stderr captured
apart, and parses every line of both as JSON: a line that does not parse fails the test.
Requests are built here by hand (python3-grpcio for gRPC), independently of the collector's code.

Scenarios:
  lifecycle  start (the start line names receivers, policies, the sink path and the exporters by
             name and endpoint, never a header value); kept and dropped traffic, then a summary
             line with the counts by reason; garbage protobuf and text/plain POSTs (400, 415:
             counted, one warning each cause, the rest counted as unlogged); SIGHUP with a good
             then a bad configuration (the errors as JSON lines); a second collector on the same
             ports (exits 1, errno with its text) with gRPC core's own logging at debug; a
             configuration refused at start (exit 2, its errors as JSON lines); SIGTERM.
  refusals   every refusal of the OTLP/HTTP port and its answer: 400 protobuf and JSON bodies
             that are google.rpc.Status in the request's encoding, 404, 405, 413 naming
             receivers.otlp_http.max_body_size, 415, 431, bytes that are not HTTP (400), an
             HTTP/2 preface (505 naming the gRPC
             port), a TLS ClientHello (a TLS alert), a real gRPC client on the HTTP port, and a
             malformed message on the gRPC port; each counted by cause on /metrics and warned
             about once with the peer, the cause and the fix.
  states     an exporter whose backend is down: "backend unavailable" once; the backend comes
             up: "backend available again", "spool draining", "spool drained", each once; and
             memory pressure on, then off, once each, under a small memory budget.

Usage: test_ops_logs_e2e.py SCENARIO   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

import e2e_lib
from e2e_lib import Peer, fail, free_port, metrics, new_workdir, wait_until

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SECRET = "hunter2-never-logged"


# ---- OTLP by hand ------------------------------------------------------------------------------

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


def span_pb(trace, span, error=False):
    tid = bytes([0x31, trace & 0xFF, trace >> 8]) + bytes(12) + bytes([1])
    sid = bytes([0x41, span & 0xFF]) + bytes(5) + bytes([1])
    now = time.time_ns()
    out = (field(1, tid) + field(2, sid) + field(5, b"GET /ops") + varint(6 << 3) + varint(2) +
           fixed64(7, now - 1000000) + fixed64(8, now))
    if error:
        out += field(15, varint(3 << 3) + varint(2))  # Status{code: ERROR}
    return out


def request_pb(spans):
    resource = field(1, field(1, field(1, b"service.name") + field(2, field(1, b"ops-e2e"))))
    scope = field(1, field(1, b"ops-e2e"))
    return field(1, resource + field(2, scope + b"".join(field(2, s) for s in spans)))


def read_varint(b, i):
    v = shift = 0
    while True:
        v |= (b[i] & 0x7F) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            return v, i


def rpc_status_pb(body):
    """(code, message) of a google.rpc.Status in protobuf."""
    code, message, i = 0, "", 0
    while i < len(body):
        tag, i = read_varint(body, i)
        if tag & 7 == 0:
            v, i = read_varint(body, i)
            if tag >> 3 == 1:
                code = v
        elif tag & 7 == 2:
            n, i = read_varint(body, i)
            if tag >> 3 == 2:
                message = body[i:i + n].decode()
            i += n
        else:
            fail("unexpected wire type %d in a google.rpc.Status" % (tag & 7))
    return code, message


def post(port, path, body, ctype, method="POST"):
    """(status, content type, body) of one request on a fresh connection."""
    headers = {"Content-Type": ctype} if ctype else {}
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


# ---- the collector, stdout and stderr apart ---------------------------------------------------

class Collector:
    def __init__(self, work, yaml, ports=None, env=None, wait=True, tag="collector", http_opts=""):
        self.work = work
        self.grpc, self.http, self.admin = ports or (free_port(), free_port(), free_port())
        self.cfg = os.path.join(work, "%s.yaml" % tag)
        self.yaml_head = """
receivers:
  otlp_grpc: {endpoint: "127.0.0.1:%d"}
  otlp_http: {endpoint: "127.0.0.1:%d"%s}
admin: {endpoint: "127.0.0.1:%d"}
workers: 2
decision: {root_grace: 300ms, idle_timeout: 1s, max_trace_age: 10s, tick: 20ms, drop_delay: 0s}
shutdown: {deadline: 10s}
""" % (self.grpc, self.http, ", " + http_opts if http_opts else "", self.admin)
        self.write_config(yaml)
        self.out_path = os.path.join(work, "%s.stdout" % tag)
        self.err_path = os.path.join(work, "%s.stderr" % tag)
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([e2e_lib.BINARY, "--config", self.cfg],
                                     stdout=open(self.out_path, "w"),
                                     stderr=open(self.err_path, "w"), env=e)
        e2e_lib._STARTED.append(self.proc)
        if wait:
            wait_until("the collector to log its start line",
                       lambda: self.alive() and self.find("tailtrace-collector started"), 20)

    def alive(self):
        if self.proc.poll() is not None:
            fail("the collector exited with %d; stderr:\n%s" % (self.proc.returncode,
                                                               open(self.err_path).read()))
        return True

    def write_config(self, yaml):
        with open(self.cfg, "w") as f:
            f.write(self.yaml_head + yaml)

    def lines(self, which="stderr"):
        """Every line written so far, parsed; a line that is not one JSON object fails."""
        path = self.err_path if which == "stderr" else self.out_path
        out = []
        with open(path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            data = data[:data.rfind(b"\n") + 1]  # a line being written
        for raw in data.splitlines():
            try:
                obj = json.loads(raw)
            except ValueError as e:
                fail("%s line is not JSON (%s): %r" % (which, e, raw))
            if not isinstance(obj, dict) or not {"ts", "level", "msg"} <= obj.keys():
                fail("%s line lacks ts/level/msg: %r" % (which, raw))
            out.append(obj)
        return out

    def find(self, msg, **fields):
        return [l for l in self.lines() if l["msg"].startswith(msg) and
                all(l.get(k) == v for k, v in fields.items())]

    def metrics(self):
        return metrics(self.admin)

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the collector did not exit within 30 s of signal %d" % sig)

    def check_all_json(self):
        self.lines("stderr")
        if self.lines("stdout"):
            fail("the collector wrote to stdout: %r" % self.lines("stdout"))


def refused(m, cause):
    return m.get('tailtrace_requests_refused_total{cause="%s"}' % cause, -1)


# ---- scenarios ---------------------------------------------------------------------------------

POLICIES = """
policies:
  - {name: errors, type: errors}
  - {name: rest, type: ratio, ratio: 0}
"""


def scenario_lifecycle():
    work = new_workdir()
    sink = os.path.join(work, "kept.jsonl")
    down = free_port()
    exporter = """
exporters:
  - name: backend
    protocol: grpc
    endpoint: "127.0.0.1:%d"
    insecure: true
    headers: {x-api-key: "%s"}
  - name: web
    protocol: http/protobuf
    endpoint: "http://ops:%s@127.0.0.1:%d/v1/traces"
""" % (down, SECRET, SECRET, down)
    yaml = ("sink: {type: file, file: {path: \"%s\"}}\nlog: {level: info, summary_interval: 1s}\n"
            % sink + POLICIES + exporter)
    col = Collector(work, yaml)

    start = col.find("tailtrace-collector started")
    if len(start) != 1:
        fail("want one start line, got %r" % start)
    s = start[0]
    want = {"otlp_grpc": "127.0.0.1:%d" % col.grpc, "otlp_http": "127.0.0.1:%d" % col.http}
    if s.get("receivers") != want or s.get("admin") != "127.0.0.1:%d" % col.admin:
        fail("the start line names the wrong receivers: %r" % s)
    if [p["name"] for p in s.get("policies", [])] != ["errors", "rest"]:
        fail("the start line names the wrong policies: %r" % s)
    if s.get("sink") != "file" or s.get("sink_path") != sink:
        fail("the start line does not name the sink's file: %r" % s)
    if s.get("exporters") != [
            {"name": "backend", "protocol": "grpc", "endpoint": "127.0.0.1:%d" % down},
            {"name": "web", "protocol": "http/protobuf",
             "endpoint": "http://127.0.0.1:%d/v1/traces" % down}]:
        fail("the start line names the wrong exporters: %r" % s)
    if s.get("memory_budget") != 256 << 20 or s.get("summary_interval_ms") != 1000:
        fail("the start line lacks the memory budget or summary interval: %r" % s)

    # 4 error traces (kept by "errors") and 6 others (dropped by "rest", a ratio policy: the
    # summary, as tailtrace_traces_decided_total, names the reason by policy kind), over HTTP.
    spans = [span_pb(t, 1, error=t < 4) for t in range(10)]
    st, _, _ = post(col.http, "/v1/traces", request_pb(spans), "application/x-protobuf")
    if st != 200:
        fail("a valid request was answered %d" % st)
    # Refused: three garbage protobuf bodies (400) and three text/plain bodies (415).
    for _ in range(3):
        st, _, _ = post(col.http, "/v1/traces", b"\xff\xff garbage", "application/x-protobuf")
        if st != 400:
            fail("garbage protobuf answered %d, want 400" % st)
    for _ in range(3):
        st, _, _ = post(col.http, "/v1/traces", b"hello", "text/plain")
        if st != 415:
            fail("text/plain answered %d, want 415" % st)
    m = col.metrics()
    if refused(m, "invalid") != 3 or refused(m, "unsupported_media_type") != 3:
        fail("refusals not counted: invalid=%s unsupported_media_type=%s" % (
            refused(m, "invalid"), refused(m, "unsupported_media_type")))
    for cause in ("invalid", "unsupported_media_type"):
        w = col.find("request refused", cause=cause)
        if len(w) != 1 or w[0]["level"] != "warn" or not w[0].get("peer", "").startswith(
                "127.0.0.1:") or not w[0].get("fix"):
            fail("want one warning for cause %s with peer and fix, got %r" % (cause, w))
    if "application/x-protobuf or application/json" not in col.find(
            "request refused", cause="unsupported_media_type")[0]["fix"]:
        fail("the 415 warning does not say which content types to send")

    def summarised():
        tot = {"kept": {}, "dropped": {}, "refused": {}, "spans_received": 0}
        for l in col.find("summary"):
            for k in ("kept", "dropped"):
                for r, n in l["traces_" + k].items():
                    tot[k][r] = tot[k].get(r, 0) + n
            for c, n in l["refused"].items():
                tot["refused"][c] = tot["refused"].get(c, 0) + n
            tot["spans_received"] += l["spans_received"]
        return tot
    wait_until("a summary with every decision", lambda: (
        summarised()["kept"].get("errors") == 4 and summarised()["dropped"].get("ratio") == 6),
        20, col.admin)
    tot = summarised()
    if tot["spans_received"] != 10 or tot["refused"].get("invalid") != 3 or tot["refused"].get(
            "unsupported_media_type") != 3:
        fail("the summaries do not add up: %r" % tot)
    last = col.find("summary")[-1]
    if "backend" not in last["sinks"] or "file" not in last["sinks"]:
        fail("the summary does not list every sink and exporter: %r" % last)
    if last["sinks"]["backend"].get("backend") != "down":
        fail("the summary does not say the exporter's backend is down: %r" % last)

    # SIGHUP: a good configuration, then a bad one.
    col.write_config(yaml.replace("ratio: 0", "ratio: 1"))
    col.proc.send_signal(signal.SIGHUP)
    wait_until("the reload", lambda: col.find("SIGHUP: policies reloaded"), 10)
    col.write_config(yaml + "policies: [{name: x, type: nonsense}]\nbogus_key: 1\n")
    col.proc.send_signal(signal.SIGHUP)
    wait_until("the refused reload", lambda: col.find("SIGHUP: configuration refused"), 10)
    errs = [l for l in col.lines() if l.get("component") == "config" and l["level"] == "error"]
    if not errs or not any("bogus_key" in l["msg"] for l in errs):
        fail("the refused reload's errors are not JSON lines naming the key: %r" % errs)

    # A second collector on the same HTTP port: refused at start, in JSON, errno with its text;
    # gRPC core's own lines (at debug here, from its own gRPC receiver, which starts first)
    # come through the same logger.
    twin = Collector(work, "log: {level: debug}\n", ports=(free_port(), col.http, col.admin),
                     env={"GRPC_VERBOSITY": "DEBUG"}, wait=False, tag="twin")
    try:
        rc = twin.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        fail("a collector on busy ports did not exit")
    if rc != 1:
        fail("a collector on busy ports exited %d, want 1" % rc)
    twin.check_all_json()
    busy = [l for l in twin.lines() if l["msg"].startswith("cannot start the OTLP/HTTP")]
    if not busy or busy[0].get("errno") != 98 or busy[0].get("error") != "Address already in use":
        fail("the port conflict line lacks errno and its text: %r" % twin.lines())
    if not any(l.get("component") == "grpc" for l in twin.lines()):
        fail("gRPC core's log lines did not come through the JSON logger")

    # A daemon whose configuration is refused at start: exit 2, the errors as JSON lines naming
    # file, line and key (--validate prints the same errors as text for a person).
    bad = Collector(work, "bogus_key: 1\n", wait=False, tag="badconf")
    try:
        rc = bad.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        fail("a collector with a refused configuration did not exit")
    if rc != 2:
        fail("a collector with a refused configuration exited %d, want 2" % rc)
    bad.check_all_json()
    errs = [l for l in bad.lines() if l.get("component") == "config" and l["level"] == "error"]
    if not any("bogus_key" in l["msg"] and "badconf.yaml:" in l["msg"] for l in errs) or \
            not bad.find("configuration refused"):
        fail("the start-up refusal is not JSON lines naming the file and key: %r" % bad.lines())

    rc = col.stop()
    if rc != 0:
        fail("the collector exited %d on SIGTERM" % rc)
    col.check_all_json()
    if SECRET in open(col.err_path).read() or SECRET in open(twin.err_path).read():
        fail("a header value or an endpoint's password was logged")
    if not col.find("stopped"):
        fail("no final line")
    print("lifecycle: %d stderr lines, all JSON" % len(col.lines()))


def scenario_refusals():
    work = new_workdir()
    col = Collector(work, "sink: {type: null}\nlog: {level: info, summary_interval: 0s}\n" +
                    POLICIES, http_opts="max_body_size: 1KiB")

    # 400, protobuf: the body is a protobuf google.rpc.Status with INVALID_ARGUMENT.
    st, ct, body = post(col.http, "/v1/traces", b"\x0a\x05abc", "application/x-protobuf")
    code, msg = rpc_status_pb(body)
    if st != 400 or ct != "application/x-protobuf" or code != 3 or "malformed" not in msg:
        fail("400 protobuf: %d %s %r" % (st, ct, body))
    # 400, JSON: the body is google.rpc.Status in JSON.
    st, ct, body = post(col.http, "/v1/traces", b"{not json", "application/json")
    j = json.loads(body)
    if st != 400 or ct != "application/json" or j.get("code") != 3 or "message" not in j:
        fail("400 JSON: %d %s %r" % (st, ct, body))
    # 404 and 405, in the request's encoding.
    st, ct, body = post(col.http, "/v1/metrics", b"{}", "application/json")
    if st != 404 or json.loads(body).get("code") != 5:
        fail("404: %d %r" % (st, body))
    st, ct, body = post(col.http, "/v1/traces", None, "application/x-protobuf", method="GET")
    if st != 405 or ct != "application/x-protobuf" or rpc_status_pb(body)[0] != 12:
        fail("405: %d %s %r" % (st, ct, body))
    # 413 says the limit and its key.
    st, ct, body = post(col.http, "/v1/traces", b"x" * 4096, "application/json")
    j = json.loads(body)
    if st != 413 or j.get("code") != 8 or "receivers.otlp_http.max_body_size" not in j[
            "message"] or "1024" not in j["message"]:
        fail("413: %d %r" % (st, body))
    # 415 (any other content type is answered in JSON).
    st, ct, body = post(col.http, "/v1/traces", b"hi", "text/plain")
    if st != 415 or json.loads(body).get("code") != 3:
        fail("415: %d %r" % (st, body))

    def raw(first_bytes, port=None):
        s = socket.create_connection(("127.0.0.1", port or col.http), timeout=5)
        s.sendall(first_bytes)
        got = b""
        while True:
            try:
                b = s.recv(4096)
            except ConnectionResetError:  # closed with request bytes unread: what came counts
                break
            if not b:
                break
            got += b
        s.close()
        return got
    # Headers over 16 KiB: 431; bytes that are not HTTP: 400. Both JSON google.rpc.Status.
    got = raw(b"POST /v1/traces HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n")
    head_, _, body = got.partition(b"\r\n\r\n")
    if not head_.startswith(b"HTTP/1.1 431") or json.loads(body).get("code") != 8:
        fail("big headers answered %r" % got[:200])
    got = raw(b"\x01\x02\x03 nonsense\r\n\r\n")
    head_, _, body = got.partition(b"\r\n\r\n")
    if not head_.startswith(b"HTTP/1.1 400") or json.loads(body).get("code") != 3:
        fail("non-HTTP bytes answered %r" % got[:200])
    # An HTTP/2 preface (a gRPC client, or curl --http2-prior-knowledge): 505 naming the port.
    got = raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    head_, _, body = got.partition(b"\r\n\r\n")
    if not head_.startswith(b"HTTP/1.1 505") or ("127.0.0.1:%d" % col.grpc) not in json.loads(
            body)["message"]:
        fail("HTTP/2 preface answered %r" % got)
    # A TLS ClientHello: a fatal TLS alert record, then close.
    got = raw(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")
    if got != b"\x15\x03\x01\x00\x02\x02\x28":
        fail("TLS ClientHello answered %r" % got)
    # The other way round: HTTP/1.1 on the gRPC port gets a 505 naming the HTTP port, and a TLS
    # ClientHello the same alert as on the HTTP port.
    got = raw(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 2\r\n\r\n{}", col.grpc)
    head_, _, body = got.partition(b"\r\n\r\n")
    if not head_.startswith(b"HTTP/1.1 505") or ("127.0.0.1:%d" % col.http) not in json.loads(
            body)["message"]:
        fail("HTTP/1.1 on the gRPC port answered %r" % got)
    got = raw(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", col.grpc)
    if got != b"\x15\x03\x01\x00\x02\x02\x28":
        fail("TLS ClientHello on the gRPC port answered %r" % got)
    # A real gRPC client pointed at the HTTP port fails at once and says why.
    import grpc
    with grpc.insecure_channel("127.0.0.1:%d" % col.http) as ch:
        try:
            ch.unary_unary(METHOD)(request_pb([span_pb(1, 1)]), timeout=10)
            fail("a gRPC call to the HTTP port succeeded")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or "http1.x" not in e.details():
                fail("gRPC client on the HTTP port: %s %s" % (e.code(), e.details()))
    # A malformed message on the gRPC port.
    with grpc.insecure_channel("127.0.0.1:%d" % col.grpc) as ch:
        try:
            ch.unary_unary(METHOD)(b"\xff\xff garbage", timeout=10)
            fail("a malformed gRPC message was accepted")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                fail("malformed gRPC message: %s %s" % (e.code(), e.details()))

    m = col.metrics()
    want = {"invalid": 3, "not_found": 1, "method_not_allowed": 1, "body_too_large": 1,
            "unsupported_media_type": 1, "tls_on_plaintext_port": 2, "headers_too_large": 1,
            "bad_http": 1, "http1_on_grpc_port": 1}
    for cause, n in want.items():
        if refused(m, cause) != n:
            fail("refused{cause=%s} = %s, want %d" % (cause, refused(m, cause), n))
    if refused(m, "http2_on_http1_port") < 2:  # the raw preface and the gRPC client (it may
        fail("HTTP/2 refusals not counted")     # try more than once)
    for cause in list(want) + ["http2_on_http1_port"]:
        w = col.find("request refused", cause=cause)
        if not w or not w[0].get("fix") or not w[0].get("peer", "").startswith("127.0.0.1:"):
            fail("no warning with peer and fix for cause %s: %r" % (cause, w))
    grpc_warn = [l for l in col.find("request refused", cause="invalid")
                 if l["receiver"] == "otlp_grpc"]
    if not grpc_warn:
        # "invalid" warns once a minute for both receivers together: the first was HTTP's.
        if col.find("request refused", cause="invalid")[0]["receiver"] != "otlp_http":
            fail("the invalid warning names no receiver")
    h2 = col.find("request refused", cause="http2_on_http1_port")[0]
    if "127.0.0.1:%d" % col.grpc not in h2["fix"]:
        fail("the HTTP/2 warning does not name the gRPC port: %r" % h2)
    h1 = col.find("request refused", cause="http1_on_grpc_port")[0]
    if "127.0.0.1:%d" % col.http not in h1["fix"] or h1["receiver"] != "otlp_grpc":
        fail("the HTTP/1.1 warning does not name the HTTP port: %r" % h1)
    if col.stop() != 0:
        fail("the collector did not stop cleanly")
    col.check_all_json()
    print("refusals: every cause answered, counted and warned about")


def scenario_states():
    work = new_workdir()
    spool = os.path.join(work, "spool")
    down = free_port()
    yaml = """sink: {type: null}
log: {level: info, summary_interval: 0s}
memory: {budget: 2MiB, max_trace_size: 256KiB}
exporters:
  - name: backend
    protocol: grpc
    endpoint: "127.0.0.1:%d"
    insecure: true
    retry_initial: 50ms
    retry_max: 300ms
    timeout: 2s
    spool: {dir: "%s"}
""" % (down, spool) + POLICIES
    col = Collector(work, yaml)
    spans = [span_pb(t, 1, error=True) for t in range(20)]
    st, _, _ = post(col.http, "/v1/traces", request_pb(spans), "application/x-protobuf")
    if st != 200:
        fail("a valid request was answered %d" % st)
    wait_until("the backend-down line", lambda: col.find("backend unavailable"), 20)
    spooled = 'tailtrace_exporter_spool_batches{exporter="backend"}'
    wait_until("a batch in the spool", lambda: col.metrics().get(spooled, 0) > 0, 20)
    peer = Peer(work, ["--grpc-port", str(down)])
    try:
        wait_until("the spool drained line", lambda: col.find("spool drained"), 30, col.admin)
        for msg in ("backend unavailable", "backend available again", "spool draining",
                    "spool drained"):
            got = col.find(msg, exporter="backend")
            if len(got) != 1:
                fail("want one %r line, got %r" % (msg, got))
        up = col.find("backend available again")[0]
        if up["level"] != "info" or up.get("down_ms", -1) < 0:
            fail("the backend-up line: %r" % up)

        # Memory pressure: a burst of big traces well over the 2 MiB budget, faster than the
        # root grace (300 ms) decides them; then they are decided and the pressure ends.
        big = b"x" * 60000
        throttled = 0
        for burst in range(60):
            reqspans = []
            for t in range(4):
                sp = span_pb(1000 + burst * 4 + t, 2)
                sp += field(9, field(1, b"blob") + field(2, field(1, big)))
                reqspans.append(sp)
            st, _, _ = post(col.http, "/v1/traces", request_pb(reqspans),
                            "application/x-protobuf")
            throttled += st == 429
        wait_until("the memory pressure on line", lambda: col.find("memory pressure on"), 20,
                   col.admin)
        wait_until("the memory pressure off line", lambda: col.find("memory pressure off"), 30,
                   col.admin)
        # Once per change: on and off alternate, never twice the same in a row (a slow build
        # may see the burst ease and resume, which is two changes more).
        seq = [l["msg"].split(":")[0] for l in col.lines()
               if l["msg"].startswith("memory pressure")]
        if seq[::2] != ["memory pressure on"] * len(seq[::2]) or \
                seq[1::2] != ["memory pressure off"] * len(seq[1::2]) or len(seq) % 2:
            fail("memory pressure lines not once per change: %r" % seq)
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the collector exited %d" % rc)
    col.check_all_json()
    print("states: down, up, draining, drained, pressure on and off: once each (%d throttled)"
          % throttled)


if __name__ == "__main__":
    if not e2e_lib.BINARY:
        fail("TT_COLLECTOR_BIN must be set (run through ctest)")
    scenarios = {"lifecycle": scenario_lifecycle, "refusals": scenario_refusals,
                 "states": scenario_states}
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        fail("usage: test_ops_logs_e2e.py %s" % "|".join(scenarios))
    scenarios[sys.argv[1]]()
    print("PASS")
