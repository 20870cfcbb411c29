//! A model or tool call in flight, for the metrics and its span: recorded once, as it ended or
//! as `cancelled` when the invocation is dropped first.

use std::time::Instant;

use crate::metrics::Metrics;
use crate::telemetry::Trace;

/// Records a model or tool call in the metrics as `cancelled` if it is dropped before it ends
/// (the client went away), so no call goes uncounted.
pub(super) struct Pending<'a> {
    metrics: &'a Metrics,
    what: Call<'a>,
    pub(super) started: Instant,
    armed: bool,
    span: Trace,
}

pub(super) enum Call<'a> {
    Model(&'a str),
    Tool(&'a str),
}

impl<'a> Pending<'a> {
    pub(super) fn new(metrics: &'a Metrics, what: Call<'a>, span: Trace) -> Self {
        Self {
            metrics,
            what,
            started: Instant::now(),
            armed: true,
            span,
        }
    }

    /// The call ended with `outcome` (model calls; tool calls are recorded by the caller);
    /// its span ends.
    pub(super) fn ended(mut self, outcome: &str) {
        self.armed = false;
        if let Call::Model(model) = self.what {
            self.metrics
                .bedrock_call(model, outcome, self.started.elapsed());
        }
        self.span.end();
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.span
            .fail("cancelled", "the invocation ended before this call did");
        self.span.end();
        match self.what {
            Call::Model(model) => {
                self.metrics
                    .bedrock_call(model, "cancelled", self.started.elapsed())
            }
            Call::Tool(tool) => self
                .metrics
                .tool_call(tool, "cancelled", self.started.elapsed()),
        }
    }
}
