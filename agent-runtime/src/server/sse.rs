//! Server-Sent Events, written here rather than through axum's `Sse` so that the events ready
//! at one moment (a burst of text deltas) leave in one write instead of one each.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde::Serialize;

/// A comment line sent when nothing else was for this long, so proxies keep the stream open.
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);

/// The keep-alive comment.
pub const KEEP_ALIVE: &[u8] = b":\n\n";

/// Appends one event: its name, and its data as compact JSON (which never holds a newline, so
/// one `data:` line carries it).
pub fn event(buf: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *buf, data).is_err() {
        buf.extend_from_slice(b"null");
    }
    buf.extend_from_slice(b"\n\n");
}

/// Aborts a streaming invocation's task when its response (the client) goes away.
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A `text/event-stream` response with `body`.
pub fn response(body: Body) -> Response {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The bytes of `buf`, for a body frame.
pub fn frame(buf: Vec<u8>) -> Bytes {
    Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_name_and_one_line_of_compact_json() {
        let mut buf = Vec::new();
        event(
            &mut buf,
            "text",
            &serde_json::json!({"delta": "two\nlines"}),
        );
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "event: text\ndata: {\"delta\":\"two\\nlines\"}\n\n"
        );
    }
}
