//! A model or tool call in flight, for the metrics and its span: recorded once, as it ended or
//! as `cancelled` when the invocation is dropped first.

use std::time::Instant;

use crate::bedrock::BedrockError;
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

    /// The model call failed — `None`: the invocation's deadline passed first — for `request_id`:
    /// the failure metric, the span's error (and the AWS request id), the call's end, and a
    /// warning for an error, `context` added to its message.
    pub(super) fn model_failed(
        self,
        request_id: &str,
        error: Option<&BedrockError>,
        context: &str,
    ) {
        let Call::Model(model) = self.what else {
            return self.ended("error");
        };
        let elapsed = self.started.elapsed();
        let Some(e) = error else {
            self.metrics.model_failed(model, "deadline", elapsed);
            self.span.fail("deadline", "the invocation deadline passed");
            return self.ended("deadline");
        };
        let error_type = e.aws_code().unwrap_or(e.code());
        self.metrics.model_failed(model, error_type, elapsed);
        self.span.fail(error_type, e.to_string());
        self.span.record(|| {
            e.request_id()
                .map(|id| {
                    vec![opentelemetry::KeyValue::new(
                        "aws.request_id",
                        id.to_string(),
                    )]
                })
                .unwrap_or_default()
        });
        {
            let _trace = self.span.context().clone().attach();
            tracing::warn!(
                request_id = %request_id,
                model,
                error_code = error_type,
                error = %e,
                "Bedrock call failed{context}"
            );
        }
        self.ended(e.category());
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
