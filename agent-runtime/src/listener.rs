//! The accept loop: HTTP/1.1 connections with a bounded count, a header-read and an idle
//! timeout per connection, and the shutdown drain Kubernetes needs.
//!
//! A connection is *idle* while no request is in progress on it and no byte of the next one has
//! arrived; it is *reading a head* from the first byte of a request until the request reaches
//! the router. Either one outlasting its timeout closes the connection: slow or silent clients
//! cannot hold connections (the body has its own timeout, in the handler). At shutdown, idle
//! and half-sent connections close at once and those with a request in progress close after its
//! response; only invocations in flight delay the exit.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// Opens the listening socket with a listen backlog of `backlog` (the kernel caps it at
/// `net.core.somaxconn`). The standard library's 128 overflows when a few hundred clients connect
/// at once, as a load balancer or a burst of agents does: the kernel then drops their handshakes
/// and each client waits a second to retry.
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Connection limits and timeouts.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Most open connections; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Time from a request's first byte until its whole head (request line and headers).
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request since then.
    Idle(Instant),
    /// The first byte of a request head arrived then.
    Head(Instant),
    /// This many requests are in progress (read, handled, or their response being written).
    Busy(usize),
}

/// What one connection is doing, shared by its byte stream, its requests and its watchdog.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Phase) -> R) -> R {
        f(&mut self.phase.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn bytes_arrived(&self) {
        let started = self.with(|p| match p {
            Phase::Idle(_) => {
                *p = Phase::Head(Instant::now());
                true
            }
            _ => false,
        });
        if started {
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.with(|p| {
            *p = match *p {
                Phase::Busy(n) => Phase::Busy(n + 1),
                _ => Phase::Busy(1),
            }
        });
        RequestGuard(self.clone())
    }

    /// When the connection must close if nothing changes, and why.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        self.with(|p| match *p {
            Phase::Idle(since) => Some((since + limits.idle_timeout, "idle timeout")),
            Phase::Head(since) => Some((since + limits.header_read_timeout, "header read timeout")),
            Phase::Busy(_) => None,
        })
    }
}

/// Held while a request is in progress; its response body carries it to the last byte.
struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.with(|p| {
            *p = match *p {
                Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
                _ => Phase::Idle(Instant::now()),
            }
        });
        self.0.changed.notify_one();
    }
}

/// The socket, noting when bytes arrive.
struct TrackedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A response body that keeps its request counted as in progress until it is dropped.
struct GuardedBody {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `app` on `listener` until `closing` turns true, then stops accepting and closes every
/// connection as soon as its request in progress (if any) has been answered. Returns when all
/// are closed or `grace` has passed since `closing`, whichever is first; says which.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
    grace: Duration,
) -> bool {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p,
            _ = closing.wait_for(|c| *c) => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = closing.wait_for(|c| *c) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: say so, and give the system a moment
                // rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let closing = closing.clone();
        tokio::spawn(async move {
            connection(stream, app, limits, closing).await;
            drop(permit);
        });
    }
    drop(listener);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_ok()
}

/// Gives the request's URI and header values their own memory. hyper slices them out of the
/// connection's 8 KB read buffer; while any slice lives (a handler holding its headers while
/// the model answers), hyper cannot reuse that buffer and allocates another for its next read,
/// so every connection with an invocation in flight would hold two. A head is a few hundred
/// bytes: copying it is cheaper than the second buffer.
fn detach_head<B>(req: &mut hyper::Request<B>) {
    for value in req.headers_mut().values_mut() {
        let copy = hyper::body::Bytes::copy_from_slice(value.as_bytes());
        if let Ok(v) = axum::http::HeaderValue::from_maybe_shared(copy) {
            *value = v;
        }
    }
    if let Ok(copy) = axum::http::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = copy;
    }
}

async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(TrackedStream {
        inner: stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = requests.request_started();
        detach_head(&mut req);
        let app = app.clone();
        async move {
            let response = match app.oneshot(req).await {
                Ok(r) => r,
                Err(e) => match e {},
            };
            Ok::<_, Infallible>(response.map(|inner| GuardedBody {
                inner,
                _guard: guard,
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let deadline = activity.deadline(&limits);
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline.map_or(far, |(at, _)| at)) => {
                if let Some((at, why)) = activity.deadline(&limits)
                    && at <= Instant::now()
                {
                    tracing::debug!(reason = why, "closing a connection");
                    return;
                }
            }
            _ = activity.changed.notified() => {}
            _ = closing.wait_for(|c| *c), if !shutting_down => {
                // No request in progress (idle, or a head half sent): close now. Otherwise
                // close after the response to the one in progress.
                if activity.with(|p| !matches!(p, Phase::Busy(_))) {
                    tracing::debug!("closing a connection without a request in progress at shutdown");
                    return;
                }
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::body::Bytes;

    fn within(buffer: &Bytes, bytes: &[u8]) -> bool {
        let range = buffer.as_ptr_range();
        range.contains(&bytes.as_ptr())
    }

    #[test]
    fn a_detached_head_holds_nothing_of_the_read_buffer() {
        let buffer = Bytes::from_static(b"/v1/invoke?x=1 application/json req-7");
        let mut req = hyper::Request::new(());
        *req.uri_mut() = axum::http::Uri::from_maybe_shared(buffer.slice(0..14)).unwrap();
        for (name, range) in [("content-type", 15..31), ("x-request-id", 32..37)] {
            let value = axum::http::HeaderValue::from_maybe_shared(buffer.slice(range)).unwrap();
            req.headers_mut().insert(name, value);
        }
        assert!(within(&buffer, req.uri().path().as_bytes()));

        super::detach_head(&mut req);

        assert_eq!(req.uri(), "/v1/invoke?x=1");
        assert!(!within(&buffer, req.uri().path().as_bytes()));
        assert_eq!(req.headers()["x-request-id"], "req-7");
        for value in req.headers().values() {
            assert!(!within(&buffer, value.as_bytes()), "{value:?}");
        }
    }
}
