//! Observability both binaries share: OpenTelemetry traces exported over OTLP (HTTP/protobuf)
//! as the standard `OTEL_*` variables configure them, the W3C trace context in and out of HTTP
//! requests, and log lines that carry the trace and span ids.
//!
//! Tracing is on only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set
//! and `OTEL_SDK_DISABLED` is not `true`; otherwise nothing is built and spans cost nothing.
//! Settings this build cannot honour (another protocol, an unknown sampler) are refused with
//! an error naming the variable, rather than silently replaced.

mod export;
pub mod logs;
pub mod propagation;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// A telemetry setting that cannot be used; names the variable and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A variable has a value this build does not support.
    #[error("{var}={value:?}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong and what to set instead.
        reason: String,
    },
    /// The OTLP exporter could not be built (e.g. an endpoint that is not a URL).
    #[error("the OTLP trace exporter: {0}")]
    Exporter(String),
}

/// The samplers of the specification this SDK implements (the operator checks its flags
/// against the same list).
pub const SAMPLERS: [&str; 6] = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

/// Exporter settings this build does not implement (refused rather than ignored).
const UNSUPPORTED: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
];

/// Whether the variables ask for traces, and whether they can be honoured. `var` reads one
/// variable (the process environment in [`Tracing::from_env`]; a map in tests).
pub fn enabled(var: impl Fn(&str) -> Option<String>) -> Result<bool, TelemetryError> {
    let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(false);
    }
    if let Some(v) = set("OTEL_TRACES_EXPORTER") {
        match v.as_str() {
            "none" => return Ok(false),
            "otlp" => {}
            _ => {
                return Err(TelemetryError::Invalid {
                    var: "OTEL_TRACES_EXPORTER",
                    value: v,
                    reason: "this build exports traces only over OTLP: set otlp or none".into(),
                });
            }
        }
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(v) = set(name)
            && v != "http/protobuf"
        {
            return Err(TelemetryError::Invalid {
                var: if name.contains("TRACES") {
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
                } else {
                    "OTEL_EXPORTER_OTLP_PROTOCOL"
                },
                value: v,
                reason: "this build speaks OTLP over HTTP/protobuf only: set http/protobuf (an OpenTelemetry Collector accepts it on port 4318)".into(),
            });
        }
    }
    if let Some(v) = set("OTEL_PROPAGATORS")
        && v != "tracecontext"
    {
        return Err(TelemetryError::Invalid {
            var: "OTEL_PROPAGATORS",
            value: v,
            reason: "this build propagates the W3C trace context only: set tracecontext".into(),
        });
    }
    for name in UNSUPPORTED {
        if let Some(v) = set(name) {
            return Err(TelemetryError::Invalid {
                var: name,
                value: v,
                reason: "not supported by this build: the exporter trusts the system's certificate authorities (add a private CA to the image's trust store) and sends no client certificate".into(),
            });
        }
    }
    if let Some(v) = set("OTEL_TRACES_SAMPLER") {
        if !SAMPLERS.contains(&v.as_str()) {
            return Err(TelemetryError::Invalid {
                var: "OTEL_TRACES_SAMPLER",
                value: v,
                reason: format!(
                    "not a sampler this build implements; use one of {}",
                    SAMPLERS.join(", ")
                ),
            });
        }
        if v.contains("traceidratio") {
            let arg = set("OTEL_TRACES_SAMPLER_ARG");
            let ok = arg
                .as_deref()
                .and_then(|a| a.parse::<f64>().ok())
                .is_some_and(|r| (0.0..=1.0).contains(&r));
            if !ok {
                return Err(TelemetryError::Invalid {
                    var: "OTEL_TRACES_SAMPLER_ARG",
                    value: arg.unwrap_or_default(),
                    reason: format!(
                        "{v} needs the sampling ratio, a number from 0 to 1 (e.g. 0.25)"
                    ),
                });
            }
        }
    }
    Ok(set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some())
}

/// The sampler [`enabled`] checked (default `parentbased_always_on`).
fn sampler(var: impl Fn(&str) -> Option<String>) -> Sampler {
    let ratio = var("OTEL_TRACES_SAMPLER_ARG")
        .and_then(|a| a.parse::<f64>().ok())
        .unwrap_or(1.0);
    match var("OTEL_TRACES_SAMPLER")
        .as_deref()
        .filter(|v| !v.trim().is_empty())
    {
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatioBased(ratio),
        Some("parentbased_always_off") => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        Some("parentbased_traceidratio") => {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
        }
        _ => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
    }
}

/// The capture-content switch of the GenAI conventions:
/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` records prompts and completions.
pub fn capture_content(var: impl Fn(&str) -> Option<String>) -> bool {
    var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The trace pipeline: a tracer whose spans go to a batch exporter.
#[derive(Clone, Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl Tracing {
    /// The pipeline the process environment asks for, or `None` when it asks for none.
    /// `service` is `service.name` unless `OTEL_SERVICE_NAME` (or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`) names another; `resource` adds attributes, which
    /// `OTEL_RESOURCE_ATTRIBUTES` can override. Exports run on the current tokio runtime.
    pub fn from_env(
        service: &str,
        resource: Vec<KeyValue>,
        scope: &'static str,
    ) -> Result<Option<Self>, TelemetryError> {
        Self::from_vars(|name| std::env::var(name).ok(), service, resource, scope)
    }

    /// As [`Tracing::from_env`], with the endpoint, headers, timeout and sampler read through
    /// `var` (the operator's flags stand in for variables this way) and set on the pipeline as
    /// checked, so the SDK never falls back on a value of its own.
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
        service: &str,
        resource: Vec<KeyValue>,
        scope: &'static str,
    ) -> Result<Option<Self>, TelemetryError> {
        if !enabled(&var)? {
            return Ok(None);
        }
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let endpoint = match set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            Some(e) => e,
            None => {
                let base = set("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
        };
        let headers = set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS"))
            .map(|h| export::headers(&h))
            .transpose()?
            .unwrap_or_default();
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| TelemetryError::Exporter("no tokio runtime to send exports on".into()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(export::timeout(&var))
            .with_headers(headers)
            .with_http_client(export::TokioHttp::new(handle, export::timeout(&var))?)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let mut builder = Resource::builder_empty()
            .with_service_name(service.to_string())
            .with_attributes(resource)
            .with_detector(Box::new(TelemetryResourceDetector))
            .with_detector(Box::new(EnvResourceDetector::new()));
        if let Some(name) = set("OTEL_SERVICE_NAME") {
            builder = builder.with_service_name(name);
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler(&var))
            .with_resource(builder.build())
            .build();
        let tracer = provider.tracer(scope);
        Ok(Some(Self { provider, tracer }))
    }

    /// The tracer.
    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// Exports what is still queued and stops (blocks: call from `spawn_blocking` or at exit).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "exporting the last spans failed");
        }
    }
}

#[cfg(test)]
mod tests;
