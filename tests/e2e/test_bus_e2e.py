#!/usr/bin/python3
"""End-to-end tests of one trace seen by several collectors, and of one collector fed by several
processes: the OpenTelemetry JS SDK (services.js) is the application, tailtrace-collector the
collectors, redis-server the decision bus, tests/peers/otlp_receiver.py the backend.

The application (services.js) is three services, frontend -> middle -> leaf, each with its own
tracer provider and OTLP exporter on the SDK's default 5 s export schedule, W3C traceparent
between them; a trace is six spans, two per service. Errors and slowness are injected in the
middle or the leaf only, where the frontend's collector cannot see them.

Scenarios (argument):
  sidecars     redis-server and one collector per service (a sidecar: it only sees its
               service's spans), each with the Redis bus, the policies errors / latency 1s /
               ratio 0.25 and an OTLP exporter to one backend. Every errored and every slow trace
               reaches the backend complete (6 spans, each once) with SampleRate 1 and one
               reason; ratio-kept normal traces complete with SampleRate 4; no other normal trace
               arrives. The middle and leaf collectors share decisions, the frontend's rescues
               traces on them (trigger remote). The same traffic is then sent to three collectors
               without the bus and the broken traces are counted and printed (not asserted).
  one-collector-two-processes
               one collector, no bus, default decision.drop_delay; two node processes of one
               application (a frontend and a backend), each exporting on its own 5 s timer: the
               frontend's spans are exported before the backend even starts, the backend fails
               every request. Every trace is written to the file sink complete, each span once,
               with SampleRate 1 and one reason, and late-span rescues happened.
  redis-restart
               sidecars as above; a first wave; redis-server is stopped (SIGTERM): a second wave,
               the collectors live on and decide locally (failed lookups or local decisions
               counted, /readyz 200 with a bus: line) and each errored or slow part reaches the
               backend from the collectors that saw the evidence; redis-server restarts on the
               same port, the collectors reconnect, and a third wave is shared again and arrives
               complete.
  scrape-during-shutdown
               a collector with the bus is stopped (SIGTERM) while /metrics and /readyz are
               scraped in a loop, five times: it exits 0 each time (under a sanitizer build, a
               report of a race or a use after free of the bus makes the exit status non-zero).
A missing node, npm package, Python module or redis-server is a failure, never a skip. Every
process started here is killed when the test ends, whatever the outcome.

Usage: test_bus_e2e.py SCENARIO   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import e2e_lib
from e2e_lib import (Collector, Peer, fail, free_port, new_workdir, print_metrics,
                     ratio_keeps, require_env, span_attrs, spans_of, wait_until)

RATIO = 0.25
SERVICES = ("frontend", "middle", "leaf")
# Each service's SDK speaks its own protocol, as separately configured processes would.
PROTOCOLS = ("grpc", "http/protobuf", "grpc")
REDIS = "/usr/bin/redis-server"
SCOPE = "tt-e2e-services"
POLICIES = """
policies:
  - {name: errors, type: errors}
  - {name: slow, type: latency, threshold: 1s}
  - {name: rest, type: ratio, ratio: %s}
""" % RATIO
# A wave's traffic: the frontend's static pages first, then the cross-service mix, paced.
WAVE = {"TT_SVC_NORMAL": "200", "TT_SVC_ERRORS": "40", "TT_SVC_SLOW": "40", "TT_SVC_LOCAL": "20",
        "TT_SVC_SLOW_MS": "1500", "TT_SVC_SPREAD_MS": "6000", "TT_SVC_OFFSET_MS": "1500"}
SMALL_WAVE = dict(WAVE, TT_SVC_NORMAL="60", TT_SVC_ERRORS="16", TT_SVC_SLOW="16",
                  TT_SVC_LOCAL="10", TT_SVC_SPREAD_MS="4000")

# Every process this test starts (the collectors, the peer, redis-server, node) is recorded here
# and killed at exit; with PR_SET_PDEATHSIG each also dies with this process if it is killed.
_procs = []
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class _TrackedPopen(subprocess.Popen):
    def __init__(self, *args, **kw):
        kw.setdefault("preexec_fn", _die_with_parent)
        super().__init__(*args, **kw)
        _procs.append(self)


subprocess.Popen = _TrackedPopen


def _kill_all():
    for p in _procs:
        if p.poll() is None:
            p.terminate()
    end = time.time() + 5
    for p in _procs:
        try:
            p.wait(timeout=max(0.1, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit("killed by SIGTERM"))


class Redis:
    """redis-server on 127.0.0.1, no persistence; stop() and start() keep the port."""

    def __init__(self, work):
        if not os.access(REDIS, os.X_OK):
            fail("%s is missing (apt-get install redis-server)" % REDIS)
        self.work, self.port, self.proc = work, free_port(), None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.work,
             "--logfile", os.path.join(self.work, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until("redis-server on port %d" % self.port, self.ping, 20)

    def command(self, *words):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(("*%d\r\n" % len(words) + "".join(
                "$%d\r\n%s\r\n" % (len(w), w) for w in words)).encode())
            return s.recv(4096).decode(errors="replace")

    def ping(self):
        if self.proc.poll() is not None:
            fail("redis-server exited with %d; log in %s" % (self.proc.returncode, self.work))
        return self.command("PING").startswith("+PONG")

    def keys(self):
        reply = self.command("DBSIZE")
        return int(reply[1:]) if reply.startswith(":") else -1

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fail("redis-server did not stop on SIGTERM")


class Node(Collector):
    """A collector that names itself; the base class's start-up check also reports a crash."""

    def __init__(self, name, work, yaml):
        self.name = name
        sub = os.path.join(work, name)
        os.makedirs(sub, exist_ok=True)
        Collector.__init__(self, sub, yaml)

    def check_alive(self):
        if self.proc.poll() is not None:
            fail("the %s collector died (status %d); log in %s" % (self.name,
                                                                  self.proc.returncode,
                                                                  self.work))


def bus_yaml(redis):
    if redis is None:
        return "bus: {type: none}\n"
    return """bus:
  type: redis
  redis:
    endpoints: "127.0.0.1:%d"
    key_prefix: "tt:k:"
    key_ttl: 5m
    timeout: 200ms
""" % redis.port


def sidecar_yaml(redis, peer, name):
    # The drop delay is set to a known value: the SDK's 5 s timer plus a margin.
    return ("sink: {type: none}\ndecision: {drop_delay: 6s}\n" + POLICIES + bus_yaml(redis) + """
exporters:
  - name: peer
    protocol: grpc
    endpoint: "127.0.0.1:%d"
    insecure: true
    retry_initial: 50ms
    retry_max: 300ms
    timeout: 2s
""" % peer.grpc)


def start_sidecars(work, redis, peer):
    return {n: Node(n, work, sidecar_yaml(redis, peer, n)) for n in SERVICES}


def node_env():
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(e2e_lib.SRC, "tests", "js", "node_modules")
    return env


def services_js():
    return os.path.join(e2e_lib.SRC, "tests", "e2e", "services.js")


def send_wave(work, label, cols, traffic):
    """Runs services.js against the three sidecars; returns the wave's manifest traces."""
    manifest = os.path.join(work, "%s.json" % label)
    eps = [cols[n].endpoint(p) for n, p in zip(SERVICES, PROTOCOLS)]
    env = node_env()
    env.update(traffic)
    try:
        r = subprocess.run(["node", services_js(), "sidecars", ",".join(PROTOCOLS)] + eps +
                           [manifest], env=env, timeout=120, capture_output=True, text=True)
    except FileNotFoundError:
        fail("node is not installed")
    except subprocess.TimeoutExpired:
        fail("services.js did not finish within 120 s (%s)" % label)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        sys.stdout.write(r.stderr)
        fail("services.js exited with %d (%s)" % (r.returncode, label))
    return json.load(open(manifest))["traces"]


def spans_per_service(traces):
    return {n: sum(len(t["services"][n]) for t in traces) for n in SERVICES}


def snapshot(cols):
    return {n: c.metrics() for n, c in cols.items()}


def settle(cols, peer, traces, before, what):
    """Waits until every collector received its spans of the wave, made every decision final
    (nothing held, pending drops included) and delivered what it kept to the backend."""
    want = spans_per_service(traces)

    def received():
        for n, c in cols.items():
            c.check_alive()
            m = c.metrics()
            got = m.get("tailtrace_spans_accepted_total", 0) - before[n].get(
                "tailtrace_spans_accepted_total", 0)
            if got < want[n] or m.get("tailtrace_traces_held", 1) != 0:
                return False
        return True

    def delivered():
        for c in cols.values():
            m = c.metrics()
            if m.get('tailtrace_exporter_spans_total{exporter="peer",outcome="delivered"}', -1) < \
                    m.get("tailtrace_spans_kept_total", 0):
                return False
        return True
    # Worst case: the last export 5 s after the traffic ends, 1.5 s grace, 6 s drop delay.
    try:
        wait_until("%s: every span received and every decision final" % what, received, 90)
        wait_until("%s: every kept span delivered to the backend" % what, delivered, 60)
        quiet = {"spans": peer.stat("spans"), "since": time.time()}

        def quiet_for_a_second():
            now = peer.stat("spans")
            if now != quiet["spans"]:
                quiet.update(spans=now, since=time.time())
            return time.time() - quiet["since"] >= 1.0
        wait_until("%s: the backend to stop receiving" % what, quiet_for_a_second, 30)
    except SystemExit:
        for n, c in cols.items():
            print("--- %s collector" % n)
            print_metrics(c.admin)
        raise


def delivered_spans(peer):
    out = []
    for _, req in peer.accepted_requests():
        out.extend(spans_of(req))
    return out


class Verdict:
    def __init__(self):
        self.complete, self.broken, self.examples = 0, 0, []
        self.triggers, self.rates, self.kinds = {}, {}, {}

    def __str__(self):
        return "%d complete, %d broken%s" % (self.complete, self.broken, "".join(
            ", %d %s" % (n, k) for k, n in sorted(self.kinds.items())))


def check_wave(spans, traces, label, strict=True, outage=False, weights=None, remote=False):
    """spans: everything the backend holds (res, scope, span). traces: the wave's manifest.

    strict: each trace that must be kept arrives complete, each span once, with one
    SampleRate (1 for evidence, 1/ratio for ratio keeps) and one reason; normal traces the ratio
    does not keep never arrive (weights: category -> the SampleRates allowed, one per trace).
    outage (the bus is down): only the parts of the services that saw the evidence must arrive,
    with SampleRate 1; the other parts are counted, not asserted.
    remote: the frontend's spans of errored and slow traces, which show no evidence, must carry
    the trigger remote: only the bus can have kept them.
    Without strict nothing is asserted but duplicates and strangers: the verdict is returned."""
    mine = {t["traceId"] for t in traces}
    by_trace, count = {}, {}
    for res, scope, sp in spans:
        if sp["traceId"] not in mine:
            continue
        if scope.get("name") != SCOPE:
            fail("%s: span %s lost its scope: %r" % (label, sp["spanId"], scope))
        count[sp["spanId"]] = count.get(sp["spanId"], 0) + 1
        by_trace.setdefault(sp["traceId"], []).append((res.get("service.name"), sp))
    v = Verdict()
    for t in traces:
        tid, cat = t["traceId"], t["category"]
        owner = {sid: n for n, ids in t["services"].items() for sid in ids}
        got = by_trace.get(tid, [])
        for svc, sp in got:
            if count[sp["spanId"]] != 1:
                fail("%s: span %s of %s trace %s delivered %d times" %
                     (label, sp["spanId"], cat, tid, count[sp["spanId"]]))
            if owner.get(sp["spanId"]) != svc:
                fail("%s: span %s arrived as service %r, sent by %r" %
                     (label, sp["spanId"], svc, owner.get(sp["spanId"])))
            trig = span_attrs(sp).get("tailtrace.decision.trigger")
            v.triggers[(svc, trig)] = v.triggers.get((svc, trig), 0) + 1
        ids = {sp["spanId"] for _, sp in got}
        rates = {span_attrs(sp).get("SampleRate") for _, sp in got}
        reasons = {span_attrs(sp).get("tailtrace.decision.reason") for _, sp in got}
        kept = cat != "normal" or ratio_keeps(tid, RATIO)
        allowed = (weights or {}).get(cat, {1} if cat != "normal" else {round(1 / RATIO)})
        missing = sorted(set(t["spanIds"]) - ids)
        where = "%s trace %s (%s%s)" % (cat, tid, "injected in %s, " % t["injected"]
                                        if t["injected"] else "", "local" if t["local"]
                                        else "cross-service")
        problem = kind = None
        if not kept and got:
            kind, problem = "unwanted", "should have been dropped, %d spans arrived" % len(got)
        elif kept and missing:
            kind = "incomplete"
            problem = "incomplete: %d of %d spans, missing %s" % (
                len(ids), len(t["spanIds"]), ", ".join(
                    "%s of %s" % (s, owner[s]) for s in missing))
        elif kept and (len(rates) != 1 or not rates <= allowed):
            kind = "complete with mixed or wrong weights"
            problem = "SampleRate %s, want one of %s" % (sorted(rates, key=str), sorted(allowed))
        elif kept and len(reasons) != 1:
            kind = "complete with several reasons"
            problem = "several reasons %s" % sorted(reasons, key=str)
        if problem is None and remote and cat != "normal":
            trig = {span_attrs(sp).get("tailtrace.decision.trigger") for n, sp in got
                    if n == "frontend"}
            if trig != {"remote"}:
                kind = "kept by the frontend without the bus"
                problem = "the frontend's spans were kept with trigger %s, want remote" % trig
        if problem is None:
            v.complete += kept
            if kept:
                rate = rates.pop()
                v.rates[rate] = v.rates.get(rate, 0) + 1
            continue
        v.broken += 1
        v.kinds[kind] = v.kinds.get(kind, 0) + 1
        v.examples.append("%s: %s" % (where, problem))
        if outage and cat != "normal":
            # The collectors that saw the evidence must still keep their parts, with weight 1.
            for svc in t["seenBy"]:
                own = [sp for n, sp in got if n == svc]
                if {sp["spanId"] for sp in own} != set(t["services"][svc]):
                    fail("%s: %s: the %s collector saw the evidence but its spans did not all "
                         "arrive (%s)" % (label, where, svc, problem))
                if {span_attrs(sp).get("SampleRate") for sp in own} != {1}:
                    fail("%s: %s: the %s collector's own spans carry SampleRate %s" %
                         (label, where, svc, {span_attrs(sp).get("SampleRate") for sp in own}))
            continue
        if strict:
            fail("%s: %s" % (label, v.examples[-1]))
    return v


def print_bus_metrics(cols, label):
    for n, c in cols.items():
        m = c.metrics()
        picked = {k: v for k, v in m.items() if (k.startswith("tailtrace_bus_") and
                                                  "_rtt_" not in k) or
                  k.startswith("tailtrace_traces_rescued_total") or
                  k.startswith("tailtrace_traces_decided_total")}
        print("%s %s: %s" % (label, n, ", ".join("%s=%g" % kv for kv in sorted(picked.items()))))


def readyz(col):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % col.admin, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def counted(m, key):
    return m.get(key, 0)


FOUND = 'tailtrace_bus_lookups_total{result="found"}'
FAILED = 'tailtrace_bus_lookups_total{result="failed"}'
SHARED = "tailtrace_bus_decisions_shared_total"
LOCAL = "tailtrace_bus_local_decisions_total"
REMOTE = 'tailtrace_traces_rescued_total{trigger="remote"}'
LATE = 'tailtrace_traces_rescued_total{trigger="late_span"}'


def summary(traces):
    cats = {}
    for t in traces:
        cats[t["category"]] = cats.get(t["category"], 0) + 1
    return ", ".join("%d %s" % (v, k) for k, v in sorted(cats.items()))


def run_sidecars(work, redis, label, traffic):
    """Three sidecars (bus on redis, or none), one backend, one wave; returns (verdict,
    metrics by collector, traces)."""
    peer = Peer(work)
    cols = start_sidecars(work, redis, peer)
    try:
        before = snapshot(cols)
        traces = send_wave(work, label, cols, traffic)
        settle(cols, peer, traces, before, label)
        after = snapshot(cols)
        print_bus_metrics(cols, label)
        if redis is not None:
            for n, c in cols.items():
                status, body = readyz(c)
                if status != 200 or not any(x.startswith("bus: up") for x in body.splitlines()):
                    fail("the %s collector's /readyz answered %d:\n%s" % (n, status, body))
        verdict = check_wave(delivered_spans(peer), traces, label, strict=redis is not None,
                             remote=redis is not None)
    finally:
        for c in cols.values():
            rc = c.stop()
            if rc != 0:
                fail("the %s collector exited with %d; log in %s" % (c.name, rc, c.work))
        peer.stop()
    return verdict, after, traces


def scenario_sidecars():
    work = new_workdir()
    redis = Redis(work)
    v, m, traces = run_sidecars(work, redis, "bus", WAVE)
    for n in ("middle", "leaf"):
        if counted(m[n], SHARED) <= 0:
            fail("the %s collector shared no decision (%s = %g)" % (n, SHARED,
                                                                     counted(m[n], SHARED)))
    if counted(m["frontend"], REMOTE) <= 0:
        fail("the frontend collector rescued no trace on a remote decision (%s = %g)" %
             (REMOTE, counted(m["frontend"], REMOTE)))
    print("OK sidecars with the bus (%s): %s; %d keys in redis; triggers %s" %
          (summary(traces), v, redis.keys(), sorted(v.triggers.items(), key=str)))
    redis.stop()
    # The same traffic without the bus, for comparison: printed, not asserted.
    off, _, traces = run_sidecars(work, None, "no-bus", WAVE)
    evidence = [t for t in traces if t["category"] != "normal"]
    print("without the bus: %s of %d traces; of %d errored or slow traces %d arrived broken; "
          "e.g.\n  %s" % (off, len(traces), len(evidence), off.broken,
                          "\n  ".join(off.examples[:3])))


def scenario_two_processes():
    work = new_workdir()
    sink = os.path.join(work, "kept.jsonl")
    col = Node("single", work, 'sink: {type: file, file: {path: "%s", format: json}}\n' % sink +
               POLICIES)
    n = 24
    env = node_env()
    env["TT_SVC_REQUESTS"] = str(n)
    fe_manifest, be_manifest = os.path.join(work, "frontend.json"), os.path.join(work,
                                                                                  "backend.json")
    try:
        # The backend process is up and waiting for requests before the frontend starts, so its
        # start-up time does not delay its spans; its export timer starts with its first span.
        backend = subprocess.Popen(["node", services_js(), "backend", "grpc",
                                    col.endpoint("grpc"), be_manifest], env=env,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        fe = subprocess.run(["node", services_js(), "frontend", "http/protobuf",
                             col.endpoint("http/protobuf"), fe_manifest], env=env, timeout=90,
                            capture_output=True, text=True)
        sys.stdout.write(fe.stderr)
        if fe.returncode != 0:
            fail("the frontend process exited with %d" % fe.returncode)
        requests = [line for line in fe.stdout.splitlines() if line.startswith("TP ")]
        if len(requests) != n:
            fail("the frontend process announced %d requests, want %d" % (len(requests), n))
        out, _ = backend.communicate("\n".join(requests) + "\n", timeout=90)
        sys.stdout.write(out)
        if backend.returncode != 0:
            fail("the backend process exited with %d" % backend.returncode)
        wait_until("every span received and every decision final", lambda: (
            col.metrics().get("tailtrace_spans_accepted_total", 0) >= 4 * n and
            col.metrics().get("tailtrace_traces_held", 1) == 0), 60, col.admin)
        m = col.metrics()
    except FileNotFoundError:
        fail("node is not installed")
    finally:
        rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d; log in %s" % (rc, col.work))
    fe_t = {t["traceId"]: t for t in json.load(open(fe_manifest))["traces"]}
    be_t = {t["traceId"]: t for t in json.load(open(be_manifest))["traces"]}
    if set(fe_t) != set(be_t):
        fail("the backend served other traces than the frontend started")
    traces = [{"traceId": tid, "category": "error", "injected": "inventory",
               "seenBy": ["inventory"], "local": False,
               "services": {"frontend": fe_t[tid]["services"]["frontend"],
                            "inventory": be_t[tid]["services"]["inventory"]},
               "spanIds": fe_t[tid]["services"]["frontend"] + be_t[tid]["services"]["inventory"]}
              for tid in fe_t]
    spans = [x for line in open(sink) for x in spans_of(json.loads(line))]
    # A keep by chance (the ratio) waits drop_delay like a drop, so the backend's error replaces
    # it: every errored trace goes out with the errors policy's weight, 1, never the ratio's.
    v = check_wave(spans, traces, "two processes", weights={"error": {1}})
    if v.complete != n:
        fail("%d of %d errored traces complete" % (v.complete, n))
    if m.get(LATE, 0) < 1:
        fail("no trace was rescued by a late span (%s = %g)" % (LATE, m.get(LATE, 0)))
    print("OK one collector, two processes: %d errored traces complete (SampleRate: %s); "
          "%g rescued by the backend's late spans; triggers %s" %
          (n, ", ".join("%d x %s" % (c, r) for r, c in sorted(v.rates.items())), m.get(LATE),
           sorted(v.triggers.items(), key=str)))


def scenario_redis_restart():
    work = new_workdir()
    redis = Redis(work)
    peer = Peer(work)
    cols = start_sidecars(work, redis, peer)
    try:
        # Wave 1: the bus is up.
        before = snapshot(cols)
        w1 = send_wave(work, "wave1", cols, SMALL_WAVE)
        settle(cols, peer, w1, before, "wave 1")
        print_bus_metrics(cols, "wave 1")
        v1 = check_wave(delivered_spans(peer), w1, "wave 1", remote=True)
        print("wave 1 (%s): %s" % (summary(w1), v1))

        # Wave 2: redis-server is gone.
        redis.stop()
        before = snapshot(cols)
        w2 = send_wave(work, "wave2", cols, SMALL_WAVE)
        settle(cols, peer, w2, before, "wave 2")
        after = snapshot(cols)
        print_bus_metrics(cols, "wave 2")
        for n, c in cols.items():
            c.check_alive()
            grew = (counted(after[n], LOCAL) - counted(before[n], LOCAL) +
                    counted(after[n], FAILED) - counted(before[n], FAILED))
            if grew <= 0:
                fail("the %s collector counted no local decision and no failed lookup while "
                     "redis-server was down" % n)
            status, body = readyz(c)
            if status != 200 or not any(line.startswith("bus:") for line in body.splitlines()):
                fail("the %s collector's /readyz answered %d with redis-server down:\n%s" %
                     (n, status, body))
            print("%s /readyz with redis down: %s" % (n, " | ".join(body.splitlines())))
        v2 = check_wave(delivered_spans(peer), w2, "wave 2", outage=True)
        print("wave 2, redis down (%s): %s (each errored or slow part kept by the collector "
              "that saw it); e.g.\n  %s" % (summary(w2), v2, "\n  ".join(v2.examples[:3])))

        # Wave 3: redis-server is back on the same port.
        redis.start()
        wait_until("every collector to reconnect to redis-server", lambda: all(
            c.metrics().get("tailtrace_bus_nodes_up", 0) >= 1 for c in cols.values()), 60)
        before = snapshot(cols)
        w3 = send_wave(work, "wave3", cols, SMALL_WAVE)
        settle(cols, peer, w3, before, "wave 3")
        after = snapshot(cols)
        print_bus_metrics(cols, "wave 3")
        for n, c in cols.items():
            if counted(after[n], "tailtrace_bus_reconnects_total") <= 0:
                fail("the %s collector counts no reconnect" % n)
        for n in ("middle", "leaf"):
            if counted(after[n], SHARED) <= counted(before[n], SHARED):
                fail("the %s collector shared nothing after redis-server restarted" % n)
        v3 = check_wave(delivered_spans(peer), w3, "wave 3", remote=True)
        print("wave 3 (%s): %s; %d keys in redis" % (summary(w3), v3, redis.keys()))
    finally:
        codes = {n: c.stop() for n, c in cols.items()}
        peer.stop()
    bad = {n: rc for n, rc in codes.items() if rc != 0}
    if bad:
        fail("collectors exited with %s; logs in %s" % (bad, work))
    print("OK redis-restart: the collectors outlived redis-server, decided locally while it was "
          "down and shared again once it was back")


def scenario_scrape_during_shutdown():
    import threading
    work = new_workdir()
    redis = Redis(work)
    for i in range(5):
        col = Node("scraped-%d" % i, work, "sink: {type: null}\n" + POLICIES + bus_yaml(redis))
        stop = threading.Event()

        def scrape():
            while not stop.is_set():
                for path in ("/readyz", "/metrics"):
                    try:
                        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (col.admin, path),
                                                    timeout=2) as r:
                            r.read()
                    except OSError:
                        pass  # the admin server is going away: that is the point
        scrapers = [threading.Thread(target=scrape) for _ in range(4)]
        for t in scrapers:
            t.start()
        time.sleep(0.3)
        try:
            rc = col.stop()
        finally:
            stop.set()
            for t in scrapers:
                t.join()
        if rc != 0:
            fail("the collector exited with %d when stopped while scraped (run %d); log in %s" %
                 (rc, i + 1, col.work))
    print("OK scrape-during-shutdown: 5 collectors with the bus stopped cleanly while scraped")


SCENARIOS = {
    "sidecars": scenario_sidecars,
    "one-collector-two-processes": scenario_two_processes,
    "redis-restart": scenario_redis_restart,
    "scrape-during-shutdown": scenario_scrape_during_shutdown,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        fail("usage: test_bus_e2e.py %s" % "|".join(SCENARIOS))
    require_env()
    SCENARIOS[sys.argv[1]]()


if __name__ == "__main__":
    main()
