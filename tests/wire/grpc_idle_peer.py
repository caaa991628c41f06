#!/usr/bin/python3
"""An independent gRPC peer (Python grpcio) for tailtrace's receiver tests: idle calls.

Usage: grpc_idle_peer.py PORT IDLE_CALLS [crowded]

Opens IDLE_CALLS Export calls that send their headers but never a request message (as many as
the receiver has call slots), and expects the receiver to end each of them itself with
DEADLINE_EXCEEDED and its own message (the client deadline is far longer, so a client-side
timeout is told apart by its details). Then one normal Export call must succeed: the idle calls
did not keep the slots. Exits 0 on success, 1 with a reason otherwise.

With `crowded` the receiver's read timeout is long (the test sets a minute): the normal call is
made while the idle calls hold every slot, and must be served because the receiver gives it the
slot of the call that has waited longest (RESOURCE_EXHAUSTED, its own message) instead of
making it wait for the timeout.
"""
import sys
import threading

import grpc

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
WANT = "no request message received in time"
WANT_CROWDED = "no request message while every call slot was taken"


def fail(msg):
    print("grpc_idle_peer: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    port, n = sys.argv[1], int(sys.argv[2])
    crowded = len(sys.argv) > 3 and sys.argv[3] == "crowded"
    release = threading.Event()
    results = [None] * n

    def never_sends():
        release.wait(60)
        return
        yield b""  # makes this a generator

    def idle(i):
        ch = grpc.insecure_channel("127.0.0.1:" + port)
        try:
            ch.stream_unary(METHOD)(never_sends(), timeout=30)
            results[i] = "succeeded"
        except grpc.RpcError as e:
            results[i] = (e.code(), e.details())
        finally:
            ch.close()

    threads = [threading.Thread(target=idle, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    if crowded:
        crowded_call(port, n, threads, release, results)
        return
    for t in threads:
        t.join(40)
    release.set()
    for r in results:
        if r != (grpc.StatusCode.DEADLINE_EXCEEDED, WANT):
            fail("idle call ended with %r, want DEADLINE_EXCEEDED %r" % (r, WANT))
    normal_call(port, "normal call after the idle ones")
    print("grpc_idle_peer: ok, %d idle calls cancelled by the server, next call served" % n)


def normal_call(port, what):
    # ExportTraceServiceRequest{resource_spans{scope_spans{spans{trace_id, span_id, name}}}}
    span = b"\x0a\x10" + bytes(range(1, 17)) + b"\x12\x08" + bytes(range(1, 9)) + b"\x2a\x02ok"
    ss = b"\x12" + bytes([len(span)]) + span
    rs = b"\x12" + bytes([len(ss)]) + ss
    req = b"\x0a" + bytes([len(rs)]) + rs
    with grpc.insecure_channel("127.0.0.1:" + port) as ch:
        try:
            ch.unary_unary(METHOD)(req, timeout=20)
        except grpc.RpcError as e:
            fail("%s failed: %s %r" % (what, e.code(), e.details()))


def crowded_call(port, n, threads, release, results):
    # Let the idle calls take their slots first (bounded wait; the server decides nothing here).
    release.wait(0.5)
    normal_call(port, "normal call while the idle calls held every slot")
    release.set()  # the remaining idle calls end without a message
    for t in threads:
        t.join(40)
    reclaimed = sum(1 for r in results if r == (grpc.StatusCode.RESOURCE_EXHAUSTED, WANT_CROWDED))
    if reclaimed < 1:
        fail("no idle call gave its slot up: %r" % (results,))
    print("grpc_idle_peer: ok, %d of %d idle calls gave their slot up, normal call served"
          % (reclaimed, n))


if __name__ == "__main__":
    main()
