#!/usr/bin/python3
"""An independent gRPC peer (Python grpcio) for tailtrace's receiver tests.

Usage: grpc_retryinfo_peer.py PORT EXPECTED_CODE EXPECTED_DELAY_SECONDS EXPECTED_MESSAGE

Sends one Export call with a small valid ExportTraceServiceRequest (raw bytes, so no generated
OTLP classes are needed), expects the call to fail with EXPECTED_CODE (a number, e.g. 8 for
RESOURCE_EXHAUSTED), then decodes the `grpc-status-details-bin` trailer with protobuf's own parser
as google.rpc.Status and its first detail as google.rpc.RetryInfo, and checks code, message and
retry delay. google.rpc messages are not shipped with Debian's python3-protobuf, so their
descriptors are built here from the public schema. Exits 0 on success, 1 with a reason otherwise.
"""
import sys

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2
from google.protobuf import message_factory


def build_classes():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)
    f = descriptor_pb2.FileDescriptorProto(name="tt_google_rpc.proto", package="google.rpc",
                                           syntax="proto3")
    f.dependency.extend(["google/protobuf/any.proto", "google/protobuf/duration.proto"])
    T = descriptor_pb2.FieldDescriptorProto
    st = f.message_type.add(name="Status")
    st.field.add(name="code", number=1, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)
    st.field.add(name="message", number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    st.field.add(name="details", number=3, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                 type_name=".google.protobuf.Any")
    ri = f.message_type.add(name="RetryInfo")
    ri.field.add(name="retry_delay", number=1, type=T.TYPE_MESSAGE, label=T.LABEL_OPTIONAL,
                 type_name=".google.protobuf.Duration")
    pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    return (factory.GetPrototype(pool.FindMessageTypeByName("google.rpc.Status")),
            factory.GetPrototype(pool.FindMessageTypeByName("google.rpc.RetryInfo")))


def fail(msg):
    print("grpc_retryinfo_peer: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    port, want_code, want_delay, want_msg = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    Status, RetryInfo = build_classes()
    # ExportTraceServiceRequest{resource_spans{scope_spans{spans{trace_id, span_id, name}}}}
    span = (b"\x0a\x10" + bytes(range(1, 17)) + b"\x12\x08" + bytes(range(1, 9)) + b"\x2a\x02py")
    scope_spans = b"\x12" + bytes([len(span)]) + span
    rs = b"\x12" + bytes([len(scope_spans)]) + scope_spans
    req = b"\x0a" + bytes([len(rs)]) + rs
    with grpc.insecure_channel("127.0.0.1:" + port) as ch:
        export = ch.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        try:
            export(req, timeout=20)
        except grpc.RpcError as e:
            if e.code().value[0] != want_code:
                fail("got %s, want code %d" % (e.code(), want_code))
            if e.details() != want_msg:
                fail("details %r, want %r" % (e.details(), want_msg))
            raw = dict(e.trailing_metadata() or ()).get("grpc-status-details-bin")
            if raw is None:
                fail("no grpc-status-details-bin trailer")
            st = Status()
            st.ParseFromString(raw)
            if st.code != want_code or st.message != want_msg:
                fail("Status{code=%d, message=%r}" % (st.code, st.message))
            if len(st.details) != 1:
                fail("%d details, want 1" % len(st.details))
            d = st.details[0]
            if d.type_url != "type.googleapis.com/google.rpc.RetryInfo":
                fail("detail type %r" % d.type_url)
            ri = RetryInfo()
            ri.ParseFromString(d.value)
            got = ri.retry_delay.seconds + ri.retry_delay.nanos / 1e9
            if abs(got - want_delay) > 1e-6:
                fail("retry delay %.3f s, want %.3f s" % (got, want_delay))
            print("grpc_retryinfo_peer: ok, %s with RetryInfo %.3f s" % (e.code(), got))
            return
        fail("the call succeeded, expected an error")


if __name__ == "__main__":
    main()
