//! The two A2A wire versions served on one URL: 1.0 (`SendMessage`, PascalCase methods, no
//! `kind` discriminators, `ROLE_*` and `TASK_STATE_*` enums, results wrapped by type) and 0.3
//! (`message/send`, `kind` on every object, lower-case roles and states, the `final` flag of
//! status updates). Requests are read into version-neutral values ([`SendParams`]) and the
//! store's [`Task`]s rendered back in the caller's version.

pub mod view;

use serde_json::{Map, Value, json};

use super::store::{State, Task};

/// A wire version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A2A 1.0 (a2a-sdk 1.x).
    V1,
    /// A2A 0.3 (a2a-sdk 0.3.x, kagent 0.10).
    V03,
}

/// A method this server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `SendMessage` / `message/send`.
    Send,
    /// `SendStreamingMessage` / `message/stream`.
    Stream,
    /// `GetTask` / `tasks/get`.
    Get,
    /// `CancelTask` / `tasks/cancel`.
    Cancel,
}

/// What a method name asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// A method served here, in its version.
    Serve(Version, Method),
    /// A push-notification method (none is supported).
    PushNotifications,
    /// An A2A method this server does not offer (resubscribe, list, extended card).
    Unsupported,
    /// No A2A method.
    Unknown,
}

/// The method `name`: the two versions' names never overlap (1.0's are PascalCase, 0.3's
/// hold a `/`), so the name alone picks the version.
pub fn dispatch(name: &str) -> Dispatch {
    use {Method::*, Version::*};
    match name {
        "SendMessage" => Dispatch::Serve(V1, Send),
        "SendStreamingMessage" => Dispatch::Serve(V1, Stream),
        "GetTask" => Dispatch::Serve(V1, Get),
        "CancelTask" => Dispatch::Serve(V1, Cancel),
        "message/send" => Dispatch::Serve(V03, Send),
        "message/stream" => Dispatch::Serve(V03, Stream),
        "tasks/get" => Dispatch::Serve(V03, Get),
        "tasks/cancel" => Dispatch::Serve(V03, Cancel),
        n if n.contains("PushNotificationConfig")
            || n.starts_with("tasks/pushNotificationConfig/") =>
        {
            Dispatch::PushNotifications
        }
        "SubscribeToTask"
        | "ListTasks"
        | "GetExtendedAgentCard"
        | "tasks/resubscribe"
        | "agent/getAuthenticatedExtendedCard" => Dispatch::Unsupported,
        _ => Dispatch::Unknown,
    }
}

/// A JSON-RPC error with an A2A code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// The 1.0 `ErrorInfo` reason of an A2A-specific code.
    pub reason: Option<&'static str>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>, reason: Option<&'static str>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
        }
    }
    /// -32700.
    pub fn parse(message: impl Into<String>) -> Self {
        Self::new(-32700, message, None)
    }
    /// -32600.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(-32600, message, None)
    }
    /// -32601.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("Method not found: {method}"), None)
    }
    /// -32602.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message, None)
    }
    /// -32603.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(-32603, message, None)
    }
    /// -32001.
    pub fn task_not_found(id: &str) -> Self {
        Self::new(
            -32001,
            format!("Task not found: {id}"),
            Some("TASK_NOT_FOUND"),
        )
    }
    /// -32002.
    pub fn not_cancelable(state: State) -> Self {
        let state = state_name(Version::V03, state);
        let message = format!("Task cannot be canceled: it has ended ({state})");
        Self::new(-32002, message, Some("TASK_NOT_CANCELABLE"))
    }
    /// -32003.
    pub fn push_not_supported() -> Self {
        let message = "Push notifications are not supported: stream with message/stream \
                       (SendStreamingMessage) or poll with tasks/get (GetTask)";
        Self::new(-32003, message, Some("PUSH_NOTIFICATION_NOT_SUPPORTED"))
    }
    /// -32004.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(-32004, message, Some("UNSUPPORTED_OPERATION"))
    }
    /// -32005.
    pub fn content_type(message: impl Into<String>) -> Self {
        Self::new(-32005, message, Some("CONTENT_TYPE_NOT_SUPPORTED"))
    }
    /// -32009.
    pub fn version(requested: &str) -> Self {
        let message =
            format!("A2A version {requested} is not supported: this agent speaks 1.0 and 0.3");
        Self::new(-32009, message, Some("VERSION_NOT_SUPPORTED"))
    }

    /// The `error` member: in 1.0 an A2A code carries a `google.rpc.ErrorInfo` in `data`.
    pub fn to_json(&self, version: Version) -> Value {
        let mut e = json!({"code": self.code, "message": self.message});
        if let (Version::V1, Some(reason)) = (version, self.reason) {
            e["data"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "a2a-protocol.org",
                "metadata": {},
            }]);
        }
        e
    }
}

/// A JSON-RPC response carrying `result`.
#[derive(serde::Serialize)]
pub struct Reply<'a, T> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: T,
}

/// A JSON-RPC response carrying `result`, written as it is serialised.
pub fn result<T: serde::Serialize>(id: &Value, result: T) -> Reply<'_, T> {
    Reply {
        jsonrpc: "2.0",
        id,
        result,
    }
}

/// A JSON-RPC response carrying `error`.
pub fn error(id: &Value, version: Version, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": e.to_json(version)})
}

/// A `message/send` request, version-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendParams {
    /// The client's message id.
    pub message_id: String,
    /// The client's context id, if given.
    pub context_id: Option<String>,
    /// The text parts.
    pub parts: Vec<String>,
    /// Whether the answer waits for the task to end (0.3 `blocking`, 1.0 not `returnImmediately`).
    pub blocking: bool,
    /// How many history messages the returned task carries.
    pub history_length: Option<u64>,
}

fn text_modes_accepted(config: &Map<String, Value>) -> bool {
    match config.get("acceptedOutputModes").and_then(Value::as_array) {
        Some(modes) if !modes.is_empty() => modes
            .iter()
            .filter_map(Value::as_str)
            .any(|m| matches!(m, "text/plain" | "text" | "*/*" | "text/*")),
        _ => true,
    }
}

fn text_of_part(version: Version, i: usize, part: &Value) -> Result<String, RpcError> {
    let text = part.get("text").and_then(Value::as_str);
    let other = match version {
        Version::V1 => ["raw", "url", "data"]
            .into_iter()
            .find(|k| part.get(*k).is_some()),
        Version::V03 => match part.get("kind").and_then(Value::as_str) {
            Some("text") => None,
            Some(k @ ("file" | "data")) => Some(k),
            _ => {
                return Err(RpcError::invalid_params(format!(
                    "message.parts[{i}] needs kind \"text\", \"file\" or \"data\""
                )));
            }
        },
    };
    match (other, text) {
        (Some(kind), _) => Err(RpcError::content_type(format!(
            "message.parts[{i}] is a {kind} part: this agent takes text parts only"
        ))),
        (None, Some(t)) => Ok(t.to_string()),
        (None, None) => Err(RpcError::invalid_params(format!(
            "message.parts[{i}] has no text"
        ))),
    }
}

/// Reads `message/send` (or stream) params in `version`.
pub fn send_params(version: Version, params: &Value) -> Result<SendParams, RpcError> {
    let m = params
        .get("message")
        .and_then(Value::as_object)
        .ok_or_else(|| RpcError::invalid_params("params.message is required"))?;
    let user = match version {
        Version::V1 => "ROLE_USER",
        Version::V03 => "user",
    };
    if m.get("role").and_then(Value::as_str) != Some(user) {
        return Err(RpcError::invalid_params(format!(
            "message.role must be {user:?}"
        )));
    }
    let message_id = m
        .get("messageId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| RpcError::invalid_params("message.messageId is required"))?;
    if m.get("taskId")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return Err(RpcError::unsupported(
            "each message starts a new task here (tasks end when answered): send it without taskId",
        ));
    }
    let parts = m
        .get("parts")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RpcError::invalid_params("message.parts needs at least one part"))?;
    let parts = parts
        .iter()
        .enumerate()
        .map(|(i, p)| text_of_part(version, i, p))
        .collect::<Result<Vec<_>, _>>()?;
    let empty = Map::new();
    let config = params
        .get("configuration")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if !text_modes_accepted(config) {
        return Err(RpcError::content_type(
            "acceptedOutputModes excludes text/plain, the only output mode of this agent",
        ));
    }
    let push = match version {
        Version::V1 => "taskPushNotificationConfig",
        Version::V03 => "pushNotificationConfig",
    };
    if config.get(push).is_some_and(|p| !p.is_null()) {
        return Err(RpcError::push_not_supported());
    }
    let blocking = match version {
        Version::V1 => config.get("returnImmediately").and_then(Value::as_bool) != Some(true),
        Version::V03 => config.get("blocking").and_then(Value::as_bool) != Some(false),
    };
    Ok(SendParams {
        message_id: message_id.to_string(),
        context_id: m
            .get("contextId")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        parts,
        blocking,
        history_length: history_length(config)?,
    })
}

fn history_length(params: &Map<String, Value>) -> Result<Option<u64>, RpcError> {
    match params.get("historyLength") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RpcError::invalid_params("historyLength must be a non-negative integer")
        }),
    }
}

/// Reads `tasks/get` or `tasks/cancel` params: the task id and `historyLength`.
pub fn task_params(params: &Value) -> Result<(String, Option<u64>), RpcError> {
    let id = params
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| RpcError::invalid_params("params.id (the task id) is required"))?;
    let empty = Map::new();
    let hl = history_length(params.as_object().unwrap_or(&empty))?;
    Ok((id.to_string(), hl))
}

/// A state's name in `version`.
pub fn state_name(version: Version, state: State) -> &'static str {
    match (version, state) {
        (Version::V1, State::Submitted) => "TASK_STATE_SUBMITTED",
        (Version::V1, State::Working) => "TASK_STATE_WORKING",
        (Version::V1, State::Completed) => "TASK_STATE_COMPLETED",
        (Version::V1, State::Failed) => "TASK_STATE_FAILED",
        (Version::V1, State::Canceled) => "TASK_STATE_CANCELED",
        (Version::V1, State::InputRequired) => "TASK_STATE_INPUT_REQUIRED",
        (Version::V03, State::Submitted) => "submitted",
        (Version::V03, State::Working) => "working",
        (Version::V03, State::Completed) => "completed",
        (Version::V03, State::Failed) => "failed",
        (Version::V03, State::Canceled) => "canceled",
        (Version::V03, State::InputRequired) => "input-required",
    }
}

fn status(version: Version, task: &Task) -> Value {
    json!(view::StatusView { version, task })
}

fn artifact(version: Version, answer: &(String, String)) -> Value {
    json!(view::ArtifactView { version, answer })
}

/// A task in `version`, with its last `history_length` history messages (1.0: `0` means
/// none; 0.3: `0` means all, as each version's SDK reads it).
pub fn task(version: Version, t: &Task, history_length: Option<u64>) -> view::TaskView<'_> {
    let keep = match (version, history_length) {
        (_, None) | (Version::V03, Some(0)) => t.history.len(),
        (_, Some(n)) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(t.history.len()),
    };
    view::TaskView {
        version,
        task: t,
        keep,
    }
}

/// The result of a blocking or returning-immediately send: 1.0 wraps it as `{"task": …}`.
pub fn send_result(
    version: Version,
    t: &Task,
    history_length: Option<u64>,
) -> view::SendResult<'_> {
    view::SendResult(task(version, t, history_length))
}

/// The first stream event: the task itself.
pub fn stream_task(version: Version, t: &Task) -> view::SendResult<'_> {
    send_result(version, t, None)
}

/// A status-update stream event (0.3 marks the last one `final`).
pub fn status_update(version: Version, t: &Task) -> Value {
    let mut v = json!({"taskId": t.id, "contextId": t.context_id, "status": status(version, t)});
    match version {
        Version::V1 => json!({"statusUpdate": v}),
        Version::V03 => {
            v["kind"] = json!("status-update");
            v["final"] = json!(t.state.terminal());
            v
        }
    }
}

/// The artifact-update stream event of a completed task's answer, if it has one.
pub fn artifact_update(version: Version, t: &Task) -> Option<Value> {
    let a = t.answer.as_ref()?;
    let mut v =
        json!({"taskId": t.id, "contextId": t.context_id, "artifact": artifact(version, a)});
    Some(match version {
        Version::V1 => json!({"artifactUpdate": v}),
        Version::V03 => {
            v["kind"] = json!("artifact-update");
            v["append"] = json!(false);
            v["lastChunk"] = json!(true);
            v
        }
    })
}
#[cfg(test)]
mod tests;
