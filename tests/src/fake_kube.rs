//! An in-memory imitation of the Kubernetes API server, for benchmarks and load tests of the
//! operator where no cluster exists. It serves what the operator uses: list and watch of any
//! collection (newline-delimited watch events, label and name field selectors), get,
//! server-side apply as a whole-object write, status writes, create and delete. It keeps no
//! schema and runs no controllers (no garbage collection, no Deployment status).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Where an object lives: its collection path (`/apis/apps/v1/deployments`), namespace, name.
type Key = (String, String, String);

#[derive(Clone, Debug)]
struct Change {
    collection: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

/// Counts of requests by method, for reports.
#[derive(Default, Debug, Clone)]
pub struct Counts {
    /// Requests per method (`GET`, `PATCH`, …), watches counted as `WATCH`.
    pub by_method: BTreeMap<String, u64>,
    /// Status writes.
    pub status_writes: u64,
}

struct Inner {
    objects: Mutex<BTreeMap<Key, Value>>,
    version: AtomicU64,
    changes: broadcast::Sender<Change>,
    counts: Mutex<Counts>,
}

/// A running fake API server.
#[derive(Clone)]
pub struct FakeKube {
    inner: Arc<Inner>,
    /// Its address.
    pub addr: SocketAddr,
}

struct Parsed {
    collection: String,
    namespace: String,
    name: Option<String>,
    status: bool,
}

/// `/api/v1/namespaces/ns/configmaps/x` → collection `/api/v1/configmaps`, namespace, name.
fn parse(path: &str) -> Option<Parsed> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let prefix_len = match *parts.first()? {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    let prefix = parts.get(..prefix_len)?.join("/");
    let rest = &parts[prefix_len..];
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => (ns.to_string(), tail),
        other => (String::new(), other),
    };
    let resource = rest.first()?;
    Some(Parsed {
        collection: format!("/{prefix}/{resource}"),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        status: rest.get(2) == Some(&"status"),
    })
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
        })
    })
}

/// Equality-only label selectors (`a=b,c=d`), and `metadata.name=` field selectors.
fn matches(object: &Value, labels: Option<&str>, fields: Option<&str>) -> bool {
    let label_ok = labels.is_none_or(|sel| {
        sel.split(',')
            .filter(|s| !s.is_empty())
            .all(|pair| match pair.split_once('=') {
                Some((k, v)) => object["metadata"]["labels"][k] == v,
                None => false,
            })
    });
    let field_ok = fields.is_none_or(|sel| match sel.strip_prefix("metadata.name=") {
        Some(name) => object["metadata"]["name"] == name,
        None => true,
    });
    label_ok && field_ok
}

fn json_response(code: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn not_found(name: &str) -> Response {
    json_response(
        404,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{name:?} not found")}),
    )
}

impl FakeKube {
    /// Starts the server on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (changes, _) = broadcast::channel(65536);
        let inner = Arc::new(Inner {
            objects: Mutex::default(),
            version: AtomicU64::new(1),
            changes,
            counts: Mutex::default(),
        });
        let fake = Self { inner, addr };
        let app = Router::new().fallback(handle).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(fake)
    }

    /// Stores `object` at `collection` (e.g. `/apis/agentry.dev/v1alpha1/agents`).
    pub fn insert(&self, collection: &str, object: Value) {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let object = self.stamp(object, None);
        self.lock().insert((collection.into(), ns, name), object);
    }

    /// How many objects `collection` holds.
    pub fn count(&self, collection: &str) -> usize {
        self.lock()
            .keys()
            .filter(|(c, _, _)| c == collection)
            .count()
    }

    /// Request counts so far.
    pub fn counts(&self) -> Counts {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A kubeconfig file pointing at this server (plain HTTP, no auth).
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(
            path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"http://{}\"}}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: fake, namespace: default}}\ncurrent-context: fake\n",
                self.addr
            ),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Value>> {
        self.inner.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_request(&self, what: &str) {
        let mut c = self.inner.counts.lock().unwrap_or_else(|p| p.into_inner());
        *c.by_method.entry(what.into()).or_default() += 1;
        if what == "STATUS" {
            c.status_writes += 1;
        }
    }

    /// Adds what the server sets: uid, resourceVersion, generation, creationTimestamp.
    fn stamp(&self, mut object: Value, previous: Option<&Value>) -> Value {
        let rv = self.inner.version.fetch_add(1, Ordering::Relaxed) + 1;
        let meta = &mut object["metadata"];
        meta["resourceVersion"] = rv.to_string().into();
        let old = previous.map(|p| &p["metadata"]);
        meta["uid"] = old
            .map(|m| m["uid"].clone())
            .unwrap_or_else(|| format!("uid-{rv}").into());
        meta["creationTimestamp"] = old
            .map(|m| m["creationTimestamp"].clone())
            .unwrap_or_else(|| "2026-01-01T00:00:00Z".into());
        let spec_changed = previous.is_none_or(|p| p.get("spec") != object.get("spec"));
        let generation =
            old.and_then(|m| m["generation"].as_i64()).unwrap_or(0) + i64::from(spec_changed);
        object["metadata"]["generation"] = generation.max(1).into();
        object
    }

    fn publish(&self, collection: &str, namespace: &str, kind: &'static str, object: &Value) {
        let _ = self.inner.changes.send(Change {
            collection: collection.into(),
            namespace: namespace.into(),
            kind,
            object: object.clone(),
        });
    }
}

async fn handle(State(fake): State<FakeKube>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let body: Bytes = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .unwrap_or_default();
    let Some(p) = parse(&path) else {
        return not_found(&path);
    };

    match (method, &p.name) {
        (Method::GET, None) if query_param(&query, "watch").as_deref() == Some("true") => {
            fake.count_request("WATCH");
            watch(&fake, &p, &query)
        }
        (Method::GET, None) => {
            fake.count_request("LIST");
            let labels = query_param(&query, "labelSelector");
            let fields = query_param(&query, "fieldSelector");
            let items: Vec<Value> = fake
                .lock()
                .iter()
                .filter(|((c, ns, _), o)| {
                    *c == p.collection
                        && (p.namespace.is_empty() || *ns == p.namespace)
                        && matches(o, labels.as_deref(), fields.as_deref())
                })
                .map(|(_, o)| o.clone())
                .collect();
            let rv = fake.inner.version.load(Ordering::Relaxed).to_string();
            json_response(
                200,
                &json!({"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": rv}, "items": items}),
            )
        }
        (Method::GET, Some(name)) => {
            fake.count_request("GET");
            match fake
                .lock()
                .get(&(p.collection.clone(), p.namespace.clone(), name.clone()))
            {
                Some(o) => json_response(200, o),
                None => not_found(name),
            }
        }
        (Method::PATCH, Some(name)) => {
            fake.count_request(if p.status { "STATUS" } else { "PATCH" });
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let key = (p.collection.clone(), p.namespace.clone(), name.clone());
            let mut objects = fake.lock();
            let previous = objects.get(&key).cloned();
            let object = if p.status {
                let Some(mut current) = previous.clone() else {
                    return not_found(name);
                };
                current["status"] = patch["status"].clone();
                current
            } else {
                let mut o = patch;
                o["metadata"]["namespace"] = p.namespace.clone().into();
                if let Some(status) = previous.as_ref().and_then(|p| p.get("status")) {
                    o["status"] = status.clone();
                }
                o
            };
            let object = fake.stamp(object, previous.as_ref());
            objects.insert(key, object.clone());
            drop(objects);
            fake.publish(
                &p.collection,
                &p.namespace,
                if previous.is_some() {
                    "MODIFIED"
                } else {
                    "ADDED"
                },
                &object,
            );
            json_response(200, &object)
        }
        (Method::POST, None) => {
            fake.count_request("POST");
            let object: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let name = object["metadata"]["name"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| format!("gen-{}", fake.inner.version.load(Ordering::Relaxed)));
            let object = fake.stamp(object, None);
            fake.lock().insert(
                (p.collection.clone(), p.namespace.clone(), name),
                object.clone(),
            );
            json_response(201, &object)
        }
        (Method::DELETE, Some(name)) => {
            fake.count_request("DELETE");
            let removed =
                fake.lock()
                    .remove(&(p.collection.clone(), p.namespace.clone(), name.clone()));
            match removed {
                Some(o) => {
                    fake.publish(&p.collection, &p.namespace, "DELETED", &o);
                    json_response(
                        200,
                        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                    )
                }
                None => not_found(name),
            }
        }
        _ => json_response(
            405,
            &json!({"kind": "Status", "code": 405, "message": "method not allowed"}),
        ),
    }
}

fn watch(fake: &FakeKube, p: &Parsed, query: &str) -> Response {
    let labels = query_param(query, "labelSelector");
    let fields = query_param(query, "fieldSelector");
    let collection = p.collection.clone();
    let namespace = p.namespace.clone();
    let rx = fake.inner.changes.subscribe();
    let stream = futures::stream::unfold(rx, move |mut rx| {
        let (collection, namespace, labels, fields) = (
            collection.clone(),
            namespace.clone(),
            labels.clone(),
            fields.clone(),
        );
        async move {
            loop {
                match rx.recv().await {
                    Ok(c)
                        if c.collection == collection
                            && (namespace.is_empty() || c.namespace == namespace)
                            && matches(&c.object, labels.as_deref(), fields.as_deref()) =>
                    {
                        let line = format!("{}\n", json!({"type": c.kind, "object": c.object}));
                        return Some((Ok::<_, std::convert::Infallible>(Bytes::from(line)), rx));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_collection_namespace_and_name() {
        let p = parse("/apis/agentry.dev/v1alpha1/namespaces/demo/agents/weather/status").unwrap();
        assert_eq!(
            (
                p.collection.as_str(),
                p.namespace.as_str(),
                p.name.as_deref(),
                p.status
            ),
            (
                "/apis/agentry.dev/v1alpha1/agents",
                "demo",
                Some("weather"),
                true
            )
        );
        let p = parse("/api/v1/configmaps").unwrap();
        assert_eq!(
            (p.collection.as_str(), p.namespace.as_str(), p.name),
            ("/api/v1/configmaps", "", None)
        );
    }

    #[test]
    fn label_and_name_selectors_filter() {
        let o = json!({"metadata": {"name": "a", "labels": {"x": "1"}}});
        assert!(matches(&o, Some("x=1"), None));
        assert!(!matches(&o, Some("x=2"), None));
        assert!(matches(&o, None, Some("metadata.name=a")));
        assert!(!matches(&o, None, Some("metadata.name=b")));
    }
}
