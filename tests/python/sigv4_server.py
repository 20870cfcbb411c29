"""An HTTP server that checks the SigV4 signature of every request it receives with botocore's own
signer: an implementation independent of the runtime's (the Rust `aws-sigv4` crate).

For each request it rebuilds the request botocore would sign (method, URL with query, the headers
the client says it signed, the body), signs it with the credentials the test gave for the
request's access key, at the request's own `X-Amz-Date`, for the region and service given on the
command line, and compares the `Authorization` header botocore computes with the one received.

- 200 `{"ok": true, "expected", "got", "canonicalRequest", ...}` when they agree, 403 with the
  same fields and `"problems"` when not;
- `GET /__results`: every check so far (a JSON list);
- loopback only; the port, region, service and keys come from the command line.

Beyond the signature it checks what a signature alone cannot: that every header the client sent
is signed (except the few an HTTP client adds after signing), that `host` and `x-amz-date` are,
that `X-Amz-Date` is recent, and, for service `lambda`, that `x-amz-content-sha256` carries the
body's SHA-256 (botocore would otherwise trust the header as it is).
"""

import argparse
import datetime
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# Headers an HTTP client may add after the request was signed.
UNSIGNED_OK = {"authorization", "content-length", "connection", "user-agent", "accept-encoding"}
MAX_SKEW = datetime.timedelta(minutes=5)


class RecordingSigV4Auth(botocore.auth.SigV4Auth):
    """botocore's signer, keeping the canonical request it built (for the test's diagnostics)."""

    canonical = None

    def canonical_request(self, request):
        self.canonical = super().canonical_request(request)
        return self.canonical


class PayloadHashSigV4Auth(RecordingSigV4Auth):
    """Lambda function URLs: the payload hash is sent in X-Amz-Content-SHA256, as S3SigV4Auth
    does, while the path is encoded as for every other service (S3's signer would not)."""

    def _modify_request_before_signing(self, request):
        super()._modify_request_before_signing(request)
        if "X-Amz-Content-SHA256" in request.headers:
            del request.headers["X-Amz-Content-SHA256"]
        request.headers["X-Amz-Content-SHA256"] = self.payload(request)


def parse_authorization(value):
    """`AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=..`"""
    if not value or not value.startswith("AWS4-HMAC-SHA256 "):
        return None
    fields = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        key, _, val = part.strip().partition("=")
        fields[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/__results":
            with self.server.lock:
                self.reply(200, self.server.results)
            return
        self.check()

    def do_POST(self):
        self.check()

    do_PUT = do_POST
    do_PATCH = do_POST
    do_DELETE = do_GET

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def check(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        received = {k.lower(): v for k, v in self.headers.items()}
        got = received.get("authorization", "")
        problems = []
        outcome = {"method": self.command, "path": self.path, "got": got, "expected": None, "canonicalRequest": None}

        auth = parse_authorization(got)
        if auth is None:
            problems.append("no SigV4 Authorization header")
        else:
            signed = auth["SignedHeaders"].split(";")
            access_key = auth["Credential"].split("/")[0]
            unsigned = sorted(set(received) - set(signed) - UNSIGNED_OK)
            if unsigned:
                problems.append(f"headers sent but not signed: {unsigned}")
            for required in ("host", "x-amz-date"):
                if required not in signed:
                    problems.append(f"{required} is not signed")
            if "x-amz-security-token" in received and "x-amz-security-token" not in signed:
                problems.append("x-amz-security-token is sent but not signed")
            if self.server.service == "lambda":
                digest = hashlib.sha256(body).hexdigest()
                if received.get("x-amz-content-sha256") != digest:
                    problems.append(
                        f"x-amz-content-sha256 is {received.get('x-amz-content-sha256')!r}, the body's SHA-256 is {digest}"
                    )
            try:
                when = datetime.datetime.strptime(received.get("x-amz-date", ""), botocore.auth.SIGV4_TIMESTAMP)
                if abs(datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - when) > MAX_SKEW:
                    problems.append(f"X-Amz-Date {received.get('x-amz-date')} is not recent")
            except ValueError:
                problems.append(f"X-Amz-Date {received.get('x-amz-date')!r} is not a SigV4 timestamp")
                when = None
            key = self.server.keys.get(access_key)
            if key is None:
                problems.append(f"unknown access key {access_key}")
            elif when is not None:
                outcome.update(self.expected(signed, received, body, key, access_key, when))
                if outcome["expected"] != got:
                    problems.append("the signature differs from botocore's")

        outcome["ok"] = not problems
        outcome["problems"] = problems
        with self.server.lock:
            self.server.results.append(outcome)
        self.reply(200 if outcome["ok"] else 403, outcome)

    def expected(self, signed, received, body, key, access_key, when):
        """The Authorization header botocore computes for this request."""
        headers = {name: received[name] for name in signed if name in received and name != "authorization"}
        # botocore adds the date and the token itself, from the time and the credentials.
        headers.pop("x-amz-date", None)
        headers.pop("x-amz-security-token", None)
        headers.pop("x-amz-content-sha256", None)
        url = f"http://{received.get('host', '')}{self.path}"
        request = AWSRequest(method=self.command, url=url, headers=headers, data=body)
        credentials = Credentials(access_key, key["secret"], key.get("token"))
        cls = PayloadHashSigV4Auth if self.server.service == "lambda" else RecordingSigV4Auth
        signer = cls(credentials, self.server.service, self.server.region)
        # Sign at the request's own time: botocore reads the clock through this function.
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
        return {"expected": request.headers["Authorization"], "canonicalRequest": signer.canonical}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--service", required=True, choices=["execute-api", "lambda"])
    parser.add_argument("--keys", required=True, help='{"AKID": {"secret": "..", "token": ".."|null}}')
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.region = args.region
    server.service = args.service
    server.keys = json.loads(args.keys)
    server.results = []
    server.lock = threading.Lock()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
