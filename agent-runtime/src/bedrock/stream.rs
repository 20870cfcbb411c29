//! Reassembly of a ConverseStream reply: text deltas per content block, and tool inputs from
//! their streamed JSON fragments.

use std::collections::BTreeMap;

use aws_sdk_bedrockruntime::types as sdk;
use serde_json::Value;

use super::BedrockError;
use crate::conversation::{Block, ToolUse, Usage};
use crate::machine::ModelReply;

/// Reassembles a streamed reply: text deltas per block, tool inputs from JSON fragments.
pub struct StreamAssembly {
    blocks: BTreeMap<i32, Partial>,
    stop_reason: Option<String>,
    /// A messageStop came without a stop reason.
    stop_missing: bool,
    usage: Usage,
    /// Bytes of text and tool input held so far, and the most allowed.
    held: usize,
    limit: usize,
    request_id: Option<String>,
}

enum Partial {
    Text(String),
    Tool {
        id: String,
        name: String,
        input: String,
    },
}

impl StreamAssembly {
    /// An empty assembly holding at most `limit` bytes of text and tool input, for the call
    /// with AWS request id `request_id`.
    pub fn new(limit: usize, request_id: Option<String>) -> Self {
        Self {
            blocks: BTreeMap::new(),
            stop_reason: None,
            stop_missing: false,
            usage: Usage::default(),
            held: 0,
            limit,
            request_id,
        }
    }

    fn hold(&mut self, n: usize) -> Result<(), BedrockError> {
        self.held += n;
        if self.held > self.limit {
            return Err(BedrockError::ReplyTooLarge { limit: self.limit });
        }
        Ok(())
    }

    /// Takes one event; returns a text delta to pass on, if it was one. Fails when the reply
    /// grows over the limit.
    pub fn push(
        &mut self,
        event: sdk::ConverseStreamOutput,
    ) -> Result<Option<String>, BedrockError> {
        if let sdk::ConverseStreamOutput::ContentBlockDelta(e) = &event {
            let n = match e.delta() {
                Some(sdk::ContentBlockDelta::Text(t)) => t.len(),
                Some(sdk::ContentBlockDelta::ToolUse(d)) => d.input().len(),
                _ => 0,
            };
            self.hold(n)?;
        }
        Ok(self.apply(event))
    }

    fn apply(&mut self, event: sdk::ConverseStreamOutput) -> Option<String> {
        match event {
            sdk::ConverseStreamOutput::ContentBlockStart(e) => {
                if let Some(sdk::ContentBlockStart::ToolUse(t)) = e.start() {
                    self.blocks.insert(
                        e.content_block_index(),
                        Partial::Tool {
                            id: t.tool_use_id().into(),
                            name: t.name().into(),
                            input: String::new(),
                        },
                    );
                }
                None
            }
            sdk::ConverseStreamOutput::ContentBlockDelta(e) => match e.delta() {
                Some(sdk::ContentBlockDelta::Text(t)) => {
                    match self
                        .blocks
                        .entry(e.content_block_index())
                        .or_insert_with(|| Partial::Text(String::new()))
                    {
                        Partial::Text(s) => s.push_str(t),
                        Partial::Tool { .. } => return None,
                    }
                    Some(t.clone())
                }
                Some(sdk::ContentBlockDelta::ToolUse(d)) => {
                    if let Some(Partial::Tool { input, .. }) =
                        self.blocks.get_mut(&e.content_block_index())
                    {
                        input.push_str(d.input());
                    }
                    None
                }
                _ => None,
            },
            sdk::ConverseStreamOutput::MessageStop(e) => {
                // An empty stop reason, or the SDK's placeholder for a missing one, is none: the
                // reply is incomplete whatever follows. Of several, the last counts.
                let reason = e.stop_reason().as_str();
                if reason.is_empty() || reason == super::NO_VALUE {
                    self.stop_missing = true;
                } else {
                    self.stop_reason = Some(reason.to_string());
                }
                None
            }
            sdk::ConverseStreamOutput::Metadata(e) => {
                if let Some(u) = e.usage() {
                    self.usage = super::usage(u);
                }
                None
            }
            _ => None,
        }
    }

    /// The reply. A tool input that is not valid JSON becomes `{}` in the conversation (so
    /// Bedrock accepts it back) and is marked, so the tool answers with an error. A stream that
    /// ended before its `messageStop` is an incomplete reply, not an answer.
    pub fn finish(self) -> Result<ModelReply, BedrockError> {
        let Some(stop_reason) = self.stop_reason.filter(|_| !self.stop_missing) else {
            return Err(BedrockError::Incomplete(format!(
                "the ConverseStream response ended before its messageStop event ({} content blocks received)",
                self.blocks.len()
            )));
        };
        let content = self
            .blocks
            .into_values()
            .map(|p| match p {
                Partial::Text(t) => Block::Text(t),
                Partial::Tool { id, name, input } => {
                    let parsed = if input.trim().is_empty() { Ok(Value::Object(Default::default())) } else { serde_json::from_str::<Value>(&input) };
                    let input = match parsed {
                        Ok(v) => v,
                        Err(e) => serde_json::json!({ crate::tools::MALFORMED_INPUT_KEY: format!("the tool input was not valid JSON ({e}): {}", excerpt(&input, 200)) }),
                    };
                    Block::ToolUse(ToolUse { tool_use_id: id, name, input })
                }
            })
            .collect();
        Ok(ModelReply {
            content,
            stop_reason,
            usage: self.usage,
            request_id: self.request_id,
            first_chunk: None,
        })
    }
}

/// At most `n` characters of `s`.
pub fn excerpt(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    out
}
