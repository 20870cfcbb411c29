//! An independent SigV4 verifier for the signing suites: `tests/python/sigv4_server.py`, which
//! recomputes each request's signature with botocore's own signer (botocore from PyPI, pinned,
//! in a cached venv) and answers 200 when it agrees with the received `Authorization`, 403 when
//! not; every check is kept for the test to read.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::Process;
use crate::python::Venv;

/// botocore and what it pulls in, pinned (botocore 1.43.11 runs on Python 3.9 and later).
pub const BOTOCORE_REQUIREMENTS: &[&str] = &[
    "botocore==1.43.11",
    "jmespath==1.1.0",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "urllib3==2.7.0",
];

/// The venv with botocore, created on first use.
///
/// # Panics
/// When it cannot be created (the message says why).
pub fn venv() -> Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        Venv::ensure("botocore", BOTOCORE_REQUIREMENTS)
            .unwrap_or_else(|e| panic!("the botocore venv: {e}"))
    })
    .clone()
}

/// Credentials the verifier knows: access key, secret, session token.
#[derive(Clone, Debug)]
pub struct Key {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: String,
    /// Session token, if the credentials are temporary.
    pub token: Option<String>,
}

/// A running verifier.
pub struct SigV4Verifier {
    /// Its port on 127.0.0.1.
    pub port: u16,
    process: Process,
}

impl SigV4Verifier {
    /// Starts one that expects signatures for `service` (`execute-api`, `lambda`) in `region`
    /// made with one of `keys`.
    ///
    /// # Panics
    /// When it does not accept connections within 30 s.
    pub async fn start(service: &str, region: &str, keys: &[Key]) -> Self {
        let venv = tokio::task::spawn_blocking(venv).await.expect("venv task");
        let port = crate::process::free_port();
        let keys: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| {
                (
                    k.access_key.clone(),
                    json!({"secret": k.secret, "token": k.token}),
                )
            })
            .collect();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/sigv4_server.py");
        let port_arg = port.to_string();
        let keys_arg = Value::Object(keys).to_string();
        let args = [
            script.to_str().expect("utf-8 path"),
            "--port",
            &port_arg,
            "--region",
            region,
            "--service",
            service,
            "--keys",
            &keys_arg,
        ];
        let process = Process::start("sigv4-verifier", &venv.python, &args, &[]);
        process.accepting(port, Duration::from_secs(30)).await;
        Self { port, process }
    }

    /// URL of `path_and_query` on it.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }

    /// Every check so far: `{ok, expected, got, canonicalRequest, method, path, problems}`.
    ///
    /// # Panics
    /// When the verifier does not answer.
    pub async fn results(&self) -> Vec<Value> {
        let r = reqwest::get(self.url("/__results"))
            .await
            .unwrap_or_else(|e| panic!("the verifier: {e}\n{}", self.process.log()));
        serde_json::from_str(&r.text().await.expect("body")).expect("JSON results")
    }
}
