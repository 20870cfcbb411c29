"""An OTLP/HTTP trace receiver for the telemetry suites, decoding with the official
`opentelemetry-proto` package (an implementation independent of the Rust SDK that sends).

POST /v1/traces takes an ExportTraceServiceRequest (application/x-protobuf) and keeps every
span; GET /__spans answers them as JSON, one object per span with its resource attributes.
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS = []
REQUESTS = []
LOCK = threading.Lock()


def value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind) if kind else None


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            return self.answer(404, b"not found", "text/plain")
        if self.headers.get("Content-Type") != "application/x-protobuf":
            return self.answer(415, b"protobuf only", "text/plain")
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with LOCK:
            REQUESTS.append({k.lower(): v for k, v in self.headers.items()})
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        SPANS.append(
                            {
                                "resource": resource,
                                "scope": ss.scope.name,
                                "traceId": s.trace_id.hex(),
                                "spanId": s.span_id.hex(),
                                "parentSpanId": s.parent_span_id.hex(),
                                "name": s.name,
                                "kind": s.kind,
                                "attributes": attributes(s.attributes),
                                "status": {"code": s.status.code, "message": s.status.message},
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                            }
                        )
        self.answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def do_GET(self):
        if self.path != "/__spans":
            return self.answer(404, b"not found", "text/plain")
        with LOCK:
            body = json.dumps({"spans": SPANS, "requests": REQUESTS}).encode()
        self.answer(200, body, "application/json")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    # The port it got (0 asks the system for a free one), for the harness to read.
    print(f"LISTENING {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
