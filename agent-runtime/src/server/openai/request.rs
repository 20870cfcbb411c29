//! A chat completions request, read and checked without I/O: which of OpenAI's parameters are
//! honoured, which are refused (naming the parameter, as OpenAI's own API does), and which are
//! ignored because ignoring them changes nothing a client can observe. `user` and `assistant`
//! turns become the conversation; `system` and `developer` turns are appended, in order, after
//! the Agent's own system prompt.

use serde_json::{Map, Value};

use crate::bedrock::Overrides;
use crate::conversation::{self, Block, Message, Role};

/// The temperature range Claude on Bedrock accepts.
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f64> = 0.0..=1.0;

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Not a request this endpoint can serve (HTTP 400, `invalid_request_error`).
    #[error("{message}")]
    Invalid {
        /// The parameter at fault (`messages[2].content`), when there is one.
        param: Option<String>,
        /// OpenAI's error code for it.
        code: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Another model was asked for (HTTP 404, `model_not_found`).
    #[error("the model `{asked}` does not exist: this endpoint serves the agent `{agent}`")]
    ModelNotFound {
        /// The `model` of the request.
        asked: String,
        /// The Agent's name, the one model listed at `/v1/models`.
        agent: String,
    },
}

fn invalid(param: &str, code: &'static str, message: impl Into<String>) -> RequestError {
    RequestError::Invalid {
        param: Some(param.to_string()),
        code,
        message: message.into(),
    }
}

/// What the Agent allows a request to ask for.
#[derive(Clone, Copy, Debug)]
pub struct Bounds<'a> {
    /// The Agent's name: the only `model`.
    pub agent: &'a str,
    /// The Agent's `model.maxTokens`: the most a request may ask for.
    pub max_tokens: u32,
}

/// A checked request.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    /// The conversation, ending with a user turn.
    pub messages: Vec<Message>,
    /// System text, `max_tokens` and `temperature` for this invocation.
    pub overrides: Overrides,
    /// `stream`.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The index in `messages` of the first assistant message, if any (a request on a
    /// session may hold none: the session keeps the earlier turns).
    pub assistant_at: Option<usize>,
}

/// Parameters the Agent decides itself: a client's own are refused rather than ignored.
const AGENT_OWNS_TOOLS: &[&str] = &[
    "tools",
    "functions",
    "tool_choice",
    "function_call",
    "parallel_tool_calls",
];

/// Parameters with no effect on the answer, accepted and not used: end-user ids and tags for
/// OpenAI's own abuse tracking and stored completions, a best-effort seed, a service tier and
/// a cache key (Bedrock has neither).
const HARMLESS: &[&str] = &[
    "user",
    "metadata",
    "seed",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// Parameters Claude on Bedrock has no equivalent for, refused unless set to their default
/// (the value that changes nothing): `(name, is the value the default)`.
fn at_default(name: &str, v: &Value) -> Option<bool> {
    let zero = |v: &Value| v.as_f64() == Some(0.0);
    Some(match name {
        "frequency_penalty" | "presence_penalty" => zero(v),
        "logprobs" | "store" => v == &Value::Bool(false),
        "logit_bias" => v.as_object().is_some_and(Map::is_empty),
        "response_format" => v.get("type").and_then(Value::as_str) == Some("text"),
        "modalities" => v == &serde_json::json!(["text"]),
        "top_p" | "stop" | "top_logprobs" | "audio" | "prediction" | "web_search_options"
        | "reasoning_effort" | "verbosity" => false,
        _ => return None,
    })
}

/// Parses and checks a request body against the Agent's `bounds`.
pub fn parse(bytes: &[u8], bounds: Bounds<'_>) -> Result<ChatRequest, RequestError> {
    let body: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| RequestError::Invalid {
            param: None,
            code: "invalid_json",
            message: format!("the body must be a JSON object of chat completion parameters: {e}"),
        })?;
    let mut request = ChatRequest {
        messages: vec![],
        overrides: Overrides::default(),
        stream: false,
        include_usage: false,
        assistant_at: None,
    };
    let mut stream_options = None;
    for (name, value) in &body {
        // An explicit null means "not set" in OpenAI's API (LangChain sends several).
        if value.is_null() {
            continue;
        }
        match name.as_str() {
            "model" | "messages" => {}
            "stream" => {
                request.stream = value
                    .as_bool()
                    .ok_or_else(|| invalid(name, "invalid_type", "`stream` must be a boolean"))?;
            }
            "stream_options" => stream_options = Some(value),
            "max_tokens" | "max_completion_tokens" => {
                let n = max_tokens(name, value, bounds.max_tokens)?;
                if request.overrides.max_tokens.is_some_and(|m| m != n) {
                    return Err(invalid(
                        name,
                        "invalid_value",
                        "`max_tokens` and `max_completion_tokens` differ: set only one",
                    ));
                }
                request.overrides.max_tokens = Some(n);
            }
            "temperature" => {
                let t = value
                    .as_f64()
                    .filter(|t| TEMPERATURE_RANGE.contains(t))
                    .ok_or_else(|| {
                        invalid(
                            name,
                            "invalid_value",
                            "`temperature` must be a number from 0 to 1 (the range Claude accepts)",
                        )
                    })?;
                request.overrides.temperature = Some(t as f32);
            }
            "n" if value.as_u64() == Some(1) => {}
            "n" => {
                return Err(invalid(
                    name,
                    "unsupported_value",
                    "`n` must be 1: an agent gives one answer per invocation",
                ));
            }
            n if AGENT_OWNS_TOOLS.contains(&n) => {
                return Err(invalid(
                    name,
                    "unsupported_parameter",
                    format!(
                        "`{n}` is not supported: the agent `{}` owns its tools and calls them itself; send only messages",
                        bounds.agent
                    ),
                ));
            }
            n if HARMLESS.contains(&n) => {}
            n => match at_default(n, value) {
                Some(true) => {}
                Some(false) => {
                    return Err(invalid(
                        n,
                        "unsupported_parameter",
                        format!(
                            "`{n}` is not supported by this agent (Claude on Amazon Bedrock); leave it out"
                        ),
                    ));
                }
                None => {
                    return Err(invalid(
                        n,
                        "unknown_parameter",
                        format!("Unrecognized request argument supplied: {n}"),
                    ));
                }
            },
        }
    }
    if let Some(options) = stream_options {
        request.include_usage = parse_stream_options(options, request.stream)?;
    }
    match body.get("model") {
        Some(Value::String(m)) if m == bounds.agent => {}
        Some(Value::String(m)) => {
            return Err(RequestError::ModelNotFound {
                asked: m.clone(),
                agent: bounds.agent.to_string(),
            });
        }
        _ => {
            return Err(invalid(
                "model",
                "missing_required_parameter",
                format!(
                    "`model` is required: use the agent's name, `{}`",
                    bounds.agent
                ),
            ));
        }
    }
    let Some(Value::Array(messages)) = body.get("messages") else {
        return Err(invalid(
            "messages",
            "missing_required_parameter",
            "`messages` is required: an array of {role, content} objects",
        ));
    };
    let (turns, system) = conversation_of(messages)?;
    request.messages = turns;
    request.overrides.system = system;
    request.assistant_at = messages
        .iter()
        .position(|m| m.get("role").and_then(Value::as_str) == Some("assistant"));
    Ok(request)
}

/// The new turn of a request on a session, as the loop's input: the session holds the earlier
/// turns, so the request carries only the new user message(s) (their texts joined by a blank
/// line) and any system messages; a client that resends the conversation is told so.
pub fn session_turn(request: &ChatRequest, header: &str) -> Result<String, RequestError> {
    if let Some(i) = request.assistant_at {
        return Err(invalid(
            &format!("messages[{i}]"),
            "invalid_value",
            format!(
                "with {header} the session already holds the conversation so far: send only the new user message (and any system messages), not the earlier turns"
            ),
        ));
    }
    // Without assistant messages the conversation is one user message (turns of one role
    // merge), which `parse` made sure exists.
    let texts: Vec<&str> = request
        .messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|b| match b {
            Block::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    Ok(texts.join("\n\n"))
}

fn max_tokens(name: &str, v: &Value, agent_max: u32) -> Result<u32, RequestError> {
    v.as_u64()
        .filter(|n| (1..=u64::from(agent_max)).contains(n))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            invalid(
                name,
                "invalid_value",
                format!(
                    "`{name}` must be an integer from 1 to {agent_max} (this agent's maxTokens)"
                ),
            )
        })
}

fn parse_stream_options(v: &Value, stream: bool) -> Result<bool, RequestError> {
    let param = "stream_options";
    if !stream {
        return Err(invalid(
            param,
            "invalid_value",
            "`stream_options` is only allowed when `stream` is true",
        ));
    }
    let Some(options) = v.as_object() else {
        return Err(invalid(
            param,
            "invalid_type",
            "`stream_options` must be an object",
        ));
    };
    let mut include_usage = false;
    for (k, v) in options {
        match (k.as_str(), v) {
            ("include_usage", Value::Bool(b)) => include_usage = *b,
            // Random padding against side channels; this runtime sends none to strip.
            ("include_obfuscation", Value::Bool(_)) | (_, Value::Null) => {}
            ("include_usage" | "include_obfuscation", _) => {
                return Err(invalid(
                    &format!("{param}.{k}"),
                    "invalid_type",
                    format!("`{param}.{k}` must be a boolean"),
                ));
            }
            _ => {
                return Err(invalid(
                    &format!("{param}.{k}"),
                    "unknown_parameter",
                    format!("Unrecognized request argument supplied: {param}.{k}"),
                ));
            }
        }
    }
    Ok(include_usage)
}

/// The text of a message's `content`: a string, or text parts (each its own text).
fn texts(i: usize, content: Option<&Value>) -> Result<Vec<String>, RequestError> {
    let param = format!("messages[{i}].content");
    let texts = match content {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                (Some("text"), Some(Value::String(t))) => Ok(t.clone()),
                (Some("text"), _) => Err(invalid(
                    &format!("{param}[{j}].text"),
                    "invalid_type",
                    "a text part needs `text`, a string",
                )),
                (other, _) => Err(invalid(
                    &format!("{param}[{j}].type"),
                    "unsupported_content_type",
                    format!(
                        "content parts of type {} are not supported: this agent takes text parts only",
                        other.map_or("(none)".to_string(), |t| format!("`{t}`"))
                    ),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(invalid(
                &param,
                "invalid_type",
                "`content` must be a string or an array of text parts",
            ));
        }
    };
    if texts.iter().all(|t| t.trim().is_empty()) {
        return Err(invalid(&param, "invalid_value", "`content` is empty"));
    }
    // Bedrock refuses blank text blocks; blank parts beside real ones carry nothing.
    Ok(texts.into_iter().filter(|t| !t.trim().is_empty()).collect())
}

/// The conversation (consecutive turns of one role merged into one message, as Bedrock needs
/// alternating roles) and the client's system text.
fn conversation_of(messages: &[Value]) -> Result<(Vec<Message>, Vec<String>), RequestError> {
    let mut turns: Vec<Message> = vec![];
    let mut system = vec![];
    for (i, m) in messages.iter().enumerate() {
        let at = |k: &str| format!("messages[{i}].{k}");
        let Some(m) = m.as_object() else {
            return Err(invalid(
                &format!("messages[{i}]"),
                "invalid_type",
                "a message must be an object",
            ));
        };
        for (k, v) in m {
            match k.as_str() {
                // `name` tells participants apart; with one user and one agent it says nothing.
                "role" | "content" | "name" => {}
                "refusal" if v.is_null() => {}
                "tool_calls" | "function_call" if v.is_null() => {}
                "tool_calls" | "function_call" => {
                    return Err(invalid(
                        &at(k),
                        "unsupported_parameter",
                        "assistant tool calls are not supported: the agent calls its own tools, so a conversation holds only text turns",
                    ));
                }
                _ => {
                    return Err(invalid(
                        &at(k),
                        "unknown_parameter",
                        format!("Unrecognized request argument supplied: {}", at(k)),
                    ));
                }
            }
        }
        let role = match m.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                system.push(texts(i, m.get("content"))?.join("\n"));
                continue;
            }
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some(r @ ("tool" | "function")) => {
                return Err(invalid(
                    &at("role"),
                    "unsupported_value",
                    format!(
                        "`{r}` messages are not supported: the agent runs its own tools and keeps their results"
                    ),
                ));
            }
            _ => {
                return Err(invalid(
                    &at("role"),
                    "invalid_value",
                    "`role` must be one of system, developer, user, assistant",
                ));
            }
        };
        let blocks = texts(i, m.get("content"))?.into_iter().map(Block::Text);
        if turns.is_empty() && role == Role::Assistant {
            return Err(invalid(
                &format!("messages[{i}]"),
                "invalid_value",
                "the conversation must start with a user message (after any system messages)",
            ));
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Message {
                role,
                content: blocks.collect(),
            }),
        }
    }
    match turns.last() {
        Some(last) if last.role == Role::User => {}
        Some(_) => {
            return Err(invalid(
                "messages",
                "invalid_value",
                "the last message must be a user message: it is what the agent answers",
            ));
        }
        None => {
            return Err(invalid(
                "messages",
                "invalid_value",
                "`messages` must hold at least one user message",
            ));
        }
    }
    // The checks above cover Bedrock's rules for text-only turns; this keeps them in step.
    conversation::check(&turns, None)
        .map_err(|e| invalid("messages", "invalid_value", e.to_string()))?;
    Ok((turns, system))
}

#[cfg(test)]
mod tests;
