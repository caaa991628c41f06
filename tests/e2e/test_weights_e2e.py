#!/usr/bin/python3
"""End-to-end test of sampling weights through tailtrace-collector, with the real OpenTelemetry
JS SDK (weights.js) as a head-sampled client over real sockets on loopback.

The client sends traces whose spans already carry a weight: a tracestate `ot=th:<T>` taken from
an incoming W3C context (the specification's worked examples 1/2, 1/4, 1/3, 0.1 and 0.01 at an
SDK's default precision of 4 hex digits), or a Honeycomb-style `SampleRate` attribute (int, or a
double such as 2.5). The collector keeps errors, and a consistent ratio of 0.5 of the rest. In
the file sink every kept span must carry:
  - after an incoming th: the same th, other tracestate members kept, and SampleRate
    2^56 / (2^56 - T) (rounded down or up when not whole); under the ratio policy the stricter
    of the incoming and the collector's thresholds;
  - after an incoming SampleRate w: SampleRate w (times 2 under the ratio policy), and the
    matching th at full precision, round(2^56 / weight) being the keep share;
  - in one trace whose root came with SampleRate 10 and whose child came with th:c, each span
    its own weight (10 and 4).
Exactly the ratio-policy traces the consistent rule keeps are kept; nothing else arrives.
A missing node, npm package or Python module is a failure, never a skip.

Usage: test_weights_e2e.py PROTOCOL   (env: TT_SOURCE_DIR, TT_COLLECTOR_BIN)
"""
import json
import math
import os
import subprocess
import sys
from fractions import Fraction

from e2e_lib import (SRC, Collector, fail, new_workdir, ratio_keeps, require_env, span_attrs,
                     spans_of)

RATIO = 0.5
M = 1 << 56

CASES = [
    # Kept by the errors policy (the collector's own weight 1): the incoming weight goes out.
    {"name": "th-1/2", "count": 10, "error": True, "tracestate": "ot=th:8,vendor=a"},
    {"name": "th-1/4", "count": 10, "error": True, "tracestate": "ot=th:c,vendor=a"},
    {"name": "th-1/3", "count": 10, "error": True, "tracestate": "ot=th:aaab,vendor=a"},
    {"name": "th-0.1", "count": 10, "error": True, "tracestate": "ot=th:e666,vendor=a"},
    {"name": "th-0.01", "count": 10, "error": True, "tracestate": "ot=th:fd70a,vendor=a"},
    {"name": "rate-2", "count": 10, "error": True, "sampleRate": 2},
    {"name": "rate-4", "count": 10, "error": True, "sampleRate": 4},
    {"name": "rate-3", "count": 10, "error": True, "sampleRate": 3},
    {"name": "rate-10", "count": 10, "error": True, "sampleRate": 10},
    {"name": "rate-100", "count": 10, "error": True, "sampleRate": 100},
    {"name": "rate-2.5", "count": 10, "error": True, "sampleRate": 2.5},
    # Decided by the ratio policy (0.5, th:8).
    {"name": "ratio-th-c", "count": 60, "error": False, "tracestate": "ot=th:c"},
    {"name": "ratio-th-4", "count": 60, "error": False, "tracestate": "ot=th:4"},
    {"name": "ratio-rate-10", "count": 60, "error": False, "sampleRate": 10},
    # One trace, two incoming weights.
    {"name": "mixed", "count": 10, "error": True, "mixed": True, "sampleRate": 10,
     "tracestate": "ot=th:c"},
]


def th_value(text):
    return int(text.ljust(14, "0"), 16)


def th_text(t):
    s = "%014x" % t
    return s.rstrip("0") or "0"


def incoming_th(tracestate):
    for member in tracestate.split(","):
        if member.startswith("ot="):
            for sub in member[3:].split(";"):
                if sub.startswith("th:"):
                    return th_value(sub[3:])
    return None


def compose(t_ours, weight):
    """The threshold after an independent upstream keep of this weight: the keep share
    (2^56 - T) / weight, rounded half up (docs/collector.md, "Incoming weights")."""
    keep = Fraction(M - t_ours) / Fraction(weight)
    keep = max(1, math.floor(keep + Fraction(1, 2)))
    return M - keep


def whole_rates(weight):
    """The SampleRate values a weight may go out as: itself when whole, else its floor or ceiling
    (rounded at random per trace, unbiased)."""
    w = Fraction(weight)
    if w.denominator == 1:
        return {int(w)}
    return {math.floor(w), math.ceil(w)}


def expect(case, weight_kind, t_ours):
    """(tracestate, set of SampleRate values) a kept span of this case must carry."""
    if weight_kind == "tracestate":
        t_in = incoming_th(case["tracestate"])
        t = max(t_in, t_ours)
        others = [m for m in case["tracestate"].split(",") if not m.startswith("ot=")]
        ts = ",".join(["ot=th:" + th_text(t)] + others)
        return ts, whole_rates(Fraction(M, M - t))
    t = compose(t_ours, case["sampleRate"])
    product = Fraction(case["sampleRate"]) * Fraction(M, M - t_ours)
    return "ot=th:" + th_text(t), whole_rates(product)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("grpc", "http/protobuf", "http/json"):
        fail("usage: test_weights_e2e.py grpc|http/protobuf|http/json")
    protocol = sys.argv[1]
    require_env()
    work = new_workdir()
    sink = os.path.join(work, "kept.jsonl")
    cases_path, sent_path = os.path.join(work, "cases.json"), os.path.join(work, "sent.json")
    with open(cases_path, "w") as f:
        json.dump(CASES, f)
    col = Collector(work, """
sink: {type: file, file: {path: "%s", format: json}}
policies:
  - {name: errors, type: errors}
  - {name: rest, type: ratio, ratio: %s}
""" % (sink, RATIO))
    total = sum(c["count"] for c in CASES)
    try:
        env = dict(os.environ, NODE_PATH=os.path.join(SRC, "tests", "js", "node_modules"))
        r = subprocess.run(["node", os.path.join(SRC, "tests", "e2e", "weights.js"), protocol,
                            col.endpoint(protocol), cases_path, sent_path], env=env, timeout=120,
                           capture_output=True, text=True)
        sys.stdout.write(r.stdout)
        if r.returncode != 0:
            sys.stdout.write(r.stderr)
            fail("weights.js exited with %d" % r.returncode)
        col.wait_decided(total)
    finally:
        rc = col.stop()
    if rc != 0:
        fail("the collector exited with %d; log in %s" % (rc, work))

    got = {}
    for line in open(sink):
        for _, _, sp in spans_of(json.loads(line)):
            if sp["spanId"] in got:
                fail("span %s delivered twice" % sp["spanId"])
            got[sp["spanId"]] = sp
    by_name = {c["name"]: c for c in CASES}
    t_ratio = (1 << 56) - round(RATIO * (1 << 56))
    checked, ratio_kept, ratio_sent = 0, 0, 0
    for trace in json.load(open(sent_path)):
        case = by_name[trace["case"]]
        if case["error"]:
            kept, t_ours = True, 0
        else:
            kept, t_ours = ratio_keeps(trace["traceId"], RATIO), t_ratio
            ratio_sent += 1
            ratio_kept += kept
        for s in trace["spans"]:
            sp = got.pop(s["id"], None)
            if not kept:
                if sp is not None:
                    fail("%s: span %s kept, the ratio rule drops its trace %s" %
                         (case["name"], s["id"], trace["traceId"]))
                continue
            if sp is None:
                fail("%s: span %s of trace %s missing from the sink" %
                     (case["name"], s["id"], trace["traceId"]))
            want_ts, want_rates = expect(case, s["weight"], t_ours)
            rate = span_attrs(sp).get("SampleRate")
            if sp.get("traceState") != want_ts or rate not in want_rates:
                fail("%s (%s weight): span %s left with tracestate %r SampleRate %r; want %r and "
                     "one of %s" % (case["name"], s["weight"], s["id"], sp.get("traceState"),
                                    rate, want_ts, sorted(want_rates)))
            checked += 1
    if got:
        fail("the sink holds %d spans that were never sent" % len(got))
    # The ratio cases must have exercised both outcomes (180 traces at 0.5: never all one way
    # except with probability 2^-179).
    if ratio_kept == 0 or ratio_kept == ratio_sent:
        fail("the ratio policy kept %d of %d traces" % (ratio_kept, ratio_sent))
    print("OK %s: %d kept spans carried their combined weight in SampleRate and ot=th; "
          "%d of %d ratio-decided traces kept" % (protocol, checked, ratio_kept, ratio_sent))


if __name__ == "__main__":
    main()
