//! The agent card: one card both wire versions read. The 1.0 fields (`supportedInterfaces`
//! listing a 1.0 and a 0.3 JSON-RPC interface on the same URL) plus the 0.3 ones (`url`,
//! `protocolVersion`, `preferredTransport`), as a2a-sdk 1.3 serves it: a 0.3 client ignores
//! `supportedInterfaces`, a 1.x client prefers it.
//!
//! The description is the Agent's `spec.description`, or else the phrase its MCP tool uses.
//! It has one skill, the Agent itself (id and name the Agent's name, its description, and as
//! tags `agentry` and the names of the Agent's tools), since it is one agent with one loop.

use agentry_crds::runtime_config::RuntimeConfig;
use serde_json::{Value, json};

/// The URL the card advertises when no override is given: the Agent's Service in the cluster.
pub fn default_url(config: &RuntimeConfig) -> String {
    format!(
        "http://{}.{}.svc.cluster.local/",
        config.agent.name, config.agent.namespace
    )
}

/// The card of `config`'s Agent, served at `url`.
pub fn card(config: &RuntimeConfig, url: &str) -> Value {
    let description = crate::server::mcp::tool_description(&config.agent);
    let mut tags = vec!["agentry".to_string()];
    tags.extend(config.tools.iter().map(|t| t.name.clone()));
    let name = &config.agent.name;
    json!({
        "name": name,
        "description": description,
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{
            "id": name,
            "name": name,
            "description": description,
            "tags": tags,
        }],
        "url": url,
        "protocolVersion": "0.3",
        "preferredTransport": "JSONRPC",
    })
}
