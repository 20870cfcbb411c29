//! The W3C trace context (`traceparent`, `tracestate`) in and out of HTTP headers.

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The context a request's headers carry: its remote parent span, or an empty context when
/// there is no valid `traceparent`.
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    if !headers.contains_key("traceparent") {
        return opentelemetry::Context::new();
    }
    TraceContextPropagator::new().extract_with_context(
        &opentelemetry::Context::new(),
        &opentelemetry_http::HeaderExtractor(headers),
    )
}

/// The headers that pass `cx`'s span on to a downstream call: none when it has no valid span.
pub fn headers(cx: &opentelemetry::Context) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new()
            .inject_context(cx, &mut opentelemetry_http::HeaderInjector(&mut headers));
    }
    headers
}
