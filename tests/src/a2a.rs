//! The official A2A Python SDK (`a2a-sdk` from PyPI, in cached venvs) for the runtime's A2A
//! suites: its client (`tests/python/a2a_client.py`) in the current release (1.3, A2A 1.0) and
//! in the 0.3 release kagent 0.10 runs (0.3.26, A2A 0.3), run against the runtime's own A2A
//! server.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::python::{Venv, run_json};

/// a2a-sdk 1.3.0 (the current release) with its HTTP server extra, uvicorn and httpx, pinned.
pub const A2A13_REQUIREMENTS: &[&str] = &[
    "a2a-sdk==1.3.0",
    "aiologic==0.17.1",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "cryptography==50.0.2",
    "culsans==0.11.0",
    "google-api-core==2.44.0",
    "google-auth==2.63.0",
    "googleapis-common-protos==1.76.0",
    "h11==0.16.0",
    "httpcore==1.0.9",
    "httpx==0.28.1",
    "idna==3.20",
    "json-rpc==1.15.0",
    "opentelemetry-api==1.45.2",
    "packaging==26.4",
    "proto-plus==1.29.0",
    "protobuf==7.36.2",
    "pyasn1==0.6.5",
    "pyasn1_modules==0.4.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "requests==2.34.2",
    "sniffio==1.3.1",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "urllib3==2.8.0",
    "uvicorn==0.54.0",
    "wrapt==2.5.2",
];

/// a2a-sdk 0.3.26 (kagent 0.10's) likewise.
pub const A2A03_REQUIREMENTS: &[&str] = &[
    "a2a-sdk==0.3.26",
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "click==8.5.1",
    "cryptography==50.0.2",
    "fastapi==0.165.0",
    "google-api-core==2.44.0",
    "google-auth==2.63.0",
    "googleapis-common-protos==1.76.0",
    "h11==0.16.0",
    "httpcore==1.0.9",
    "httpx==0.28.1",
    "httpx-sse==0.4.3",
    "idna==3.20",
    "opentelemetry-api==1.45.2",
    "proto-plus==1.29.0",
    "protobuf==7.36.2",
    "pyasn1==0.6.5",
    "pyasn1_modules==0.4.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "requests==2.34.2",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "urllib3==2.8.0",
    "uvicorn==0.54.0",
];

/// Which release of the Python SDK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// a2a-sdk 1.3.0: A2A 1.0, and 0.3 in compatibility mode.
    V13,
    /// a2a-sdk 0.3.26: A2A 0.3 only.
    V03,
}

/// The venv with `sdk`, created on first use.
///
/// # Panics
/// When it cannot be created (the message says why, e.g. python3-venv missing).
pub fn venv(sdk: Sdk) -> Venv {
    static V13: OnceLock<Venv> = OnceLock::new();
    static V03: OnceLock<Venv> = OnceLock::new();
    let (cell, name, requirements) = match sdk {
        Sdk::V13 => (&V13, "a2a13", A2A13_REQUIREMENTS),
        Sdk::V03 => (&V03, "a2a03", A2A03_REQUIREMENTS),
    };
    cell.get_or_init(|| {
        Venv::ensure(name, requirements).unwrap_or_else(|e| panic!("the {name} venv: {e}"))
    })
    .clone()
}

/// Runs `tests/python/a2a_client.py` with `spec` in `sdk`'s venv; its JSON output.
///
/// # Panics
/// When the venv cannot be made, or the script fails or runs past two minutes.
pub async fn client(sdk: Sdk, spec: serde_json::Value) -> serde_json::Value {
    let venv = tokio::task::spawn_blocking(move || venv(sdk))
        .await
        .expect("the venv");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/a2a_client.py");
    run_json(&venv, &script, &spec, Duration::from_secs(120)).await
}

/// A running A2A agent built with `a2a-sdk`'s server side (`tests/python/a2a_server.py`): an
/// echo agent that fails tasks whose text contains "fail". Killed when dropped.
pub struct PyA2aServer {
    /// Its base URL, `http://127.0.0.1:<port>/`.
    pub url: String,
    process: crate::process::Process,
}

impl PyA2aServer {
    /// Starts one with `sdk` (1.3: A2A 1.0 and 0.3; 0.3.26: 0.3 only, like kagent 0.10) on a
    /// free port and waits until it accepts connections.
    ///
    /// # Panics
    /// When it does not start within 30 s.
    pub async fn start(sdk: Sdk) -> Self {
        let venv = tokio::task::spawn_blocking(move || venv(sdk))
            .await
            .expect("the venv");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/a2a_server.py");
        let args = [script.to_str().expect("utf-8 path")];
        let process = crate::process::Process::start("a2a-server", &venv.python, &args, &[]);
        let port = process.listening_port(Duration::from_secs(30)).await;
        Self {
            url: format!("http://127.0.0.1:{port}/"),
            process,
        }
    }

    /// The `traceparent` of each request that carried one.
    pub fn traceparents(&self) -> Vec<String> {
        self.logged("TRACE ")
    }

    /// The requests it logged: `REQ <method> depth=<n> version=<A2A-Version>` lines.
    pub fn requests(&self) -> Vec<String> {
        self.logged("REQ ")
            .into_iter()
            .map(|l| format!("REQ {l}"))
            .collect()
    }

    /// What follows `prefix` on each log line that starts with it.
    fn logged(&self, prefix: &str) -> Vec<String> {
        self.process
            .log()
            .lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
            .collect()
    }
}
