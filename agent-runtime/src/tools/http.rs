//! HTTP tools: the input as a JSON body (or, for GET and DELETE, as query parameters), the
//! response as the result.

use std::sync::Arc;

use agentry_crds::runtime_config::HttpToolConfig;
use futures::future::BoxFuture;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use super::auth::Auth;
use super::{Built, Call, Setup, ToolKind, ToolsError, read_capped};
use crate::bedrock::excerpt;
use crate::conversation::{ResultContent, ResultStatus, ToolResult};

/// An http tool: one endpoint, its method and headers.
struct HttpTool {
    client: reqwest::Client,
    url: String,
    method: reqwest::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    auth: Auth,
}

pub(super) fn build(
    setup: &Setup<'_>,
    config: &HttpToolConfig,
    headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Built, ToolsError> {
    let kind = Arc::new(HttpTool {
        client: setup.client.clone(),
        url: config.url.clone(),
        method: reqwest::Method::from_bytes(config.method.as_str().as_bytes())
            .unwrap_or(reqwest::Method::POST),
        headers,
        auth: setup.auth(config.auth.as_ref())?,
    });
    setup.offer_one(
        kind.clone(),
        config.input_schema.clone(),
        config.timeout_seconds,
        "http",
    );
    Ok(Built { kind, task: None })
}

impl ToolKind for HttpTool {
    fn kind(&self) -> &'static str {
        "http"
    }

    fn call<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, ToolResult> {
        Box::pin(self.send(call))
    }
}

/// Builds the request of one call: the input as query parameters (GET, DELETE) or JSON body.
fn request(
    client: &reqwest::Client,
    url: &str,
    method: &reqwest::Method,
    headers: &[(HeaderName, HeaderValue)],
    input: &Value,
) -> Result<reqwest::Request, String> {
    let mut target =
        reqwest::Url::parse(url).map_err(|e| format!("the tool's URL is invalid: {e}"))?;
    let query = *method == reqwest::Method::GET || *method == reqwest::Method::DELETE;
    if query && let Value::Object(map) = input {
        let mut pairs = target.query_pairs_mut();
        for (k, v) in map {
            match v {
                Value::String(s) => pairs.append_pair(k, s),
                Value::Null => continue,
                other => pairs.append_pair(k, &other.to_string()),
            };
        }
    }
    let mut request = client.request(method.clone(), target);
    for (name, value) in headers {
        request = request.header(name.clone(), value.clone());
    }
    if !query {
        request = request
            .header(CONTENT_TYPE, "application/json")
            .body(input.to_string());
    }
    request.build().map_err(|e| {
        format!(
            "the tool's request could not be built: {}",
            crate::error_chain(&e)
        )
    })
}

impl HttpTool {
    async fn send(&self, call: Call<'_>) -> ToolResult {
        match request(
            &self.client,
            &self.url,
            &self.method,
            &self.headers,
            call.input,
        ) {
            Ok(request) => execute(&self.client, call.id, request, &self.auth, call.trace).await,
            Err(message) => ToolResult::error(call.id, message),
        }
    }
}

/// Sends one built request, authenticated by `auth`, and turns the response into the result:
/// a JSON object as JSON, other text as text (cut at [`super::MAX_RESPONSE_BYTES`]), an HTTP
/// error status as an error result; `trace` (the call's trace context) goes with it, signed
/// with the rest. Shared by every kind that calls HTTP APIs.
pub(super) async fn execute(
    client: &reqwest::Client,
    id: &str,
    mut request: reqwest::Request,
    auth: &Auth,
    trace: &http::HeaderMap,
) -> ToolResult {
    for (name, value) in trace {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    if !request.headers().contains_key(ACCEPT) {
        request.headers_mut().insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/plain;q=0.9, */*;q=0.5"),
        );
    }
    let request = match auth.apply(request).await {
        Ok(r) => r,
        Err(message) => return ToolResult::error(id, message),
    };
    let response = match client.execute(request).await {
        Ok(r) => r,
        Err(e) => {
            return ToolResult::error(
                id,
                format!(
                    "the tool's endpoint could not be reached: {}",
                    crate::error_chain(&e)
                ),
            );
        }
    };
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let (body, cut) = match read_capped(response).await {
        Ok(b) => b,
        Err(e) => {
            return ToolResult::error(
                id,
                format!(
                    "reading the tool's response failed: {}",
                    crate::error_chain(&e)
                ),
            );
        }
    };
    let text = String::from_utf8_lossy(&body);
    if status.as_u16() >= 400 {
        return ToolResult::error(
            id,
            format!(
                "the tool answered HTTP {}: {}",
                status.as_u16(),
                excerpt(text.trim(), 300)
            ),
        );
    }
    let content = match (is_json && !cut)
        .then(|| serde_json::from_slice::<Value>(&body).ok())
        .flatten()
    {
        // Bedrock takes a JSON object as a json result; anything else is wrapped in one.
        Some(Value::Object(o)) => ResultContent::Json(Value::Object(o)),
        Some(other) => ResultContent::Json(serde_json::json!({ "result": other })),
        None if cut => ResultContent::Text(format!(
            "{text}\n[response cut at {} bytes]",
            super::MAX_RESPONSE_BYTES
        )),
        None => ResultContent::Text(text.into_owned()),
    };
    ToolResult {
        tool_use_id: id.into(),
        content: vec![content],
        status: Some(ResultStatus::Success),
    }
}
