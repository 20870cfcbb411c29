//! Prometheus metrics of the runtime. Labels come from bounded sets: the serving protocol
//! (`invoke`, `openai`, `mcp`, `a2a`), outcomes, error categories, the Agent's own tool names
//! (and the names it offers for MCP tools, bounded by what its servers list and
//! `allowedTools`) and its one model. Never tool input.
//!
//! Beside the `agentry_runtime_*` families, the OpenTelemetry GenAI client metrics in their
//! Prometheus names (`gen_ai_client_token_usage`, `gen_ai_client_operation_duration_seconds`,
//! `gen_ai_client_operation_time_to_first_chunk_seconds`), with the conventions' attributes as
//! labels and buckets, and the estimated cost from [`crate::prices`].

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::conversation::Usage;
use crate::prices::Price;

type L1 = Vec<(&'static str, String)>;

/// `gen_ai.provider.name` of every model call.
pub const PROVIDER: &str = "aws.bedrock";
/// `gen_ai.operation.name` of a Converse or ConverseStream call.
pub const CHAT: &str = "chat";

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
    gen_ai_tokens: Family<L1, Histogram>,
    gen_ai_seconds: Family<L1, Histogram>,
    gen_ai_first_chunk: Family<L1, Histogram>,
    cost: Family<L1, Counter<f64, AtomicU64>>,
    compactions: Family<L1, Counter>,
    compacted_messages: Counter,
    max_concurrent: Gauge,
    /// The Agent's model and its price, when known.
    model: Option<ModelSeries>,
}

/// The series of the Agent's one model, made once so a model call finds them without
/// building labels.
struct ModelSeries {
    input_tokens: Histogram,
    output_tokens: Histogram,
    duration: Histogram,
    first_chunk: Histogram,
    cost: Option<(Counter<f64, AtomicU64>, Price)>,
}

fn gen_ai_labels(model: &str) -> L1 {
    vec![
        ("gen_ai_operation_name", CHAT.to_string()),
        ("gen_ai_provider_name", PROVIDER.to_string()),
        ("gen_ai_request_model", model.to_string()),
    ]
}

fn with(mut labels: L1, key: &'static str, value: &str) -> L1 {
    labels.push((key, value.to_string()));
    labels
}

/// The conventions' buckets of `gen_ai.client.token.usage`: 1, 4, 16, ... 4^13.
fn token_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 14))
}

/// The conventions' buckets of `gen_ai.client.operation.duration`: 10 ms, 20 ms, ... 81.92 s.
fn operation_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The conventions' buckets of `gen_ai.client.operation.time_to_first_chunk`.
fn first_chunk_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ])
}

/// 5 ms to 164 s: past the longest `limits.timeoutSeconds` default (120 s), so a p95 alert
/// can tell slow from very slow.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 16))
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
        let mut root = Registry::default();
        let gen_ai_tokens =
            Family::<L1, Histogram>::new_with_constructor(token_buckets as fn() -> Histogram);
        root.register(
            "gen_ai_client_token_usage",
            "Tokens of each model call, by token type (input, output) (OpenTelemetry GenAI gen_ai.client.token.usage)",
            gen_ai_tokens.clone(),
        );
        let gen_ai_seconds =
            Family::<L1, Histogram>::new_with_constructor(operation_buckets as fn() -> Histogram);
        root.register(
            "gen_ai_client_operation_duration_seconds",
            "Duration of each model call; failed ones carry error_type (OpenTelemetry GenAI gen_ai.client.operation.duration)",
            gen_ai_seconds.clone(),
        );
        let gen_ai_first_chunk =
            Family::<L1, Histogram>::new_with_constructor(first_chunk_buckets as fn() -> Histogram);
        root.register(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from a ConverseStream request to its first chunk (OpenTelemetry GenAI gen_ai.client.operation.time_to_first_chunk)",
            gen_ai_first_chunk.clone(),
        );
        let r = root.sub_registry_with_prefix("agentry_runtime");
        let cost = Family::<L1, Counter<f64, AtomicU64>>::default();
        r.register(
            "estimated_cost_usd",
            "Estimated cost of the model calls in US dollars, from the price table (an estimate: list prices, no discounts)",
            cost.clone(),
        );
        let max_concurrent = Gauge::default();
        r.register(
            "max_concurrent_invocations",
            "The Agent's limits.maxConcurrentInvocations: invocations_in_flight (all protocols) is held at or under it",
            max_concurrent.clone(),
        );
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
            registry: root,
            gen_ai_tokens,
            gen_ai_seconds,
            gen_ai_first_chunk,
            cost,
            compactions: Family::default(),
            compacted_messages: Counter::default(),
            max_concurrent,
            model: None,
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
        let r = m.registry.sub_registry_with_prefix("agentry_runtime");
        r.register(
            "mcp_servers_connected",
            "MCP servers connected now",
            mcp.servers_connected,
        );
        r.register(
            "mcp_tools_offered",
            "Tools offered from each MCP server, by the Agent tool naming the server",
            mcp.tools_offered,
        );
        r.register(
            "mcp_calls",
            "MCP tools/call requests by offered tool name and outcome",
            mcp.calls,
        );
        m
    }

    /// These metrics plus the session store's.
    pub fn with_store(mut self, store: &crate::session::StoreMetrics) -> Self {
        let r = self.registry.sub_registry_with_prefix("agentry_runtime");
        r.register(
            "session_store_requests",
            "Session store calls by op (acquire, renew, checkpoint, release, commit, read, delete) and outcome",
            store.requests.clone(),
        );
        r.register(
            "session_store_request_duration_seconds",
            "Duration of session store calls by op",
            store.seconds.clone(),
        );
        r.register(
            "session_compactions",
            "Context compactions tried, by outcome: compacted (saved with the turn), not_saved (the invocation saved nothing), newest_turn_only (nothing older to summarise), not_a_summary, deadline, or the summary call's Bedrock error category",
            self.compactions.clone(),
        );
        r.register(
            "session_compacted_messages",
            "Messages of old turns replaced by a saved summary",
            self.compacted_messages.clone(),
        );
        self
    }

    /// A context compaction that ended with `outcome`, replacing `messages` stored messages.
    pub fn compaction(&self, outcome: &str, messages: usize) {
        self.compactions
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
        self.compacted_messages
            .inc_by(u64::try_from(messages).unwrap_or(u64::MAX));
    }

    /// These metrics for an Agent calling `model` (priced at `price`, when known) with at most
    /// `max_concurrent` invocations in flight.
    pub fn for_agent(mut self, model: &str, price: Option<Price>, max_concurrent: u32) -> Self {
        self.max_concurrent.set(i64::from(max_concurrent));
        let labels = gen_ai_labels(model);
        // One statement each: a family's guard lives to the end of its statement.
        let input_tokens = self.gen_ai_tokens.get_or_create_owned(&with(
            labels.clone(),
            "gen_ai_token_type",
            "input",
        ));
        let output_tokens = self.gen_ai_tokens.get_or_create_owned(&with(
            labels.clone(),
            "gen_ai_token_type",
            "output",
        ));
        let duration = self.gen_ai_seconds.get_or_create_owned(&labels);
        let first_chunk = self.gen_ai_first_chunk.get_or_create_owned(&labels);
        let cost = price.map(|p| {
            let c = self
                .cost
                .get_or_create_owned(&vec![("model", model.to_string())]);
            (c, p)
        });
        self.model = Some(ModelSeries {
            input_tokens,
            output_tokens,
            duration,
            first_chunk,
            cost,
        });
        self
    }

    /// A model call of the Agent's model that answered: its tokens, duration and cost.
    pub fn model_reply(&self, usage: Usage, d: Duration) {
        let Some(m) = &self.model else { return };
        // Bedrock's inputTokens leave out cached ones; the conventions count all input.
        let input =
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens;
        m.input_tokens.observe(input as f64);
        m.output_tokens.observe(usage.output_tokens as f64);
        m.duration.observe(d.as_secs_f64());
        if let Some((counter, price)) = &m.cost {
            counter.inc_by(price.cost(usage));
        }
    }

    /// A model call of `model` that failed with `error_type` after `d`.
    pub fn model_failed(&self, model: &str, error_type: &str, d: Duration) {
        self.gen_ai_seconds
            .get_or_create(&with(gen_ai_labels(model), "error_type", error_type))
            .observe(d.as_secs_f64());
    }

    /// The first chunk of a streamed model call arrived `d` after the request.
    pub fn first_chunk(&self, d: Duration) {
        if let Some(m) = &self.model {
            m.first_chunk.observe(d.as_secs_f64());
        }
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
