#!/usr/bin/python3
"""Out-of-process figures for decision.drop_delay and the Redis decision bus.

Runs the real tailtrace-collector binaries, Debian's redis-server and bench_bus_load (the C
OTLP/HTTP load generator, for the memory and throughput groups) on 127.0.0.1 with ephemeral
ports, and prints one JSON object a line: {"name", "value", "unit", plus context fields}.

Groups (all by default; name some to run only those):
  memory       drop_delay_bytes_per_held_span, RSS per held span, sustainable span rates
  bus          bus_ops/bytes per kept trace and per trace, 3 collectors sidecar-style, then
               N = 3, 6, 12 collectors with each trace touching 3 of them
  propagation  bus_propagation_ms_p50/p99 (sink arrival at B minus sink arrival at A) and the
               bus batch round trip from tailtrace_bus_batch_rtt_seconds
  throughput   collector_throughput_spans_per_s and CPU-seconds per million spans, bus off / on

Usage: /usr/bin/python3 bench/bench_bus.py [--build DIR] [--quick] [group ...]
The build directory defaults to ./build of the repository holding this script (configure with
-DTT_BENCH=ON so build/bench/bench_bus_load exists). Every process started here is killed on
exit; every wait is bounded. A collector that refuses the `bus:` configuration is an error (exit
1), never a skipped figure."""
import http.client
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from bench_procs import forget, free_port, kill_all, note, start, stop, wait_until  # noqa: E402
from e2e_lib import metrics as scrape_metrics  # noqa: E402  (the e2e tests' /metrics parser)
BUILD = os.path.join(ROOT, "build")
QUICK = False
WORK = tempfile.mkdtemp(prefix="tt-bench-bus-")
MIB = 1 << 20


def emit(name, value, unit, **ctx):
    d = {"name": name, "value": round(value, 3) if isinstance(value, float) else value,
         "unit": unit}
    d.update(ctx)
    print(json.dumps(d), flush=True)








# ---- /proc ---------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime (fields 14, 15)


# ---- OTLP protobuf, hand-encoded -----------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def lenf(field, b):
    return varint(field << 3 | 2) + varint(len(b)) + b


def kv(k, v):
    return lenf(1, k.encode()) + lenf(2, lenf(1, v.encode()))


def span(tid, sid, parent, name, error, remote_parent):
    now = time.time_ns()
    b = lenf(1, tid) + lenf(2, sid)
    if parent:
        b += lenf(4, parent)
    b += lenf(5, name.encode()) + varint(6 << 3) + varint(2)
    b += varint(7 << 3 | 1) + struct.pack("<Q", now - 12_000_000)
    b += varint(8 << 3 | 1) + struct.pack("<Q", now)
    b += lenf(9, kv("http.route", "/api/orders/{id}")) + lenf(9, kv("http.request.method", "GET"))
    b += lenf(15, varint(3 << 3) + varint(2 if error else 1))
    if remote_parent:  # Span.flags: has_is_remote | is_remote | sampled
        b += varint(16 << 3 | 5) + struct.pack("<I", 0x301)
    return b


def request(service, spans):
    res = lenf(1, kv("service.name", service))
    ss = lenf(1, lenf(1, b"bench")) + b"".join(lenf(2, s) for s in spans)
    return lenf(1, lenf(1, res) + lenf(2, ss))


# ---- processes -----------------------------------------------------------------------------

def collector_bin():
    return os.path.join(BUILD, "collector", "tailtrace-collector")


class Collector:
    def __init__(self, name, extra_yaml, workers=1):
        self.name = name
        self.http, self.admin = free_port(), free_port()
        self.sink_path = os.path.join(WORK, "%s-%d.jsonl" % (name, self.admin))
        self.cfg = os.path.join(WORK, "%s-%d.yaml" % (name, self.admin))
        with open(self.cfg, "w") as f:
            f.write("""receivers:
  otlp_grpc: {enabled: false}
  otlp_http: {endpoint: "127.0.0.1:%d"}
admin: {endpoint: "127.0.0.1:%d"}
workers: %d
log: {level: warn}
shutdown: {deadline: 5s}
""" % (self.http, self.admin, workers) + extra_yaml.replace("@SINK@", self.sink_path))
        self.log = open(self.cfg + ".log", "w")
        self.proc = start([collector_bin(), "--config", self.cfg], stdout=self.log,
                          stderr=subprocess.STDOUT)
        if not wait_until(self._up, 20):
            raise RuntimeError("collector %s did not start; log %s" % (name, self.log.name))
        self.conn = None

    def _up(self):
        if self.proc.poll() is not None:
            raise RuntimeError("collector %s exited %d; log %s" % (self.name, self.proc.returncode,
                                                                  self.log.name))
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.admin, timeout=2) as r:
            return r.status == 200

    def metrics(self):
        return scrape_metrics(self.admin)

    def post(self, body):
        for _ in range(3):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.http, timeout=10)
                self.conn.request("POST", "/v1/traces", body,
                                  {"Content-Type": "application/x-protobuf"})
                r = self.conn.getresponse()
                r.read()
                if r.status == 200:
                    return
                raise RuntimeError("collector %s answered %d" % (self.name, r.status))
            except (OSError, http.client.HTTPException):
                self.conn = None
        raise RuntimeError("collector %s: post failed" % self.name)

    def stop(self):
        stop(self.proc)
        self.log.close()


def msum(m, prefix, **labels):
    """Sum of the series of metric `prefix` whose labels include `labels`."""
    tot = 0.0
    for k, v in m.items():
        name = k.split("{", 1)[0]
        if name != prefix:
            continue
        if all('%s="%s"' % (lk, lv) in k for lk, lv in labels.items()):
            tot += v
    return tot


def histogram_quantile(m, name, q):
    """(interpolated value, upper bound of the bucket) of quantile q from cumulative buckets."""
    buckets = []
    for k, v in m.items():
        if k.startswith(name + "_bucket{"):
            le = k.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None, None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le, le
            frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
            return prev_le + frac * (le - prev_le), le
        prev_le, prev_c = le, c
    return None, None


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = start(["/usr/bin/redis-server", "--port", str(self.port), "--bind",
                           "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
                           "--dir", WORK, "--loglevel", "warning"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sock = None
        self.probe_sent = self.probe_recv = 0  # bytes of our own INFO calls, to subtract
        if not wait_until(self._connect, 10):
            raise RuntimeError("redis-server did not start")

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return True

    def command(self, *args):
        cmd = b"*%d\r\n" % len(args) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
        self.sock.sendall(cmd)
        self.probe_sent += len(cmd)
        f = self.sock.makefile("rb")
        head = f.readline()
        self.probe_recv += len(head)
        if head[:1] == b"$":
            n = int(head[1:])
            body = f.read(n + 2)
            self.probe_recv += len(body)
            return body[:-2].decode()
        return head.decode().strip()

    def info(self):
        """Commands by name and the server's byte counters; the bytes of the INFO calls made
        here are counted in probe_sent/probe_recv so that deltas can exclude them."""
        out = {"cmd": {}}
        for sec in ("commandstats", "stats"):
            for line in self.command("INFO", sec).splitlines():
                if line.startswith("cmdstat_"):
                    name, rest = line[8:].split(":", 1)
                    out["cmd"][name] = int(rest.split("calls=", 1)[1].split(",", 1)[0])
                elif line.startswith("total_net_input_bytes:"):
                    out["in"] = int(line.split(":")[1])
                elif line.startswith("total_net_output_bytes:"):
                    out["out"] = int(line.split(":")[1])
        out["probe_sent"], out["probe_recv"] = self.probe_sent, self.probe_recv
        return out

    def stop(self):
        if self.sock:
            self.sock.close()
        stop(self.proc)


def redis_delta(a, b):
    """Bus traffic between two info() snapshots: commands other than our INFO, and the
    server's bytes minus our probes'. The server counts a reply when it is written; the INFO
    replies counted between a and b are those of a's calls (their size is probe_recv's delta
    between the snapshot before a and a) -- approximated by b's own probe sizes."""
    cmds = {k: b["cmd"].get(k, 0) - a["cmd"].get(k, 0) for k in b["cmd"]}
    cmds.pop("info", None)
    cmds = {k: v for k, v in cmds.items() if v}
    probe_in = b["probe_sent"] - a["probe_sent"]
    probe_out = b["probe_recv"] - a["probe_recv"]
    return cmds, b["in"] - a["in"] - probe_in, b["out"] - a["out"] - probe_out


def bus_yaml(redis_port):
    return """bus:
  type: redis
  redis: {endpoints: "127.0.0.1:%d", key_prefix: "tt:k:", key_ttl: 5m, timeout: 200ms, flush_interval: 2ms}
""" % redis_port


def require_bus():
    cfg = os.path.join(WORK, "validate.yaml")
    with open(cfg, "w") as f:
        f.write(bus_yaml(6379))
    r = subprocess.run([collector_bin(), "--config", cfg, "--validate"], capture_output=True,
                       text=True, timeout=10)
    if r.returncode != 0:
        raise RuntimeError("the collector refused the bus configuration: " +
                           (r.stdout + r.stderr).strip())


def load_bin():
    """build/bench/bench_bus_load of --build, else of this checkout's build/."""
    for b in (BUILD, os.path.join(ROOT, "build")):
        exe = os.path.join(b, "bench", "bench_bus_load")
        if os.path.exists(exe):
            return exe
    raise RuntimeError("bench_bus_load not built (configure with -DTT_BENCH=ON)")


def run_load(port, spans, seconds, conns=2, traces=10, per=10, rate=0, error_permille=0,
             id_base=1):
    p = start([load_bin(), str(port), str(spans), str(seconds), str(conns), str(traces), str(per),
               str(rate), str(error_permille), str(id_base)], stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=seconds + 60)
    forget(p)
    if p.returncode != 0:
        raise RuntimeError("bench_bus_load failed: %s" % err.strip())
    return {d["name"]: d["value"] for d in map(json.loads, out.splitlines())}


# ---- 1. memory -----------------------------------------------------------------------------

def bench_memory():
    budget = 256 * MIB
    for per in (1, 5):
        traces = 20000 if QUICK else 40000
        # Long drop_delay so every trace is still pending when measured; root_grace short enough
        # that all are decided within the run; ratio 0: every trace is a drop.
        c = Collector("mem", """decision: {root_grace: 1s, idle_timeout: 2s, drop_delay: 120s, tick: 20ms}
memory: {budget: 1GiB}
sink: {type: null}
policies: [{type: ratio, ratio: 0}]
""", workers=2)
        time.sleep(0.3)
        rss0 = rss_bytes(c.proc.pid)
        load = run_load(c.http, traces * per, 30, conns=2, traces=max(1, 100 // per), per=per)
        m_undecided = c.metrics()
        ok = wait_until(lambda: c.metrics()["tailtrace_traces_pending"] >= traces, 20)
        time.sleep(0.3)
        m = c.metrics()
        rss1 = rss_bytes(c.proc.pid)
        spans = m["tailtrace_spans_accepted_total"]
        ctx = dict(spans_per_trace=per, spans_held=int(spans), traces_pending=int(
            m["tailtrace_traces_pending"]), span_bytes=load["load_span_bytes"],
            all_pending=ok, drop_delay="120s", workers=2)
        emit("drop_delay_bytes_per_held_span", m["tailtrace_held_bytes"] / spans, "bytes", **ctx,
             source="tailtrace_held_bytes / spans held (budget accounting), pending drops")
        emit("undecided_bytes_per_held_span", m_undecided["tailtrace_held_bytes"] / spans,
             "bytes", **ctx, source="tailtrace_held_bytes right after the send, before root_grace")
        emit("drop_delay_rss_bytes_per_held_span", (rss1 - rss0) / spans, "bytes", **ctx,
             rss_before=rss0, rss_after=rss1, source="VmRSS growth / spans held")
        bps = m["tailtrace_held_bytes"] / spans
        for dd in (0, 6):
            rate = 0.9 * budget / (bps * (2 + dd))
            emit("sustainable_spans_per_s_drop_delay_%ds" % dd, rate, "spans/s",
                 spans_per_trace=per, bytes_per_span=round(bps, 1), budget="256MiB",
                 watermark=0.9, root_grace="2s", drop_delay="%ds" % dd,
                 formula="0.9*budget/(bytes_per_span*(root_grace+drop_delay))")
        c.stop()

    # Steady state with the defaults (root_grace 2s, drop_delay 6s): a fixed rate for longer
    # than grace + delay, then held bytes should sit at rate * 8 s * bytes_per_span.
    budget = 256 * MIB
    rate, secs, per = (10000, 12, 5) if QUICK else (20000, 14, 5)
    c = Collector("steady", """decision: {root_grace: 2s, drop_delay: 6s}
sink: {type: null}
policies: [{type: ratio, ratio: 0}]
""", workers=2)
    time.sleep(0.3)
    rss0 = rss_bytes(c.proc.pid)
    p = start([load_bin(), str(c.http), str(rate * secs),
               str(secs), "2", "20", str(per), str(rate), "0", "7"], stdout=subprocess.PIPE,
              stderr=subprocess.PIPE, text=True)
    samples = []
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < secs + 10:
        time.sleep(0.25)
        if time.time() - t0 > 9.5:  # past grace + delay + a margin
            m = c.metrics()
            samples.append((m["tailtrace_held_bytes"], m["tailtrace_traces_held"],
                            rss_bytes(c.proc.pid), m["tailtrace_decided_cache_bytes"],
                            msum(m, "tailtrace_traces_decided_total")))
    p.communicate(timeout=30)
    forget(p)
    if samples:
        samples.sort()
        b, t, r, cache, decided = samples[len(samples) // 2]
        spans = t * per
        emit("steady_bytes_held", b, "bytes", rate_spans_per_s=rate, spans_per_trace=per,
             root_grace="2s", drop_delay="6s", expected_spans_held=rate * 8,
             measured_spans_held=int(spans), samples=len(samples))
        emit("steady_bytes_per_held_span", b / spans if spans else 0, "bytes",
             rate_spans_per_s=rate, spans_per_trace=per)
        emit("steady_rss_bytes_per_held_span", (r - rss0) / spans if spans else 0, "bytes",
             rate_spans_per_s=rate, spans_per_trace=per, rss_before=rss0, rss_at_median=r,
             means="VmRSS growth (held spans and the decided-trace cache) / spans held")
        # The decided-trace cache counts against the same budget: with late_spans.cache_traces
        # (200000) final traces remembered it takes min(200000 * this, budget / 4).
        per_trace = cache / min(decided, 200000) if decided else 0
        cache_full = min(200000 * per_trace, budget / 4)
        emit("decided_cache_bytes_per_trace", per_trace, "bytes", traces_in_cache=int(
            min(decided, 200000)), cache_bytes=cache, cache_full_bytes=int(cache_full))
        for dd in (0, 6):
            emit("sustainable_spans_per_s_cache_full_drop_delay_%ds" % dd,
                 (0.9 * budget - cache_full) / (b / spans * (2 + dd)), "spans/s",
                 spans_per_trace=per, budget="256MiB", watermark=0.9, root_grace="2s",
                 drop_delay="%ds" % dd, cache_full_bytes=int(cache_full),
                 formula="(0.9*budget-cache_full)/(bytes_per_span*(root_grace+drop_delay))")
    c.stop()


# ---- 2. bus cost ---------------------------------------------------------------------------

COLLECTOR_POLICIES = """decision: {root_grace: 2s, drop_delay: 6s, tick: 20ms}
sink: {type: null}
policies:
  - {type: errors}
  - {type: latency, threshold: 1s}
  - {type: ratio, ratio: 0.1}
"""


def sidecar_run(n, traces, rate, error_share=0.05, seed=1):
    """n collectors, one redis; each trace has 3 spans (root -> child -> grandchild) on 3
    distinct collectors picked at random among n, with an error on one of the 3 for
    error_share of the traces."""
    rnd = random.Random(seed)
    r = Redis()
    cs = [Collector("bus%d_%d" % (n, i), COLLECTOR_POLICIES + bus_yaml(r.port)) for i in range(n)]
    try:
        time.sleep(0.5)
        info0 = r.info()
        m0 = [c.metrics() for c in cs]
        batch = 25
        errors = 0
        t0 = time.time()
        sent = 0
        while sent < traces and time.time() - t0 < 120:
            bodies = [[] for _ in cs]
            for _ in range(min(batch, traces - sent)):
                tid = rnd.randbytes(16)
                sids = [rnd.randbytes(8) for _ in range(3)]
                who = rnd.sample(range(n), 3)
                err = rnd.random() < error_share
                e = rnd.randrange(3) if err else -1
                errors += err
                for k in range(3):
                    bodies[who[k]].append(span(tid, sids[k], sids[k - 1] if k else b"",
                                               "op%d" % k, k == e, k > 0))
                sent += 1
            for i, b in enumerate(bodies):
                if b:
                    cs[i].post(request("svc%d" % i, b))
            due = t0 + sent / rate
            if due > time.time():
                time.sleep(due - time.time())
        send_s = time.time() - t0
        # Every trace decided and final everywhere (grace 2s + drop_delay 6s + margin).
        wait_until(lambda: all(c.metrics()["tailtrace_traces_held"] == 0 for c in cs), 40, 0.25)
        m1 = [c.metrics() for c in cs]
        info1 = r.info()
        cmds, bin_, bout = redis_delta(info0, info1)
        d = lambda name, **lab: sum(msum(b, name, **lab) - msum(a, name, **lab)
                                    for a, b in zip(m0, m1))
        keep_err = d("tailtrace_traces_decided_total", decision="keep", reason="errors")
        keep_remote = d("tailtrace_traces_decided_total", decision="keep", trigger="remote")
        keep_all = d("tailtrace_traces_decided_total", decision="keep")
        rescued = d("tailtrace_traces_rescued_total", trigger="remote")
        ctx = dict(collectors=n, traces=traces, error_traces=errors, spans_per_trace=3,
                   collectors_per_trace=3, trace_rate_per_s=round(traces / send_s),
                   redis_commands=cmds, redis_net_in=bin_, redis_net_out=bout,
                   bus_commands=d("tailtrace_bus_commands_total"),
                   bus_keys=d("tailtrace_bus_keys_total"),
                   bus_bytes_sent=d("tailtrace_bus_bytes_total", direction="sent"),
                   bus_bytes_received=d("tailtrace_bus_bytes_total", direction="received"),
                   keeps_errors=keep_err, keeps_remote=keep_remote, keeps_total=keep_all,
                   rescued_remote=rescued,
                   lookups={res: d("tailtrace_bus_lookups_total", result=res)
                            for res in ("found", "not_found", "failed")},
                   bus_errors=d("tailtrace_bus_errors_total"))
        ops = sum(cmds.values())
        kept = errors if errors else 1
        emit("bus_ops_per_kept_trace", ops / kept, "redis commands", **ctx,
             kept_means="traces with an error span (the evidence keeps the bus shares)")
        emit("bus_bytes_per_kept_trace", (bin_ + bout) / kept, "bytes", **ctx)
        emit("bus_ops_per_trace", ops / traces, "redis commands", collectors=n, traces=traces)
        emit("bus_bytes_per_trace", (bin_ + bout) / traces, "bytes", collectors=n,
             traces=traces, redis_in=bin_, redis_out=bout)
        emit("bus_keys_per_trace", ctx["bus_keys"] / traces, "keys", collectors=n, traces=traces)
        emit("bus_bytes_per_key", (bin_ + bout) / ctx["bus_keys"] if ctx["bus_keys"] else 0,
             "bytes", collectors=n, means="redis bytes in + out / keys written and read")
        emit("bus_commands_per_collector_per_s", ops / n / (send_s + 8), "commands/s",
             collectors=n, trace_rate_per_s=round(traces / send_s),
             means="commands / collectors / (send time + root_grace + drop_delay): MGETs are "
                   "batched per flush, so at a low rate a collector sends about one per batch "
                   "window with lookups due, whatever its share of the traces")
        emit("bus_ops_per_trace_per_collector", ops / (traces * 3), "redis commands",
             collectors=n, traces=traces,
             means="commands / (traces * 3 collectors each trace touches)")
        emit("bus_remote_keep_share", keep_remote / (2 * kept), "ratio", collectors=n,
             means="remote keeps / (2 per error trace: the 2 collectors without the error)")
        return ctx
    finally:
        for c in cs:
            c.stop()
        r.stop()


def bench_bus():
    require_bus()
    traces = 3000 if QUICK else 10000
    sidecar_run(3, traces, 1000)
    for n in (3, 6, 12):
        sidecar_run(n, traces // 2, 500, seed=n)


# ---- 3. propagation ------------------------------------------------------------------------

def bench_propagation():
    require_bus()
    r = Redis()
    yaml = """decision: {root_grace: 500ms, drop_delay: 6s, tick: 10ms}
sink: {type: file, file: {path: "@SINK@"}}
policies: [{type: errors}, {type: ratio, ratio: 0}]
""" + bus_yaml(r.port)
    a, b = Collector("propA", yaml), Collector("propB", yaml)
    n = 60 if QUICK else 200
    rnd = random.Random(5)
    first = {}  # trace hex -> {"A": t, "B": t}
    offs = {"A": 0, "B": 0}
    try:
        pending = {}
        t_end = time.time() + n * 0.03 + 15
        i = 0
        next_send = time.time()
        while time.time() < t_end:
            now = time.time()
            if i < n and now >= next_send:
                tid = rnd.randbytes(16)
                root, child = rnd.randbytes(8), rnd.randbytes(8)
                # The error span (remote parent) to A and the root to B, back to back.
                a.post(request("svcA", [span(tid, child, root, "child", True, True)]))
                b.post(request("svcB", [span(tid, root, b"", "root", False, False)]))
                pending[tid.hex()] = now
                i += 1
                next_send = now + 0.03
            for who, c in (("A", a), ("B", b)):
                if os.path.exists(c.sink_path):
                    with open(c.sink_path, "rb") as f:
                        f.seek(offs[who])
                        data = f.read()
                    cut = data.rfind(b"\n") + 1
                    offs[who] += cut
                    t = time.time()
                    for line in data[:cut].splitlines():
                        for h in pending:
                            if h.encode() in line.lower():
                                first.setdefault(h, {}).setdefault(who, t)
            if i >= n and sum(1 for v in first.values() if len(v) == 2) >= n:
                break
            time.sleep(0.001)
        deltas = sorted((v["B"] - v["A"]) * 1000 for v in first.values() if len(v) == 2)
        ma, mb = a.metrics(), b.metrics()
        both = len(deltas)
        fast = sum(1 for x in deltas if x < 1000)
        q = lambda p: deltas[min(len(deltas) - 1, int(p * len(deltas)))] if deltas else None
        ctx = dict(traces=n, kept_on_both=both, within_1s=fast,
                   root_grace="500ms", drop_delay="6s", tick="10ms", poll_ms=1,
                   means="arrival of B's root span in B's file sink minus arrival of A's error "
                         "span in A's file sink, error span to A and root to B posted back to "
                         "back; B's first lookup is at root+grace, its second at the end of "
                         "drop_delay")
        ctx["min_ms"] = round(deltas[0], 3) if deltas else None
        emit("bus_propagation_ms_p50", q(0.5), "ms", **ctx)
        emit("bus_propagation_ms_p99", q(0.99), "ms", **ctx)
        emit("bus_propagation_first_lookup_share", fast / both if both else 0, "ratio",
             traces=n, means="share of traces B kept within 1 s of A (its first lookup found "
                             "A's publish), the rest waited for the lookup at drop_delay's end")
        if fast:
            fd = deltas[:fast]
            emit("bus_propagation_ms_p50_first_lookup", fd[len(fd) // 2], "ms", traces=fast)
            emit("bus_propagation_ms_p99_first_lookup", fd[min(len(fd) - 1, int(0.99 * len(fd)))],
                 "ms", traces=fast)
        for who, m in (("A", ma), ("B", mb)):
            for qq in (0.5, 0.99):
                v, le = histogram_quantile(m, "tailtrace_bus_batch_rtt_seconds", qq)
                us = lambda s: None if s is None else s * 1e6
                emit("bus_batch_rtt_us_p%d" % int(qq * 100), us(v), "us", collector=who,
                     bucket_upper_bound=us(le),
                     batches=msum(m, "tailtrace_bus_batch_rtt_seconds_count"),
                     means="one pipelined batch: first write to last reply (histogram, "
                           "linear inside the bucket)")
    finally:
        a.stop()
        b.stop()
        r.stop()


# ---- 4. throughput -------------------------------------------------------------------------

def bench_throughput():
    spans, secs = (500000, 10) if QUICK else (2000000, 20)
    rounds = 1 if QUICK else 3
    require_bus()
    modes = [("off", None), ("on", True)]
    results = {}
    for mode, bus in [m for _ in range(rounds) for m in modes]:  # alternated: off, on, off, ...
        r = Redis() if bus else None
        yaml = """decision: {root_grace: 200ms, drop_delay: 1s, tick: 20ms}
memory: {budget: 1GiB}
sink: {type: null}
policies:
  - {type: errors}
  - {type: latency, threshold: 1s}
  - {type: ratio, ratio: 0.1}
""" + (bus_yaml(r.port) if bus else "")
        c = Collector("tput_" + mode, yaml, workers=2)
        try:
            time.sleep(0.3)
            cpu0, t0 = cpu_seconds(c.proc.pid), time.time()
            info0 = r.info() if r else None
            rcpu0 = cpu_seconds(r.proc.pid) if r else 0
            load = run_load(c.http, spans, secs, conns=2, traces=10, per=10, error_permille=10,
                            id_base=11)
            cpu_load = cpu_seconds(c.proc.pid) - cpu0
            wait_until(lambda: c.metrics()["tailtrace_traces_held"] == 0, 30, 0.1)
            cpu_all = cpu_seconds(c.proc.pid) - cpu0
            wall_all = time.time() - t0
            m = c.metrics()
            ctx = dict(bus_mode=mode, spans=load["load_spans"], seconds=load["load_seconds"],
                       sender="bench_bus_load, 2 connections, 10 traces x 10 spans a request, "
                              "1% error traces", workers=2,
                       throttled_requests=load["load_throttled"],
                       early_decisions=m.get("tailtrace_early_decisions_total", 0),
                       cpu_s_during_send=round(cpu_load, 2),
                       cpu_s_until_all_final=round(cpu_all, 2),
                       wall_s_until_all_final=round(wall_all, 2),
                       decision="root_grace 200ms, drop_delay 1s, budget 1GiB")
            if r:
                cmds, bin_, bout = redis_delta(info0, r.info())
                ctx.update(redis_commands=cmds, redis_bytes=bin_ + bout,
                           redis_cpu_s=round(cpu_seconds(r.proc.pid) - rcpu0, 2),
                           bus={k: v for k, v in m.items() if k.startswith("tailtrace_bus_")
                                and "_rtt_" not in k},
                           remote_keeps=msum(m, "tailtrace_traces_decided_total",
                                             trigger="remote"))
            results.setdefault(mode, []).append((load["load_spans_per_s"],
                                                 cpu_all * 1e6 / load["load_spans"]))
            emit("collector_throughput_spans_per_s", load["load_spans_per_s"], "spans/s", **ctx)
            emit("collector_cpu_s_per_million_spans", cpu_all * 1e6 / load["load_spans"],
                 "cpu-s", **ctx)
        finally:
            c.stop()
            if r:
                r.stop()
    for mode, v in results.items():
        rates, cpus = sorted(x[0] for x in v), sorted(x[1] for x in v)
        emit("collector_throughput_spans_per_s_median", rates[len(rates) // 2], "spans/s",
             bus_mode=mode, rounds=len(v), min=round(rates[0]), max=round(rates[-1]))
        emit("collector_cpu_s_per_million_spans_median", cpus[len(cpus) // 2], "cpu-s",
             bus_mode=mode, rounds=len(v), min=round(cpus[0], 3), max=round(cpus[-1], 3))


def main():
    global BUILD, QUICK
    args = sys.argv[1:]
    groups = []
    while args:
        a = args.pop(0)
        if a == "--build":
            BUILD = os.path.abspath(args.pop(0))
        elif a == "--quick":
            QUICK = True
        else:
            groups.append(a)
    groups = groups or ["memory", "bus", "propagation", "throughput"]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    note("machine: %d cores, load average %s, build %s" % (
        os.cpu_count(), open("/proc/loadavg").read().split()[0:3], BUILD))
    try:
        for g in groups:
            {"memory": bench_memory, "bus": bench_bus, "propagation": bench_propagation,
             "throughput": bench_throughput}[g]()
    finally:
        kill_all()


if __name__ == "__main__":
    main()
