//! Logging and traces. Logs: text or JSON lines on stderr, filtered by `RUST_LOG` (default
//! `info`), carrying the trace and span ids of the reconcile they belong to. Traces: one
//! `reconcile` span per reconcile, exported over OTLP/HTTP when the standard `OTEL_*`
//! variables name an endpoint (the chart's `telemetry.otlpEndpoint`); nothing is made when
//! they do not.

use std::sync::OnceLock;

use agentry_crds::telemetry::{TelemetryError, Tracing};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};

use crate::config::LogFormat;

/// The instrumentation scope (and default `service.name`) of the operator's spans.
pub const SCOPE: &str = "agentry-operator";

static TRACING: OnceLock<Tracing> = OnceLock::new();

/// Installs the global log subscriber. Call once, first thing in `main`.
pub fn init(format: LogFormat) {
    agentry_crds::telemetry::logs::init(matches!(format, LogFormat::Json));
}

/// Starts exporting traces when the settings ask for it (call once, on the runtime): the
/// flags of `settings` (the variables the runtimes get, as flags or environment), then the
/// process environment for the other `OTEL_*` variables.
pub fn init_tracing(settings: &[(String, String)]) -> Result<bool, TelemetryError> {
    let resource = vec![KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))];
    let var = |name: &str| {
        settings
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let Some(tracing) = Tracing::from_vars(var, SCOPE, resource, SCOPE)? else {
        return Ok(false);
    };
    let _ = TRACING.set(tracing);
    Ok(true)
}

/// Exports the spans still queued; blocks, so it runs on a blocking thread.
pub async fn shutdown() {
    if let Some(t) = TRACING.get() {
        let t = t.clone();
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
}

/// The span of one reconcile of the Agent `namespace/name` at `generation`: a new trace, or
/// an empty context when tracing is off.
pub fn reconcile_span(namespace: &str, name: &str, generation: Option<i64>) -> Context {
    let Some(t) = TRACING.get() else {
        return Context::new();
    };
    let tracer = t.tracer();
    let mut attributes = vec![
        KeyValue::new("k8s.namespace.name", namespace.to_string()),
        KeyValue::new("agentry.agent", name.to_string()),
    ];
    if let Some(g) = generation {
        attributes.push(KeyValue::new("agentry.agent.generation", g));
    }
    let span = tracer
        .span_builder("reconcile")
        .with_kind(SpanKind::Internal)
        .with_attributes(attributes)
        .start(tracer);
    Context::current_with_span(span)
}

/// Ends a reconcile's span with its outcome: `success`, or the error category (then also
/// `error.type` and an error status).
pub fn end_reconcile(cx: &Context, outcome: Result<(), (&'static str, String)>) {
    if !cx.has_active_span() {
        return;
    }
    let span = cx.span();
    match outcome {
        Ok(()) => span.set_attribute(KeyValue::new("agentry.outcome", "success")),
        Err((category, message)) => {
            span.set_attribute(KeyValue::new("agentry.outcome", category));
            span.set_attribute(KeyValue::new("error.type", category));
            span.set_status(Status::error(message));
        }
    }
    span.end();
}
