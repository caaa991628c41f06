#!/usr/bin/python3
"""Operating the collector: readiness, exporter metrics, the live view and the deploy files,
against the real tailtrace-collector binary and tests/peers/otlp_receiver.py as the backend.
Spans are sent here as OTLP/JSON over HTTP, encoded by hand (no SDK needed).

Scenarios (argument):
  wrong-key   the backend answers 401 without the right x-honeycomb-team header and the
              exporter sends a wrong one: every batch is refused for good. /readyz answers 200
              (the collector can take spans) and names the refusal with its code;
              /readyz?backends=1 answers 503; tailtrace_exporter_up 0, _refusing 1, nothing
              counted delivered, every kept span counted lost (failed_permanent); `top --once`
              shows the exporter REFUSING.
  outage      the backend is down (nothing listens on its port) and the exporter has a spool:
              /readyz answers 200 and says the exporter is down and spooling, ?backends=1
              answers 503, tailtrace_exporter_up 0 and the spooled spans are counted. Then the
              backend starts on that port: every kept span is delivered and counted delivered
              once the backend acknowledged it, the spool gauges go back to 0 (bytes included),
              the exporter is up and ?backends=1 answers 200. `top` (the live view, stdin not a
              terminal) prints screens until SIGINT and exits 0; on a pseudo-terminal it
              redraws in place, quits on q and restores the terminal.
  deploy      every metric name used by deploy/grafana-tailtrace.json's and
              deploy/prometheus-alerts.yaml's expressions is in a live collector's /metrics
              (histograms by their base name), the collector having a file sink and an
              exporter, as in deploy/tailtrace-collector.yaml; docs/operations.md's table of
              metrics lists exactly the families on /metrics; the rules pass `promtool check
              rules` when promtool is installed.
A missing Python module is a failure, never a skip.

Usage: test_ops_e2e.py SCENARIO   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from e2e_lib import (BINARY, SRC, Collector, Peer, fail, free_port, metric_sum, new_workdir,
                     wait_until)

KEEP_ALL = """
decision: {drop_delay: 0s}
policies:
  - {name: all, type: ratio, ratio: 1.0}
"""
TRACES = 20
SPANS_PER_TRACE = 3


def request_json(first):
    """TRACES traces of SPANS_PER_TRACE spans (a root and its children), ids from `first`."""
    spans = []
    for t in range(first, first + TRACES):
        tid = "%032x" % (0xabc0000000000000000000000000 + t)
        for s in range(SPANS_PER_TRACE):
            sid = "%016x" % ((t << 8) + s + 1)
            parent = "" if s == 0 else ',"parentSpanId":"%016x"' % ((t << 8) + 1)
            spans.append('{"traceId":"%s","spanId":"%s"%s,"name":"op%d","kind":2,'
                         '"startTimeUnixNano":"1700000000000000000",'
                         '"endTimeUnixNano":"1700000000001000000"}' % (tid, sid, parent, s))
    return ('{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":'
            '{"stringValue":"ops-e2e"}}]},"scopeSpans":[{"scope":{"name":"ops-e2e"},'
            '"spans":[' + ",".join(spans) + ']}]}]}').encode()


def send(col, first=1):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/traces" % col.http,
                                 data=request_json(first),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 200:
            fail("the collector answered %d to spans" % r.status)
    return TRACES * SPANS_PER_TRACE


def readyz(col, query=""):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/readyz%s" % (col.admin, query),
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect_ready(col, status, query, *parts):
    got, body = readyz(col, query)
    print("/readyz%s -> %d:\n  %s" % (query, got, body.strip().replace("\n", "\n  ")))
    if got != status:
        fail("/readyz%s answered %d, expected %d" % (query, got, status))
    for p in parts:
        if p not in body:
            fail("/readyz%s does not say %r" % (query, p))


def top_once(col):
    r = subprocess.run([BINARY, "top", "--once", "--interval", "0.3", "--admin",
                        "127.0.0.1:%d" % col.admin], capture_output=True, text=True, timeout=20)
    print(r.stdout)
    if r.returncode != 0:
        fail("top --once exited with %d: %s" % (r.returncode, r.stderr))
    return r.stdout


def top_in_a_terminal(col):
    """The live view on a terminal (a pseudo-terminal here): it redraws in place, quits on q, and
    leaves the terminal as it found it (canonical mode and echo back, the cursor shown)."""
    import pty
    import select
    import termios
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    top = subprocess.Popen([BINARY, "top", "--interval", "0.2", "--admin",
                            "127.0.0.1:%d" % col.admin], stdin=slave, stdout=slave,
                           stderr=slave, close_fds=True)
    out = b""
    end = time.time() + 15
    while time.time() < end and out.count(b"q or Ctrl-C quits") < 2:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            out += os.read(master, 65536)
    if out.count(b"q or Ctrl-C quits") < 2:
        top.kill()
        fail("top drew %d screens on a terminal in 15 s" % out.count(b"q or Ctrl-C quits"))
    if b"\033[H\033[2J" not in out or b"\033[?25l" not in out:
        fail("top does not redraw in place on a terminal")
    os.write(master, b"q")
    try:
        rc = top.wait(timeout=10)
    except subprocess.TimeoutExpired:
        top.kill()
        fail("top did not quit on q")
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    after = termios.tcgetattr(slave)
    os.close(slave)
    os.close(master)
    if rc != 0:
        fail("top exited with %d on q" % rc)
    if after[3] != before[3]:
        fail("top left the terminal's local modes changed (%#x, was %#x)" % (after[3], before[3]))
    if not out.rstrip().endswith(b"\033[?25h"):
        fail("top left the cursor hidden")
    print("top on a terminal: %d screens, quit on q, terminal restored" %
          out.count(b"q or Ctrl-C quits"))


def exporter(name, endpoint, extra=""):
    return """
exporters:
  - name: %s
    protocol: http/protobuf
    endpoint: "%s"
    retry_initial: 50ms
    retry_max: 300ms
    timeout: 2s
%s""" % (name, endpoint, extra)


def series(exporter_name, outcome):
    return 'tailtrace_exporter_spans_total{exporter="%s",outcome="%s"}' % (exporter_name, outcome)


def scenario_wrong_key():
    work = new_workdir()
    peer = Peer(work, ["--require-header", "x-honeycomb-team=right-key"])
    col = Collector(work, "sink: {type: none}\n" + KEEP_ALL + exporter(
        "honeycomb", "http://127.0.0.1:%d/v1/traces" % peer.http,
        "    headers:\n      x-honeycomb-team: wrong-key\n"))
    try:
        n = send(col)
        wait_until("every span refused by the backend",
                   lambda: col.metrics().get(series("honeycomb", "failed_permanent"), 0) >= n,
                   30, col.admin)
        m = col.metrics()
        if m[series("honeycomb", "delivered")] != 0:
            fail("spans counted delivered to a backend that refused them all")
        if m['tailtrace_exporter_up{exporter="honeycomb"}'] != 0 or \
                m['tailtrace_exporter_refusing{exporter="honeycomb"}'] != 1:
            fail("tailtrace_exporter_up/_refusing do not show the refusal")
        lost = sum(v for k, v in m.items() if k.startswith('tailtrace_exporter_spans_total{')
                   and 'outcome="delivered"' not in k)
        if lost != n:
            fail("%d spans counted lost, %d were refused" % (lost, n))
        expect_ready(col, 200, "", "receivers: up",
                     "exporter honeycomb: refusing", "code 401", "missing or wrong")
        expect_ready(col, 503, "?backends=1", "exporter honeycomb: refusing")
        if "REFUSING" not in top_once(col):
            fail("top does not show the exporter refusing")
    finally:
        rc = col.stop()
        peer.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    print("OK wrong key: ready for spans, refusal reported and counted (%d spans lost)" % n)


def scenario_outage():
    work = new_workdir()
    http_port = free_port()
    spool = os.path.join(work, "spool")
    col = Collector(work, "sink: {type: none}\n" + KEEP_ALL + exporter(
        "jaeger", "http://127.0.0.1:%d/v1/traces" % http_port,
        "    spool: {dir: \"%s\"}\n" % spool))
    peer = None
    try:
        n = send(col)
        wait_until("the kept spans spooled",
                   lambda: col.metrics().get(
                       'tailtrace_exporter_spooled_spans_total{exporter="jaeger"}', 0) >= n,
                   30, col.admin)
        m = col.metrics()
        if m['tailtrace_exporter_up{exporter="jaeger"}'] != 0:
            fail("tailtrace_exporter_up says 1 while nothing listens")
        if m['tailtrace_exporter_spool_bytes{exporter="jaeger"}'] <= 0:
            fail("tailtrace_exporter_spool_bytes is 0 with batches spooled")
        expect_ready(col, 200, "", "receivers: up", "exporter jaeger: down", "in the spool")
        expect_ready(col, 503, "?backends=1", "exporter jaeger: down")
        if "DOWN" not in top_once(col):
            fail("top does not show the exporter down")

        peer = Peer(work, ["--http-port", str(http_port)])
        wait_until("every kept span delivered", lambda: col.metrics().get(
            series("jaeger", "delivered"), 0) >= n, 30, col.admin)
        wait_until("the spool drained", lambda: col.metrics().get(
            'tailtrace_exporter_spool_batches{exporter="jaeger"}', -1) == 0, 30, col.admin)
        m = col.metrics()
        at_backend = peer.stat("spans")
        if m[series("jaeger", "delivered")] != n or at_backend != n:
            fail("%d spans counted delivered, %d at the backend, %d sent" % (
                m[series("jaeger", "delivered")], at_backend, n))
        for g in ("spool_bytes", "spool_batches", "queue_bytes", "queue_spans"):
            v = m['tailtrace_exporter_%s{exporter="jaeger"}' % g]
            if v != 0:
                fail("tailtrace_exporter_%s is %g after a full drain" % (g, v))
        if m['tailtrace_sink_spans_total{sink="jaeger",outcome="accepted"}'] != n:
            fail("tailtrace_sink_spans_total does not count the %d spans queued" % n)
        wait_until("the exporter up", lambda: col.metrics().get(
            'tailtrace_exporter_up{exporter="jaeger"}') == 1, 10, col.admin)
        expect_ready(col, 200, "?backends=1", "exporter jaeger: up", "sinks: healthy")

        # The live view on a pipe: a screen per interval until Ctrl-C (SIGINT), then status 0.
        top = subprocess.Popen([BINARY, "top", "--interval", "0.2", "--admin",
                                "127.0.0.1:%d" % col.admin], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        top.send_signal(signal.SIGINT)
        out, err = top.communicate(timeout=10)
        if top.returncode != 0:
            fail("top exited with %d on SIGINT: %s" % (top.returncode, err))
        if out.count("EXPORTERS") < 2:
            fail("top printed %d screens in 1 s at 0.2 s intervals" % out.count("EXPORTERS"))
        top_in_a_terminal(col)
    finally:
        rc = col.stop()
        if peer is not None:
            peer.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    print("OK outage: ready while spooling, %d spans delivered after the backend came back, "
          "spool gauges at 0" % n)


def names_in_expr(expr):
    return set(re.findall(r"\b((?:tailtrace|process)_[a-z0-9_]+)", expr))


def scenario_deploy():
    dash = json.load(open(os.path.join(SRC, "deploy", "grafana-tailtrace.json")))
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("expr", "query") and isinstance(v, str):
                    exprs.append(("dashboard", v))
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    import yaml
    rules = yaml.safe_load(open(os.path.join(SRC, "deploy", "prometheus-alerts.yaml")))
    nrules = 0
    for g in rules["groups"]:
        for r in g["rules"]:
            exprs.append(("alert " + r["alert"], str(r["expr"])))
            nrules += 1
    if len([e for e in exprs if e[0] == "dashboard"]) < 8 or nrules < 5:
        fail("the dashboard or the rules lost their panels or alerts")

    work = new_workdir()
    col = Collector(work, 'sink: {type: file, file: {path: "%s"}}\n' % os.path.join(
        work, "kept.jsonl") + exporter("backend", "http://127.0.0.1:%d/v1/traces" % free_port(),
                                       "    spool: {dir: \"%s\"}\n" % os.path.join(work, "sp")))
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % col.admin, timeout=5) as r:
            text = r.read().decode()
    finally:
        col.stop()
    have = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    histograms = set(re.findall(r"^# TYPE (\S+) histogram", text, re.M))
    missing = []
    used = set()
    for where, expr in exprs:
        for name in names_in_expr(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name in have or (base in histograms and base != name):
                used.add(name)
                continue
            missing.append("%s: %s" % (where, name))
    if missing:
        fail("metric names not in /metrics:\n  " + "\n  ".join(sorted(set(missing))))

    # docs/operations.md's table of metrics lists exactly what this collector exports.
    doc = open(os.path.join(SRC, "docs", "operations.md")).read()
    documented = set(re.findall(r"^  \| `((?:tailtrace|process)_[a-z0-9_]+)` \|", doc, re.M))
    if documented != have:
        fail("docs/operations.md's metrics table and /metrics differ:\n  only in the docs: %s\n"
             "  only on /metrics: %s" % (sorted(documented - have), sorted(have - documented)))

    # The rules' syntax, with Prometheus's own checker when it is installed (Debian: prometheus).
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "rules",
                            os.path.join(SRC, "deploy", "prometheus-alerts.yaml")],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            fail("promtool check rules:\n" + r.stdout + r.stderr)
        print("promtool check rules: OK")
    else:
        print("promtool is not installed: the rules' PromQL syntax was not checked")
    print("OK deploy: %d expressions, %d metric names, all in /metrics; the docs' table matches" %
          (len(exprs), len(used)))


def main():
    if not SRC or not BINARY:
        fail("TT_SOURCE_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    scenarios = {"wrong-key": scenario_wrong_key, "outage": scenario_outage,
                 "deploy": scenario_deploy}
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        fail("usage: test_ops_e2e.py %s" % "|".join(scenarios))
    scenarios[sys.argv[1]]()


if __name__ == "__main__":
    main()
