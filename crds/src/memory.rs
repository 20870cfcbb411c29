//! `spec.memory`: sessions, conversations kept in a Redis-compatible store so that a client
//! sends only its new input and any replica continues the conversation.
//!
//! The store's URL carries its credentials, so the API only takes it from a Secret key: the
//! operator never reads it, the pod gets it as an environment variable
//! ([`MEMORY_URL_ENV`]) filled from that key, and the runtime configuration names only the
//! variable. Defaults are applied when the spec is read ([`Memory::effective_ttl_seconds`]),
//! never written into the spec.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::agent::KeyRef;

/// The runtime container's environment variable that holds the store's URL. It is Agentry's
/// own: an Agent with `spec.memory` may not set it in `spec.env` (the schema refuses that).
pub const MEMORY_URL_ENV: &str = "AGENTRY_MEMORY_URL";
/// Default for `memory.ttlSeconds`: one day.
pub const DEFAULT_TTL_SECONDS: u32 = 86_400;
/// Default for `memory.maxMessages`.
pub const DEFAULT_MAX_MESSAGES: u32 = 500;
/// Least `memory.maxContextTokens`: below it a summary and the newest turn would not fit.
pub const MIN_CONTEXT_TOKENS: u32 = 1_000;
/// Most `memory.maxContextTokens`: the largest context window of a Claude model on Bedrock.
pub const MAX_CONTEXT_TOKENS: u32 = 1_000_000;
/// Default for `memory.approvalTimeoutSeconds`: an hour.
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: u32 = 3_600;
/// Least `memory.approvalTimeoutSeconds`: time for a person to read the calls at all.
pub const MIN_APPROVAL_TIMEOUT_SECONDS: u32 = 10;
/// Most `memory.approvalTimeoutSeconds`: a week.
pub const MAX_APPROVAL_TIMEOUT_SECONDS: u32 = 604_800;

/// Sessions: the runtime keeps each conversation, by the `sessionId` a client sends, in a
/// Redis-compatible store (Redis, Valkey, Amazon ElastiCache with cluster mode disabled), so
/// the client sends only its new input and any replica continues it. Without `memory` the
/// Agent is stateless and a `sessionId` is refused.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
// A session that expires before its approval would drop the waiting turn with it.
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.approvalTimeoutSeconds) || self.approvalTimeoutSeconds <= (has(self.ttlSeconds) ? self.ttlSeconds : 86400)",
    "message": "memory.approvalTimeoutSeconds is longer than memory.ttlSeconds (86400 when unset): the session would expire first and drop the turn waiting for approval; lower approvalTimeoutSeconds or raise ttlSeconds",
}]))]
pub struct Memory {
    /// The store's URL, from a Secret key (it carries the password, so it is never inline):
    /// `redis://` or `rediss://` (TLS), with `user:password@` when the store needs AUTH
    /// (percent-encode reserved characters), e.g. `rediss://agentry:s3cret@my-cache.example:6379/0`.
    pub url: MemoryUrlSource,

    /// A session expires this many seconds after its last saved turn (1 to 31536000, a year).
    /// Default 86400 (a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 31536000))]
    pub ttl_seconds: Option<i32>,

    /// Most messages a session keeps (2 to 100000); past it the oldest whole turns are dropped
    /// (the newest turn is kept whole even when longer). Default 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 100000))]
    pub max_messages: Option<i32>,

    /// Context compaction: when a session's history plus the new input would pass this many
    /// tokens (estimated from what the model reported for the session's last turn), its oldest
    /// whole turns are replaced by a summary the model writes, in one extra model call before
    /// the turn runs; a tool call is never separated from its result. 1000 to 1000000; set it
    /// below the model's context window (200000 for most Claude models) with room for the
    /// answer. Absent: a session is never compacted (a history past the window then fails
    /// with the model's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 1000000))]
    pub max_context_tokens: Option<i32>,

    /// How long a turn stopped for approval of its tool calls (`tools[].approval: Required`)
    /// waits for the decisions; after it the turn is dropped, none of its calls run, and
    /// decisions are refused as expired. 10 to 604800 (a week), at most `ttlSeconds`.
    /// Default 3600 (an hour), or `ttlSeconds` when that is shorter (but at least 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 604800))]
    pub approval_timeout_seconds: Option<i32>,

    /// PEM of the CA that signed the store's certificate, for a `rediss://` store with a
    /// private CA (without it the image's public roots are used). The certificate only, which
    /// is public: never a private key. At most 65536 characters. The runtime refuses to start
    /// when it is set and the URL is not `rediss://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 65536))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.contains('-----BEGIN CERTIFICATE-----')",
        "message": "memory.caPem must hold the CA's certificate in PEM form (-----BEGIN CERTIFICATE----- ...); paste the certificate itself, not a file path",
    }, {
        "rule": "!self.contains('PRIVATE KEY')",
        "message": "memory.caPem holds a private key: give only the CA's certificate (the key must stay secret)",
    }]))]
    pub ca_pem: Option<String>,
}

/// Where the store's URL comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryUrlSource {
    /// A key of a Secret in the Agent's namespace holding the whole URL. The pod reads it when
    /// it starts: a changed value reaches running pods only when they restart.
    pub secret_key_ref: KeyRef,
}

impl Memory {
    /// `ttlSeconds` with its default applied.
    pub fn effective_ttl_seconds(&self) -> u32 {
        positive(self.ttl_seconds, DEFAULT_TTL_SECONDS)
    }

    /// `maxMessages` with its default applied.
    pub fn effective_max_messages(&self) -> u32 {
        // Below 2 only when the schema was bypassed; the runtime refuses it, so take the default.
        self.max_messages
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v >= 2)
            .unwrap_or(DEFAULT_MAX_MESSAGES)
    }

    /// `maxContextTokens` for the runtime, `None` when absent. A value that bypassed the schema
    /// is passed on as it is (a negative one as 0), so the runtime refuses to start naming the
    /// field rather than silently never compacting.
    pub fn context_tokens(&self) -> Option<u32> {
        self.max_context_tokens
            .map(|v| u32::try_from(v).unwrap_or(0))
    }

    /// `approvalTimeoutSeconds` with its default applied: an hour, or `ttlSeconds` when the
    /// session lives less (never below the least timeout), so an unset timeout never outlives
    /// the session. A value that bypassed the schema is passed on as it is (a negative one as
    /// 0), so the runtime refuses to start naming the field rather than waiting for a time
    /// nobody asked for.
    pub fn effective_approval_timeout_seconds(&self) -> u32 {
        self.approval_timeout_seconds.map_or_else(
            || {
                DEFAULT_APPROVAL_TIMEOUT_SECONDS
                    .min(self.effective_ttl_seconds())
                    .max(MIN_APPROVAL_TIMEOUT_SECONDS)
            },
            |v| u32::try_from(v).unwrap_or(0),
        )
    }
}

fn positive(value: Option<i32>, default: u32) -> u32 {
    value
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v >= 1)
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(yaml: &str) -> Memory {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn unset_ttl_and_max_messages_take_the_documented_defaults() {
        let m = memory("url: {secretKeyRef: {name: store, key: url}}");
        assert_eq!(m.effective_ttl_seconds(), 86_400);
        assert_eq!(m.effective_max_messages(), 500);
    }

    #[test]
    fn set_values_win_and_values_that_bypassed_the_schema_fall_back_to_the_defaults() {
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nttlSeconds: 60\nmaxMessages: 4");
        assert_eq!(
            (m.effective_ttl_seconds(), m.effective_max_messages()),
            (60, 4)
        );
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nttlSeconds: 0\nmaxMessages: 1");
        assert_eq!(
            (m.effective_ttl_seconds(), m.effective_max_messages()),
            (DEFAULT_TTL_SECONDS, DEFAULT_MAX_MESSAGES)
        );
    }

    #[test]
    fn max_context_tokens_is_passed_on_as_written_and_absent_means_never_compact() {
        let m = memory("url: {secretKeyRef: {name: s, key: u}}");
        assert_eq!(m.context_tokens(), None);
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nmaxContextTokens: 150000");
        assert_eq!(m.context_tokens(), Some(150_000));
        // Past the schema: the runtime's own check (at least 1000) must see it and refuse.
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nmaxContextTokens: -5");
        assert_eq!(m.context_tokens(), Some(0));
    }

    #[test]
    fn max_context_tokens_bounds_in_the_schema_are_the_documented_ones() {
        let crd = serde_json::to_value(crate::crd::agent_crd()).unwrap();
        let field = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["memory"]["properties"]["maxContextTokens"];
        let bound = |k: &str| field[k].as_f64();
        assert_eq!(bound("minimum"), Some(f64::from(MIN_CONTEXT_TOKENS)));
        assert_eq!(bound("maximum"), Some(f64::from(MAX_CONTEXT_TOKENS)));
    }

    #[test]
    fn approval_timeout_defaults_to_an_hour_and_a_set_value_is_passed_on_as_written() {
        let m = memory("url: {secretKeyRef: {name: s, key: u}}");
        assert_eq!(m.effective_approval_timeout_seconds(), 3_600);
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\napprovalTimeoutSeconds: 600");
        assert_eq!(m.effective_approval_timeout_seconds(), 600);
        // Past the schema: the runtime's own range check must see it and refuse.
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\napprovalTimeoutSeconds: -5");
        assert_eq!(m.effective_approval_timeout_seconds(), 0);
    }

    #[test]
    fn an_unset_approval_timeout_never_outlives_a_shorter_session() {
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nttlSeconds: 900");
        assert_eq!(m.effective_approval_timeout_seconds(), 900);
        // Not below the least the runtime takes, however short the session.
        let m = memory("url: {secretKeyRef: {name: s, key: u}}\nttlSeconds: 3");
        assert_eq!(m.effective_approval_timeout_seconds(), 10);
        let m = memory(
            "url: {secretKeyRef: {name: s, key: u}}\nttlSeconds: 900\napprovalTimeoutSeconds: 60",
        );
        assert_eq!(m.effective_approval_timeout_seconds(), 60);
    }

    #[test]
    fn approval_timeout_bounds_in_the_schema_are_the_documented_ones() {
        let crd = serde_json::to_value(crate::crd::agent_crd()).unwrap();
        let field = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["memory"]["properties"]["approvalTimeoutSeconds"];
        let bound = |k: &str| field[k].as_f64();
        assert_eq!(
            bound("minimum"),
            Some(f64::from(MIN_APPROVAL_TIMEOUT_SECONDS))
        );
        assert_eq!(
            bound("maximum"),
            Some(f64::from(MAX_APPROVAL_TIMEOUT_SECONDS))
        );
    }

    /// The API server's verdict (schema and CEL rules) on an Agent with this `spec.memory`.
    fn refusals(memory: &str) -> Vec<String> {
        let yaml = format!(
            "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {{name: x}}\nspec:\n  model: {{id: anthropic.claude-3-haiku-20240307-v1:0}}\n  systemPrompt: You help.\n  memory:\n    url: {{secretKeyRef: {{name: s, key: u}}}}\n{memory}"
        );
        crate::validate::agent(&serde_yaml::from_str(&yaml).unwrap())
    }

    #[test]
    fn an_approval_timeout_longer_than_the_session_ttl_is_refused_naming_both_fields() {
        let errors = refusals("    ttlSeconds: 600\n    approvalTimeoutSeconds: 601\n");
        assert!(
            errors.iter().any(|e| e.contains(
                "memory.approvalTimeoutSeconds is longer than memory.ttlSeconds (86400 when unset)"
            ) && e
                .contains("lower approvalTimeoutSeconds or raise ttlSeconds")),
            "{errors:?}"
        );
        assert_eq!(
            refusals("    ttlSeconds: 600\n    approvalTimeoutSeconds: 600\n"),
            Vec::<String>::new(),
            "equal to the ttl: the approval expires with the session, not after it"
        );
        assert_eq!(refusals("    ttlSeconds: 60\n"), Vec::<String>::new());
    }

    #[test]
    fn without_ttl_seconds_the_approval_timeout_is_held_to_the_default_day() {
        assert_eq!(
            refusals("    approvalTimeoutSeconds: 86400\n"),
            Vec::<String>::new()
        );
        let errors = refusals("    approvalTimeoutSeconds: 86401\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("memory.approvalTimeoutSeconds is longer than")),
            "{errors:?}"
        );
        let errors = refusals("    approvalTimeoutSeconds: 9\n");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("spec.memory.approvalTimeoutSeconds")
                    && e.contains("greater than or equal to 10")),
            "{errors:?}"
        );
    }

    #[test]
    fn the_url_can_only_come_from_a_secret_key() {
        let inline = serde_yaml::from_str::<Memory>("url: redis://h:6379");
        assert!(inline.is_err());
    }

    #[test]
    fn the_spec_rule_refusing_a_clashing_env_entry_names_this_variable() {
        let crd = serde_json::to_value(crate::crd::agent_crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let rules = spec["x-kubernetes-validations"].as_array().unwrap();
        let quoted = format!("'{MEMORY_URL_ENV}'");
        assert!(
            rules
                .iter()
                .any(|r| r["rule"].as_str().unwrap().contains(&quoted)
                    && r["message"].as_str().unwrap().contains(MEMORY_URL_ENV)),
            "{rules:?}"
        );
    }
}
