//! An HTTP API for openapi tools to call: it records every request (method, raw path, raw query,
//! headers, body) and answers with a JSON echo of it; and it serves OpenAPI documents at the
//! paths it is given, optionally answering 503 to the first few fetches (a server still
//! starting).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// One request the API received.
#[derive(Clone, Debug)]
pub struct ApiRequest {
    /// HTTP method.
    pub method: String,
    /// The path as sent, percent-encoding kept.
    pub path: String,
    /// The query string as sent, if any.
    pub query: Option<String>,
    /// Headers, names lower case (the last value of a repeated header).
    pub headers: BTreeMap<String, String>,
    /// The body as text.
    pub body: String,
}

/// A document served at a path: content type and text.
#[derive(Clone, Debug)]
pub struct Document {
    /// Path it is served at, e.g. `/openapi.yaml`.
    pub path: String,
    /// HTTP status of the answer (200, or 404 for a document that is gone).
    pub status: u16,
    /// `Content-Type` of the answer.
    pub content_type: &'static str,
    /// The text.
    pub text: String,
}

#[derive(Default)]
struct Shared {
    documents: Vec<Document>,
    seen: Mutex<Vec<ApiRequest>>,
    unavailable: AtomicUsize,
    fetches: AtomicUsize,
    fetch_headers: Mutex<Vec<BTreeMap<String, String>>>,
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

/// The API server on 127.0.0.1; stops when dropped.
pub struct ApiServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(doc) = shared.documents.iter().find(|d| d.path == uri.path()) {
        shared.fetches.fetch_add(1, Ordering::SeqCst);
        shared
            .fetch_headers
            .lock()
            .unwrap()
            .push(header_map(&headers));
        let down = shared
            .unavailable
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if down {
            return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
        }
        let status = StatusCode::from_u16(doc.status).unwrap_or(StatusCode::OK);
        return (
            status,
            [("content-type", doc.content_type)],
            doc.text.clone(),
        )
            .into_response();
    }
    let request = ApiRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(String::from),
        headers: header_map(&headers),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    shared.seen.lock().unwrap().push(request.clone());
    axum::Json(json!({"received": {"method": request.method, "path": request.path}}))
        .into_response()
}

impl ApiServer {
    /// Starts the server with `documents`; the first `unavailable` document fetches get 503.
    ///
    /// # Panics
    /// When it cannot bind.
    pub async fn start(documents: Vec<Document>, unavailable: usize) -> Self {
        let shared = Arc::new(Shared {
            documents,
            unavailable: AtomicUsize::new(unavailable),
            ..Shared::default()
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every API request so far (document fetches excluded).
    pub fn seen(&self) -> Vec<ApiRequest> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// How many times a document was fetched (503 answers included).
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// The headers of each document fetch, in order.
    pub fn fetch_headers(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.fetch_headers.lock().unwrap().clone()
    }
}
