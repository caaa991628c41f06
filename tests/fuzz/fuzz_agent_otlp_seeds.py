#!/usr/bin/python3
"""Writes the seed corpora of the fuzz_agent_otlp_* targets: real answers serialised by the
official protobuf runtime (Debian's python3-protobuf), the shapes OTLP servers send, plus a few
hand-built edge cases. Run with /usr/bin/python3 from the repository root:
    /usr/bin/python3 tests/fuzz/fuzz_agent_otlp_seeds.py
"""
import os
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
corpus = os.path.join(root, "tests", "fuzz", "corpus")
gen = tempfile.mkdtemp()
subprocess.check_call(["protoc", "-I", os.path.join(root, "proto"), "--python_out", gen,
                       "opentelemetry/proto/collector/trace/v1/trace_service.proto",
                       "opentelemetry/proto/trace/v1/trace.proto",
                       "opentelemetry/proto/resource/v1/resource.proto",
                       "opentelemetry/proto/common/v1/common.proto"])
subprocess.check_call(["protoc", "-I", os.path.join(root, "tests", "peers"), "--python_out", gen,
                       "rpc_status.proto"])
sys.path.insert(0, gen)
from google.protobuf import json_format  # noqa: E402
import rpc_status_pb2 as rpc  # noqa: E402
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts  # noqa: E402


def write(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def status(code, message, retry_ms=None, other_detail=False):
    st = rpc.Status(code=code, message=message)
    if retry_ms is not None:
        ri = rpc.RetryInfo()
        ri.retry_delay.seconds = retry_ms // 1000
        ri.retry_delay.nanos = (retry_ms % 1000) * 1000000
        st.details.add(type_url="type.googleapis.com/google.rpc.RetryInfo",
                       value=ri.SerializeToString())
    if other_detail:
        st.details.add(type_url="type.googleapis.com/google.rpc.DebugInfo", value=b"\x0a\x03abc")
    return st


t = "fuzz_agent_otlp_rpc_status"
write(t, "unavailable_retry_1500ms", status(14, "collector overloaded", 1500).SerializeToString())
write(t, "resource_exhausted_retry_0", status(8, "quota", 0).SerializeToString())
write(t, "invalid_argument_no_details", status(3, "bad span").SerializeToString())
write(t, "other_detail", status(9, "failed precondition", None, True).SerializeToString())
write(t, "negative_code", status(-1, "x").SerializeToString())
write(t, "empty", b"")
write(t, "truncated_detail", status(14, "m", 2000).SerializeToString()[:-3])

t = "fuzz_agent_otlp_export_response"
write(t, "empty_success", ts.ExportTraceServiceResponse().SerializeToString() or b"")
r = ts.ExportTraceServiceResponse()
r.partial_success.rejected_spans = 3
r.partial_success.error_message = "3 spans had an invalid trace id"
write(t, "partial_success", r.SerializeToString())
r = ts.ExportTraceServiceResponse()
r.partial_success.error_message = "warning only"
write(t, "warning_only", r.SerializeToString())
r = ts.ExportTraceServiceResponse()
r.partial_success.rejected_spans = -5
write(t, "negative_rejected", r.SerializeToString())
write(t, "unknown_fields", b"\x10\x01\x1a\x02hi" + r.SerializeToString())

t = "fuzz_agent_otlp_json_response"
write(t, "empty_object", "{}")
r = ts.ExportTraceServiceResponse()
r.partial_success.rejected_spans = 7
r.partial_success.error_message = "7 spans rejected: \"bad\" \u00e9"
write(t, "partial_success_protobuf_json", json_format.MessageToJson(r))
write(t, "partial_success_number", '{"partialSuccess":{"rejectedSpans":2,"errorMessage":"x\\ny"}}')
write(t, "partial_success_empty", '{"partialSuccess":{}}')
write(t, "unterminated", '{"partialSuccess":{"rejectedSpans":"12')

t = "fuzz_agent_otlp_json_status"
write(t, "unavailable_retry", json_format.MessageToJson(status(14, "overloaded", 2500)))
write(t, "hand_retry_delay", '{"code":8,"message":"slow down","details":[{"@type":'
      '"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.500s"}]}')
write(t, "message_only", '{"code":3,"message":"bad request \\u0041\\u00e9"}')
write(t, "no_message", '{"code":3}')
write(t, "bad_delay", '{"message":"m","retryDelay":"nans"}')

t = "fuzz_agent_otlp_headers"
write(t, "honeycomb", "x-honeycomb-team=abc123,x-honeycomb-dataset=traces")
write(t, "percent_and_props", " Authorization = Basic%20dXNlcjpwYXNz ;prop , k2=v%2C2")
write(t, "malformed", "novalue,=empty,,k=v,%zz=1")
write(t, "crlf_injection", "k=a%0D%0AX-Injected: 1,ok=1")
write(t, "nul_and_non_ascii", "k=a%00b,n%C3%A9=1,v=%C3%A9")
