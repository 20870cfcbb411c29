//! The connection to the session store (Redis, Valkey, ElastiCache, MemoryDB) and its key
//! layout: one lazily connected, reconnecting multiplexed connection, every call bounded by a
//! timeout so a store that is down or stopped answers "unavailable" fast instead of hanging an
//! invocation, and counted in the store metrics.

use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ScriptInvocation, Value};

use super::SessionError;

/// Longest a store call may take before it counts as unavailable.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the store cannot be used at all (at start: a bad URL).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is not one the client takes.
    #[error(
        "the session store URL must be redis://host:port or rediss://host:port (TLS), optionally with user:password@ and /db; {0}"
    )]
    Url(String),
    /// The client refused the URL.
    #[error("the session store URL cannot be used")]
    Client(#[source] redis::RedisError),
    /// The variable that should hold the URL is not set.
    #[error(
        "memory.urlFromEnv names {0}, which is not set: set it to the store URL (redis://host:6379 or rediss://user:password@host:6379)"
    )]
    MissingUrl(String),
    /// A setting is out of bounds.
    #[error("{0}")]
    Setting(String),
}

/// The keys of one session. They share the hash tag `{<namespace>/<agent>/<id>}`, so every
/// script's keys fall in one cluster slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    /// The lease: `"<token> <pod> <invocation>"`, with a TTL of the lease.
    pub lock: String,
    /// The state hash (`v`, `schema`, `meta`, `lastInvocation`, ...).
    pub state: String,
    /// The committed messages, one Converse message JSON per element.
    pub messages: String,
    /// The running invocation's checkpointed messages (resume, a later step).
    pub checkpoint: String,
}

impl Keys {
    /// The keys of session `id` of the Agent `namespace/agent`.
    pub fn new(namespace: &str, agent: &str, id: &str) -> Self {
        let base = format!("agentry:{{{namespace}/{agent}/{id}}}");
        Self {
            lock: format!("{base}:lock"),
            state: format!("{base}:s"),
            messages: format!("{base}:m"),
            checkpoint: format!("{base}:c"),
        }
    }

    /// Adds all four keys, in the order every script takes them.
    pub fn add_to<'a, 'b>(
        &self,
        inv: &'b mut ScriptInvocation<'a>,
    ) -> &'b mut ScriptInvocation<'a> {
        inv.key(&self.lock)
            .key(&self.state)
            .key(&self.messages)
            .key(&self.checkpoint)
    }
}

/// Store call metrics: registered with [`crate::metrics::Metrics::with_store`]; clones share
/// the same series.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// By `op` (acquire, renew, checkpoint, release, commit, read, delete) and `outcome`.
    pub(crate) requests: Family<Vec<(&'static str, String)>, Counter>,
    /// By `op`.
    pub(crate) seconds: Family<Vec<(&'static str, String)>, Histogram>,
}

fn store_buckets() -> Histogram {
    // 0.5 ms to 4 s: a loopback call is well under a millisecond, the timeout is 2 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(store_buckets as fn() -> Histogram),
        }
    }
}

impl StoreMetrics {
    /// One store call of `op` that ended with `outcome` after `d`.
    pub fn observe(&self, op: &'static str, outcome: &'static str, d: Duration) {
        self.requests
            .get_or_create(&vec![
                ("op", op.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.seconds
            .get_or_create(&vec![("op", op.to_string())])
            .observe(d.as_secs_f64());
    }
}

/// The store: a cheap-to-clone handle on one multiplexed connection.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    timeout: Duration,
    metrics: StoreMetrics,
}

impl Store {
    /// A store at `url` that connects on first use (so the runtime starts, and serves
    /// invocations without a session, while the store is down); each call gives up after
    /// `timeout`. With `ca_pem` (`rediss://` only), the store's certificate must chain to
    /// that CA instead of the system's roots.
    pub fn connect_lazy(
        url: &str,
        ca_pem: Option<&str>,
        timeout: Duration,
        metrics: StoreMetrics,
    ) -> Result<Self, StoreError> {
        let scheme = url.split("://").next().unwrap_or_default();
        if !matches!(scheme, "redis" | "rediss") || !url.contains("://") {
            return Err(StoreError::Url(format!("the scheme is {scheme:?}")));
        }
        if url.contains("#insecure") {
            return Err(StoreError::Url(
                "#insecure (no certificate check) is not supported".into(),
            ));
        }
        let client = match ca_pem {
            None => redis::Client::open(url),
            Some(_) if scheme != "rediss" => {
                return Err(StoreError::Url(
                    "memory.caPem is set: the URL must be rediss:// (TLS)".into(),
                ));
            }
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.as_bytes().to_vec()),
                },
            ),
        }
        .map_err(StoreError::Client)?;
        // Few, short reconnect attempts: a call waits on a reconnect in progress, and the
        // call timeout bounds that wait anyway; the next call starts a new attempt.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1))
            .set_connection_timeout(Some(timeout.min(Duration::from_secs(1))))
            .set_response_timeout(Some(timeout));
        let conn =
            ConnectionManager::new_lazy_with_config(client, config).map_err(StoreError::Client)?;
        Ok(Self {
            conn,
            timeout,
            metrics,
        })
    }

    /// The metrics store calls are counted in.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Runs a prepared script within the call timeout.
    pub async fn run(&self, inv: &ScriptInvocation<'_>) -> Result<Value, SessionError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, inv.invoke_async::<Value>(&mut conn)).await {
            Err(_) => Err(SessionError::Timeout(self.timeout)),
            // The connection's own response timeout, a hair before ours.
            Ok(Err(e)) if e.is_timeout() => Err(SessionError::Timeout(self.timeout)),
            // The store answered, with an error (a script's refusal, NOPERM, ...).
            Ok(Err(e)) if matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                Err(SessionError::Refused(e))
            }
            Ok(Err(e)) => Err(SessionError::Unavailable(e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Times `f`, a store call of `op`, and counts it by the outcome it returns.
    pub async fn observed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T, SessionError>>,
    ) -> Result<T, SessionError> {
        let started = Instant::now();
        let r = f.await;
        let outcome = match &r {
            Ok(_) => "success",
            Err(e) => e.outcome(),
        };
        if let Err(
            e @ (SessionError::Timeout(_)
            | SessionError::Unavailable(_)
            | SessionError::Refused(_)
            | SessionError::Reply(_)
            | SessionError::Record(_)),
        ) = &r
        {
            // What operators need to fix the store; the client gets only the code.
            tracing::warn!(op, error = %crate::error_chain(e), "session store call failed");
        }
        self.metrics.observe(op, outcome, started.elapsed());
        r
    }
}

/// A reply element as text (a bulk or simple string).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// A reply element as a number.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// A reply element as a list of texts (`LRANGE`).
pub fn texts(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items.iter().map(text).collect(),
        _ => None,
    }
}

/// A reply element as field/value pairs (`HGETALL` inside a script: a flat array).
pub fn pairs(v: &Value) -> Option<Vec<(String, String)>> {
    let flat = texts(v)?;
    if flat.len() % 2 != 0 {
        return None;
    }
    Some(
        flat.chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_session_shares_one_hash_tag() {
        let k = Keys::new("demo", "weather", "c0ffee-42");
        for key in [&k.lock, &k.state, &k.messages, &k.checkpoint] {
            assert!(
                key.starts_with("agentry:{demo/weather/c0ffee-42}:"),
                "{key}"
            );
        }
    }

    #[tokio::test]
    async fn only_redis_urls_are_taken_and_insecure_tls_is_refused() {
        let m = StoreMetrics::default();
        let t = DEFAULT_CALL_TIMEOUT;
        let e = Store::connect_lazy("http://localhost:6379", None, t, m.clone())
            .err()
            .unwrap();
        assert!(e.to_string().contains("\"http\""), "{e}");
        let e = Store::connect_lazy("rediss://h:6379/#insecure", None, t, m.clone())
            .err()
            .unwrap();
        assert!(e.to_string().contains("#insecure"), "{e}");
        let e = Store::connect_lazy("redis://h:6379", Some("pem"), t, m.clone())
            .err()
            .unwrap();
        assert!(e.to_string().contains("must be rediss://"), "{e}");
        assert!(Store::connect_lazy("redis://127.0.0.1:1/0", None, t, m).is_ok());
    }
}
