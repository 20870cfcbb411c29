//! Test harness shared by the cross-crate suites in `tests/tests/`.
//!
//! - [`fixtures`]: the example manifests and the invalid-Agent cases, read from the repository.
//! - [`bedrock`]: a Bedrock Runtime imitation speaking the real wire format.
//! - [`chart`]: renders the Helm chart.
//! - [`k8s`]: a real Kubernetes control plane (the local one, or `AGENTRY_TEST_KUBECONFIG`'s).
//! - [`cluster`]: unique names, the Agent CRD and throwaway namespaces on that cluster.
//! - [`fake_kube`]: an in-memory imitation of the API server, for operator benchmarks.
//! - [`runtime`]: the runtime in-process against the Bedrock imitation, and a tool server.
//! - [`lambda`]: a Lambda imitation speaking the `Invoke` wire format; [`sigv4`]: botocore's
//!   SigV4 signer as an independent verifier of signed requests.
//! - [`api_server`]: a recording HTTP API that also serves OpenAPI documents.
//! - [`operator`]: the operator process with the chart Deployment's flags, environment and identity.
//! - [`process`]: the project's binaries as real processes, with their logs.
//! - [`python`]: cached Python venvs for the official SDKs of protocols; [`mcp`]: the Python MCP
//!   SDK's server, for the MCP suites; [`openai`]: the `openai` SDK as a chat completions
//!   client.
//! - [`prometheus`]: promtool and Prometheus' PromQL parser (built from Go modules, cached), and
//!   the metric families a `/metrics` page describes.
//! - [`redis`]: a real redis-server per test (the session store), with stop, pause and restart.
//! - [`node`]: cached npm packages (`tests/js`, Playwright) and Debian's Chromium, for the
//!   browser suite of the chat page.

// A test harness: when setting up a server or a client fails, stopping the test loudly is the
// right outcome (each such function documents it under `# Panics`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod a2a;
pub mod api_server;
pub mod bedrock;
pub mod chart;
pub mod cluster;
pub mod fake_kube;
pub mod fixtures;
pub mod k8s;
pub mod lambda;
pub mod mcp;
pub mod node;
pub mod openai;
pub mod operator;
pub mod otlp;
pub mod process;
pub mod prometheus;
pub mod python;
pub mod redis;
pub mod runtime;
pub mod sigv4;
