//! Lambda tools: a synchronous `Invoke` (`RequestResponse`) through the official SDK, the tool
//! input as the event, the function's result as the tool result. Throttling and 5xx answers are
//! retried with backoff, but only within the call's timeout; a function error (the
//! `X-Amz-Function-Error` header) is an error result carrying the function's `errorType` and
//! `errorMessage`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentry_crds::runtime_config::LambdaToolConfig;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{Built, Call, MAX_RESPONSE_BYTES, Setup, ToolKind, ToolsError};
use crate::bedrock::excerpt;
use crate::conversation::{ResultContent, ResultStatus, ToolResult};

/// First wait after a throttled or failed attempt; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A lambda tool: one function (and qualifier) in one region.
struct LambdaTool {
    client: aws_sdk_lambda::Client,
    function: String,
    qualifier: Option<String>,
}

pub(super) fn build(setup: &Setup<'_>, config: &LambdaToolConfig) -> Result<Built, ToolsError> {
    let aws = setup
        .aws
        .ok_or_else(|| ToolsError::NoAws(setup.name.to_string()))?;
    let mut builder = aws_sdk_lambda::config::Builder::from(&aws.sdk)
        // Retries are this module's, bounded by the call's deadline (the SDK's are not).
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled());
    if let Some(region) = region(config) {
        builder = builder.region(aws_sdk_lambda::config::Region::new(region));
    }
    let kind = Arc::new(LambdaTool {
        client: aws_sdk_lambda::Client::from_conf(builder.build()),
        function: config.function_name.clone(),
        qualifier: config.qualifier.clone(),
    });
    setup.offer_one(
        kind.clone(),
        config.input_schema.clone(),
        config.timeout_seconds,
        "lambda",
    );
    Ok(Built { kind, task: None })
}

/// The tool's region, else the one in a full ARN (`arn:aws:lambda:<region>:...`); `None` leaves
/// it to the chain.
fn region(config: &LambdaToolConfig) -> Option<String> {
    config.region.clone().or_else(|| {
        let name = &config.function_name;
        name.starts_with("arn:")
            .then(|| name.split(':').nth(3))
            .flatten()
            .filter(|r| !r.is_empty())
            .map(String::from)
    })
}

impl ToolKind for LambdaTool {
    fn kind(&self) -> &'static str {
        "lambda"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(self.invoke(call))
    }
}

impl LambdaTool {
    async fn invoke(&self, call: Call<'_>) -> ToolResult {
        let deadline = Instant::now() + call.timeout;
        let payload = Blob::new(call.input.to_string());
        let trace = TraceHeaders::of(call.trace);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let invoke = self
                .client
                .invoke()
                .function_name(&self.function)
                .set_qualifier(self.qualifier.clone())
                .invocation_type(InvocationType::RequestResponse)
                .payload(payload.clone());
            let send: BoxFuture<'_, _> = match &trace {
                None => Box::pin(invoke.send()),
                Some(t) => {
                    let xray = t.xray.clone();
                    Box::pin(
                        invoke
                            .client_context(t.client_context.clone())
                            .customize()
                            .mutate_request(move |r| {
                                r.headers_mut().insert(XRAY_HEADER, xray.clone());
                            })
                            .send(),
                    )
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let Ok(outcome) = tokio::time::timeout(remaining, send).await else {
                return ToolResult::error(
                    call.id,
                    format!(
                        "the Lambda function {} did not answer within {} ms",
                        self.function,
                        call.timeout.as_millis()
                    ),
                );
            };
            let error = match outcome {
                Ok(out) => return result(call.id, &self.function, &out),
                Err(e) => e,
            };
            let message = self.describe(&error);
            let Some(wait) = retry_wait(&error, attempt) else {
                return ToolResult::error(call.id, message);
            };
            if Instant::now() + wait >= deadline {
                return ToolResult::error(
                    call.id,
                    format!(
                        "{message} (after {attempt} attempts; no time left to retry within the tool's {} ms timeout)",
                        call.timeout.as_millis()
                    ),
                );
            }
            tracing::debug!(function = %self.function, attempt, wait_ms = wait.as_millis() as u64, "lambda invoke retried");
            tokio::time::sleep(wait).await;
        }
    }

    /// A failed invoke, for the model: the function and AWS's error code and message.
    fn describe(&self, error: &SdkError<InvokeError>) -> String {
        let function = &self.function;
        match error {
            SdkError::ServiceError(se) => {
                let err = se.err();
                let code = err.code().unwrap_or("an unnamed AWS error");
                let hint = match code {
                    "AccessDeniedException" => {
                        " (the pod's IAM role needs lambda:InvokeFunction on this function)"
                    }
                    "ResourceNotFoundException" => " (check functionName, qualifier and region)",
                    _ => "",
                };
                format!(
                    "invoking the Lambda function {function} failed: {code} (HTTP {}): {}{hint}",
                    se.raw().status().as_u16(),
                    excerpt(err.message().unwrap_or("no message"), 500)
                )
            }
            other => match credentials_error(other) {
                Some(e) => format!(
                    "invoking the Lambda function {function} failed: the pod's AWS credentials could not be loaded: {}",
                    crate::error_chain(e)
                ),
                None => format!(
                    "invoking the Lambda function {function} failed: {}",
                    crate::error_chain(other)
                ),
            },
        }
    }
}

/// The credentials failure somewhere in an SDK error's chain (the SDK reports it as a dispatch
/// failure, which alone does not say what to fix).
fn credentials_error<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> Option<&'e aws_credential_types::provider::error::CredentialsError> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref() {
            return Some(c);
        }
        next = e.source();
    }
    None
}

/// How long to wait before the next attempt, if the error is worth retrying: throttling (429)
/// and server errors (5xx). At least what `Retry-After` asks; exponential with jitter otherwise.
fn retry_wait(error: &SdkError<InvokeError>, attempt: u32) -> Option<Duration> {
    let status = match error {
        SdkError::ServiceError(se) => se.raw().status().as_u16(),
        SdkError::ResponseError(re) => re.raw().status().as_u16(),
        _ => return None,
    };
    if status != 429 && status < 500 {
        return None;
    }
    let exponential = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    // Equal jitter: half fixed, half spread, so throttled callers do not retry in lockstep.
    let half = exponential / 2;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let spread = half.mul_f64(f64::from(nanos % 1000) / 1000.0);
    let asked = match error.as_service_error() {
        Some(InvokeError::TooManyRequestsException(t)) => t
            .retry_after_seconds()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
        _ => None,
    };
    Some((half + spread).max(asked.unwrap_or_default()))
}

/// The result of an invoke that reached the function.
fn result(id: &str, function: &str, out: &InvokeOutput) -> ToolResult {
    let payload: &[u8] = out.payload().map_or(&[], |b| b.as_ref());
    if let Some(kind) = out.function_error() {
        return ToolResult::error(id, function_error(function, kind, payload));
    }
    tracing::debug!(
        function,
        version = out.executed_version().unwrap_or("?"),
        bytes = payload.len(),
        "lambda invoked"
    );
    ToolResult {
        tool_use_id: id.into(),
        content: vec![content(payload)],
        status: Some(ResultStatus::Success),
    }
}

/// The function's result: a JSON object as JSON, other JSON wrapped as `{"result": ...}`,
/// anything else as text; over [`MAX_RESPONSE_BYTES`] cut, as text, with a note.
fn content(payload: &[u8]) -> ResultContent {
    if payload.len() > MAX_RESPONSE_BYTES {
        return ResultContent::Text(format!(
            "{}\n[result cut at {MAX_RESPONSE_BYTES} of {} bytes]",
            String::from_utf8_lossy(&payload[..MAX_RESPONSE_BYTES]),
            payload.len()
        ));
    }
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(o)) => ResultContent::Json(Value::Object(o)),
        Ok(other) => ResultContent::Json(serde_json::json!({ "result": other })),
        Err(_) => ResultContent::Text(String::from_utf8_lossy(payload).into_owned()),
    }
}

/// The message of a function error: `errorType` and `errorMessage` from the error payload
/// (`{"errorType", "errorMessage", "trace"}`), or an excerpt of what the payload holds.
fn function_error(function: &str, kind: &str, payload: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(payload).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
    };
    match (field("errorType"), field("errorMessage")) {
        (Some(t), Some(m)) => {
            format!(
                "the Lambda function {function} failed ({kind}): {t}: {}",
                excerpt(m, 1000)
            )
        }
        (None, Some(m)) => format!(
            "the Lambda function {function} failed ({kind}): {}",
            excerpt(m, 1000)
        ),
        _ => format!(
            "the Lambda function {function} failed ({kind}): {}",
            excerpt(String::from_utf8_lossy(payload).trim(), 1000)
        ),
    }
}

/// The largest client context Lambda accepts, base64 included.
const MAX_CLIENT_CONTEXT: usize = 3583;

/// The header the Lambda service reads a caller's trace from (X-Ray's format).
const XRAY_HEADER: &str = "X-Amzn-Trace-Id";

/// How an invoke passes the trace on: the function sees the `Invoke` API call's HTTP headers
/// only through the X-Ray header, which the Lambda service hands to the function (and to
/// X-Ray or an ADOT layer); the W3C `traceparent` and `tracestate` go in the client context's
/// `custom` map, where OpenTelemetry's Lambda instrumentations look for them.
struct TraceHeaders {
    xray: String,
    client_context: String,
}

impl TraceHeaders {
    fn of(trace: &::http::HeaderMap) -> Option<Self> {
        let parent = trace.get("traceparent")?.to_str().ok()?;
        let mut parts = parent.split('-');
        let (_, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if trace_id.len() != 32 || span_id.len() != 16 {
            return None;
        }
        let sampled = u8::from_str_radix(flags, 16).ok()? & 1;
        let xray = format!(
            "Root=1-{}-{};Parent={span_id};Sampled={sampled}",
            &trace_id[..8],
            &trace_id[8..]
        );
        let encode = |state: Option<&str>| {
            let mut custom = serde_json::Map::new();
            custom.insert("traceparent".into(), parent.into());
            if let Some(state) = state {
                custom.insert("tracestate".into(), state.into());
            }
            aws_smithy_types::base64::encode(serde_json::json!({ "custom": custom }).to_string())
        };
        // Lambda refuses a client context over its limit: a long `tracestate` is left out
        // rather than failing the call (the trace itself still goes, in both forms).
        let state = trace.get("tracestate").and_then(|v| v.to_str().ok());
        let client_context = Some(encode(state))
            .filter(|c| c.len() <= MAX_CLIENT_CONTEXT)
            .unwrap_or_else(|| encode(None));
        Some(Self {
            xray,
            client_context,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, region: Option<&str>) -> LambdaToolConfig {
        LambdaToolConfig {
            function_name: name.into(),
            qualifier: None,
            region: region.map(String::from),
            timeout_seconds: 3,
            input_schema: serde_json::json!({"type": "object"}),
        }
    }

    #[test]
    fn the_region_is_the_tools_then_the_arns_then_the_chains() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live";
        assert_eq!(region(&config(arn, None)).as_deref(), Some("eu-west-1"));
        assert_eq!(
            region(&config("orders", Some("us-west-2"))).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(region(&config("123456789012:function:orders", None)), None);
        assert_eq!(region(&config("orders", None)), None);
    }

    #[test]
    fn a_function_error_names_its_type_and_message() {
        let payload =
            br#"{"errorType":"ValueError","errorMessage":"unknown sign WXYZ","trace":["line 1"]}"#;
        assert_eq!(
            function_error("orders", "Unhandled", payload),
            "the Lambda function orders failed (Unhandled): ValueError: unknown sign WXYZ"
        );
        assert!(function_error("orders", "Handled", b"boom").ends_with("(Handled): boom"));
    }

    #[test]
    fn results_are_json_objects_wrapped_json_or_text() {
        assert_eq!(
            content(br#"{"a":1}"#),
            ResultContent::Json(serde_json::json!({"a": 1}))
        );
        assert_eq!(
            content(b"[1,2]"),
            ResultContent::Json(serde_json::json!({"result": [1, 2]}))
        );
        assert_eq!(content(b"plain"), ResultContent::Text("plain".into()));
        let big = vec![b'x'; MAX_RESPONSE_BYTES + 10];
        let ResultContent::Text(t) = content(&big) else {
            panic!("a cut result is text")
        };
        assert!(t.ends_with(&format!(
            "[result cut at {MAX_RESPONSE_BYTES} of {} bytes]",
            MAX_RESPONSE_BYTES + 10
        )));
    }
}
