//! Traces of invocations in the OpenTelemetry GenAI conventions: one `invoke_agent <agent>`
//! span per invocation (a child of the caller's `traceparent` when it sends one), a
//! `chat <model>` span per Bedrock call and an `execute_tool <tool>` span per tool call. Tool
//! calls pass the trace on, so a chain of agents and tools is one trace.
//!
//! Prompts, completions, tool arguments and results are recorded only when
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`. Without an OTLP endpoint no span
//! is made; a caller's trace context is still passed on, unchanged, to the tools.

use std::borrow::Cow;

use agentry_crds::runtime_config::RuntimeConfig;
use agentry_crds::telemetry::{self as shared, TelemetryError, Tracing, propagation};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue, StringValue, Value as OtelValue};
use serde_json::{Value, json};

use crate::conversation::{Block, Message, ResultContent, Role, ToolResult, ToolUse, Usage};
use crate::metrics::{CHAT, PROVIDER};

/// The instrumentation scope of the runtime's spans.
pub const SCOPE: &str = "agentry-runtime";

/// What the runtime traces with: nothing at all when tracing is off.
#[derive(Clone, Debug)]
pub struct Telemetry {
    tracing: Option<Tracing>,
    capture: bool,
    // Shared, so each span's attribute is a reference count, not a copy.
    agent: StringValue,
    model: StringValue,
    invoke_name: Cow<'static, str>,
    chat_name: Cow<'static, str>,
    system: String,
}

/// One span of an invocation, or, when there is none, the context it would have had (a
/// caller's span, or nothing), which tool calls pass on.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    cx: Context,
}

/// The settings of one model call, for its span.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChatSettings {
    /// `maxTokens`.
    pub max_tokens: Option<i32>,
    /// `temperature`.
    pub temperature: Option<f32>,
    /// `topP`.
    pub top_p: Option<f32>,
}

impl Telemetry {
    /// No tracing.
    pub fn off() -> Self {
        Self {
            tracing: None,
            capture: false,
            agent: StringValue::from(""),
            model: StringValue::from(""),
            invoke_name: Cow::Borrowed(""),
            chat_name: Cow::Borrowed(""),
            system: String::new(),
        }
    }

    /// Tracing as the `OTEL_*` variables ask: `service.name` is the Agent's name,
    /// `service.namespace` its namespace, unless `OTEL_SERVICE_NAME` or
    /// `OTEL_RESOURCE_ATTRIBUTES` say otherwise.
    pub fn from_env(config: &RuntimeConfig) -> Result<Self, TelemetryError> {
        let agent = &config.agent;
        let mut resource = vec![
            KeyValue::new("service.namespace", agent.namespace.clone()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("k8s.namespace.name", agent.namespace.clone()),
        ];
        if let Ok(pod) = std::env::var("POD_NAME") {
            resource.push(KeyValue::new("k8s.pod.name", pod));
        }
        let tracing = Tracing::from_env(&agent.name, resource, SCOPE)?;
        let capture = shared::capture_content(|v| std::env::var(v).ok());
        Ok(Self::with_tracing(config, tracing, capture))
    }

    /// Tracing through `tracing` (tests give their own), recording content when `capture`.
    pub fn with_tracing(config: &RuntimeConfig, tracing: Option<Tracing>, capture: bool) -> Self {
        let system = json!([{"type": "text", "content": config.system_prompt}]).to_string();
        let shared = |s: &str| StringValue::from(std::sync::Arc::<str>::from(s));
        Self {
            tracing,
            capture,
            agent: shared(&config.agent.name),
            model: shared(&config.model.id),
            invoke_name: Cow::Owned(format!("invoke_agent {}", config.agent.name)),
            chat_name: Cow::Owned(format!("chat {}", config.model.id)),
            system,
        }
    }

    /// Whether spans are made.
    pub fn on(&self) -> bool {
        self.tracing.is_some()
    }

    /// Exports what is queued and stops; blocks, so it runs on a blocking thread.
    pub async fn shutdown(&self) {
        if let Some(t) = self.tracing.clone() {
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
    }

    fn start(
        &self,
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Option<Context> {
        let tracer = self.tracing.as_ref()?.tracer();
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        Some(parent.with_span(span))
    }

    /// The span of one invocation arriving with `headers`, spoken in `protocol`.
    pub fn invoke_agent(
        &self,
        headers: &http::HeaderMap,
        protocol: &'static str,
        request_id: &str,
    ) -> Trace {
        let parent = propagation::extract(headers);
        if self.tracing.is_none() {
            return Trace { cx: parent };
        }
        let attributes = vec![
            KeyValue::new("gen_ai.operation.name", "invoke_agent"),
            KeyValue::new("gen_ai.provider.name", PROVIDER),
            KeyValue::new("gen_ai.agent.name", self.agent.clone()),
            KeyValue::new("gen_ai.request.model", self.model.clone()),
            KeyValue::new("agentry.protocol", protocol),
            KeyValue::new("agentry.request_id", request_id.to_string()),
        ];
        let cx = self.start(
            &parent,
            self.invoke_name.clone(),
            SpanKind::Server,
            attributes,
        );
        Trace {
            cx: cx.unwrap_or(parent),
        }
    }

    /// The span of one model call under `parent`, sending `messages` with `settings` (asked
    /// for only when there is a span).
    pub fn chat(
        &self,
        parent: &Trace,
        settings: impl FnOnce() -> ChatSettings,
        messages: &[Message],
    ) -> Trace {
        if self.tracing.is_none() {
            return parent.clone();
        }
        let settings = settings();
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", CHAT),
            KeyValue::new("gen_ai.provider.name", PROVIDER),
            KeyValue::new("gen_ai.request.model", self.model.clone()),
        ];
        if let Some(n) = settings.max_tokens {
            attributes.push(KeyValue::new("gen_ai.request.max_tokens", i64::from(n)));
        }
        if let Some(t) = settings.temperature {
            attributes.push(KeyValue::new("gen_ai.request.temperature", f64::from(t)));
        }
        if let Some(p) = settings.top_p {
            attributes.push(KeyValue::new("gen_ai.request.top_p", f64::from(p)));
        }
        if self.capture {
            attributes.push(KeyValue::new(
                "gen_ai.system_instructions",
                self.system.clone(),
            ));
            attributes.push(KeyValue::new(
                "gen_ai.input.messages",
                Value::Array(messages.iter().map(message).collect()).to_string(),
            ));
        }
        match self.start(
            &parent.cx,
            self.chat_name.clone(),
            SpanKind::Client,
            attributes,
        ) {
            Some(cx) => Trace { cx },
            None => parent.clone(),
        }
    }

    /// Records a model reply on its `chat` span.
    pub fn chat_reply(
        &self,
        span: &Trace,
        reply_content: &[Block],
        stop_reason: &str,
        usage: Usage,
        request_id: Option<&str>,
    ) {
        if !span.recording() {
            return;
        }
        let s = span.cx.span();
        // The conventions count every input token; Bedrock's inputTokens leave out cached ones.
        let input =
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens;
        s.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", count(input)));
        s.set_attribute(KeyValue::new(
            "gen_ai.usage.output_tokens",
            count(usage.output_tokens),
        ));
        if usage.cache_read_input_tokens > 0 {
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.cache_read.input_tokens",
                count(usage.cache_read_input_tokens),
            ));
        }
        if usage.cache_write_input_tokens > 0 {
            s.set_attribute(KeyValue::new(
                "gen_ai.usage.cache_creation.input_tokens",
                count(usage.cache_write_input_tokens),
            ));
        }
        s.set_attribute(KeyValue::new(
            "gen_ai.response.finish_reasons",
            OtelValue::Array(opentelemetry::Array::String(vec![
                stop_reason.to_string().into(),
            ])),
        ));
        if let Some(id) = request_id {
            s.set_attribute(KeyValue::new("aws.request_id", id.to_string()));
        }
        if self.capture {
            let out = json!([{
                "role": "assistant",
                "parts": reply_content.iter().map(part).collect::<Vec<_>>(),
                "finish_reason": stop_reason,
            }]);
            s.set_attribute(KeyValue::new("gen_ai.output.messages", out.to_string()));
        }
    }

    /// The span of one tool call under `parent`; `kind` is the tool's kind (`http`, `lambda`,
    /// `mcp`, ...).
    pub fn execute_tool(
        &self,
        parent: &Trace,
        call: &ToolUse,
        kind: impl FnOnce() -> &'static str,
    ) -> Trace {
        if self.tracing.is_none() {
            return parent.clone();
        }
        let kind = kind();
        let mut attributes = vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("gen_ai.tool.name", call.name.clone()),
            KeyValue::new("gen_ai.tool.type", "extension"),
            KeyValue::new("gen_ai.tool.call.id", call.tool_use_id.clone()),
            KeyValue::new("agentry.tool.kind", kind),
        ];
        if self.capture {
            attributes.push(KeyValue::new(
                "gen_ai.tool.call.arguments",
                call.input.to_string(),
            ));
        }
        let name = format!("execute_tool {}", call.name);
        match self.start(&parent.cx, name, SpanKind::Internal, attributes) {
            Some(cx) => Trace { cx },
            None => parent.clone(),
        }
    }

    /// Records a tool result on its `execute_tool` span (an error result is an error).
    pub fn tool_result(&self, span: &Trace, result: &ToolResult) {
        if !span.recording() {
            return;
        }
        if self.capture {
            span.cx.span().set_attribute(KeyValue::new(
                "gen_ai.tool.call.result",
                Value::Array(result.content.iter().map(result_content).collect()).to_string(),
            ));
        }
        if result.status == Some(crate::conversation::ResultStatus::Error) {
            // The error text is tool output (a response body, a function's message): content,
            // recorded only when content is.
            let text = if self.capture {
                result.content.iter().find_map(|c| match c {
                    ResultContent::Text(t) => Some(t.clone()),
                    ResultContent::Json(_) => None,
                })
            } else {
                None
            };
            span.fail(
                "tool_error",
                text.unwrap_or_else(|| "the tool call returned an error result".into()),
            );
        }
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::off()
    }
}

impl Trace {
    /// The OpenTelemetry context: this span (or the caller's), for log lines and children.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Whether there is no trace at all (no span of ours, no caller's).
    pub fn is_empty(&self) -> bool {
        !self.cx.has_active_span()
    }

    /// Whether this is a span of ours being recorded.
    pub fn recording(&self) -> bool {
        self.cx.has_active_span() && self.cx.span().is_recording()
    }

    /// The `traceparent` (and `tracestate`) a downstream call carries: this span as its
    /// parent; empty when there is no trace at all.
    pub fn headers(&self) -> http::HeaderMap {
        propagation::headers(&self.cx)
    }

    /// Adds attributes (built only when the span is recorded).
    pub fn record(&self, attributes: impl FnOnce() -> Vec<KeyValue>) {
        if self.recording() {
            let s = self.cx.span();
            for kv in attributes() {
                s.set_attribute(kv);
            }
        }
    }

    /// Marks it failed: `error.type` and an error status with `description`.
    pub fn fail(&self, error_type: &str, description: impl Into<Cow<'static, str>>) {
        if self.recording() {
            let s = self.cx.span();
            s.set_attribute(KeyValue::new("error.type", error_type.to_string()));
            s.set_status(Status::error(description));
        }
    }

    /// Ends the span (a span dropped without this ends when its last clone goes).
    pub fn end(&self) {
        if self.recording() {
            self.cx.span().end();
        }
    }
}

/// A message in the conventions' `gen_ai.input.messages` shape.
fn message(m: &Message) -> Value {
    let role = match m.role {
        Role::User if m.content.iter().all(|b| matches!(b, Block::ToolResult(_))) => "tool",
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    json!({"role": role, "parts": m.content.iter().map(part).collect::<Vec<_>>()})
}

fn part(b: &Block) -> Value {
    match b {
        Block::Text(t) => json!({"type": "text", "content": t}),
        Block::ToolUse(u) => {
            json!({"type": "tool_call", "id": u.tool_use_id, "name": u.name, "arguments": u.input})
        }
        Block::ToolResult(r) => json!({
            "type": "tool_call_response",
            "id": r.tool_use_id,
            "response": r.content.iter().map(result_content).collect::<Vec<_>>(),
        }),
    }
}

fn result_content(c: &ResultContent) -> Value {
    match c {
        ResultContent::Text(t) => Value::String(t.clone()),
        ResultContent::Json(v) => v.clone(),
    }
}
