//! The cap on what one model reply may use. A Converse reply is held whole before it is
//! parsed, so its body is cut off at the cap while it is read (an SDK interceptor wraps it); a
//! ConverseStream reply is checked as it is assembled (see [`StreamAssembly`](super::StreamAssembly)).

use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_bedrockruntime::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_bedrockruntime::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use http_body::{Body, Frame, SizeHint};

/// A reply over the cap; found again in the SDK's error chain by [`over_limit`].
#[derive(Debug, thiserror::Error)]
#[error("the model reply is over the runtime's limit of {limit} bytes")]
pub struct ReplyTooLarge {
    /// The cap.
    pub limit: usize,
}

/// The cap in an SDK error's source chain, if that is what failed.
pub fn over_limit(e: &(dyn std::error::Error + 'static)) -> Option<usize> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<ReplyTooLarge>() {
            return Some(r.limit);
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
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let response = context.response_mut();
        // Streams are capped on what they assemble: their framing is not the reply's size.
        let streaming = response
            .headers()
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/vnd.amazon.eventstream"));
        if streaming {
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
        let body = response.take_body();
        *response.body_mut() = SdkBody::from_body_1_x(Capped {
            inner: body,
            left: self.limit,
            limit: self.limit,
        });
        Ok(())
    }
}

/// A body that fails once more than `limit` bytes have come through.
struct Capped {
    inner: SdkBody,
    left: usize,
    limit: usize,
}

impl Body for Capped {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, bytes::Bytes::len);
                if n > this.left {
                    return Poll::Ready(Some(Err(Box::new(ReplyTooLarge { limit: this.limit }))));
                }
                this.left -= n;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
