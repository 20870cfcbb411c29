//! The OTLP exporter's HTTP client: the workspace's async reqwest, each export spawned on the
//! tokio runtime (the SDK's batch processor runs exports on its own thread, which has none).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

use super::TelemetryError;

/// Largest collector answer read (an OTLP response is a few bytes; a partial-success message
/// a few hundred).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The export timeout: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`
/// (milliseconds), else 10 s, as the specification defines them.
pub fn timeout(var: impl Fn(&str) -> Option<String>) -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| var(name).and_then(|v| v.trim().parse::<u64>().ok()))
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs separated by commas, values
/// percent-encoded (the W3C baggage format the specification names).
pub fn headers(text: &str) -> Result<HashMap<String, String>, TelemetryError> {
    let mut out = HashMap::new();
    for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
        let invalid = |reason: &str| TelemetryError::Invalid {
            var: "OTEL_EXPORTER_OTLP_HEADERS",
            value: text.to_string(),
            reason: format!("{pair:?}: {reason}; write key=value pairs separated by commas"),
        };
        let (key, value) = pair.split_once('=').ok_or_else(|| invalid("no ="))?;
        let key = key.trim();
        let value = crate::openapi::percent_decode(value.trim())
            .ok_or_else(|| invalid("a bad %-escape"))?;
        if key.is_empty()
            || http::HeaderName::from_bytes(key.as_bytes()).is_err()
            || http::HeaderValue::from_str(&value).is_err()
        {
            return Err(invalid("not a valid HTTP header"));
        }
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

#[derive(Debug)]
pub struct TokioHttp {
    client: reqwest::Client,
    handle: tokio::runtime::Handle,
}

impl TokioHttp {
    pub fn new(handle: tokio::runtime::Handle, timeout: Duration) -> Result<Self, TelemetryError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| TelemetryError::Exporter(format!("building its HTTP client: {e}")))?;
        Ok(Self { client, handle })
    }
}

#[async_trait::async_trait]
impl HttpClient for TokioHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.handle.spawn(async move {
            let mut response = client.execute(request).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = std::mem::take(response.headers_mut());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err::<_, HttpError>(
                        opentelemetry_http::ResponseBodyTooLarge::new().into(),
                    );
                }
                body.extend_from_slice(&chunk);
            }
            Ok(answer.body(Bytes::from(body))?)
        });
        sent.await?
    }
}
