//! The streamed answer: `chat.completion.chunk` events written from the loop's events as they
//! come, events ready together in one write, a keep-alive comment while nothing comes.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::response::Response;
use tokio::sync::mpsc::error::TryRecvError;

use super::super::invocation::Invocation;
use super::super::{AppState, sse};
use super::wire::{self, Delta, ErrorBody, Head};
use super::{BETWEEN_REPLIES, OwnedHead, deadline, model_failure, outcome, session_failure};
use crate::invoke::session::{self, Held, Outcome};
use crate::invoke::{Event, Request};

/// A stream being written: what was sent so far decides the next chunk.
struct Chunks {
    id: String,
    created: u64,
    model: std::sync::Arc<str>,
    include_usage: bool,
    sent_text: bool,
    tools_since_text: bool,
}

impl Chunks {
    fn head(&self) -> Head<'_> {
        Head {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }

    fn first(&self, buf: &mut Vec<u8>) {
        let delta = Delta {
            role: Some("assistant"),
            content: Some(""),
        };
        wire::chunk(buf, self.head(), delta, None, self.include_usage);
    }

    /// Text becomes content deltas; tool calls are the Agent's own and are not shown (an
    /// OpenAI client would take `tool_calls` as calls for it to run), but the text of the
    /// next model call is set apart from the text before them.
    fn event(&mut self, buf: &mut Vec<u8>, e: &Event) {
        match e {
            Event::Text { delta } if delta.is_empty() => {}
            Event::Text { delta } => {
                let mut text = |t: &str| {
                    let delta = Delta {
                        role: None,
                        content: Some(t),
                    };
                    wire::chunk(buf, self.head(), delta, None, self.include_usage);
                };
                if self.sent_text && self.tools_since_text {
                    text(BETWEEN_REPLIES);
                }
                text(delta);
                self.sent_text = true;
                self.tools_since_text = false;
            }
            Event::ToolStarted { .. } | Event::ToolFinished { .. } => self.tools_since_text = true,
        }
    }

    /// The end: the finish reason, the usage chunk if asked for, and `[DONE]`; or an error
    /// event (as OpenAI's own servers send one) when the invocation failed or ran out of time,
    /// or its session turn could not be saved.
    fn end(&self, buf: &mut Vec<u8>, result: &Outcome) {
        let failure = match result {
            Ok(Ok(summary)) => match wire::finish_reason(&summary.stop_reason) {
                Some(finish) => {
                    let head = self.head();
                    wire::chunk(
                        buf,
                        head,
                        Delta::default(),
                        Some(finish),
                        self.include_usage,
                    );
                    if self.include_usage {
                        wire::usage_chunk(buf, head, summary.usage);
                    }
                    buf.extend_from_slice(wire::DONE);
                    return;
                }
                None => deadline(summary),
            },
            Ok(Err(e)) => model_failure(e),
            Err(e) => session_failure(e),
        };
        wire::data(
            buf,
            &ErrorBody {
                error: failure.error,
            },
        );
    }
}

/// The `text/event-stream` answer: the role chunk at once, then the loop's text as content
/// deltas, then the end (see [`Chunks::end`]).
pub(super) fn response(
    s: &AppState,
    request: Request,
    held: Option<Held>,
    mut inv: Invocation,
    head: OwnedHead,
    include_usage: bool,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let rt = s.rt.clone();
    let task = tokio::spawn(async move {
        // On a session, the end comes only after the turn was saved.
        let result = session::run_maybe(held, &rt, request, Some(tx), &inv.progress).await;
        inv.finish(200, &outcome(&result));
        drop(inv);
        let _ = done_tx.send(result);
    });
    let guard = sse::AbortOnDrop(task.abort_handle());
    let chunks = Chunks {
        id: head.id,
        created: head.created,
        model: s.rt.config.agent.name.as_str().into(),
        include_usage,
        sent_text: false,
        tools_since_text: false,
    };
    // The role chunk leaves at once: the client sees the stream has begun.
    let mut first = Vec::with_capacity(256);
    chunks.first(&mut first);
    let state = (rx, Some(done_rx), guard, chunks);
    let rest = futures::stream::unfold(state, |(mut rx, done, guard, mut chunks)| async move {
        let done_rx = done?;
        let first = match tokio::time::timeout(sse::KEEP_ALIVE_EVERY, rx.recv()).await {
            Err(_) => {
                let keep_alive = Bytes::from_static(sse::KEEP_ALIVE);
                return Some((
                    Ok::<_, Infallible>(keep_alive),
                    (rx, Some(done_rx), guard, chunks),
                ));
            }
            Ok(first) => first,
        };
        let mut buf = Vec::with_capacity(256);
        let mut ended = first.is_none();
        if let Some(e) = first {
            chunks.event(&mut buf, &e);
            loop {
                match rx.try_recv() {
                    Ok(e) => chunks.event(&mut buf, &e),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
        }
        if !ended {
            return Some((Ok(sse::frame(buf)), (rx, Some(done_rx), guard, chunks)));
        }
        if let Ok(result) = done_rx.await {
            chunks.end(&mut buf, &result);
        }
        Some((Ok(sse::frame(buf)), (rx, None, guard, chunks)))
    });
    let first = futures::stream::once(async move { Ok::<_, Infallible>(sse::frame(first)) });
    sse::response(Body::from_stream(futures::StreamExt::chain(first, rest)))
}
