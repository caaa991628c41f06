"""Shared helpers of the collector's end-to-end tests (run with Debian's /usr/bin/python3).

They drive the real tailtrace-collector binary, the OpenTelemetry JS SDK (traffic.js) as the
client, and tests/peers/otlp_receiver.py as a backend, all on loopback ephemeral ports."""
import atexit
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.environ.get("TT_SOURCE_DIR", "")
BINARY = os.environ.get("TT_COLLECTOR_BIN", "")


# Every collector and peer started here, killed when the test exits however it exits (fail()
# exits at once): a failed test must not leave servers running on the machine.
_STARTED = []


def _kill_started():
    for p in _STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_started)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def require_env():
    if not SRC or not BINARY:
        fail("TT_SOURCE_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    if not os.path.isdir(os.path.join(SRC, "tests", "js", "node_modules", "@opentelemetry")):
        fail("the OpenTelemetry JS packages are missing: run tests/js/install.sh")


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


def print_metrics(admin):
    try:
        print("\n".join("%s %g" % kv for kv in sorted(metrics(admin).items())
                        if not kv[0].startswith("tailtrace_decision_latency")))
    except OSError:
        pass


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
        print_metrics(admin)
    fail("timed out waiting for " + what)


def threshold(ratio):
    # The consistent ratio rule (docs/collector.md, OpenTelemetry consistent probability
    # sampling): keep when the trace id's last 56 bits are >= 2^56 - round(ratio * 2^56).
    return (1 << 56) - round(ratio * (1 << 56))


def ratio_keeps(trace_id_hex, ratio):
    return int(trace_id_hex[-14:], 16) >= threshold(ratio)


def run_node(protocol, endpoint, manifest, env_extra):
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(SRC, "tests", "js", "node_modules")
    env.update(env_extra)
    r = subprocess.run(["node", os.path.join(SRC, "tests", "e2e", "traffic.js"), protocol,
                        endpoint, manifest], env=env, timeout=120, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
        fail("traffic.js exited with %d" % r.returncode)
    return json.load(open(manifest))["traces"]


class Collector:
    """The collector binary on ephemeral loopback ports with the given extra YAML."""

    def __init__(self, work, extra_yaml, ports=None, grpc_opts="", http_opts="", nofile=None):
        """grpc_opts and http_opts: extra keys of the two receivers ("k: v, k: v"); nofile: the
        open-files limit the collector runs under."""
        self.work = work
        self.grpc, self.http, self.admin = ports or (free_port(), free_port(), free_port())
        self.cfg = os.path.join(work, "collector-%d.yaml" % self.admin)
        with open(self.cfg, "w") as f:
            f.write("""
receivers:
  otlp_grpc: {endpoint: "127.0.0.1:%d"%s}
  otlp_http: {endpoint: "127.0.0.1:%d"%s}
admin: {endpoint: "127.0.0.1:%d"}
workers: 2
decision: {root_grace: 1500ms, idle_timeout: 4s, max_trace_age: 60s, tick: 20ms}
log: {level: warn}
shutdown: {deadline: 10s}
""" % (self.grpc, ", " + grpc_opts if grpc_opts else "", self.http,
       ", " + http_opts if http_opts else "", self.admin) + extra_yaml)
        self.log = open(os.path.join(work, "collector.log"), "a")
        limit = None
        if nofile is not None:
            import resource

            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([BINARY, "--config", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=limit)
        _STARTED.append(self.proc)
        wait_until("the collector to be ready", self._up, 20)

    def _up(self):
        if self.proc.poll() is not None:
            fail("the collector exited with %d at start; log in %s" % (self.proc.returncode,
                                                                       self.work))
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.admin, timeout=2) as r:
            return r.status == 200

    def endpoint(self, protocol):
        return ("http://127.0.0.1:%d" % self.grpc if protocol == "grpc"
                else "http://127.0.0.1:%d/v1/traces" % self.http)

    def metrics(self):
        return metrics(self.admin)

    def wait_decided(self, total):
        wait_until("every trace to be decided", lambda: (
            metric_sum(self.metrics(), "tailtrace_traces_decided_total") >= total and
            self.metrics()["tailtrace_traces_held"] == 0), 60, self.admin)

    def stop(self, sig=15, timeout=30):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("the collector did not exit within %d s of signal %d" % (timeout, sig))
        return rc


class Peer:
    """tests/peers/otlp_receiver.py: a real OTLP backend stand-in (Jaeger, Honeycomb). With
    tls_ca set, the peer serves TLS (extra_args carry --tls-*) and is queried over https."""

    def __init__(self, work, extra_args=(), tls_ca=None):
        self.scheme = "https" if tls_ca else "http"
        self.ssl = None
        if tls_ca:
            import ssl
            self.ssl = ssl.create_default_context(cafile=tls_ca)
            if "--tls-client-ca" in extra_args:
                self.ssl.load_cert_chain(os.path.join(os.path.dirname(tls_ca), "client.pem"),
                                         os.path.join(os.path.dirname(tls_ca), "client.key"))
        self.record = os.path.join(work, "peer-%d.jsonl" % free_port())
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(SRC, "tests", "peers", "otlp_receiver.py"),
             "--proto-dir", os.path.join(SRC, "proto"), "--record", self.record] +
            list(extra_args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        _STARTED.append(self.proc)
        line = self.proc.stdout.readline()
        m = re.match(r"READY grpc=(\d+) http=(\d+)", line)
        if not m:
            fail("the Python OTLP receiver did not start (python3-grpcio and python3-protobuf "
                 "are needed): %r" % line)
        self.grpc, self.http = int(m.group(1)), int(m.group(2))

    def stat(self, name):
        with urllib.request.urlopen("%s://127.0.0.1:%d/_control/stats" % (self.scheme, self.http),
                                    timeout=5, context=self.ssl) as r:
            text = r.read().decode()
        m = re.search(r"\b%s=(\d+)" % name, text)
        return int(m.group(1)) if m else -1

    def accepted_requests(self, proto=None):
        """The requests the peer answered with success (over proto, if given), as OTLP/JSON-shaped
        dicts."""
        out = []
        if not os.path.exists(self.record):
            return out
        for line in open(self.record):
            e = json.loads(line)
            if proto is not None and e.get("proto") != proto:
                continue
            if e.get("fault") == "none" or str(e.get("fault", "")).startswith("partial"):
                out.append((e, camelize(e.get("request", {}))))
        return out

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def camelize(obj):
    """protobuf's preserving_proto_field_name dicts -> OTLP/JSON's lowerCamelCase keys."""
    if isinstance(obj, dict):
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): camelize(v)
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [camelize(x) for x in obj]
    return obj


def attr_value(v):
    for k in ("intValue", "stringValue", "doubleValue", "boolValue"):
        if k in v:
            return int(v[k]) if k == "intValue" else v[k]
    return None


def spans_of(doc):
    """(resource attrs, scope, span) for every span of an OTLP/JSON request or TracesData."""
    for rs in doc.get("resourceSpans", []):
        res = {a["key"]: attr_value(a["value"])
               for a in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                yield res, ss.get("scope", {}), sp


def span_attrs(sp):
    return {a["key"]: attr_value(a["value"]) for a in sp.get("attributes", [])}


def expected_kept(manifest, ratio):
    """trace id -> category for the traces the policies (errors, latency, ratio) must keep."""
    return {t["traceId"]: t["category"] for t in manifest
            if t["category"] != "normal" or ratio_keeps(t["traceId"], ratio)}


def check_kept_spans(spans, manifest, ratio, late=None):
    """spans: (res, scope, span) triples as delivered. Asserts every trace that must be kept
    arrived complete and once, with its weight, and nothing else arrived."""
    want = expected_kept(manifest, ratio)
    by_trace, seen = {}, set()
    for res, scope, sp in spans:
        if res.get("service.name") != "tt-e2e" or scope.get("name") != "tt-e2e-traffic":
            fail("resource or scope lost: %r %r" % (res, scope))
        if sp["spanId"] in seen:
            fail("span %s delivered twice" % sp["spanId"])
        seen.add(sp["spanId"])
        by_trace.setdefault(sp["traceId"], []).append(sp)
    rate = {"error": 1, "slow": 1, "normal": round(1 / ratio)}
    for t in manifest:
        tid, cat = t["traceId"], t["category"]
        got = by_trace.get(tid, [])
        if tid not in want:
            if got:
                fail("%s trace %s should have been dropped, %d spans delivered" %
                     (cat, tid, len(got)))
            continue
        ids = {s["spanId"] for s in got}
        need = set(t["spanIds"]) | ({late[tid]} if late else set())
        if need - ids:
            fail("%s trace %s incomplete: missing %s" % (cat, tid, sorted(need - ids)))
        for s in got:
            a = span_attrs(s)
            if a.get("SampleRate") != rate[cat]:
                fail("%s span %s: SampleRate %r, want %d" % (cat, s["spanId"],
                                                             a.get("SampleRate"), rate[cat]))
            if "tailtrace.decision.reason" not in a:
                fail("span %s carries no decision reason" % s["spanId"])
            if "ot=th:" not in s.get("traceState", ""):
                fail("span %s: no ot=th in tracestate %r" % (s["spanId"], s.get("traceState")))
    extra = set(by_trace) - {t["traceId"] for t in manifest}
    if extra:
        fail("delivered traces that were never sent: %s" % sorted(extra)[:3])
    return len(seen), sum(1 for c in want.values() if c == "normal")


def make_certs(work):
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    cmd = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -days 2 -subj /CN=tt-test-ca && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj /CN=localhost && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile san.ext && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout client.key -out client.csr -subj /CN=tt-client && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out client.pem -days 2")
    r = subprocess.run(cmd, shell=True, cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        fail("certificate generation failed: " + r.stderr[-500:])
    return {k: os.path.join(work, k) for k in ("ca.pem", "server.pem", "server.key",
                                                "client.pem", "client.key")}


def new_workdir():
    return tempfile.mkdtemp(prefix="tt-e2e-")
