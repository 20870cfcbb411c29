//! An OTLP/HTTP trace receiver for the telemetry suites: `tests/python/otlp_receiver.py`,
//! which decodes the export requests with the official `opentelemetry-proto` package (pinned,
//! in a cached venv), so the spans are read by an implementation independent of the Rust SDK
//! that sent them.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::Process;
use crate::python::Venv;

/// `opentelemetry-proto` and the protobuf runtime it needs, pinned.
pub const OTLP_REQUIREMENTS: &[&str] = &["opentelemetry-proto==1.45.2", "protobuf==7.36.2"];

/// The venv with `opentelemetry-proto`, created on first use.
///
/// # Panics
/// When it cannot be created (the message says why).
pub fn venv() -> Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        Venv::ensure("otlp", OTLP_REQUIREMENTS)
            .unwrap_or_else(|e| panic!("the opentelemetry-proto venv: {e}"))
    })
    .clone()
}

/// A running receiver.
pub struct OtlpReceiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
}

impl OtlpReceiver {
    /// Starts one.
    ///
    /// # Panics
    /// When it does not accept connections within 30 s.
    pub async fn start() -> Self {
        let venv = tokio::task::spawn_blocking(venv).await.expect("venv task");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/otlp_receiver.py");
        let args = [script.to_str().expect("utf-8 path")];
        let process = Process::start("otlp-receiver", &venv.python, &args, &[]);
        let port = process.listening_port(Duration::from_secs(30)).await;
        Self { port, process }
    }

    /// The endpoint for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `{spans: [...], requests: [headers...]}` received so far.
    ///
    /// # Panics
    /// When the receiver does not answer.
    pub async fn received(&self) -> Value {
        let r = reqwest::get(format!("http://127.0.0.1:{}/__spans", self.port))
            .await
            .unwrap_or_else(|e| panic!("the receiver: {e}\n{}", self.process.log()));
        serde_json::from_str(&r.text().await.expect("body")).expect("JSON spans")
    }

    /// The spans received so far, once at least `n` have arrived (or after `timeout`).
    pub async fn spans(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let spans = self.received().await["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if spans.len() >= n || start.elapsed() > timeout {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
