//! The conversation, in the Converse API's JSON shape: what clients send as `messages`, what
//! the loop keeps, and what the Bedrock adapter translates to and from the SDK's types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The client (and tool results).
    User,
    /// The model.
    Assistant,
}

/// One message.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    /// Who said it.
    pub role: Role,
    /// Its blocks.
    pub content: Vec<Block>,
}

/// A content block: `{"text": ...}`, `{"toolUse": {...}}` or `{"toolResult": {...}}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum Block {
    /// Text.
    Text(String),
    /// The model asks for a tool call.
    ToolUse(ToolUse),
    /// The result of a tool call.
    ToolResult(ToolResult),
}

/// A tool call the model asked for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    /// Id pairing the call with its result.
    pub tool_use_id: String,
    /// Tool name.
    pub name: String,
    /// Input (any JSON; tools validate it).
    pub input: Value,
}

/// Whether a tool call succeeded.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// It worked.
    Success,
    /// It failed; the content says why.
    Error,
}

/// Content of a tool result.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub enum ResultContent {
    /// Text.
    Text(String),
    /// JSON.
    Json(Value),
}

/// The result of one tool call.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    /// The id of the call.
    pub tool_use_id: String,
    /// What it returned.
    pub content: Vec<ResultContent>,
    /// Success or error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultStatus>,
}

impl ToolResult {
    /// An error result with a message Claude can act on.
    pub fn error(tool_use_id: &str, message: impl Into<String>) -> Self {
        Self {
            tool_use_id: tool_use_id.into(),
            content: vec![ResultContent::Text(message.into())],
            status: Some(ResultStatus::Error),
        }
    }

    /// Whether this is an error result.
    pub fn is_error(&self) -> bool {
        self.status == Some(ResultStatus::Error)
    }
}

impl Message {
    /// A user message with one text block.
    pub fn user_text(text: &str) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text(text.into())],
        }
    }

    /// The text blocks, joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    /// The tool calls in this message.
    pub fn tool_uses(&self) -> Vec<ToolUse> {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::ToolUse(u) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Token counts.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    /// Adds another call's usage.
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_use_the_converse_json_shape() {
        let m: Message = serde_json::from_value(serde_json::json!({
            "role": "assistant",
            "content": [{"text": "Let me check."}, {"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {"sign": "WZPZ"}}}]
        }))
        .unwrap();
        assert_eq!(m.text(), "Let me check.");
        assert_eq!(m.tool_uses()[0].name, "top_song");
        let r = Block::ToolResult(ToolResult::error("t1", "boom"));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"toolResult": {"toolUseId": "t1", "content": [{"text": "boom"}], "status": "error"}})
        );
    }
}
