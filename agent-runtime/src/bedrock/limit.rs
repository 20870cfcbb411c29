//! What a reply body may be. A Converse reply is held whole before it is parsed, so its body is
//! cut off at the cap while it is read (an SDK interceptor wraps it); a ConverseStream reply is
//! capped on what it assembles (see [`StreamAssembly`](super::StreamAssembly)), and its body is
//! checked to end on a frame boundary: the SDK's decoder reports a body cut inside a frame's
//! prelude as a clean end, which would pass a truncated stream as a whole one.

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::body::SdkBody;
use http_body::{Body, Frame, SizeHint};

/// A reply over the cap; found again in the SDK's error chain by [`over_limit`].
#[derive(Debug, thiserror::Error)]
#[error("the model reply is over the runtime's limit of {limit} bytes")]
pub struct ReplyTooLarge {
    /// The cap.
    pub limit: usize,
}

/// An event-stream body that ended inside a frame.
#[derive(Debug, thiserror::Error)]
#[error("the event stream ended inside a frame ({missing} bytes of it missing)")]
pub struct CutStream {
    /// Bytes the frame still lacked.
    pub missing: usize,
}

/// The first error of type `T` in an error's source chain.
pub fn find<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Wraps every Converse response body in a [`Capped`] one.
#[derive(Debug)]
pub struct ReplyLimit {
    /// Most bytes one reply body may have.
    pub limit: usize,
}

impl Intercept for ReplyLimit {
    fn name(&self) -> &'static str {
        "agentry::ReplyLimit"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // The operation, not the response's content-type (which the other end chooses), says
        // whether this is a stream.
        let streaming = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "ConverseStream");
        let response = context.response_mut();
        // An error answer to a stream request is a JSON error body, not frames.
        if streaming && response.status().is_success() {
            let inner = response.take_body();
            let check = Check::Frames {
                prelude: Vec::with_capacity(4),
                left: 0,
            };
            *response.body_mut() = SdkBody::from_body_1_x(Checked { inner, check });
            return Ok(());
        }
        if response
            .headers()
            .get("content-length")
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > self.limit as u64)
        {
            return Err(Box::new(ReplyTooLarge { limit: self.limit }));
        }
        let inner = response.take_body();
        let check = Check::Cap {
            left: self.limit,
            limit: self.limit,
        };
        *response.body_mut() = SdkBody::from_body_1_x(Checked { inner, check });
        Ok(())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a [`Checked`] body checks as its bytes come through.
enum Check {
    /// A Converse body: fails once more than `limit` bytes have come.
    Cap { left: usize, limit: usize },
    /// An event-stream body: fails when it ends inside a frame. Each frame starts with its
    /// total length (a big-endian u32, the length bytes included).
    Frames {
        /// The length bytes of the next frame seen so far.
        prelude: Vec<u8>,
        /// Bytes of the current frame not yet seen.
        left: usize,
    },
}

impl Check {
    fn data(&mut self, mut data: &[u8]) -> Result<(), BoxError> {
        match self {
            Self::Cap { left, limit } => {
                if data.len() > *left {
                    return Err(Box::new(ReplyTooLarge { limit: *limit }));
                }
                *left -= data.len();
            }
            Self::Frames { prelude, left } => {
                while !data.is_empty() {
                    if *left > 0 {
                        let n = (*left).min(data.len());
                        *left -= n;
                        data = &data[n..];
                        continue;
                    }
                    let n = (4 - prelude.len()).min(data.len());
                    prelude.extend_from_slice(&data[..n]);
                    data = &data[n..];
                    if let Ok(len) = <[u8; 4]>::try_from(prelude.as_slice()) {
                        prelude.clear();
                        // A length under the prelude's own is the decoder's to refuse.
                        *left = (u32::from_be_bytes(len) as usize).saturating_sub(4);
                    }
                }
            }
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), BoxError> {
        if let Self::Frames { prelude, left } = self
            && (*left > 0 || !prelude.is_empty())
        {
            let missing = if *left > 0 { *left } else { 4 - prelude.len() };
            *left = 0;
            prelude.clear();
            return Err(Box::new(CutStream { missing }));
        }
        Ok(())
    }
}

/// A reply body passed through a [`Check`].
struct Checked {
    inner: SdkBody,
    check: Check,
}

impl Body for Checked {
    type Data = bytes::Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let checked = match &polled {
            Poll::Ready(Some(Ok(frame))) => this.check.data(frame.data_ref().map_or(&[], |d| d)),
            Poll::Ready(None) => this.check.end(),
            _ => Ok(()),
        };
        match checked {
            Err(e) => Poll::Ready(Some(Err(e))),
            Ok(()) => polled,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
