//! Which Claude model on Amazon Bedrock an Agent uses, and how it samples.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Bedrock model and its inference settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Bedrock model to call: a base model id (`anthropic.claude-3-haiku-20240307-v1:0`), a
    /// cross-region inference profile id (`us.anthropic.claude-3-7-sonnet-20250219-v1:0`) or an
    /// application inference profile ARN. Claude 3.7 and later models must be called through an
    /// inference profile. 1 to 2048 characters, no whitespace.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^\S+$"))]
    pub id: String,

    /// AWS region of the Bedrock endpoint, for example `us-east-1`. When unset the runtime uses
    /// the region of the pod's AWS configuration (`AWS_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[a-z0-9-]+$"))]
    pub region: Option<String>,

    /// Maximum number of tokens the model may generate in one reply (1 to 128000). When unset
    /// the runtime asks for 4096.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 128000))]
    pub max_tokens: Option<i32>,

    /// Sampling temperature from 0 (focused) to 1 (varied). When unset the model's default is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub temperature: Option<f64>,

    /// Nucleus sampling: the cumulative probability mass the model samples from, 0 to 1. When
    /// unset the model's default is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub top_p: Option<f64>,

    /// Strings that end the model's reply when generated (at most 8, each 1 to 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 256)))]
    pub stop_sequences: Option<Vec<String>>,

    /// A Bedrock guardrail applied to every model call of this Agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<Guardrail>,

    /// When true, the runtime marks the system prompt and the tool definitions as Bedrock prompt
    /// cache points, so repeated calls reuse them at a lower price and latency. The model must
    /// support prompt caching. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_caching: Option<bool>,
}

/// A Bedrock guardrail reference.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Guardrail {
    /// Guardrail identifier or ARN, as shown in the Bedrock console.
    #[schemars(length(min = 1, max = 2048))]
    pub identifier: String,

    /// Guardrail version: a number such as `1`, or `DRAFT`.
    #[schemars(
        length(min = 1, max = 16),
        regex(pattern = r"^(([1-9][0-9]{0,7})|(DRAFT))$")
    )]
    pub version: String,

    /// Whether Bedrock returns the guardrail's trace: `enabled`, `disabled` (default) or
    /// `enabled_full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<GuardrailTrace>,
}

/// Whether Bedrock returns the guardrail's trace: `enabled`, `disabled` (default) or
/// `enabled_full`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum GuardrailTrace {
    /// Return the guardrail trace.
    #[serde(rename = "enabled")]
    Enabled,
    /// Do not return the guardrail trace.
    #[serde(rename = "disabled")]
    Disabled,
    /// Return the full guardrail trace, including content that passed.
    #[serde(rename = "enabled_full")]
    EnabledFull,
}

impl GuardrailTrace {
    /// The value as Bedrock spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::EnabledFull => "enabled_full",
        }
    }
}
