//! A mock Kubernetes API server for reconciler tests: records every request and answers like
//! the real one would for the calls the operator makes (server-side apply echoes the object
//! back, unknown GETs are 404 Status objects).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Query string.
    pub query: String,
    /// JSON body (`null` when none).
    pub body: Value,
}

impl Recorded {
    /// `METHOD path`, for compact assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

type Handler = dyn Fn(&Recorded) -> Option<(u16, Value)> + Send + Sync;

/// The mock server: a client wired to it and the recorded requests.
pub struct MockApi {
    /// A client talking to this server.
    pub client: kube::Client,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stored: Arc<Mutex<HashMap<String, Value>>>,
}

fn not_found(path: &str) -> (u16, Value) {
    let name = path.rsplit('/').next().unwrap_or_default();
    (
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                 "message": format!("{name:?} not found")}),
    )
}

fn default_answer(r: &Recorded, stored: &Mutex<HashMap<String, Value>>) -> (u16, Value) {
    let mut stored = stored.lock().unwrap();
    match r.method.as_str() {
        // A status patch answers with the whole object; the operator ignores its spec.
        "PATCH" if r.path.ends_with("/status") => {
            let mut obj = r.body.clone();
            let mut parts = r.path.rsplit('/').skip(1);
            let name = parts.next().unwrap_or_default();
            obj["metadata"] = json!({"name": name, "resourceVersion": "2"});
            obj["spec"] = json!({"model": {"id": "anthropic.claude-3-haiku-20240307-v1:0"}, "systemPrompt": "x", "replicas": 1});
            (200, obj)
        }
        // Server-side apply: the object as written, with what the server adds; kept for GETs.
        "PATCH" => {
            let mut obj = r.body.clone();
            obj["metadata"]["resourceVersion"] = "1".into();
            obj["metadata"]["generation"] = 1.into();
            stored.insert(r.path.clone(), obj.clone());
            (200, obj)
        }
        "GET" => match stored.get(&r.path) {
            Some(obj) => (200, obj.clone()),
            None => not_found(&r.path),
        },
        "POST" => (201, r.body.clone()),
        "DELETE" => (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        ),
        _ => not_found(&r.path),
    }
}

impl MockApi {
    /// A server that answers with `handler` where it returns `Some`, else the default answers.
    pub fn new(
        handler: impl Fn(&Recorded) -> Option<(u16, Value)> + Send + Sync + 'static,
    ) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stored: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        let store = stored.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let seen = seen.clone();
            let handler = handler.clone();
            let store = store.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                };
                let (code, answer) =
                    handler(&recorded).unwrap_or_else(|| default_answer(&recorded, &store));
                seen.lock().unwrap().push(recorded);
                let response = Response::builder()
                    .status(StatusCode::from_u16(code).unwrap())
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap();
                Ok::<_, Infallible>(response)
            }
        });
        Self {
            client: kube::Client::new(service, "default"),
            requests,
            stored,
        }
    }

    /// A server with only the default answers.
    pub fn default_answers() -> Self {
        Self::new(|_| None)
    }

    /// Changes the stored object at `path` (as a hand edit on a real server would).
    pub fn edit(&self, path: &str, edit: impl FnOnce(&mut Value)) {
        let mut stored = self.stored.lock().unwrap();
        edit(stored.get_mut(path).expect("object stored at path"));
    }

    /// The object stored at `path`, as a GET would return it.
    pub fn stored(&self, path: &str) -> Option<Value> {
        self.stored.lock().unwrap().get(path).cloned()
    }

    /// Takes the requests recorded so far.
    pub fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}
