"""The example services (examples/shop and examples/orders, linked to libtailtrace) against the
real collector with the demo's configuration (examples/demo.yaml), all on loopback.

  services  requests from here (ok, ?fail=1, ?slow=1, some continuing a caller's traceparent and
            baggage): every failing and every slow checkout must arrive kept and whole (one trace
            id, both services' six spans, parent links as the code makes them, the error and db
            attributes), each ok one kept exactly when the ratio keeps its trace id, so most are
            dropped, and nothing else arrives.
  script    `make demo` (examples/demo.sh) for 2 s: its summary must report the kept and
            dropped traces by reason and the file they are in, and leave no process behind; and
            the same script interrupted with SIGINT mid-traffic must stop everything it started.

Usage: test_demo_e2e.py services|script (run through ctest, which sets TT_SOURCE_DIR,
TT_BINARY_DIR and TT_COLLECTOR_BIN)."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (BINARY, SRC, _STARTED, fail, free_port, metric_sum, metrics, new_workdir,  # noqa: E402
                     ratio_keeps, span_attrs, spans_of, wait_until)

BUILD = os.environ.get("TT_BINARY_DIR", "")
SHOP = os.path.join(BUILD, "examples", "shop")
ORDERS = os.path.join(BUILD, "examples", "orders")
DEMO_YAML = os.path.join(SRC, "examples", "demo.yaml")
RATIO = 0.1  # examples/demo.yaml's ratio policy
SLOW_NS = 1_000_000_000  # examples/demo.yaml's latency threshold


def require():
    if not SRC or not BINARY or not BUILD:
        fail("TT_SOURCE_DIR, TT_BINARY_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    for b in (SHOP, ORDERS):
        if not os.access(b, os.X_OK):
            fail("%s is not built (TT_EXAMPLES=ON builds it)" % b)


def port_open(addr):
    host, port = addr.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


def start(argv, env, log):
    p = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    _STARTED.append(p)
    return p


def get(url, headers=None):
    """(status, response headers) of a GET; HTTP errors are answers too."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def services():
    require()
    work = new_workdir()
    traces_file = os.path.join(work, "kept.jsonl")
    admin = "127.0.0.1:%d" % free_port()
    otlp_http = "127.0.0.1:%d" % free_port()
    shop, orders = "127.0.0.1:%d" % free_port(), "127.0.0.1:%d" % free_port()
    env = dict(os.environ, TT_DEMO_OTLP_HTTP=otlp_http,
               TT_DEMO_OTLP_GRPC="127.0.0.1:%d" % free_port(), TT_DEMO_ADMIN=admin,
               TT_DEMO_TRACES=traces_file)
    log = open(os.path.join(work, "processes.log"), "a")
    collector = start([BINARY, "--config", DEMO_YAML], env, log)
    admin_port = int(admin.rsplit(":", 1)[1])

    def up():
        if collector.poll() is not None:
            fail("the collector exited with %d; log in %s" % (collector.returncode, work))
        return port_open(admin)
    wait_until("the collector to listen", up, 20)

    svc_env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT="http://" + otlp_http,
                   OTEL_BSP_SCHEDULE_DELAY="200")
    svc_env.pop("OTEL_SERVICE_NAME", None)
    procs = [start([ORDERS, "--listen", orders], svc_env, log),
             start([SHOP, "--listen", shop, "--orders", orders], svc_env, log)]
    for addr in (orders, shop):
        wait_until("a service to listen on " + addr, lambda: port_open(addr), 20)

    # What to send: (category, query, incoming headers). The incoming traceparents' trace ids end
    # in ...ff (kept by the ratio) and ...00 with fail=1 (kept as an error): a caller's trace is
    # continued, and its root never reaches the collector (idle_timeout decides it).
    sent = []
    for i in range(60):
        sent.append(("ok", "user=u%d" % i, {}))
    for i in range(8):
        sent.append(("error", "user=e%d&fail=1" % i, {}))
    for i in range(5):
        sent.append(("slow", "user=s%d&slow=1" % i, {}))
    caller_ok = "4bf92f3577b34da6a3ffffffffffffff"
    caller_err = "5bf92f3577b34da6a300000000000000"
    sent.append(("ok", "user=c1", {"traceparent": "00-%s-00f067aa0ba902b7-01" % caller_ok,
                                   "baggage": "user.id=carol,team=blue"}))
    sent.append(("error", "fail=1", {"traceparent": "00-%s-00f067aa0ba902b8-01" % caller_err,
                                     "baggage": "user.id=dave"}))
    # A malformed traceparent is ignored: shop starts a new trace (its root has no parent).
    sent.append(("error", "user=e9&fail=1",
                 {"traceparent": "00-%s-00f067aa0ba902b8-01" % caller_err.upper()}))

    results = [None] * len(sent)

    def send(i):
        cat, query, headers = sent[i]
        status, rh = get("http://%s/checkout?%s" % (shop, query), headers)
        tr = rh.get("traceresponse") or rh.get("Traceresponse") or ""
        m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]", tr)
        if not m:
            fail("request %s: no traceresponse header (%r)" % (query, rh))
        results[i] = (status, m.group(1), m.group(2))

    # The slow ones in parallel (each takes 1.2 s), the rest one after another.
    threads = [threading.Thread(target=send, args=(i,)) for i, s in enumerate(sent)
               if s[0] == "slow"]
    for t in threads:
        t.start()
    for i, s in enumerate(sent):
        if s[0] != "slow":
            send(i)
    for t in threads:
        t.join(30)
        if t.is_alive():
            fail("a slow request did not finish within 30 s")
    for i, (cat, query, _) in enumerate(sent):
        want = 502 if cat == "error" else 200
        if results[i] is None or results[i][0] != want:
            fail("%s request %s answered %r, want %d" % (cat, query, results[i], want))

    # Bad requests get a clear answer and no trace.
    status, _ = get("http://%s/nope" % shop)
    if status != 404:
        fail("an unknown path answered %d, want 404" % status)
    status, _ = get("http://%s/checkout?user=big" % shop, {"x-big": "v" * 20000})
    if status != 431:
        fail("a 20 KB header answered %d, want 431" % status)

    wait_until("every trace to be decided", lambda: (
        metric_sum(metrics(admin_port), "tailtrace_traces_decided_total") >= len(sent) and
        metrics(admin_port)["tailtrace_traces_held"] == 0), 60, admin_port)
    for p in procs:
        p.send_signal(signal.SIGTERM)
        if p.wait(timeout=15) != 0:
            fail("a service exited with %d on SIGTERM" % p.returncode)
    collector.send_signal(signal.SIGTERM)
    if collector.wait(timeout=30) != 0:
        fail("the collector exited with %d" % collector.returncode)

    by_trace = {}
    for line in open(traces_file):
        for res, scope, sp in spans_of(json.loads(line)):
            by_trace.setdefault(sp["traceId"], []).append((res.get("service.name"), scope, sp))

    kept_ok = dropped_ok = 0
    for i, (cat, query, headers) in enumerate(sent):
        _, tid, root_sid = results[i]
        got = by_trace.pop(tid, [])
        keep = cat != "ok" or ratio_keeps(tid, RATIO)
        if not keep:
            if got:
                fail("ok trace %s should have been dropped (ratio), %d spans kept" %
                     (tid, len(got)))
            dropped_ok += 1
            continue
        kept_ok += cat == "ok"
        check_trace(cat, query, headers, tid, root_sid, got)
    if by_trace:
        fail("kept traces that were never sent: %s" % sorted(by_trace)[:3])
    n_ok = sum(1 for s in sent if s[0] == "ok")
    if dropped_ok <= n_ok // 2:
        fail("only %d of %d ok traces dropped at ratio %g" % (dropped_ok, n_ok, RATIO))
    print("PASS: %d failing and %d slow checkouts kept whole across shop and orders; ok: %d kept "
          "by the ratio, %d dropped" % (sum(1 for s in sent if s[0] == "error"),
                                        sum(1 for s in sent if s[0] == "slow"), kept_ok,
                                        dropped_ok))


def check_trace(cat, query, headers, tid, root_sid, got):
    where = "%s trace %s (%s)" % (cat, tid, query)
    names = sorted((svc, sp["name"]) for svc, _, sp in got)
    want = sorted([("shop", "GET /checkout"), ("shop", "validate cart"), ("shop", "GET /orders"),
                   ("orders", "GET /orders"), ("orders", "plan order query"),
                   ("orders", "SELECT shop.orders")])
    if names != want:
        fail("%s incomplete or duplicated: %s" % (where, names))
    span = {(svc, sp["name"]): sp for svc, _, sp in got}
    checkout = span[("shop", "GET /checkout")]
    call = span[("shop", "GET /orders")]
    server = span[("orders", "GET /orders")]
    db = span[("orders", "SELECT shop.orders")]
    # Parent links, as the services make them: shop's server span is the root (or the caller's
    # span's child), orders' server span is the child of shop's client span.
    caller = headers.get("traceparent", "")
    want_root_parent = caller.split("-")[2] if re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]",
                                                            caller) else ""
    if want_root_parent and tid != caller.split("-")[1]:
        fail("%s: the caller's trace %s was not continued" % (where, caller))
    if caller and not want_root_parent and tid == caller.split("-")[1].lower():
        fail("%s: a malformed traceparent was continued" % where)
    if checkout["spanId"] != root_sid:
        fail("%s: traceresponse names span %s, the checkout span is %s" %
             (where, root_sid, checkout["spanId"]))
    links = [(checkout, want_root_parent), (span[("shop", "validate cart")], checkout["spanId"]),
             (call, checkout["spanId"]), (server, call["spanId"]),
             (span[("orders", "plan order query")], server["spanId"]), (db, server["spanId"])]
    for sp, parent in links:
        if sp.get("parentSpanId", "") != parent:
            fail("%s: span %r has parent %r, want %r" % (where, sp["name"],
                                                         sp.get("parentSpanId"), parent))
    kinds = {"GET /checkout": 2, "validate cart": 1, "plan order query": 1,
             "SELECT shop.orders": 3}
    for (svc, name), sp in span.items():
        want_kind = kinds.get(name, 3 if svc == "shop" else 2)
        if sp.get("kind") != want_kind:
            fail("%s: %s span %r has kind %r, want %d" % (where, svc, name, sp.get("kind"),
                                                          want_kind))
        a = span_attrs(sp)
        rate = 1 if cat != "ok" else round(1 / RATIO)
        if a.get("SampleRate") != rate:
            fail("%s: span %r SampleRate %r, want %d" % (where, name, a.get("SampleRate"), rate))
    if span_attrs(db).get("db.system") != "postgresql":
        fail("%s: db span without db.system: %r" % (where, span_attrs(db)))
    # Baggage crossed both services: the user id the caller sent, or the one shop put in.
    user = re.search(r"user=([^&]+)", query)
    want_user = (re.search(r"user\.id=([^,]+)", headers["baggage"]).group(1)
                 if "baggage" in headers else user.group(1))
    for sp in (checkout, server):
        if span_attrs(sp).get("enduser.id") != want_user:
            fail("%s: %r enduser.id %r, want %r (baggage)" %
                 (where, sp["name"], span_attrs(sp).get("enduser.id"), want_user))
    err = [name for (_, name), sp in span.items() if sp.get("status", {}).get("code") == 2]
    if cat == "error":
        if sorted(err) != sorted(["GET /checkout", "GET /orders", "GET /orders",
                                  "SELECT shop.orders"]):
            fail("%s: spans with status ERROR: %s" % (where, err))
        if not any(e.get("name") == "exception" for e in db.get("events", [])):
            fail("%s: the db span carries no exception event" % where)
        if span_attrs(checkout).get("http.response.status_code") != 502:
            fail("%s: checkout http.response.status_code %r" %
                 (where, span_attrs(checkout).get("http.response.status_code")))
    elif err:
        fail("%s: spans with status ERROR: %s" % (where, err))
    if cat == "slow":
        start = min(int(sp["startTimeUnixNano"]) for _, _, sp in got)
        end = max(int(sp["endTimeUnixNano"]) for _, _, sp in got)
        if end - start < SLOW_NS:
            fail("%s lasted %d ns, under the latency threshold" % (where, end - start))


def run_demo(env, interrupt=False):
    """Runs `make demo` on this build tree (an up-to-date build is a no-op), or with interrupt
    examples/demo.sh itself, sending it SIGINT once traffic is flowing."""
    argv = (["bash", os.path.join(SRC, "examples", "demo.sh"), BUILD] if interrupt else
            ["make", "-s", "-C", SRC, "demo", "BUILD=" + BUILD])
    if not interrupt:
        # Run as a user would: not as a sub-make of `make test` (its jobserver is not ours).
        env = {k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    _STARTED.append(p)
    out = []
    for line in p.stdout:
        sys.stdout.write("demo.sh: " + line)
        out.append(line)
        if interrupt and line.startswith("demo: sending checkouts"):
            p.send_signal(signal.SIGINT)
            interrupt = False
    try:
        rc = p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        fail("%s did not finish within 90 s" % argv[-2])
    return rc, "".join(out)


def script():
    require()
    work = new_workdir()
    addrs = {k: "127.0.0.1:%d" % free_port() for k in
             ("TT_DEMO_OTLP_HTTP", "TT_DEMO_OTLP_GRPC", "TT_DEMO_ADMIN", "TT_DEMO_SHOP",
              "TT_DEMO_ORDERS")}
    env = dict(os.environ, DEMO_SECONDS="2", TT_DEMO_DIR=os.path.join(work, "demo"), **addrs)
    rc, out = run_demo(env)
    if rc != 0:
        fail("make demo exited with %d" % rc)
    m = re.search(r"sent (\d+) checkouts: (\d+) ok, (\d+) failing, (\d+) slow", out)
    kept = re.search(r"traces kept\s+(\d+)\s+\(by reason: (.*)\)", out)
    dropped = re.search(r"traces dropped\s+(\d+)\s+\(by reason: (.*)\)", out)
    received = re.search(r"traces received\s+(\d+)", out)
    if not (m and kept and dropped and received):
        fail("demo.sh's summary lacks the sent/kept/dropped lines")
    sent, ok, failing, slow = map(int, m.groups())
    reasons = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", kept.group(2)))
    if failing < 1 or slow < 1:
        fail("demo.sh sent no failing or no slow checkout")
    if reasons.get("errors") != failing or reasons.get("latency") != slow:
        fail("kept by reason %r, want errors %d and latency %d" % (reasons, failing, slow))
    if int(received.group(1)) != sent or int(kept.group(1)) + int(dropped.group(1)) != sent:
        fail("received %s, kept %s + dropped %s, for %d sent" % (received.group(1), kept.group(1),
                                                               dropped.group(1), sent))
    path = re.search(r"kept traces \(OTLP/JSON, one request per line\): (\S+)", out)
    if not path or not os.path.isfile(path.group(1)):
        fail("demo.sh does not name an existing file of kept traces")
    tids = set()
    for line in open(path.group(1)):
        for _, _, sp in spans_of(json.loads(line)):
            tids.add(sp["traceId"])
    if len(tids) != int(kept.group(1)):
        fail("the file holds %d traces, the summary says %s kept" % (len(tids), kept.group(1)))
    for k, addr in addrs.items():
        if port_open(addr):
            fail("something still listens on %s (%s) after demo.sh exited" % (addr, k))

    # Ctrl-C in the middle of the traffic: every process the script started goes.
    env["TT_DEMO_DIR"] = os.path.join(work, "demo-interrupted")
    env["DEMO_SECONDS"] = "30"
    rc, out = run_demo(env, interrupt=True)
    if rc == 0 or "demo: interrupted" not in out:
        fail("demo.sh exited with %d after SIGINT, without saying it was interrupted" % rc)
    for k, addr in addrs.items():
        if port_open(addr):
            fail("something still listens on %s (%s) after demo.sh was interrupted" % (addr, k))
    print("PASS: demo.sh sent %d checkouts (%d ok, %d failing, %d slow), reported %s kept (%s) "
          "and %s dropped, and stopped everything, also on SIGINT" %
          (sent, ok, failing, slow, kept.group(1), kept.group(2), dropped.group(1)))


if __name__ == "__main__":
    scenarios = {"services": services, "script": script}
    if len(sys.argv) != 2 or sys.argv[1] not in scenarios:
        fail("usage: test_demo_e2e.py services|script")
    scenarios[sys.argv[1]]()
