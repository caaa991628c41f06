#!/usr/bin/python3
"""A real OTLP/trace receiver for tests: OTLP/gRPC and OTLP/HTTP (protobuf or JSON, gzip).

It decodes every request with Python classes generated at start-up from the project's proto/
(protoc --python_out into a temporary directory), records what arrived, and injects faults on
command so clients can be tested against a real peer over real sockets. Run it with Debian's
/usr/bin/python3 (python3-grpcio, python3-protobuf); if those modules are missing it exits with
status 2 and never prints READY, so a test that needs it fails instead of skipping.

Start-up: prints exactly one line "READY grpc=<port> http=<port>" on stdout once both servers
listen on 127.0.0.1 (ephemeral ports unless --grpc-port/--http-port are given). It exits when its
stdin reaches end of file, so a crashed test never leaves it behind.

Control endpoints (on the HTTP port, plain text/JSON, used by tests; never by OTLP clients):
  POST /_control/fault   JSON {"proto": "http"|"grpc"|"any", "kind": K, "times": N, ...}
       kind "status":  http: "status" (int), optional "retry_after" (string, sent verbatim),
                       "message"; grpc: "code" (name, e.g. "UNAVAILABLE"), "message",
                       optional "retry_delay_ms" (adds google.rpc.RetryInfo to
                       grpc-status-details-bin).
       kind "partial": "rejected" (int), "message": a success carrying partial_success.
       kind "hang":    "seconds": hold the request, then drop it without an answer.
       kind "delay":   "seconds": hold the request, then accept it as usual (a slow backend;
                       recorded as fault=none once answered, even if the client is gone).
       Faults queue per protocol and each one applies to the next N export requests.
  POST /_control/reset   forget faults and recorded requests.
  GET  /_control/stats   "requests=N http=N grpc=N spans=N faults=N"
  GET  /_control/dump    one text line per request, resource, scope, span, attribute, event and
                         link (see dump_request), easy to match with strstr from C.
  GET  /_control/json    every recorded request as JSON (the decoded message, ids in hex, plus
                         protocol, fault, headers/metadata, time).
Options: --require-header NAME=VALUE answers 401 / UNAUTHENTICATED without it (as Honeycomb does
with x-honeycomb-team); --record FILE appends one JSON line per request; --tls-cert/--tls-key
serve both protocols over TLS (the control endpoints too), --tls-client-ca also requires client
certificates.
"""

import argparse
import base64
import binascii
import gzip
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib

try:
    import grpc
    from concurrent import futures
    from google.protobuf import json_format
except ImportError as e:  # the test must fail loudly, never skip
    sys.stderr.write("otlp_receiver: missing Python module: %s (use /usr/bin/python3 with "
                     "python3-grpcio and python3-protobuf)\n" % e)
    sys.exit(2)

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def log(msg):
    sys.stderr.write("otlp_receiver: %s\n" % msg)
    sys.stderr.flush()


def generate_classes(proto_dir):
    """Compile the project's protos (and our rpc_status.proto) into a temporary package."""
    out = tempfile.mkdtemp(prefix="tt_otlp_py_")
    protos = [
        "opentelemetry/proto/common/v1/common.proto",
        "opentelemetry/proto/resource/v1/resource.proto",
        "opentelemetry/proto/trace/v1/trace.proto",
        "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    ]
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out] + protos,
                   check=True)
    subprocess.run(["protoc", "--proto_path=" + HERE, "--python_out=" + out, "rpc_status.proto"],
                   check=True)
    sys.path.insert(0, out)
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    import rpc_status_pb2
    return trace_service_pb2, rpc_status_pb2


GRPC_CODES = {c.name: c for c in grpc.StatusCode}


class State:
    """Everything the servers share; one lock guards it all (tests are small)."""

    def __init__(self, record_file):
        self.lock = threading.Lock()
        self.requests = []
        self.faults = {"http": [], "grpc": []}
        self.record_file = record_file

    def take_fault(self, proto):
        with self.lock:
            q = self.faults[proto]
            if not q:
                return None
            f = q[0]
            f["times"] -= 1
            if f["times"] <= 0:
                q.pop(0)
            return dict(f)

    def add_fault(self, f):
        f.setdefault("times", 1)
        protos = ["http", "grpc"] if f.get("proto", "any") == "any" else [f["proto"]]
        with self.lock:
            for p in protos:
                self.faults[p].append(dict(f))

    def record(self, entry):
        with self.lock:
            entry["n"] = len(self.requests) + 1
            self.requests.append(entry)
            if self.record_file:
                with open(self.record_file, "a") as fh:
                    fh.write(json.dumps({k: v for k, v in entry.items() if k != "_req"}) + "\n")


def hexid(b):
    return binascii.hexlify(b).decode()


def any_value_repr(v):
    which = v.WhichOneof("value")
    if which is None:
        return "empty"
    if which == "string_value":
        return "s:" + v.string_value
    if which == "bool_value":
        return "b:" + ("true" if v.bool_value else "false")
    if which == "int_value":
        return "i:%d" % v.int_value
    if which == "double_value":
        return "d:%r" % v.double_value
    if which == "bytes_value":
        return "x:" + hexid(v.bytes_value)
    if which == "array_value":
        return "a:[" + ",".join(any_value_repr(x) for x in v.array_value.values) + "]"
    if which == "kvlist_value":
        return "kv:{" + ",".join("%s=%s" % (kv.key, any_value_repr(kv.value))
                                 for kv in v.kvlist_value.values) + "}"
    return which


def dump_request(req, meta):
    """Text lines for one request. Formats (one line each):
    request n=N proto=P fault=F spans=N
    header n=N name=value                    (HTTP headers / gRPC metadata, names lowercased)
    resource attr key=K value=V
    scope name=N version=V
    span trace_id=.. span_id=.. parent_span_id=.. name=.. kind=.. start=.. end=.. flags=..
         trace_state=.. status_code=.. status_message=.. dropped_attrs=.. dropped_events=..
         dropped_links=.. scope=..
    attr span_id=.. key=K value=V
    event span_id=.. name=.. time=.. attrs=N
    link span_id=.. trace_id=.. link_span_id=.. trace_state=.. flags=..
    """
    lines = ["request n=%d proto=%s fault=%s spans=%d" % (meta["n"], meta["proto"],
                                                          meta["fault"], meta["spans"])]
    for k, v in meta["headers"]:
        lines.append("header n=%d %s=%s" % (meta["n"], k, v))
    if req is None:
        return lines
    for rs in req.resource_spans:
        for kv in rs.resource.attributes:
            lines.append("resource attr key=%s value=%s" % (kv.key, any_value_repr(kv.value)))
        for ss in rs.scope_spans:
            lines.append("scope name=%s version=%s" % (ss.scope.name, ss.scope.version))
            for s in ss.spans:
                sid = hexid(s.span_id)
                lines.append(
                    "span trace_id=%s span_id=%s parent_span_id=%s name=%s kind=%d start=%d "
                    "end=%d flags=%d trace_state=%s status_code=%d status_message=%s "
                    "dropped_attrs=%d dropped_events=%d dropped_links=%d scope=%s" %
                    (hexid(s.trace_id), sid, hexid(s.parent_span_id), s.name, s.kind,
                     s.start_time_unix_nano, s.end_time_unix_nano, s.flags, s.trace_state,
                     s.status.code, s.status.message, s.dropped_attributes_count,
                     s.dropped_events_count, s.dropped_links_count, ss.scope.name))
                for kv in s.attributes:
                    lines.append("attr span_id=%s key=%s value=%s" %
                                 (sid, kv.key, any_value_repr(kv.value)))
                for ev in s.events:
                    lines.append("event span_id=%s name=%s time=%d attrs=%d" %
                                 (sid, ev.name, ev.time_unix_nano, len(ev.attributes)))
                    for kv in ev.attributes:
                        lines.append("event_attr span_id=%s event=%s key=%s value=%s" %
                                     (sid, ev.name, kv.key, any_value_repr(kv.value)))
                for ln in s.links:
                    lines.append("link span_id=%s trace_id=%s link_span_id=%s trace_state=%s "
                                 "flags=%d attrs=%d" %
                                 (sid, hexid(ln.trace_id), hexid(ln.span_id), ln.trace_state,
                                  ln.flags, len(ln.attributes)))
    return lines


def count_spans(req):
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)


def hex_ids_to_base64(obj):
    """OTLP/JSON carries ids as hex; json_format expects base64 for bytes fields."""
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str):
                obj[k] = base64.b64encode(binascii.unhexlify(v)).decode()
            else:
                hex_ids_to_base64(v)
    elif isinstance(obj, list):
        for x in obj:
            hex_ids_to_base64(x)


def base64_ids_to_hex(obj):
    """The recorded JSON shows ids as OTLP/JSON does (hex), not as json_format's base64."""
    if isinstance(obj, dict):
        for k, v in list(obj.items()):
            if k in ("trace_id", "span_id", "parent_span_id") and isinstance(v, str):
                obj[k] = hexid(base64.b64decode(v))
            else:
                base64_ids_to_hex(v)
    elif isinstance(obj, list):
        for x in obj:
            base64_ids_to_hex(x)
    return obj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto-dir", default=os.path.join(HERE, "..", "..", "proto"))
    ap.add_argument("--grpc-port", type=int, default=0)
    ap.add_argument("--http-port", type=int, default=0)
    ap.add_argument("--require-header", default=None, help="NAME=VALUE")
    ap.add_argument("--record", default=None, help="append one JSON line per request")
    ap.add_argument("--tls-cert", default=None, help="PEM server certificate: serve TLS")
    ap.add_argument("--tls-key", default=None, help="PEM server private key")
    ap.add_argument("--tls-client-ca", default=None,
                    help="PEM CA: require client certificates signed by it (mutual TLS)")
    ap.add_argument("--quiet", action="store_true", help="do not keep decoded requests "
                    "(benchmarks: count only)")
    args = ap.parse_args()

    pb, rpc = generate_classes(os.path.abspath(args.proto_dir))
    state = State(args.record)
    required = None
    if args.require_header:
        name, _, value = args.require_header.partition("=")
        required = (name.strip().lower(), value)
    counters = {"requests": 0, "http": 0, "grpc": 0, "spans": 0}

    def decode(body):
        req = pb.ExportTraceServiceRequest()
        req.ParseFromString(body)
        return req

    def record(proto, headers, req, fault, extra=None):
        n_spans = count_spans(req) if req is not None else 0
        # The request is recorded (and written to --record) before the counters move: a test
        # that waits for a count and then reads the record must find every request counted.
        if not args.quiet:
            entry = {"proto": proto, "fault": fault, "spans": n_spans, "headers": headers,
                     "time": time.time()}
            if extra:
                entry.update(extra)
            if req is not None:
                entry["request"] = base64_ids_to_hex(
                    json_format.MessageToDict(req, preserving_proto_field_name=True))
                entry["_req"] = req.SerializeToString()
            state.record(entry)
        with state.lock:
            counters["requests"] += 1
            counters[proto] += 1
            if fault == "none" or fault.startswith("partial"):
                counters["spans"] += n_spans

    def status_bytes(code, message, retry_delay_ms=None):
        st = rpc.Status(code=code, message=message)
        if retry_delay_ms is not None:
            ri = rpc.RetryInfo()
            ri.retry_delay.seconds = retry_delay_ms // 1000
            ri.retry_delay.nanos = (retry_delay_ms % 1000) * 1000000
            st.details.add(type_url="type.googleapis.com/google.rpc.RetryInfo",
                           value=ri.SerializeToString())
        return st.SerializeToString()

    # ---- gRPC -----------------------------------------------------------------------------
    def grpc_export(body, context):
        md = [(k.lower(), v if isinstance(v, str) else "<binary>")
              for k, v in context.invocation_metadata()]
        if required and not any(k == required[0] and v == required[1] for k, v in md):
            record("grpc", md, None, "unauthenticated")
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong " + required[0])
        try:
            req = decode(body)
        except Exception as e:  # noqa: BLE001 - any decode failure is the client's bad data
            record("grpc", md, None, "bad_request")
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot decode: %s" % e)
        f = state.take_fault("grpc")
        if f is not None and f["kind"] == "delay":
            time.sleep(f.get("seconds", 1))
            f = None
        if f is None:
            record("grpc", md, req, "none")
            return pb.ExportTraceServiceResponse().SerializeToString()
        kind = f["kind"]
        if kind == "partial":
            record("grpc", md, req, "partial")
            resp = pb.ExportTraceServiceResponse()
            resp.partial_success.rejected_spans = f.get("rejected", 1)
            resp.partial_success.error_message = f.get("message", "partially rejected")
            return resp.SerializeToString()
        if kind == "hang":
            record("grpc", md, req, "hang")
            time.sleep(f.get("seconds", 30))
            context.abort(grpc.StatusCode.UNAVAILABLE, "hung request released")
        code = GRPC_CODES[f.get("code", "UNAVAILABLE")]
        record("grpc", md, req, "status:" + code.name)
        details = status_bytes(code.value[0], f.get("message", "injected"),
                               f.get("retry_delay_ms"))
        if "retry_delay_ms" in f:
            context.set_trailing_metadata([("grpc-status-details-bin", details)])
        context.abort(code, f.get("message", "injected"))

    gserver = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(grpc_export)})
    gserver.add_generic_rpc_handlers((handler,))
    tls_ctx = None
    if args.tls_cert:
        with open(args.tls_cert, "rb") as fh:
            cert = fh.read()
        with open(args.tls_key, "rb") as fh:
            key = fh.read()
        client_ca = None
        if args.tls_client_ca:
            with open(args.tls_client_ca, "rb") as fh:
                client_ca = fh.read()
        creds = grpc.ssl_server_credentials([(key, cert)], root_certificates=client_ca,
                                            require_client_auth=client_ca is not None)
        gport = gserver.add_secure_port("127.0.0.1:%d" % args.grpc_port, creds)
        import ssl
        tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            tls_ctx.verify_mode = ssl.CERT_REQUIRED
            tls_ctx.load_verify_locations(args.tls_client_ca)
    else:
        gport = gserver.add_insecure_port("127.0.0.1:%d" % args.grpc_port)
    gserver.start()

    # ---- HTTP -----------------------------------------------------------------------------
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def log_message(self, fmt, *a):  # quiet: tests read stderr only on failure
            pass

        def setup(self):
            if hasattr(self.request, "do_handshake"):
                self.request.settimeout(10)
                self.request.do_handshake()  # TLS; a failure just drops this connection
                self.request.settimeout(None)
            super().setup()

        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                body = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return body
                    body += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def reply(self, code, body=b"", ctype="application/x-protobuf", extra=(), msg=None):
            # OTLP answers in the request's encoding: protobuf messages become JSON for JSON
            # clients (the spec's rule; the OpenTelemetry JS exporter checks it).
            if ctype == "application/json" and msg is not None:
                body = json_format.MessageToJson(msg).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_control/stats":
                with state.lock:
                    nf = len(state.faults["http"]) + len(state.faults["grpc"])
                    s = "requests=%d http=%d grpc=%d spans=%d faults=%d\n" % (
                        counters["requests"], counters["http"], counters["grpc"],
                        counters["spans"], nf)
                self.reply(200, s.encode(), "text/plain")
            elif self.path == "/_control/dump":
                with state.lock:
                    reqs = list(state.requests)
                lines = []
                for e in reqs:
                    req = decode(e["_req"]) if "_req" in e else None
                    lines += dump_request(req, e)
                self.reply(200, ("\n".join(lines) + "\n").encode(), "text/plain")
            elif self.path == "/_control/json":
                with state.lock:
                    reqs = [{k: v for k, v in e.items() if k != "_req"} for e in state.requests]
                self.reply(200, json.dumps(reqs).encode(), "application/json")
            else:
                self.reply(404, b"not found\n", "text/plain")

        def do_POST(self):
            body = self.read_body()
            if self.path == "/_control/fault":
                state.add_fault(json.loads(body))
                self.reply(200, b"ok\n", "text/plain")
                return
            if self.path == "/_control/reset":
                with state.lock:
                    state.requests.clear()
                    state.faults = {"http": [], "grpc": []}
                    for k in counters:
                        counters[k] = 0
                self.reply(200, b"ok\n", "text/plain")
                return
            if self.path != "/v1/traces":
                self.reply(404, b"not found\n", "text/plain")
                return
            hdrs = [(k.lower(), v) for k, v in self.headers.items()]
            extra = {"client_port": self.client_address[1]}
            hdrs.append(("x-tt-client-port", str(self.client_address[1])))
            ctype = self.headers.get("Content-Type", "")
            is_json = ctype.startswith("application/json")
            rtype = "application/json" if is_json else "application/x-protobuf"
            if required and self.headers.get(required[0]) != required[1]:
                record("http", hdrs, None, "unauthenticated", extra)
                self.reply(401, status_bytes(16, "missing or wrong " + required[0]), rtype,
                           msg=rpc.Status(code=16, message="missing or wrong " + required[0]))
                return
            try:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                if is_json:
                    obj = json.loads(body)
                    hex_ids_to_base64(obj)
                    req = pb.ExportTraceServiceRequest()
                    json_format.ParseDict(obj, req, ignore_unknown_fields=True)
                else:
                    req = decode(body)
            except (ValueError, OSError, zlib.error, json_format.ParseError,
                    binascii.Error, Exception) as e:  # noqa: BLE001
                record("http", hdrs, None, "bad_request", extra)
                self.reply(400, status_bytes(3, "cannot decode: %s" % e), rtype,
                           msg=rpc.Status(code=3, message="cannot decode: %s" % e))
                return
            f = state.take_fault("http")
            if f is not None and f["kind"] == "delay":
                time.sleep(f.get("seconds", 1))
                f = None
            if f is None:
                record("http", hdrs, req, "none", extra)
                resp = pb.ExportTraceServiceResponse()
                self.reply(200, resp.SerializeToString(), rtype, msg=resp)
                return
            kind = f["kind"]
            if kind == "partial":
                record("http", hdrs, req, "partial", extra)
                resp = pb.ExportTraceServiceResponse()
                resp.partial_success.rejected_spans = f.get("rejected", 1)
                resp.partial_success.error_message = f.get("message", "partially rejected")
                self.reply(200, resp.SerializeToString(), rtype, msg=resp)
                return
            if kind == "hang":
                record("http", hdrs, req, "hang", extra)
                time.sleep(f.get("seconds", 30))
                self.close_connection = True
                return
            code = int(f.get("status", 503))
            record("http", hdrs, req, "status:%d" % code, extra)
            hdr = [("Retry-After", f["retry_after"])] if "retry_after" in f else []
            st = rpc.Status(code=14 if code >= 500 else 3, message=f.get("message", "injected"))
            self.reply(code, st.SerializeToString(), rtype, hdr, msg=st)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

        def handle_error(self, request, client_address):
            # Expected in tests (failed TLS handshakes, clients giving up on a hung request):
            # one line, not a traceback.
            log("connection from %s:%d ended: %s" % (client_address[0], client_address[1],
                                                     sys.exc_info()[1]))

    hserver = Server(("127.0.0.1", args.http_port), Handler)
    if tls_ctx is not None:
        # Handshake in the handler thread, so a client that fails it cannot stall accept().
        hserver.socket = tls_ctx.wrap_socket(hserver.socket, server_side=True,
                                             do_handshake_on_connect=False)
    threading.Thread(target=hserver.serve_forever, daemon=True).start()

    sys.stdout.write("READY grpc=%d http=%d\n" % (gport, hserver.server_address[1]))
    sys.stdout.flush()

    # Exit when the parent closes our stdin (or dies): no receiver outlives its test.
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, KeyboardInterrupt):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
