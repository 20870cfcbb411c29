//! Prometheus metrics of the runtime. Labels come from bounded sets: the serving protocol
//! (`invoke`, `openai`, `mcp`), outcomes, error categories, the Agent's own tool names (and the names it offers for MCP tools, bounded by
//! what its servers list and `allowedTools`) and its one model. Never tool input.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::conversation::Usage;

type L1 = Vec<(&'static str, String)>;

/// The runtime's metrics.
pub struct Metrics {
    registry: Registry,
    invocations: Family<L1, Counter>,
    invocation_seconds: Family<L1, Histogram>,
    in_flight: Family<L1, Gauge>,
    bedrock_calls: Family<L1, Counter>,
    bedrock_seconds: Family<L1, Histogram>,
    tokens: Family<L1, Counter>,
    tool_calls: Family<L1, Counter>,
    tool_seconds: Family<L1, Histogram>,
}

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The MCP metrics: kept by the toolbox (its connection tasks update them) and registered with
/// [`Metrics::with_mcp`]. Clones share the same series.
#[derive(Clone, Debug, Default)]
pub struct McpMetrics {
    servers_connected: Gauge,
    tools_offered: Family<L1, Gauge>,
    calls: Family<L1, Counter>,
}

impl McpMetrics {
    /// A server connected (`true`) or was lost (`false`).
    pub fn connected(&self, up: bool) {
        if up {
            self.servers_connected.inc();
        } else {
            self.servers_connected.dec();
        }
    }

    /// How many tools the MCP server of Agent tool `tool` has offered now.
    pub fn tools_offered(&self, tool: &str, n: usize) {
        self.tools_offered
            .get_or_create(&vec![("tool", tool.to_string())])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// One `tools/call`, by the Bedrock-visible tool name and its outcome (`success`,
    /// `tool_error`, `timeout`, `unreachable`, `protocol_error`).
    pub fn call(&self, tool: &str, outcome: &str) {
        self.calls
            .get_or_create(&vec![
                ("tool", tool.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers everything under `agentry_runtime`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("agentry_runtime");
        let invocations = Family::<L1, Counter>::default();
        r.register(
            "invocations",
            "Invocations by protocol and outcome (a stop reason, an error category, or a refusal)",
            invocations.clone(),
        );
        let invocation_seconds =
            Family::<L1, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        r.register(
            "invocation_duration_seconds",
            "Duration of invocations by protocol",
            invocation_seconds.clone(),
        );
        let in_flight = Family::<L1, Gauge>::default();
        r.register(
            "invocations_in_flight",
            "Invocations running now, by protocol",
            in_flight.clone(),
        );
        let bedrock_calls = Family::<L1, Counter>::default();
        r.register(
            "bedrock_calls",
            "Bedrock calls by model and outcome",
            bedrock_calls.clone(),
        );
        let bedrock_seconds =
            Family::<L1, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        r.register(
            "bedrock_call_duration_seconds",
            "Duration of Bedrock calls by model",
            bedrock_seconds.clone(),
        );
        let tokens = Family::<L1, Counter>::default();
        r.register(
            "tokens",
            "Tokens by model and direction (input, output)",
            tokens.clone(),
        );
        let tool_calls = Family::<L1, Counter>::default();
        r.register(
            "tool_calls",
            "Tool calls by tool and outcome",
            tool_calls.clone(),
        );
        let tool_seconds =
            Family::<L1, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        r.register(
            "tool_call_duration_seconds",
            "Duration of tool calls by tool",
            tool_seconds.clone(),
        );
        Self {
            registry: r,
            invocations,
            invocation_seconds,
            in_flight,
            bedrock_calls,
            bedrock_seconds,
            tokens,
            tool_calls,
            tool_seconds,
        }
    }

    /// An invocation in `protocol` started; call [`Metrics::finished`] when it ends.
    pub fn started(&self, protocol: &str) {
        self.in_flight
            .get_or_create(&vec![("protocol", protocol.to_string())])
            .inc();
    }

    /// An invocation in `protocol` ended with `outcome` after `d`.
    pub fn finished(&self, protocol: &str, outcome: &str, d: Duration) {
        let p = vec![("protocol", protocol.to_string())];
        self.in_flight.get_or_create(&p).dec();
        self.invocation_seconds
            .get_or_create(&p)
            .observe(d.as_secs_f64());
        self.refused(protocol, outcome);
    }

    /// An invocation in `protocol` refused before it started (e.g. over the concurrency limit).
    pub fn refused(&self, protocol: &str, outcome: &str) {
        self.invocations
            .get_or_create(&vec![
                ("protocol", protocol.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// One Bedrock call.
    pub fn bedrock_call(&self, model: &str, outcome: &str, d: Duration) {
        self.bedrock_calls
            .get_or_create(&vec![
                ("model", model.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.bedrock_seconds
            .get_or_create(&vec![("model", model.to_string())])
            .observe(d.as_secs_f64());
    }

    /// Tokens of one call.
    pub fn tokens(&self, model: &str, usage: Usage) {
        self.tokens
            .get_or_create(&vec![
                ("model", model.to_string()),
                ("direction", "input".into()),
            ])
            .inc_by(usage.input_tokens);
        self.tokens
            .get_or_create(&vec![
                ("model", model.to_string()),
                ("direction", "output".into()),
            ])
            .inc_by(usage.output_tokens);
    }

    /// One tool call.
    pub fn tool_call(&self, tool: &str, outcome: &str, d: Duration) {
        self.tool_calls
            .get_or_create(&vec![
                ("tool", tool.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.tool_seconds
            .get_or_create(&vec![("tool", tool.to_string())])
            .observe(d.as_secs_f64());
    }

    /// These metrics plus the toolbox's MCP metrics.
    pub fn with_mcp(mcp: McpMetrics) -> Self {
        let mut m = Self::new();
        m.registry.register(
            "mcp_servers_connected",
            "MCP servers connected now",
            mcp.servers_connected,
        );
        m.registry.register(
            "mcp_tools_offered",
            "Tools offered from each MCP server, by the Agent tool naming the server",
            mcp.tools_offered,
        );
        m.registry.register(
            "mcp_calls",
            "MCP tools/call requests by offered tool name and outcome",
            mcp.calls,
        );
        m
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
