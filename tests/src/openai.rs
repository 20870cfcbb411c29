//! The official `openai` Python SDK as a client of the runtime's chat completions endpoint:
//! `tests/python/openai_client.py` in a cached venv, run once per call with a JSON spec; it
//! prints what the SDK handed back (or the exception it raised) as one JSON line.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::python::Venv;

/// The `openai` SDK and everything it pulls in, pinned (openai 3.57.0, the current release).
pub const OPENAI_REQUIREMENTS: &[&str] = &[
    "openai==3.57.0",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "h11==0.16.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "idna==3.20",
    "jiter==0.19.0",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "sniffio==1.3.1",
    "truststore==0.10.5",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
];

/// Longest one client run may take (the SDK's own timeout is 30 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The venv with the `openai` SDK, created on first use.
///
/// # Panics
/// When it cannot be created (the message says why, e.g. python3-venv missing).
pub fn venv() -> Venv {
    static VENV: OnceLock<Venv> = OnceLock::new();
    VENV.get_or_init(|| {
        Venv::ensure("openai", OPENAI_REQUIREMENTS)
            .unwrap_or_else(|e| panic!("the openai venv: {e}"))
    })
    .clone()
}

/// Runs the client with `spec` (`{"base_url", "call", "kwargs"}`, see the script) and returns
/// its JSON line.
///
/// # Panics
/// When the script fails, prints no JSON, or runs past 60 s.
pub async fn run(spec: Value) -> Value {
    let venv = tokio::task::spawn_blocking(venv).await.expect("venv task");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/openai_client.py");
    crate::python::run_json(&venv, &script, &spec, RUN_TIMEOUT).await
}
