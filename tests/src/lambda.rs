//! A Lambda imitation speaking the real `Invoke` wire format (restJson1), for the runtime's Lambda
//! suites through the real `aws-sdk-lambda`:
//!
//! - request `POST /2015-03-31/functions/{FunctionName}/invocations[?Qualifier=..]`, the event as
//!   the body, `X-Amz-Invocation-Type`; `FunctionName` is a name, a partial or a full ARN,
//!   optionally with `:qualifier`;
//! - success: 200, the result as the body, `X-Amz-Executed-Version`;
//! - function error: 200 with `X-Amz-Function-Error: Unhandled` and
//!   `{"errorType", "errorMessage", "trace"}` as the body;
//! - service errors: the code in `x-amzn-ErrorType`, the body `{"Type": "User"|"Service",
//!   "message": ..}` (404 ResourceNotFoundException, 429 TooManyRequestsException with `Reason`,
//!   500 ServiceException).
//!
//! Functions are scripted by name; each request is recorded with the SigV4 scope it was signed
//! for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// What a function does when invoked.
#[derive(Clone, Debug)]
pub enum Function {
    /// Returns the event it got.
    Echo,
    /// Returns this body (any bytes: JSON or not).
    Returns(Vec<u8>),
    /// Fails: `X-Amz-Function-Error: Unhandled` with this `errorType` and `errorMessage`.
    Fails {
        /// `errorType`.
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
    /// Answers the first `times` invokes with an AWS error (status, code), then behaves as `then`.
    ErrorsThen {
        /// How many invokes fail.
        times: usize,
        /// HTTP status.
        status: u16,
        /// The error code (`TooManyRequestsException`, `ServiceException`).
        code: String,
        /// Afterwards.
        then: Box<Function>,
    },
    /// Waits, then returns the event.
    Slow(Duration),
    /// Throttles the first invoke asking for a wait of this many seconds (`Retry-After`), then
    /// returns the event.
    ThrottledOnceWithRetryAfter(u64),
}

impl Function {
    /// Throttled (429 TooManyRequestsException) `times` times, then `then`.
    pub fn throttled_then(times: usize, then: Function) -> Self {
        Self::ErrorsThen {
            times,
            status: 429,
            code: "TooManyRequestsException".into(),
            then: Box::new(then),
        }
    }

    /// Always throttled.
    pub fn always_throttled() -> Self {
        Self::throttled_then(usize::MAX, Self::Echo)
    }
}

/// One invoke the imitation received.
#[derive(Clone, Debug, PartialEq)]
pub struct Invoke {
    /// `FunctionName` as it came in the path (percent-decoded).
    pub function_name: String,
    /// The function it resolved to (the bare name).
    pub function: String,
    /// `?Qualifier=`, if any.
    pub qualifier: Option<String>,
    /// `X-Amz-Invocation-Type` (absent means `RequestResponse`).
    pub invocation_type: Option<String>,
    /// The event.
    pub payload: Value,
    /// Region and service of the SigV4 `Authorization` header's credential scope, if signed.
    pub signed_for: Option<(String, String)>,
    /// `X-Amzn-Trace-Id`, the caller's trace in X-Ray's format, if sent.
    pub trace_header: Option<String>,
    /// `X-Amz-Client-Context`, base64 as sent, if any.
    pub client_context: Option<String>,
}

#[derive(Default)]
struct Inner {
    functions: Mutex<BTreeMap<String, Function>>,
    seen: Mutex<Vec<Invoke>>,
    calls: Mutex<BTreeMap<String, usize>>,
}

/// The imitation, on a loopback port.
#[derive(Clone)]
pub struct FakeLambda {
    inner: Arc<Inner>,
    url: String,
}

impl FakeLambda {
    /// Starts it with `functions` (bare names) and their behaviour.
    ///
    /// # Panics
    /// When it cannot bind.
    pub async fn start(functions: &[(&str, Function)]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner::default());
        inner
            .functions
            .lock()
            .unwrap()
            .extend(functions.iter().map(|(n, f)| (n.to_string(), f.clone())));
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { inner, url }
    }

    /// Its endpoint (for `endpoint_url` or `AWS_ENDPOINT_URL_LAMBDA`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The invokes received so far.
    pub fn seen(&self) -> Vec<Invoke> {
        self.inner.seen.lock().unwrap().clone()
    }
}

/// The bare function name in `FunctionName` (`orders`, `123456789012:function:orders:live`,
/// `arn:aws:lambda:eu-west-1:123456789012:function:orders`).
fn bare_name(function_name: &str) -> &str {
    let rest = function_name
        .split_once("function:")
        .map_or(function_name, |(_, r)| r);
    rest.split(':').next().unwrap_or(rest)
}

/// Region and service from `Authorization: AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, ...`.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn scope(headers: &HeaderMap) -> Option<(String, String)> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")?
        .split(", ")
        .find_map(|p| p.strip_prefix("Credential="))?;
    let parts: Vec<&str> = credential.split('/').collect();
    (parts.len() == 5 && parts[4] == "aws4_request")
        .then(|| (parts[2].to_string(), parts[3].to_string()))
}

fn aws_error(status: u16, code: &str, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            ("x-amzn-ErrorType", code.to_string()),
            (
                "x-amzn-RequestId",
                "7d4f5a0e-0000-4000-8000-000000000000".into(),
            ),
            ("content-type", "application/json".into()),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn invoke(
    State(s): State<Arc<Inner>>,
    Path(function_name): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let function = bare_name(&function_name).to_string();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.seen.lock().unwrap().push(Invoke {
        function_name: function_name.clone(),
        function: function.clone(),
        qualifier: query.get("Qualifier").cloned(),
        invocation_type: headers
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        payload: payload.clone(),
        signed_for: scope(&headers),
        trace_header: header(&headers, "x-amzn-trace-id"),
        client_context: header(&headers, "x-amz-client-context"),
    });
    let nth = {
        let mut calls = s.calls.lock().unwrap();
        let n = calls.entry(function.clone()).or_default();
        *n += 1;
        *n
    };
    let Some(mut behaviour) = s.functions.lock().unwrap().get(&function).cloned() else {
        return aws_error(
            404,
            "ResourceNotFoundException",
            json!({"Type": "User", "message": format!("Function not found: arn:aws:lambda:us-east-1:123456789012:function:{function}")}),
        );
    };
    if let Function::ThrottledOnceWithRetryAfter(seconds) = behaviour
        && nth == 1
    {
        let mut response = aws_error(
            429,
            "TooManyRequestsException",
            json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "CallerRateLimitExceeded", "retryAfterSeconds": seconds.to_string()}),
        );
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
        return response;
    }
    // Unwrap the scripted failures that are used up by now.
    let mut used = 0;
    while let Function::ErrorsThen {
        times,
        status,
        code,
        then,
    } = behaviour
    {
        if nth - used <= times {
            let body = if status == 429 {
                json!({"Type": "User", "message": "Rate Exceeded.", "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
            } else {
                json!({"Type": "Service", "message": "An internal error occurred."})
            };
            return aws_error(status, &code, body);
        }
        used += times;
        behaviour = *then;
    }
    let version = match query.get("Qualifier").map(String::as_str) {
        None | Some("$LATEST") => "$LATEST",
        // Aliases and versions resolve to a published version.
        Some(_) => "7",
    };
    let ok = |body: Vec<u8>| {
        (
            StatusCode::OK,
            [
                ("x-amz-executed-version", version),
                ("x-amzn-requestid", "7d4f5a0e-0000-4000-8000-000000000001"),
                ("content-type", "application/json"),
            ],
            body,
        )
            .into_response()
    };
    match behaviour {
        Function::Echo | Function::ThrottledOnceWithRetryAfter(_) => ok(body.to_vec()),
        Function::Returns(bytes) => ok(bytes),
        Function::Slow(d) => {
            tokio::time::sleep(d).await;
            ok(body.to_vec())
        }
        Function::Fails {
            error_type,
            message,
        } => (
            StatusCode::OK,
            [
                ("x-amz-executed-version", version),
                ("x-amz-function-error", "Unhandled"),
                ("content-type", "application/json"),
            ],
            json!({"errorType": error_type, "errorMessage": message, "trace": [format!("{error_type}: {message}"), "    at handler (/var/task/index.js:3:11)"]}).to_string(),
        )
            .into_response(),
        Function::ErrorsThen { .. } => aws_error(500, "ServiceException", json!({"Type": "Service", "message": "unreachable script state"})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_in_every_form_resolve_to_the_bare_name() {
        assert_eq!(bare_name("orders"), "orders");
        assert_eq!(bare_name("orders:live"), "orders");
        assert_eq!(bare_name("123456789012:function:orders:7"), "orders");
        assert_eq!(
            bare_name("arn:aws:lambda:eu-west-1:123456789012:function:orders:live"),
            "orders"
        );
    }
}
