#!/usr/bin/python3
"""Golden signals end to end (docs/signals.md): known traffic from the OpenTelemetry JS SDK
(signals_traffic.js) and from a libtailtrace program (signals_client.c) goes through the real
collector over loopback, and its /metrics must count exactly what was sent, before sampling.

Usage: test_signals_e2e.py SCENARIO
  counts   a 5 % ratio drops most traces; requests, errors and every histogram bucket of every
           series equal what the manifests say was sent, the sum within a microsecond a span
  caps     max_series and max_values_per_dimension small: every counted span is in exactly one
           series, the overflow counters equal what the __overflow__ series hold
  deploy   every metric name in deploy/grafana-golden-signals.json's and
           deploy/prometheus-golden-alerts.yaml's PromQL is in a live collector's /metrics;
           with signals.enabled: false none of the families is
"""
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_lib import (SRC, Collector, fail, metric_sum, new_workdir, require_env,  # noqa: E402
                     wait_until)

CLIENT = os.environ.get("TT_SIGNALS_CLIENT", "")

# The collector's bucket bounds in seconds, written out independently of red.c.
BOUNDS = ["0.001", "0.002", "0.003", "0.005", "0.0075", "0.01", "0.015", "0.02", "0.03", "0.05",
          "0.075", "0.1", "0.15", "0.2", "0.3", "0.5", "0.75", "1", "1.5", "2", "3", "5", "7.5",
          "10", "15", "20", "30", "60"]
BOUNDS_NS = [round(float(b) * 1e9) for b in BOUNDS]


def scrape(col):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % col.admin, timeout=5) as r:
        return r.read().decode()


LINE = re.compile(r'^([a-z_]+)\{(.*)\} (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text, family):
    """[(labels dict, value)] of one family's samples (name exactly `family`)."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m.group(1) == family:
            out.append((dict(LABEL.findall(m.group(2))), float(m.group(3))))
    return out


def plain(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def run_js(col, manifest, env_extra):
    env = dict(os.environ)
    env["NODE_PATH"] = os.path.join(SRC, "tests", "js", "node_modules")
    env.update(env_extra)
    r = subprocess.run(["node", os.path.join(SRC, "tests", "e2e", "signals_traffic.js"),
                        "http/protobuf", col.endpoint("http/protobuf"), manifest],
                       env=env, timeout=120, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.returncode != 0:
        fail("signals_traffic.js exited with %d: %s" % (r.returncode, r.stderr[-2000:]))
    return json.load(open(manifest))


def run_c(col, manifest, traces):
    if not CLIENT:
        fail("TT_SIGNALS_CLIENT must name the signals_client program (run through ctest)")
    env = dict(os.environ)
    env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:%d" % col.grpc,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_SERVICE_NAME": "tt-sig-c",
                "OTEL_BSP_MAX_QUEUE_SIZE": "8192", "OTEL_TRACES_SAMPLER": "always_on"})
    r = subprocess.run([CLIENT, str(traces), manifest], env=env, timeout=120,
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("signals_client exited with %d: %s" % (r.returncode, (r.stdout + r.stderr)[-2000:]))
    return json.load(open(manifest))


def send_all(col, work, js_env, c_traces):
    js = run_js(col, os.path.join(work, "js.json"), js_env)
    c = run_c(col, os.path.join(work, "c.json"), c_traces) if c_traces else {"spans": [],
                                                                            "sent": 0}
    sent = js["sent"] + c["sent"]
    wait_until("every span to be accepted",
               lambda: metric_sum(col.metrics(), "tailtrace_spans_accepted_total") >= sent, 30,
               col.admin)
    got = metric_sum(col.metrics(), "tailtrace_spans_accepted_total")
    if got != sent:
        fail("the collector accepted %d spans, %d were sent" % (got, sent))
    return js["spans"] + c["spans"], sent


def key_of(s, dims):
    k = (("service", s["service"]), ("operation", s["operation"]), ("span_kind", s["kind"]),
         ("status_code", s["status"]))
    if dims:
        k += (("http_route", s["route"]),)
    return k


def expected_series(spans, dims):
    want = {}
    for s in spans:
        e = want.setdefault(key_of(s, dims), {"n": 0, "err": 0, "sum": 0, "le": [0] * 29})
        e["n"] += 1
        e["err"] += 1 if s["error"] else 0
        e["sum"] += s["dur_ns"]
        i = next((j for j, b in enumerate(BOUNDS_NS) if s["dur_ns"] <= b), len(BOUNDS_NS))
        for j in range(i, 29):
            e["le"][j] += 1
    return want


def labels_key(labels, dims):
    k = tuple((n, labels[n]) for n in ("service", "operation", "span_kind", "status_code"))
    if dims:
        k += (("http_route", labels["http_route"]),)
    return k


def scenario_counts():
    work = new_workdir()
    kept = os.path.join(work, "kept.jsonl")
    col = Collector(work, """
sink: {type: file, file: {path: "%s"}}
policies:
  - {name: ratio, type: ratio, ratio: 0.05}
signals: {dimensions: [http.route]}
""" % kept)
    spans, sent = send_all(col, work, {"TT_SIG_TRACES": "300"}, 140)
    text = scrape(col)
    want = expected_series(spans, True)
    got = {}
    for fam, field in (("tailtrace_span_requests_total", "n"), ("tailtrace_span_errors_total",
                                                                 "err"),
                       ("tailtrace_span_duration_seconds_count", "n"),
                       ("tailtrace_span_duration_seconds_sum", "sum")):
        for labels, v in samples(text, fam):
            got.setdefault(labels_key(labels, True), {})[fam] = v
    for labels, v in samples(text, "tailtrace_span_duration_seconds_bucket"):
        le = labels.pop("le")
        idx = BOUNDS.index(le) if le != "+Inf" else 28
        got.setdefault(labels_key(labels, True), {}).setdefault("le", [None] * 29)[idx] = v
    if set(got) != set(want):
        fail("series differ:\n  only on /metrics: %s\n  only sent: %s" %
             (sorted(set(got) - set(want)), sorted(set(want) - set(got))))
    buckets = 0
    for k, e in want.items():
        g = got[k]
        if g["tailtrace_span_requests_total"] != e["n"] or \
                g["tailtrace_span_duration_seconds_count"] != e["n"]:
            fail("%s: %s requests counted, %d sent" % (k, g["tailtrace_span_requests_total"],
                                                         e["n"]))
        if g["tailtrace_span_errors_total"] != e["err"]:
            fail("%s: %s errors counted, %d sent" % (k, g["tailtrace_span_errors_total"],
                                                       e["err"]))
        if g["le"] != e["le"]:
            fail("%s: buckets\n  got  %s\n  want %s" % (k, g["le"], e["le"]))
        buckets += 29
        # The JS SDK carries times as float milliseconds: allow a microsecond a span.
        if abs(g["tailtrace_span_duration_seconds_sum"] - e["sum"] / 1e9) > e["n"] * 1e-6:
            fail("%s: sum %s s, sent %s s" % (k, g["tailtrace_span_duration_seconds_sum"],
                                              e["sum"] / 1e9))
    counted = sum(e["n"] for e in want.values())
    # Counted before sampling: the ratio kept few of the traces whose spans were all counted.
    col.wait_decided(300 + 140)
    m = col.metrics()
    rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d" % rc)
    kept_spans = 0
    for line in open(kept):
        for rs in json.loads(line).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                kept_spans += len(ss.get("spans", []))
    dropped = sum(v for k, v in m.items()
                  if k.startswith("tailtrace_traces_decided_total{") and 'decision="drop"' in k)
    if not (dropped > 0.8 * 440 and kept_spans < 0.2 * sent):
        fail("the ratio should have dropped most traces: %d dropped, %d of %d spans kept" %
             (dropped, kept_spans, sent))
    print("OK counts: %d series, %d spans counted of %d sent (%d kept by the 5%% ratio), "
          "%d bucket values exact" % (len(want), counted, sent, kept_spans, buckets))


def scenario_caps():
    work = new_workdir()
    col = Collector(work, "sink: {type: null}\nsignals: {dimensions: [http.route], "
                          "max_series: 4, max_values_per_dimension: 2}\n")
    spans, sent = send_all(col, work, {"TT_SIG_TRACES": "200", "TT_SIG_ROUTES": "5"}, 0)
    text = scrape(col)
    col.stop()
    reqs = samples(text, "tailtrace_span_requests_total")
    total = sum(v for _, v in reqs)
    if total != len(spans):
        fail("%d spans in the series, %d counted spans sent" % (total, len(spans)))
    ovf_all = [v for lb, v in reqs if all(x == "__overflow__" for x in lb.values())]
    named = [(lb, v) for lb, v in reqs if not all(x == "__overflow__" for x in lb.values())]
    ovf_route = sum(v for lb, v in named if lb["http_route"] == "__overflow__")
    routes = {lb["http_route"] for lb, _ in named} - {"__overflow__"}
    by_cap = {lb["cap"]: v for lb, v in samples(text,
                                                "tailtrace_span_signals_overflow_spans_total")}
    series = plain(text, "tailtrace_span_signals_series")
    if len(named) != series or series != 4:
        fail("%d named series on /metrics, the gauge says %s, max_series is 4" %
             (len(named), series))
    if len(routes) > 2:
        fail("more than max_values_per_dimension routes: %s" % sorted(routes))
    if len(ovf_all) != 1 or by_cap.get("series") != ovf_all[0] or ovf_all[0] <= 0:
        fail("the overflow series %s and its counter %s differ (or are empty)" %
             (ovf_all, by_cap.get("series")))
    # A span whose route overflowed counts in cap="dimension" whichever series it went to.
    if by_cap.get("dimension", 0) < ovf_route or by_cap.get("dimension", 0) <= 0:
        fail("cap=dimension counted %s, the named series hold %d spans with an overflowed "
             "route" % (by_cap.get("dimension"), ovf_route))
    print("OK caps: %d spans in 4 series + the overflow series (%d spans); %d spans with an "
          "overflowed route" % (total, ovf_all[0], by_cap["dimension"]))


def names_in_expr(expr):
    """The collector's metric names in a PromQL expression: whole names only, so a recording
    rule's name (level:metric:operations) is not taken for the metric inside it."""
    return set(re.findall(r"(?<![A-Za-z0-9_:])((?:tailtrace|process)_[a-z0-9_]+)(?![A-Za-z0-9_:])",
                          expr))


def scenario_deploy():
    dash = json.load(open(os.path.join(SRC, "deploy", "grafana-golden-signals.json")))
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k in ("expr", "query", "definition") and isinstance(v, str):
                    exprs.append(("dashboard", v))
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(dash)
    import yaml
    rules_path = os.path.join(SRC, "deploy", "prometheus-golden-alerts.yaml")
    rules = yaml.safe_load(open(rules_path))
    nrules = 0
    for g in rules["groups"]:
        for r in g["rules"]:
            exprs.append(("rule " + r.get("alert", r.get("record", "?")), str(r["expr"])))
            nrules += 1
    if len([e for e in exprs if e[0] == "dashboard"]) < 8 or nrules < 2:
        fail("the dashboard or the rules lost their panels or alerts")
    alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
    if len(alerts) < 2:
        fail("expected an error-ratio and a p95 alert, got %s" % alerts)
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}

    work = new_workdir()
    col = Collector(work, "sink: {type: null}\n")
    try:
        text = scrape(col)
    finally:
        col.stop()
    have = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    histograms = set(re.findall(r"^# TYPE (\S+) histogram", text, re.M))
    missing, used = [], set()
    for where, expr in exprs:
        for name in names_in_expr(expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            if name in have or (base in histograms and base != name) or name in recorded:
                used.add(name)
                continue
            missing.append("%s: %s" % (where, name))
    if missing:
        fail("metric names not in /metrics:\n  " + "\n  ".join(sorted(set(missing))))
    # Switched off, the collector counts nothing and exposes none of the families.
    off = Collector(new_workdir(), "sink: {type: null}\nsignals: {enabled: false}\n")
    try:
        off_text = scrape(off)
    finally:
        off.stop()
    if "tailtrace_span_" in off_text:
        fail("signals.enabled: false still exposes golden-signal families")
    for need in ("tailtrace_span_requests_total", "tailtrace_span_errors_total",
                 "tailtrace_span_duration_seconds_bucket", "process_cpu_seconds_total"):
        if need not in used:
            fail("the dashboard and rules never use %s" % need)
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "rules", rules_path], capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            fail("promtool check rules:\n" + r.stdout + r.stderr)
        print("promtool check rules: OK")
    else:
        print("promtool is not installed: the rules' PromQL syntax was not checked")
    print("OK deploy: %d expressions, %d metric names, all in /metrics" % (len(exprs),
                                                                          len(used)))


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("counts", "caps", "deploy"):
        fail("usage: test_signals_e2e.py counts|caps|deploy")
    if sys.argv[1] == "deploy":
        if not SRC or not os.environ.get("TT_COLLECTOR_BIN"):
            fail("TT_SOURCE_DIR and TT_COLLECTOR_BIN must be set (run through ctest)")
    else:
        require_env()
    {"counts": scenario_counts, "caps": scenario_caps, "deploy": scenario_deploy}[sys.argv[1]]()


if __name__ == "__main__":
    main()
