//! Amazon Bedrock through the AWS SDK: builds Converse and ConverseStream requests from the
//! runtime configuration and the conversation, and turns replies (whole or streamed) back into
//! the loop's [`ModelReply`]. Credentials and region come from the AWS default chain (IRSA,
//! EKS Pod Identity, environment); `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` overrides the endpoint.

use agentry_crds::model::GuardrailTrace;
use agentry_crds::runtime_config::RuntimeConfig;
use aws_sdk_bedrockruntime::operation::RequestId as _;
use aws_sdk_bedrockruntime::types as sdk;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::conversation::{Block, Message, ResultContent, ResultStatus, Role, ToolUse, Usage};
use crate::document::{to_document, to_json};
use crate::machine::ModelReply;
use crate::telemetry::ChatSettings;
use crate::tools::Offered;

mod error;
mod limit;
mod stream;
pub use error::BedrockError;
pub use stream::{StreamAssembly, excerpt};

use error::{classify, classify_stream};

/// What the SDK puts in a required field the reply lacked, rather than failing.
const NO_VALUE: &str = "no value was set";

/// Default of `--max-reply-bytes`: the most one model reply may hold.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 1024 * 1024;

/// A tool as offered to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// JSON Schema of its input.
    pub input_schema: Value,
}

/// What one invocation changes in the Agent's model settings (a protocol's request may ask
/// for less than the Agent allows, never more; the protocol adapter checks the bounds).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    /// Text appended to the system prompt, each as its own block after the Agent's own.
    pub system: Vec<String>,
    /// `maxTokens` of each model call, instead of the Agent's.
    pub max_tokens: Option<u32>,
    /// `temperature` of each model call, instead of the Agent's.
    pub temperature: Option<f32>,
}

fn build_err(e: aws_smithy_types::error::operation::BuildError) -> BedrockError {
    BedrockError::Request(e.to_string())
}

/// The version of an offer and its SDK form.
type CachedTools = (u64, Option<sdk::ToolConfiguration>);

/// A Bedrock client for one Agent's model and tools.
#[derive(Clone)]
pub struct Bedrock {
    client: aws_sdk_bedrockruntime::Client,
    model_id: String,
    system: Vec<sdk::SystemContentBlock>,
    inference: sdk::InferenceConfiguration,
    prompt_caching: bool,
    /// The SDK form of the tools last offered, rebuilt only when the offer changes.
    tool_config: Arc<Mutex<Option<CachedTools>>>,
    guardrail: Option<sdk::GuardrailConfiguration>,
    guardrail_stream: Option<sdk::GuardrailStreamConfiguration>,
    max_reply_bytes: usize,
}

impl Bedrock {
    /// Loads the AWS configuration (default chain; `model.region` if set) and builds the client.
    pub async fn connect(
        config: &RuntimeConfig,
        max_reply_bytes: usize,
    ) -> Result<Self, BedrockError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.model.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk_config = loader.load().await;
        Self::with_sdk_config(config, &sdk_config, max_reply_bytes)
    }

    /// Builds the client from an SDK configuration (tests give one with an endpoint override).
    pub fn with_sdk_config(
        config: &RuntimeConfig,
        sdk_config: &aws_config::SdkConfig,
        max_reply_bytes: usize,
    ) -> Result<Self, BedrockError> {
        let model = &config.model;
        let mut system = vec![sdk::SystemContentBlock::Text(config.system_prompt.clone())];
        if model.prompt_caching {
            system.push(sdk::SystemContentBlock::CachePoint(cache_point()?));
        }
        let inference = sdk::InferenceConfiguration::builder()
            .max_tokens(i32::try_from(model.max_tokens).unwrap_or(i32::MAX))
            .set_temperature(model.temperature)
            .set_top_p(model.top_p)
            .set_stop_sequences(
                (!model.stop_sequences.is_empty()).then(|| model.stop_sequences.clone()),
            )
            .build();
        let trace = |t: Option<GuardrailTrace>| match t {
            Some(GuardrailTrace::Enabled) => Some(sdk::GuardrailTrace::Enabled),
            Some(GuardrailTrace::EnabledFull) => Some(sdk::GuardrailTrace::EnabledFull),
            Some(GuardrailTrace::Disabled) => Some(sdk::GuardrailTrace::Disabled),
            None => None,
        };
        let (guardrail, guardrail_stream) = match &model.guardrail {
            Some(g) => (
                Some(
                    sdk::GuardrailConfiguration::builder()
                        .guardrail_identifier(&g.identifier)
                        .guardrail_version(&g.version)
                        .set_trace(trace(g.trace))
                        .build(),
                ),
                Some(
                    sdk::GuardrailStreamConfiguration::builder()
                        .guardrail_identifier(&g.identifier)
                        .guardrail_version(&g.version)
                        .set_trace(trace(g.trace))
                        .build(),
                ),
            ),
            None => (None, None),
        };
        Ok(Self {
            client: aws_sdk_bedrockruntime::Client::from_conf(
                aws_sdk_bedrockruntime::config::Builder::from(sdk_config)
                    .interceptor(limit::ReplyLimit {
                        limit: max_reply_bytes,
                    })
                    .build(),
            ),
            max_reply_bytes,
            model_id: model.id.clone(),
            system,
            inference,
            prompt_caching: model.prompt_caching,
            tool_config: Arc::default(),
            guardrail,
            guardrail_stream,
        })
    }

    /// The SDK's tool configuration for `offered`, built once per offer.
    fn tool_config(
        &self,
        offered: &Offered,
    ) -> Result<Option<sdk::ToolConfiguration>, BedrockError> {
        let mut cache = self.tool_config.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((version, config)) = cache.as_ref()
            && *version == offered.version
        {
            return Ok(config.clone());
        }
        let config = build_tool_config(&offered.specs, self.prompt_caching)?;
        *cache = Some((offered.version, config.clone()));
        Ok(config)
    }

    /// The system blocks of a call: the Agent's own (and its cache point) first.
    fn system(&self, overrides: &Overrides) -> Vec<sdk::SystemContentBlock> {
        let mut system = self.system.clone();
        system.extend(
            overrides
                .system
                .iter()
                .map(|t| sdk::SystemContentBlock::Text(t.clone())),
        );
        system
    }

    fn inference(&self, overrides: &Overrides) -> sdk::InferenceConfiguration {
        let mut inference = self.inference.clone();
        if let Some(n) = overrides.max_tokens {
            inference.max_tokens = Some(i32::try_from(n).unwrap_or(i32::MAX));
        }
        if let Some(t) = overrides.temperature {
            inference.temperature = Some(t);
        }
        inference
    }

    /// One Converse call, offering the model `tools`.
    pub async fn converse(
        &self,
        messages: &[Message],
        tools: &Offered,
        overrides: &Overrides,
    ) -> Result<ModelReply, BedrockError> {
        let out = self
            .client
            .converse()
            .model_id(&self.model_id)
            .set_system(Some(self.system(overrides)))
            .set_messages(Some(to_sdk_messages(messages)?))
            .inference_config(self.inference(overrides))
            .set_tool_config(self.tool_config(tools)?)
            .set_guardrail_config(self.guardrail.clone())
            .send()
            .await
            .map_err(classify)?;
        let content = match out.output() {
            Some(sdk::ConverseOutput::Message(m)) => {
                m.content().iter().filter_map(from_sdk_block).collect()
            }
            _ => {
                return Err(BedrockError::Incomplete(
                    "the Converse response has no output message".into(),
                ));
            }
        };
        if matches!(out.stop_reason().as_str(), "" | NO_VALUE) {
            return Err(BedrockError::Incomplete(
                "the Converse response has no stopReason".into(),
            ));
        }
        let usage = out.usage().map(usage).unwrap_or_default();
        Ok(ModelReply {
            content,
            stop_reason: out.stop_reason().as_str().to_string(),
            usage,
            request_id: out.request_id().map(String::from),
            first_chunk: None,
        })
    }

    /// One ConverseStream call, offering the model `tools`; `on_text` gets each text delta as
    /// it arrives.
    pub async fn converse_stream(
        &self,
        messages: &[Message],
        tools: &Offered,
        overrides: &Overrides,
        mut on_text: impl FnMut(&str),
    ) -> Result<ModelReply, BedrockError> {
        let asked = std::time::Instant::now();
        let mut out = self
            .client
            .converse_stream()
            .model_id(&self.model_id)
            .set_system(Some(self.system(overrides)))
            .set_messages(Some(to_sdk_messages(messages)?))
            .inference_config(self.inference(overrides))
            .set_tool_config(self.tool_config(tools)?)
            .set_guardrail_config(self.guardrail_stream.clone())
            .send()
            .await
            .map_err(classify)?;
        let mut assembly =
            StreamAssembly::new(self.max_reply_bytes, out.request_id().map(String::from));
        let mut first_chunk = None;
        loop {
            match out.stream.recv().await {
                Ok(Some(event)) => {
                    first_chunk.get_or_insert_with(|| asked.elapsed());
                    if let Some(text) = assembly.push(event)? {
                        on_text(&text);
                    }
                }
                Ok(None) => break,
                Err(e) => return Err(classify_stream(e)),
            }
        }
        let mut reply = assembly.finish()?;
        reply.first_chunk = first_chunk;
        Ok(reply)
    }

    /// The inference settings a call with `overrides` sends, for its span.
    pub fn settings(&self, overrides: &Overrides) -> ChatSettings {
        let i = self.inference(overrides);
        ChatSettings {
            max_tokens: i.max_tokens,
            temperature: i.temperature,
            top_p: i.top_p,
        }
    }
}

/// Token counts from the SDK's.
pub(crate) fn usage(u: &sdk::TokenUsage) -> Usage {
    let n = |v: i32| u64::try_from(v).unwrap_or(0);
    Usage {
        input_tokens: n(u.input_tokens()),
        output_tokens: n(u.output_tokens()),
        cache_read_input_tokens: u.cache_read_input_tokens().map_or(0, n),
        cache_write_input_tokens: u.cache_write_input_tokens().map_or(0, n),
    }
}

fn cache_point() -> Result<sdk::CachePointBlock, BedrockError> {
    sdk::CachePointBlock::builder()
        .r#type(sdk::CachePointType::Default)
        .build()
        .map_err(build_err)
}

/// The SDK form of the offered tools (`None` when there are none: Bedrock refuses an empty list).
fn build_tool_config(
    tools: &[ToolSpec],
    prompt_caching: bool,
) -> Result<Option<sdk::ToolConfiguration>, BedrockError> {
    if tools.is_empty() {
        return Ok(None);
    }
    let mut specs = Vec::with_capacity(tools.len() + 1);
    for t in tools {
        let spec = sdk::ToolSpecification::builder()
            .name(&t.name)
            .description(&t.description)
            .input_schema(sdk::ToolInputSchema::Json(to_document(&t.input_schema)))
            .build()
            .map_err(build_err)?;
        specs.push(sdk::Tool::ToolSpec(spec));
    }
    if prompt_caching {
        specs.push(sdk::Tool::CachePoint(cache_point()?));
    }
    sdk::ToolConfiguration::builder()
        .set_tools(Some(specs))
        .build()
        .map(Some)
        .map_err(build_err)
}

fn from_sdk_block(b: &sdk::ContentBlock) -> Option<Block> {
    match b {
        sdk::ContentBlock::Text(t) => Some(Block::Text(t.clone())),
        sdk::ContentBlock::ToolUse(u) => Some(Block::ToolUse(ToolUse {
            tool_use_id: u.tool_use_id().into(),
            name: u.name().into(),
            input: to_json(u.input()),
        })),
        // Other blocks (reasoning, images, citations) are not used by Agentry's loop.
        _ => None,
    }
}

fn to_sdk_messages(messages: &[Message]) -> Result<Vec<sdk::Message>, BedrockError> {
    messages
        .iter()
        .map(|m| {
            let content = m
                .content
                .iter()
                .map(to_sdk_block)
                .collect::<Result<Vec<_>, _>>()?;
            sdk::Message::builder()
                .role(match m.role {
                    Role::User => sdk::ConversationRole::User,
                    Role::Assistant => sdk::ConversationRole::Assistant,
                })
                .set_content(Some(content))
                .build()
                .map_err(build_err)
        })
        .collect()
}

fn to_sdk_block(b: &Block) -> Result<sdk::ContentBlock, BedrockError> {
    Ok(match b {
        Block::Text(t) => sdk::ContentBlock::Text(t.clone()),
        Block::ToolUse(u) => sdk::ContentBlock::ToolUse(
            sdk::ToolUseBlock::builder()
                .tool_use_id(&u.tool_use_id)
                .name(&u.name)
                .input(to_document(&u.input))
                .build()
                .map_err(build_err)?,
        ),
        Block::ToolResult(r) => {
            let content = r
                .content
                .iter()
                .map(|c| match c {
                    ResultContent::Text(t) => sdk::ToolResultContentBlock::Text(t.clone()),
                    ResultContent::Json(v) => sdk::ToolResultContentBlock::Json(to_document(v)),
                })
                .collect();
            sdk::ContentBlock::ToolResult(
                sdk::ToolResultBlock::builder()
                    .tool_use_id(&r.tool_use_id)
                    .set_content(Some(content))
                    .set_status(r.status.map(|s| match s {
                        ResultStatus::Success => sdk::ToolResultStatus::Success,
                        ResultStatus::Error => sdk::ToolResultStatus::Error,
                    }))
                    .build()
                    .map_err(build_err)?,
            )
        }
    })
}
