#!/usr/bin/python3
"""Out-of-process figures for one tailtrace-collector under OTLP load (docs/benchmarks-load.md).

Starts the real collector binary (configuration written to a temporary directory, every port on
127.0.0.1) and build/bench/tt_loadgen, and prints one JSON object a line: {"name", "value",
"unit", plus context fields, always with the 1-minute load average next to the figure}.

Groups (all but soak by default; name some to run only those):
  saturation  accepted and decided spans/s and CPU-seconds per million spans at saturation, per
              protocol (http, grpc) and per workers setting (1, 2)
  fixed       CPU-seconds per million spans, RSS and held bytes at a fixed 50 000 spans/s, per
              protocol and workers setting; RSS at the same rate with the default decision timing
  held        RSS and budget bytes per held span against the span's wire bytes
  lateness    decision lateness after root + root_grace, measured from outside: probe traces
              sent during a 50 000 spans/s load, seen appearing in the file sink
  overload    3x the measured saturation rate: accepted rate, refused share, RSS against the
              memory budget, /healthz latency from a concurrent prober
  attacks     a gzip bomb over gRPC and HTTP (must be refused); many idle connections (report)
  soak        only with --soak MINUTES (>= 10): RSS every --soak-interval seconds at 50 000
              spans/s, flat after warm-up?, then a 3x burst: does the memory go back?

Usage: /usr/bin/python3 bench/bench_load.py [--build DIR] [--quick] [--soak MINUTES]
                                            [--soak-interval S] [group ...]
--quick runs every group for a few seconds (the ctest); its figures only show that each group can
be measured. The build directory defaults to ./build of this checkout. Every process started
here is killed on exit; every wait is bounded. A group that cannot be measured is an error (exit
1); no figure is ever compared with a threshold here."""
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from bench_procs import forget, free_port, kill_all, note, start, stop, wait_until  # noqa: E402
from e2e_lib import metrics as scrape_metrics  # noqa: E402  (the e2e tests' /metrics parser)

BUILD = os.path.join(ROOT, "build")
QUICK = False
WORK = tempfile.mkdtemp(prefix="tt-bench-load-")
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")
FIXED_RATE = 50000
SATURATION = {}  # protocol -> accepted spans/s at saturation (workers 2), for overload

# The decision timing of the throughput groups (as in docs/benchmarks-bus.md): decisions 200 ms
# after the root, drops final 1 s later, so held memory reflects the collector's cost per span
# rather than a long wait; 1 GiB so the budget never throttles a throughput figure.
BENCH_DECISION = "decision: {root_grace: 200ms, drop_delay: 1s, tick: 20ms}\nmemory: {budget: 1GiB}\n"
DEFAULT_POLICIES = """policies:
  - {type: errors}
  - {type: latency, threshold: 1s}
  - {type: ratio, ratio: 0.1}
"""


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def emit(name, value, unit, **ctx):
    d = {"name": name, "value": round(value, 3) if isinstance(value, float) else value,
         "unit": unit, "loadavg_1m": loadavg()}
    d.update(ctx)
    print(json.dumps(d), flush=True)



class Unmeasured(Exception):
    pass







def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime (fields 14, 15)


def msum(m, prefix, **labels):
    tot = 0.0
    for k, v in m.items():
        if k.split("{", 1)[0] != prefix:
            continue
        if all('%s="%s"' % (lk, lv) in k for lk, lv in labels.items()):
            tot += v
    return tot


def decided_spans(m):
    """Spans whose trace is final: dropped, or kept (handed to the sink)."""
    return m["tailtrace_spans_dropped_total"] + m["tailtrace_spans_kept_total"]


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


# ---- processes -----------------------------------------------------------------------------

def collector_bin():
    return os.path.join(BUILD, "collector", "tailtrace-collector")


def loadgen_bin():
    exe = os.path.join(BUILD, "bench", "tt_loadgen")
    if not os.path.exists(exe):
        raise Unmeasured("tt_loadgen not built in %s (configure with -DTT_BENCH=ON)" % BUILD)
    return exe


class Collector:
    def __init__(self, name, extra_yaml, workers=2):
        self.name = name
        self.workers = workers
        # A port picked free can be taken (by any outgoing connection's ephemeral port) before
        # the collector binds it: then it exits at once naming errno 98, and new ports are tried.
        for attempt in range(4):
            self._start(extra_yaml)
            try:
                if wait_until(self._up, 20):
                    return
                raise Unmeasured("collector %s did not start; log %s" % (name, self.log.name))
            except Unmeasured:
                stop(self.proc, timeout=20)
                self.log.close()
                with open(self.log.name) as f:
                    if '"errno":98' not in f.read() or attempt == 3:
                        raise

    def _start(self, extra_yaml):
        name, workers = self.name, self.workers
        self.grpc, self.http, self.admin = free_port(), free_port(), free_port()
        self.sink_path = os.path.join(WORK, "%s-%d.jsonl" % (name, self.admin))
        self.cfg = os.path.join(WORK, "%s-%d.yaml" % (name, self.admin))
        with open(self.cfg, "w") as f:
            f.write("""receivers:
  otlp_grpc: {endpoint: "127.0.0.1:%d"}
  otlp_http: {endpoint: "127.0.0.1:%d"}
admin: {endpoint: "127.0.0.1:%d"}
workers: %d
log: {level: warn}
shutdown: {deadline: 5s}
""" % (self.grpc, self.http, self.admin, workers) + extra_yaml.replace("@SINK@", self.sink_path))
        self.log = open(self.cfg + ".log", "w")
        self.proc = start([collector_bin(), "--config", self.cfg], stdout=self.log,
                          stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def _up(self):
        if self.proc.poll() is not None:
            raise Unmeasured("collector %s exited %d; log %s" % (
                self.name, self.proc.returncode, self.log.name))
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.admin, timeout=2) as r:
            return r.status == 200

    def port(self, proto):
        return self.grpc if proto == "grpc" else self.http

    def metrics(self):
        return scrape_metrics(self.admin)

    def sample(self):
        return dict(t=time.monotonic(), cpu=cpu_seconds(self.pid), m=self.metrics(),
                    rss=proc_status(self.pid, "VmRSS"))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        stop(self.proc, timeout=20)
        self.log.close()


class Loadgen:
    """tt_loadgen in the background; result() waits for it and parses its JSON lines."""

    def __init__(self, port, proto, seconds, rate=0, conns=2, spans=10 ** 10, extra=()):
        self.argv = [loadgen_bin(), "--port", str(port), "--protocol", proto, "--seconds",
                     str(seconds), "--rate", str(rate), "--conns", str(conns), "--spans",
                     str(spans)] + list(extra)
        self.seconds = seconds
        self.ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.p = start(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, allow_fail=False):
        try:
            out, err = self.p.communicate(timeout=self.seconds + 60)
        finally:
            forget(self.p)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        r = {d["name"]: d["value"] for d in lines}
        r["refused"] = {"%s%s" % (d["cause"], "" if d["retried"] else " (for good)"): d["value"]
                        for d in lines if d["name"] == "loadgen_requests_refused"}
        r["cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (self.ru0.ru_utime + self.ru0.ru_stime)
        r["rc"], r["stderr"] = self.p.returncode, err.strip()
        if self.p.returncode != 0 and not allow_fail:
            raise Unmeasured("tt_loadgen failed (%d): %s; %s" % (
                self.p.returncode, err.strip()[-300:], " ".join(self.argv)))
        return r


# ---- saturation and fixed rate: one steady window per run ----------------------------------

def steady_run(c, proto, seconds, warm, rate=0, conns=4):
    """Runs tt_loadgen for `seconds` and samples the collector at `warm` and just before the
    load ends, so start-up and the last decisions fall outside the window."""
    lg = Loadgen(c.port(proto), proto, seconds, rate=rate, conns=conns)
    time.sleep(warm)
    a = c.sample()
    time.sleep(max(0.2, seconds - warm - 0.3))
    b = c.sample()
    hwm = proc_status(c.pid, "VmHWM")
    r = lg.result()
    dt = b["t"] - a["t"]
    acc = b["m"]["tailtrace_spans_accepted_total"] - a["m"]["tailtrace_spans_accepted_total"]
    if acc <= 0:
        raise Unmeasured("no span accepted in the window (%s)" % proto)
    return dict(
        window_s=round(dt, 2), accepted_per_s=acc / dt,
        decided_per_s=(decided_spans(b["m"]) - decided_spans(a["m"])) / dt,
        cpu_per_m=(b["cpu"] - a["cpu"]) * 1e6 / acc, cpu_share=(b["cpu"] - a["cpu"]) / dt,
        rss=b["rss"], hwm=hwm, bytes_held=b["m"]["tailtrace_held_bytes"],
        throttled=msum(b["m"], "tailtrace_requests_refused_total", cause="throttled"),
        loadgen_cpu_per_m=r["cpu_s"] * 1e6 / max(1, r["loadgen_spans_sent"]), lg=r)


def emit_medians(results, prefix, unit_of):
    """One figure per (protocol, workers, figure): the median over the rounds, min and max."""
    for (proto, workers, name), vals in sorted(results.items()):
        vals = sorted(vals)
        emit(prefix + name + "_median", vals[len(vals) // 2], unit_of[name], protocol=proto,
             workers=workers, rounds=len(vals), min=round(vals[0], 3), max=round(vals[-1], 3))


def bench_saturation():
    seconds, warm = (3, 1) if QUICK else (12, 3)
    results = {}
    # Rounds alternate the settings, so a burst of load from elsewhere on the machine lands on
    # one run of each rather than on every run of one setting.
    for rnd in range(1 if QUICK else 3):
        for proto in ("http", "grpc"):
            for workers in (1, 2):
                c = Collector("sat_%s_w%d" % (proto, workers), BENCH_DECISION +
                              "sink: {type: null}\n" + DEFAULT_POLICIES, workers=workers)
                try:
                    s = steady_run(c, proto, seconds, warm)
                finally:
                    c.stop()
                ctx = dict(protocol=proto, workers=workers, round=rnd, window_s=s["window_s"],
                           sender="tt_loadgen, 4 connections, default shape, as fast as answered",
                           decision="root_grace 200ms, drop_delay 1s, tick 20ms, budget 1GiB",
                           collector_cpu_share=round(s["cpu_share"], 2),
                           loadgen_cpu_s_per_million_spans=round(s["loadgen_cpu_per_m"], 2),
                           throttled_requests=s["throttled"])
                emit("saturation_accepted_spans_per_s", s["accepted_per_s"], "spans/s", **ctx)
                emit("saturation_decided_spans_per_s", s["decided_per_s"], "spans/s", **ctx)
                emit("saturation_cpu_s_per_million_spans", s["cpu_per_m"], "cpu-s", **ctx)
                for k, v in (("accepted_spans_per_s", s["accepted_per_s"]),
                             ("decided_spans_per_s", s["decided_per_s"]),
                             ("cpu_s_per_million_spans", s["cpu_per_m"])):
                    results.setdefault((proto, workers, k), []).append(v)
    for proto in ("http", "grpc"):
        v = sorted(results[(proto, 2, "accepted_spans_per_s")])
        SATURATION[proto] = v[len(v) // 2]
    emit_medians(results, "saturation_", {"accepted_spans_per_s": "spans/s",
                                          "decided_spans_per_s": "spans/s",
                                          "cpu_s_per_million_spans": "cpu-s"})


def bench_fixed():
    seconds, warm = (4, 1.5) if QUICK else (14, 4)
    results = {}
    for rnd in range(1 if QUICK else 3):
        for proto in ("http", "grpc"):
            for workers in (1, 2):
                c = Collector("fixed_%s_w%d" % (proto, workers), BENCH_DECISION +
                              "sink: {type: null}\n" + DEFAULT_POLICIES, workers=workers)
                try:
                    s = steady_run(c, proto, seconds, warm, rate=FIXED_RATE, conns=2)
                finally:
                    c.stop()
                ctx = dict(protocol=proto, workers=workers, round=rnd,
                           offered_spans_per_s=FIXED_RATE,
                           accepted_spans_per_s=round(s["accepted_per_s"]),
                           window_s=s["window_s"], decision="root_grace 200ms, drop_delay 1s, "
                                                            "tick 20ms",
                           collector_cpu_share=round(s["cpu_share"], 2),
                           loadgen_cpu_s_per_million_spans=round(s["loadgen_cpu_per_m"], 2))
                emit("fixed_cpu_s_per_million_spans", s["cpu_per_m"], "cpu-s", **ctx)
                emit("fixed_rss_bytes", s["rss"], "bytes", rss_mib=round(s["rss"] / MIB, 1),
                     vmhwm_mib=round(s["hwm"] / MIB, 1), bytes_held=int(s["bytes_held"]), **ctx)
                results.setdefault((proto, workers, "cpu_s_per_million_spans"), []).append(
                    s["cpu_per_m"])
                results.setdefault((proto, workers, "rss_mib"), []).append(s["rss"] / MIB)
    emit_medians(results, "fixed_", {"cpu_s_per_million_spans": "cpu-s", "rss_mib": "MiB"})
    # Resident memory once the decided-trace cache is full: at 5 000 traces/s its 200 000
    # entries (late_spans.cache_traces) fill after 40 s and stay full (late_spans.ttl is 5 min),
    # so the window above, a few seconds in, sees it still growing. Then the same with the
    # collector's default decision timing (2 s + 6 s): what a user who changes nothing holds.
    seconds = 5 if QUICK else 75
    for name, decision in (("fixed_rss_bytes_steady", BENCH_DECISION),
                           ("fixed_rss_bytes_default_decision", "")):
        c = Collector(name, decision + "sink: {type: null}\n", workers=2)
        try:
            lg = Loadgen(c.http, "http", seconds, rate=FIXED_RATE, conns=2)
            rss, t0 = [], time.monotonic()
            while time.monotonic() - t0 < seconds - 1 and lg.p.poll() is None:
                rss.append(proc_status(c.pid, "VmRSS"))
                time.sleep(1)
            b = c.sample()  # under load, a second before its end
            hwm = proc_status(c.pid, "VmHWM")
            lg.result()
        finally:
            c.stop()
        emit(name, b["rss"], "bytes", protocol="http", workers=2, offered_spans_per_s=FIXED_RATE,
             seconds=seconds, rss_mib=round(b["rss"] / MIB, 1), vmhwm_mib=round(hwm / MIB, 1),
             rss_mib_at_15s=round(rss[min(len(rss) - 1, 15)] / MIB, 1) if rss else None,
             bytes_held=int(b["m"]["tailtrace_held_bytes"]),
             decided_cache_bytes=int(b["m"]["tailtrace_decided_cache_bytes"]),
             throttled_requests=msum(b["m"], "tailtrace_requests_refused_total",
                                     cause="throttled"),
             decision="root_grace 200ms, drop_delay 1s, tick 20ms, budget 1GiB" if decision
             else "defaults: root_grace 2s, drop_delay 6s, tick 20ms, budget 256MiB",
             means="VmRSS at the end of the run, the decided-trace cache full")


# ---- held spans: memory against wire bytes -------------------------------------------------

def bench_held():
    n = 60000 if QUICK else 400000
    c = Collector("held", """decision: {root_grace: 10m, idle_timeout: 10m, max_trace_age: 10m}
memory: {budget: 2GiB}
sink: {type: null}
""" + DEFAULT_POLICIES, workers=2)
    try:
        time.sleep(0.3)
        rss0 = proc_status(c.pid, "VmRSS")
        r = Loadgen(c.http, "http", 60, conns=2, spans=n).result()
        sent = r["loadgen_spans_accepted"]  # n rounded down to whole groups of traces
        if not sent or not wait_until(
                lambda: c.metrics()["tailtrace_spans_accepted_total"] >= sent, 20):
            raise Unmeasured("the collector did not account for the %d spans sent" % sent)
        time.sleep(0.5)
        m = c.metrics()
        rss1 = proc_status(c.pid, "VmRSS")
        held = m["tailtrace_spans_accepted_total"]
        if m["tailtrace_traces_held"] < r["loadgen_traces_sent"]:
            raise Unmeasured("traces were decided before the measurement (held %d of %d)" % (
                m["tailtrace_traces_held"], r["loadgen_traces_sent"]))
        wire = r["loadgen_wire_bytes_per_span"]
        budget = m["tailtrace_held_bytes"] / held
        rss = (rss1 - rss0) / held
        ctx = dict(spans_held=int(held), wire_bytes_per_span=wire, protocol="http",
                   shape="10-span traces, 8 attributes a span, 3 requests a trace",
                   rss_before=rss0, rss_after=rss1, bytes_held=int(m["tailtrace_held_bytes"]))
        emit("held_budget_bytes_per_span", budget, "bytes", **ctx,
             means="tailtrace_held_bytes / spans held (what memory.budget counts)")
        emit("held_rss_bytes_per_span", rss, "bytes", **ctx, means="VmRSS growth / spans held")
        emit("held_rss_per_wire_byte", rss / wire, "ratio", **ctx,
             means="held_rss_bytes_per_span / protobuf bytes a span on the wire")
        emit("held_budget_per_wire_byte", budget / wire, "ratio", **ctx)
    finally:
        c.stop()


# ---- decision lateness, from outside -------------------------------------------------------

def probe_request(tid, sid, now_ns):
    def varint(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def lenf(field, data):
        return varint(field << 3 | 2) + varint(len(data)) + data

    def kv(k, v):
        return lenf(1, k.encode()) + lenf(2, lenf(1, v.encode()))

    span = (lenf(1, tid) + lenf(2, sid) + lenf(5, b"probe") + b"\x30\x02" +
            b"\x39" + (now_ns - 1000000).to_bytes(8, "little") +
            b"\x41" + now_ns.to_bytes(8, "little") + lenf(9, kv("tt.probe", "1")))
    res = lenf(1, kv("service.name", "probe"))
    ss = lenf(1, lenf(1, b"bench_load")) + lenf(2, span)
    return lenf(1, lenf(1, res) + lenf(2, ss))


def lateness_run(tick, seconds, probe_rate):
    grace_ms = 200
    c = Collector("late_" + tick, """decision: {root_grace: %dms, drop_delay: 1s, tick: %s}
memory: {budget: 1GiB}
sink: {type: file, file: {path: "@SINK@", max_size: 4GiB}}
policies:
  - {name: probe, type: attribute, key: tt.probe, op: exists}
  - {type: errors}
  - {type: latency, threshold: 1s}
  - {type: ratio, ratio: 0.1}
""" % (grace_ms, tick), workers=2)
    rnd = random.Random()
    try:
        lg = Loadgen(c.http, "http", seconds + 1, rate=FIXED_RATE, conns=2)
        conn = http.client.HTTPConnection("127.0.0.1", c.http, timeout=10)
        pending, late, rtts = {}, [], []
        carry, off = b"", 0
        t_end = time.monotonic() + seconds
        next_probe = time.monotonic() + 0.5
        sent = 0
        while True:
            now = time.monotonic()
            if now < t_end and now >= next_probe:
                tid, sid = rnd.randbytes(16), rnd.randbytes(8)
                body = probe_request(tid, sid, time.time_ns())
                t0 = time.monotonic()
                conn.request("POST", "/v1/traces", body,
                             {"Content-Type": "application/x-protobuf"})
                resp = conn.getresponse()
                resp.read()
                t1 = time.monotonic()
                if resp.status != 200:
                    raise Unmeasured("probe refused: HTTP %d" % resp.status)
                pending[tid.hex().encode()] = t0
                rtts.append((t1 - t0) * 1000)
                sent += 1
                next_probe += 1.0 / probe_rate
            if os.path.exists(c.sink_path):
                with open(c.sink_path, "rb") as f:
                    f.seek(off)
                    data = f.read()
                if data:
                    t_seen = time.monotonic()
                    off += len(data)
                    buf = carry + data
                    for h in [h for h in pending if h in buf]:
                        late.append((t_seen - pending.pop(h)) * 1000 - grace_ms)
                    carry = buf[-80:]
            if now >= t_end and (not pending or now > t_end + 3):
                break
            time.sleep(0.002)
        conn.close()
        r = lg.result()
        m = c.metrics()
    finally:
        c.stop()
    if not late:
        raise Unmeasured("no probe trace appeared in the file sink (tick %s)" % tick)
    ctx = dict(tick=tick, root_grace="%dms" % grace_ms, probes_sent=sent, probes_seen=len(late),
               probes_missing=len(pending), background_spans_per_s=round(
                   r["loadgen_accepted_spans_per_s"]), protocol="http", workers=2,
               probe_rtt_ms_p99=round(quantile(rtts, 0.99), 3), poll_ms=2,
               means="probe's kept span seen in the file sink minus (probe POST start + "
                     "root_grace): an upper bound on the lateness by the probe's round trip "
                     "and the 2 ms poll",
               collector_decision_latency_ms_count=msum(m, "tailtrace_decision_latency_seconds_count"))
    emit("decision_lateness_ms_p50", quantile(late, 0.5), "ms", **ctx)
    emit("decision_lateness_ms_p99", quantile(late, 0.99), "ms", **ctx)
    emit("decision_lateness_ms_max", max(late), "ms", **ctx)


def bench_lateness():
    seconds, rate = (4, 25) if QUICK else (16, 50)
    for tick in ("20ms", "50ms"):
        lateness_run(tick, seconds, rate)


# ---- overload ------------------------------------------------------------------------------

def healthz_prober(admin, stop_evt, out):
    conn = None
    while not stop_evt.is_set():
        t0 = time.monotonic()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", admin, timeout=5)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            out.append(((time.monotonic() - t0) * 1000, r.status))
        except (OSError, http.client.HTTPException):
            out.append(((time.monotonic() - t0) * 1000, 0))
            conn = None
        time.sleep(0.02)


def measure_saturation(proto):
    c = Collector("sat_for_overload_" + proto, BENCH_DECISION + "sink: {type: null}\n" +
                  DEFAULT_POLICIES, workers=2)
    try:
        SATURATION[proto] = steady_run(c, proto, 3, 1)["accepted_per_s"]
    finally:
        c.stop()


def bench_overload():
    seconds = 5 if QUICK else 20
    budget = 256 * MIB
    for proto in ("http", "grpc"):
        if proto not in SATURATION:
            measure_saturation(proto)
        offered = 3 * SATURATION[proto]
        # The collector's defaults (root_grace 2s, drop_delay 6s, budget 256MiB): at this rate
        # the budget fills, so overload shows both the CPU limit and the memory guard.
        c = Collector("overload_" + proto, "sink: {type: null}\n", workers=2)
        probes, stop_evt, rss = [], threading.Event(), []
        th = threading.Thread(target=healthz_prober, args=(c.admin, stop_evt, probes))
        try:
            th.start()
            a = c.sample()
            lg = Loadgen(c.port(proto), proto, seconds, rate=offered, conns=8)
            while lg.p.poll() is None:
                rss.append(proc_status(c.pid, "VmRSS"))
                time.sleep(0.25)
            r = lg.result()
            b = c.sample()
            hwm = proc_status(c.pid, "VmHWM")
        finally:
            stop_evt.set()
            th.join(10)
            c.stop()
        lat = [x for x, st in probes if st == 200]
        if not lat:
            raise Unmeasured("no /healthz answer during overload")
        refused = sum(r["refused"].values())
        ctx = dict(protocol=proto, workers=2, offered_spans_per_s=round(offered),
                   saturation_spans_per_s=round(SATURATION[proto]), conns=8, seconds=seconds,
                   decision="defaults: root_grace 2s, drop_delay 6s, budget 256MiB",
                   requests=r["loadgen_requests"], refused=r["refused"],
                   sent_spans_per_s=round(r["loadgen_sent_spans_per_s"]),
                   behind_schedule_s=r["loadgen_behind_schedule_seconds"],
                   collector_throttled=msum(b["m"], "tailtrace_requests_refused_total",
                                            cause="throttled") -
                   msum(a["m"], "tailtrace_requests_refused_total", cause="throttled"),
                   early_decisions=b["m"].get("tailtrace_early_decisions_total", 0))
        emit("overload_accepted_spans_per_s", r["loadgen_accepted_spans_per_s"], "spans/s", **ctx)
        emit("overload_refused_share", refused / max(1, r["loadgen_requests"]), "ratio", **ctx,
             means="refused answers (all retried) / requests, retries included")
        emit("overload_rss_peak_bytes", max(rss + [b["rss"]]), "bytes", protocol=proto,
             budget_bytes=budget, rss_peak_per_budget=round(max(rss + [b["rss"]]) / budget, 3),
             vmhwm_bytes=hwm, bytes_held_end=int(b["m"]["tailtrace_held_bytes"]))
        emit("overload_healthz_ms_p99", quantile(lat, 0.99), "ms", protocol=proto,
             probes=len(probes), failed=len(probes) - len(lat), p50_ms=round(quantile(lat, 0.5), 3),
             max_ms=round(max(lat), 3), interval_ms=20)


# ---- attacks -------------------------------------------------------------------------------

def bench_attacks():
    c = Collector("attacks", BENCH_DECISION + "sink: {type: null}\n" + DEFAULT_POLICIES)
    try:
        mib = 64 if QUICK else 1024
        for proto in ("grpc", "http"):
            hwm0 = proc_status(c.pid, "VmHWM")
            lg = Loadgen(c.port(proto), proto, 60, extra=["--gzip-bomb", str(mib)])
            r = lg.result(allow_fail=True)
            if "loadgen_bomb_refused" not in r:
                raise Unmeasured("gzip bomb not sent: %s" % r["stderr"])
            healthy = c.alive() and wait_until(c._up, 5)
            emit("attack_gzip_bomb_refused", r["loadgen_bomb_refused"], "bool", protocol=proto,
                 inflated_bytes=r["loadgen_bomb_inflated_bytes"],
                 wire_bytes=r["loadgen_bomb_wire_bytes"], answer_s=r["loadgen_bomb_answer_seconds"],
                 vmhwm_growth_bytes=proc_status(c.pid, "VmHWM") - hwm0, healthy_after=healthy,
                 loadgen_exit=r["rc"])
            if not healthy:
                raise Unmeasured("the collector died on the %s gzip bomb" % proto)
    finally:
        c.stop()
    # A fresh collector: memory the bombs left to the allocator would blur the RSS growth.
    c = Collector("idle", BENCH_DECISION + "sink: {type: null}\n" + DEFAULT_POLICIES)
    try:
        idle_connections(c)
    finally:
        c.stop()


def open_files_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def idle_connections(c):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 200 if QUICK else 2000
    if soft < 2 * n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 2 * n + 256), hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        n = min(n, (soft - 64) // 2)
    for proto in ("http", "grpc"):
        rss0 = proc_status(c.pid, "VmRSS")
        socks = []
        for _ in range(n):
            try:
                socks.append(socket.create_connection(("127.0.0.1", c.port(proto)), timeout=5))
            except OSError:
                break
        time.sleep(1.0)
        rss1 = proc_status(c.pid, "VmRSS")
        t0 = time.monotonic()
        ok = wait_until(c._up, 5)
        health_ms = (time.monotonic() - t0) * 1000
        r = Loadgen(c.port(proto), proto, 10, spans=3000).result(allow_fail=True)
        wait = 2 if QUICK else 10
        time.sleep(wait)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        for s in socks:
            s.close()
        emit("attack_idle_connections_rss_bytes_per_connection",
             (rss1 - rss0) / max(1, len(socks)), "bytes", protocol=proto,
             connections=len(socks), healthz_ok=ok, healthz_ms=round(health_ms, 2),
             load_during_accepted_spans=r.get("loadgen_spans_accepted", 0),
             load_during_exit=r["rc"], load_during_error=r["stderr"][-160:],
             closed_by_collector_after_s={str(wait + 1): closed},
             collector_open_files_limit=open_files_limit(c.pid),
             means="report only: RSS growth with N idle TCP connections open, whether the "
                   "collector still serves, and how many it closed")


# ---- soak ----------------------------------------------------------------------------------

def bench_soak(minutes, interval):
    total = minutes * 60
    burst_s, after_s = (15, 30) if QUICK else (60, 120)
    warm = min(120, total / 5)
    c = Collector("soak", BENCH_DECISION + "sink: {type: null}\n" + DEFAULT_POLICIES, workers=2)
    try:
        lg = Loadgen(c.http, "http", total + burst_s + after_s + 5, rate=FIXED_RATE, conns=2)
        t0 = time.monotonic()
        samples = []
        while time.monotonic() - t0 < total:
            time.sleep(interval)
            el, rss = time.monotonic() - t0, proc_status(c.pid, "VmRSS")
            samples.append((el, rss))
            emit("soak_rss_bytes", rss, "bytes", elapsed_s=round(el), rss_mib=round(rss / MIB, 1),
                 offered_spans_per_s=FIXED_RATE)
        after = [(t, r) for t, r in samples if t >= warm]
        if len(after) < 2:
            raise Unmeasured("too few soak samples after warm-up")
        n = len(after)
        mt, mr = sum(t for t, _ in after) / n, sum(r for _, r in after) / n
        slope = sum((t - mt) * (r - mr) for t, r in after) / max(
            1e-9, sum((t - mt) ** 2 for t, _ in after))
        spread = max(r for _, r in after) - min(r for _, r in after)
        emit("soak_rss_slope_after_warmup_mib_per_min", slope * 60 / MIB, "MiB/min",
             warmup_s=round(warm), samples=n, spread_mib=round(spread / MIB, 2),
             mean_mib=round(mr / MIB, 1), minutes=minutes,
             flat=abs(slope * (after[-1][0] - after[0][0])) < max(4 * MIB, 0.05 * mr))
        # A burst of 3x (the running 1x plus a second generator at 2x), then back to 1x.
        before = proc_status(c.pid, "VmRSS")
        burst = Loadgen(c.http, "http", burst_s, rate=2 * FIXED_RATE, conns=4)
        peak = before
        while burst.p.poll() is None:
            peak = max(peak, proc_status(c.pid, "VmRSS"))
            time.sleep(0.5)
        br = burst.result()
        t1 = time.monotonic()
        while time.monotonic() - t1 < after_s:
            time.sleep(min(interval, 5))
        settled = proc_status(c.pid, "VmRSS")
        emit("soak_burst_rss_returned_share", (peak - settled) / max(1, peak - before), "ratio",
             rss_before_mib=round(before / MIB, 1), rss_peak_mib=round(peak / MIB, 1),
             rss_after_mib=round(settled / MIB, 1), burst_s=burst_s, settle_s=after_s,
             burst_accepted_spans_per_s=round(br["loadgen_accepted_spans_per_s"]),
             means="(peak - RSS after settling at 1x) / (peak - RSS before the burst)")
        lg.p.send_signal(signal.SIGTERM)
        lg.result(allow_fail=True)
    finally:
        c.stop()


# ---- main ----------------------------------------------------------------------------------

def main():
    global BUILD, QUICK
    args = sys.argv[1:]
    groups, soak, interval = [], None, None
    while args:
        a = args.pop(0)
        if a == "--build":
            BUILD = os.path.abspath(args.pop(0))
        elif a == "--quick":
            QUICK = True
        elif a == "--soak":
            soak = float(args.pop(0))
        elif a == "--soak-interval":
            interval = float(args.pop(0))
        elif a in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            groups.append(a)
    all_groups = ["saturation", "fixed", "held", "lateness", "overload", "attacks"]
    if soak is not None:
        if soak < 10 and not QUICK:
            print("--soak needs at least 10 minutes (with --quick: a 1-minute smoke run)",
                  file=sys.stderr)
            return 2
        soak = 1 if QUICK else soak
        groups = groups or ["soak"]
    groups = groups or all_groups
    for g in groups:
        if g not in all_groups + ["soak"]:
            print("unknown group %s" % g, file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    note("machine: %d cores, load average %s, build %s, quick %s, %s" % (
        os.cpu_count(), open("/proc/loadavg").read().split()[0:3], BUILD, QUICK,
        time.strftime("%Y-%m-%d %H:%M:%S %Z")))
    failed = []
    try:
        for g in groups:
            t0 = time.time()
            try:
                if g == "soak":
                    bench_soak(soak, interval or (5 if QUICK else 30))
                else:
                    globals()["bench_" + g]()
            except Unmeasured as e:
                failed.append(g)
                note("group %s could not be measured: %s" % (g, e))
                kill_all()
            note("group %s took %.1f s, load average %s" % (
                g, time.time() - t0, open("/proc/loadavg").read().split()[0:3]))
    finally:
        kill_all()
    if failed:
        note("not measured: %s (configurations and logs kept in %s)" % (", ".join(failed), WORK))
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
