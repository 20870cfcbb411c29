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
    /// Input tokens read from the prompt cache (not in `input_tokens`); left out when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the prompt cache (not in `input_tokens`); left out when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_write_input_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_write_input_tokens += other.cache_write_input_tokens;
    }
}

/// Why a client's conversation cannot be sent to the model: where, and which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {rule}")]
pub struct ConversationError {
    /// `messages[i]`, `messages[i].content[j]` or `input`.
    pub at: String,
    /// The rule, and how to meet it.
    pub rule: String,
}

fn broken(at: impl Into<String>, rule: impl Into<String>) -> ConversationError {
    ConversationError {
        at: at.into(),
        rule: rule.into(),
    }
}

/// Checks a client's conversation (`messages`, then `input` as a last user turn) against the
/// rules Bedrock applies, so a bad one is refused with its index and rule rather than as a
/// model error: it starts with a user turn, alternates roles and ends with a user turn; no
/// message or text block is empty; tool calls are in assistant turns and results in user turns;
/// each user turn after an assistant turn with tool calls answers each of them exactly once and
/// nothing else.
pub fn check(messages: &[Message], input: Option<&str>) -> Result<(), ConversationError> {
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        if m.content.is_empty() {
            return Err(broken(at, "has no content blocks"));
        }
        match (i, m.role) {
            (0, Role::Assistant) => {
                return Err(broken(
                    at,
                    "the conversation must start with a user message",
                ));
            }
            (i, role) if i > 0 && messages[i - 1].role == role => {
                return Err(broken(
                    at,
                    format!(
                        "follows another {} message: roles must alternate between user and assistant",
                        role.name()
                    ),
                ));
            }
            _ => {}
        }
        check_blocks(i, m)?;
        let asked = if i > 0 {
            messages[i - 1].tool_uses()
        } else {
            vec![]
        };
        if m.role == Role::User {
            check_answers(i, m, &asked)?;
        }
    }
    match (input, messages.last()) {
        (Some(text), _) if text.trim().is_empty() => Err(broken(
            "input",
            "is blank; leave it out to continue the conversation as it is",
        )),
        (Some(_), Some(last)) if last.role == Role::User => Err(broken(
            "input",
            format!(
                "follows a user message (messages[{}]): give input after an assistant message, or put the text in that user message",
                messages.len() - 1
            ),
        )),
        (Some(_), Some(last)) if !last.tool_uses().is_empty() => Err(broken(
            "input",
            format!(
                "messages[{}] asks for tools: the next user message must carry their toolResult blocks, in messages",
                messages.len() - 1
            ),
        )),
        (None, Some(last)) if last.role == Role::Assistant => Err(broken(
            format!("messages[{}]", messages.len() - 1),
            "the conversation must end with a user message (or give input)",
        )),
        _ => Ok(()),
    }
}

fn check_blocks(i: usize, m: &Message) -> Result<(), ConversationError> {
    let mut ids = std::collections::HashSet::new();
    for (j, b) in m.content.iter().enumerate() {
        let at = format!("messages[{i}].content[{j}]");
        match (b, m.role) {
            (Block::Text(t), _) if t.trim().is_empty() => {
                return Err(broken(at, "is an empty text block"));
            }
            (Block::ToolUse(_), Role::User) => {
                return Err(broken(
                    at,
                    "a toolUse block belongs in an assistant message",
                ));
            }
            (Block::ToolResult(_), Role::Assistant) => {
                return Err(broken(at, "a toolResult block belongs in a user message"));
            }
            (Block::ToolUse(u), _) if u.tool_use_id.is_empty() || u.name.is_empty() => {
                return Err(broken(at, "a toolUse needs a toolUseId and a name"));
            }
            (Block::ToolUse(u), _) if !ids.insert(u.tool_use_id.as_str()) => {
                return Err(broken(
                    at,
                    format!(
                        "toolUseId {:?} is used twice in this message",
                        u.tool_use_id
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_answers(i: usize, m: &Message, asked: &[ToolUse]) -> Result<(), ConversationError> {
    let mut answered = std::collections::HashSet::new();
    for (j, b) in m.content.iter().enumerate() {
        let Block::ToolResult(r) = b else { continue };
        let at = format!("messages[{i}].content[{j}]");
        if !asked.iter().any(|u| u.tool_use_id == r.tool_use_id) {
            return Err(broken(
                at,
                if i == 0 {
                    format!(
                        "toolResult {:?} answers no toolUse: there is no assistant message before it",
                        r.tool_use_id
                    )
                } else {
                    format!(
                        "toolResult {:?} answers no toolUse of the previous assistant message (messages[{}])",
                        r.tool_use_id,
                        i - 1
                    )
                },
            ));
        }
        if !answered.insert(r.tool_use_id.as_str()) {
            return Err(broken(
                at,
                format!("toolUse {:?} is answered twice", r.tool_use_id),
            ));
        }
    }
    if let Some(missing) = asked
        .iter()
        .find(|u| !answered.contains(u.tool_use_id.as_str()))
    {
        return Err(broken(
            format!("messages[{i}]"),
            format!(
                "does not answer toolUse {:?} of messages[{}]: each toolUse needs a toolResult in the next user message",
                missing.tool_use_id,
                i - 1
            ),
        ));
    }
    Ok(())
}

impl Role {
    /// `user` or `assistant`.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
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
    fn parse(v: serde_json::Value) -> Vec<Message> {
        serde_json::from_value(v).unwrap()
    }

    fn refused(v: serde_json::Value, input: Option<&str>) -> String {
        check(&parse(v), input).unwrap_err().to_string()
    }

    #[test]
    fn a_tool_round_trip_continued_with_input_is_accepted() {
        let m = parse(serde_json::json!([
            {"role": "user", "content": [{"text": "Top song on WZPZ?"}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "top_song", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "Elemental Hotel"}]}}]},
            {"role": "assistant", "content": [{"text": "Elemental Hotel."}]}
        ]));
        assert_eq!(check(&m, Some("And on WKRP?")), Ok(()));
        assert_eq!(check(&m[..3], None), Ok(()));
    }

    #[test]
    fn each_broken_rule_is_named_with_its_index() {
        use serde_json::json;
        let user = |t: &str| json!({"role": "user", "content": [{"text": t}]});
        let assistant = |t: &str| json!({"role": "assistant", "content": [{"text": t}]});
        let cases = [
            (
                json!([assistant("hi")]),
                None,
                "messages[0]: the conversation must start with a user message",
            ),
            (
                json!([user("a"), user("b")]),
                None,
                "messages[1]: follows another user message",
            ),
            (
                json!([user("a"), assistant("b")]),
                None,
                "messages[1]: the conversation must end with a user message",
            ),
            (
                json!([user("a")]),
                Some("b"),
                "input: follows a user message (messages[0])",
            ),
            (
                json!([user("a"), assistant("b")]),
                Some(" "),
                "input: is blank",
            ),
            (
                json!([{"role": "user", "content": []}]),
                None,
                "messages[0]: has no content blocks",
            ),
            (
                json!([user("")]),
                None,
                "messages[0].content[0]: is an empty text block",
            ),
            (
                json!([{"role": "user", "content": [{"toolResult": {"toolUseId": "x", "content": []}}]}]),
                None,
                "messages[0].content[0]: toolResult \"x\" answers no toolUse",
            ),
            (
                json!([user("a"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "n", "input": {}}}]}, user("b")]),
                None,
                "messages[2]: does not answer toolUse \"t1\" of messages[1]",
            ),
            (
                json!([user("a"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "n", "input": {}}}]}]),
                Some("b"),
                "input: messages[1] asks for tools",
            ),
            (
                json!([user("a"), {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "n", "input": {}}}, {"toolUse": {"toolUseId": "t1", "name": "n", "input": {}}}]}]),
                None,
                "messages[1].content[1]: toolUseId \"t1\" is used twice",
            ),
            (
                json!([{"role": "user", "content": [{"toolUse": {"toolUseId": "t1", "name": "n", "input": {}}}]}]),
                None,
                "messages[0].content[0]: a toolUse block belongs in an assistant message",
            ),
        ];
        for (messages, input, want) in cases {
            let got = refused(messages.clone(), input);
            assert!(
                got.starts_with(want),
                "{messages}: got {got:?}, want {want:?}"
            );
        }
    }
}
