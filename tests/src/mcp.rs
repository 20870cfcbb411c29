//! The official Python MCP SDK (`mcp` from PyPI, in a cached venv) for the runtime's MCP
//! suites: its server (`tests/python/mcp_server.py`), started on a free loopback port, waited
//! for until it accepts connections, and killed when dropped; and its client
//! (`tests/python/mcp_client.py`), run against the runtime's own `/mcp`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{Process, free_port};
use crate::python::Venv;

/// The Python MCP SDK and everything it pulls in, pinned (mcp 2.3.0, the current release,
/// runs on Python 3.10 and later).
pub const MCP_REQUIREMENTS: &[&str] = &[
    "mcp==2.3.0",
    "mcp-types==2.3.0",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "attrs==26.1.0",
    "cffi==2.1.1",
    "click==8.5.1",
    "cryptography==50.0.2",
    "h11==0.16.0",
    "httpcore2==2.16.2",
    "httpx2==2.16.2",
    "idna==3.20",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "opentelemetry-api==1.45.2",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "PyJWT==2.15.1",
    "python-multipart==0.0.34",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "truststore==0.10.5",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "uvicorn==0.54.0",
];

/// The last mcp 1 release, pinned likewise: its server (FastMCP) speaks only the handshake
/// protocol versions (up to 2025-11-25) and keeps sessions, as many deployed servers do.
pub const MCP1_REQUIREMENTS: &[&str] = &[
    "mcp==1.30.0",
    "annotated-types==0.8.0",
    "anyio==4.16.0",
    "attrs==26.1.0",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "click==8.5.1",
    "cryptography==50.0.2",
    "h11==0.16.0",
    "httpcore==1.0.9",
    "httpx==0.28.1",
    "httpx-sse==0.4.3",
    "idna==3.20",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "pycparser==3.12",
    "pydantic==2.14.4",
    "pydantic-settings==2.16.3",
    "pydantic_core==2.50.5",
    "PyJWT==2.15.1",
    "python-dotenv==1.2.4",
    "python-multipart==0.0.34",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "sse-starlette==3.7.0",
    "starlette==1.10.0",
    "typing-inspection==0.4.5",
    "typing_extensions==4.16.0",
    "uvicorn==0.54.0",
];

/// Which release of the Python SDK serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sdk {
    /// mcp 2.3.0 (2026-07-28 and the handshake versions).
    #[default]
    Current,
    /// mcp 1.30.0 (handshake versions only).
    V1,
}

/// How long a server may take to start accepting connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The venv with the Python MCP SDK release `sdk`, created on first use.
///
/// # Panics
/// When it cannot be created (the message says why, e.g. python3-venv missing).
pub fn venv(sdk: Sdk) -> Venv {
    static CURRENT: OnceLock<Venv> = OnceLock::new();
    static V1: OnceLock<Venv> = OnceLock::new();
    let (cell, name, requirements) = match sdk {
        Sdk::Current => (&CURRENT, "mcp", MCP_REQUIREMENTS),
        Sdk::V1 => (&V1, "mcp1", MCP1_REQUIREMENTS),
    };
    cell.get_or_init(|| {
        Venv::ensure(name, requirements).unwrap_or_else(|e| panic!("the {name} venv: {e}"))
    })
    .clone()
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/mcp_server.py")
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Options {
    /// `streamable-http` (the default) or `sse` (the HTTP+SSE transport of 2024-11-05).
    pub transport: &'static str,
    /// Generated tools `tool_000` ... beside the fixed ones.
    pub extra_tools: usize,
    /// The server's name.
    pub name: String,
    /// The SDK release.
    pub sdk: Sdk,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            transport: "streamable-http",
            extra_tools: 0,
            name: "agentry-test".into(),
            sdk: Sdk::Current,
        }
    }
}

/// A running Python MCP server.
pub struct PyMcpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    options: Options,
    process: Option<Process>,
}

impl PyMcpServer {
    /// Starts a server on a free port and waits until it answers.
    ///
    /// # Panics
    /// When it does not start within 30 s.
    pub async fn start(options: Options) -> Self {
        let mut s = Self::stopped(free_port(), options);
        s.restart().await;
        s
    }

    /// A server that will listen on `port` once [`PyMcpServer::restart`] is called (to test a
    /// server that is down when the runtime starts).
    pub fn stopped(port: u16, options: Options) -> Self {
        Self {
            port,
            options,
            process: None,
        }
    }

    /// Its MCP endpoint: `/mcp` (Streamable HTTP) or `/sse` (HTTP+SSE).
    pub fn url(&self) -> String {
        let path = if self.options.transport == "sse" {
            "/sse"
        } else {
            "/mcp"
        };
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Kills it (as a crash would).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// (Re)starts it on the same port and waits until it accepts connections.
    ///
    /// # Panics
    /// When it does not start within 30 s.
    pub async fn restart(&mut self) {
        self.stop();
        let sdk = self.options.sdk;
        let venv = tokio::task::spawn_blocking(move || venv(sdk))
            .await
            .expect("venv task");
        let port = self.port.to_string();
        let extra = self.options.extra_tools.to_string();
        let script = script();
        let args = [
            script.to_str().expect("utf-8 path"),
            "--port",
            &port,
            "--transport",
            self.options.transport,
            "--name",
            &self.options.name,
            "--extra-tools",
            &extra,
        ];
        let process = Process::start("mcp-server", &venv.python, &args, &[]);
        process.accepting(self.port, START_TIMEOUT).await;
        self.process = Some(process);
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_default()
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Process::pid)
    }
}

/// Runs the Python SDK's client (`tests/python/mcp_client.py`) with `spec` (`{"url", "mode",
/// "calls"}`, see the script) and returns its JSON line.
///
/// # Panics
/// When the script fails, prints no JSON, or runs past 90 s.
pub async fn client(spec: serde_json::Value) -> serde_json::Value {
    let venv = tokio::task::spawn_blocking(|| venv(Sdk::Current))
        .await
        .expect("venv task");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/mcp_client.py");
    crate::python::run_json(&venv, &script, &spec, Duration::from_secs(90)).await
}
