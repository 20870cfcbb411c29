//! Log lines on stderr, text or JSON, filtered by `RUST_LOG` (default `info`). A line written
//! while a trace is current (the OpenTelemetry context of the task) ends with its `trace_id`
//! and `span_id`, so a log search finds the trace and a trace view finds the lines.

use std::fmt;

use opentelemetry::trace::TraceContextExt as _;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Installs the global subscriber: JSON lines when `json`, else text. Call once, first thing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log pipelines (and kubectl logs) get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if json {
        let format = tracing_subscriber::fmt::format().json().flatten_event(true);
        builder
            .event_format(WithTraceIds {
                inner: format,
                json: true,
            })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .init();
    } else {
        let format = tracing_subscriber::fmt::format().with_ansi(ansi);
        builder
            .event_format(WithTraceIds {
                inner: format,
                json: false,
            })
            .init();
    }
}

/// An event format that adds the current trace and span ids to `inner`'s line.
pub struct WithTraceIds<F> {
    /// The line's own format.
    pub inner: F,
    /// `inner` writes one JSON object per line.
    pub json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let cx = opentelemetry::Context::current();
        let span = cx.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return self.inner.format_event(ctx, writer, event);
        }
        // The line into a buffer (in the inner format's own colours), then the ids before its
        // end.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if self.json {
            let Some(open) = body.strip_suffix('}') else {
                return writer.write_str(&line);
            };
            let sep = if open.ends_with('{') { "" } else { "," };
            writeln!(
                writer,
                "{open}{sep}\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                ids.trace_id(),
                ids.span_id()
            )
        } else {
            writeln!(
                writer,
                "{body} trace_id={} span_id={}",
                ids.trace_id(),
                ids.span_id()
            )
        }
    }
}
