//! What the `a2a` tool reads and writes, without I/O: the interface it picks from a remote
//! agent card, the `message/send` request in that version, and the final text (or the reason
//! for an error) in the answer.

use serde_json::{Value, json};

/// The wire version spoken with the remote agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A2A 1.0: `SendMessage`, `A2A-Version: 1.0`.
    V1,
    /// A2A 0.3: `message/send` (kagent 0.10, a2a-sdk 0.3).
    V03,
}

/// The JSON-RPC endpoint chosen from a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to POST.
    pub url: String,
    /// In which version.
    pub version: Version,
}

/// The endpoint to use from `card`: a 1.0 JSON-RPC interface first, else a 0.3 one, else the
/// 0.3 card's own `url` (whose `preferredTransport` defaults to JSON-RPC).
pub fn endpoint(card: &Value) -> Result<Endpoint, String> {
    let interfaces = card["supportedInterfaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let jsonrpc = |i: &&Value| i["protocolBinding"].as_str().is_none_or(|b| b == "JSONRPC");
    let pick = |prefix: &str| {
        interfaces
            .iter()
            .filter(jsonrpc)
            .find(|i| {
                i["protocolVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with(prefix))
            })
            .and_then(|i| i["url"].as_str())
            .map(str::to_string)
    };
    if let Some(url) = pick("1.") {
        return Ok(Endpoint {
            url,
            version: Version::V1,
        });
    }
    if let Some(url) = pick("0.") {
        return Ok(Endpoint {
            url,
            version: Version::V03,
        });
    }
    let transport = card["preferredTransport"].as_str().unwrap_or("JSONRPC");
    match (card["url"].as_str(), transport) {
        (Some(url), "JSONRPC") => Ok(Endpoint {
            url: url.to_string(),
            version: Version::V03,
        }),
        (Some(_), other) => Err(format!("the agent card offers {other}, not JSON-RPC")),
        (None, _) => Err("the agent card names no JSON-RPC interface".into()),
    }
}

/// The JSON-RPC request sending `text` as a user message, waiting for the task to end.
pub fn send(version: Version, id: &str, message_id: &str, text: &str) -> Value {
    match version {
        Version::V1 => json!({"jsonrpc": "2.0", "id": id, "method": "SendMessage", "params": {
            "message": {"messageId": message_id, "role": "ROLE_USER", "parts": [{"text": text}]},
            "configuration": {"returnImmediately": false}}}),
        Version::V03 => json!({"jsonrpc": "2.0", "id": id, "method": "message/send", "params": {
            "message": {"kind": "message", "messageId": message_id, "role": "user",
                        "parts": [{"kind": "text", "text": text}]},
            "configuration": {"blocking": true}}}),
    }
}

/// The JSON-RPC request fetching task `task_id`.
pub fn get(version: Version, id: &str, task_id: &str) -> Value {
    let method = match version {
        Version::V1 => "GetTask",
        Version::V03 => "tasks/get",
    };
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": {"id": task_id}})
}

/// What an answer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The final text.
    Text(String),
    /// A task that has not ended yet: its id.
    Pending(String),
    /// Why there is no answer.
    Failed(String),
}

fn texts(parts: &Value) -> Vec<String> {
    parts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["kind"].as_str().is_none_or(|k| k == "text"))
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

/// A task's state in the 0.3 spelling (`completed`), whichever version sent it.
fn state(task: &Value) -> String {
    let s = task["status"]["state"].as_str().unwrap_or("unknown");
    s.strip_prefix("TASK_STATE_").map_or_else(
        || s.to_string(),
        |rest| rest.to_ascii_lowercase().replace('_', "-"),
    )
}

/// Reads a task: the text of its artifacts, else of its status message, when completed.
pub fn task(task: &Value) -> Answer {
    let status_text = texts(&task["status"]["message"]["parts"]).join("\n");
    match state(task).as_str() {
        "completed" => {
            let artifacts: Vec<String> = task["artifacts"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|a| texts(&a["parts"]))
                .collect();
            if !artifacts.is_empty() {
                Answer::Text(artifacts.join("\n"))
            } else if !status_text.is_empty() {
                Answer::Text(status_text)
            } else {
                Answer::Failed("the agent completed the task without any text".into())
            }
        }
        "submitted" | "working" => match task["id"].as_str() {
            Some(id) => Answer::Pending(id.to_string()),
            None => Answer::Failed("the agent answered a task without an id".into()),
        },
        other => {
            let why = if status_text.is_empty() {
                "no reason given".into()
            } else {
                status_text
            };
            Answer::Failed(format!("the agent's task ended {other}: {why}"))
        }
    }
}

/// Reads a `message/send` (or `tasks/get`) response.
pub fn answer(response: &Value) -> Answer {
    if let Some(e) = response.get("error") {
        return Answer::Failed(format!(
            "the agent answered JSON-RPC error {}: {}",
            e["code"],
            e["message"].as_str().unwrap_or("no message")
        ));
    }
    let r = &response["result"];
    let message = if r.get("message").is_some() {
        &r["message"]
    } else {
        r
    };
    if r.get("task").is_some() {
        task(&r["task"])
    } else if r["kind"] == "task" || (r.get("status").is_some() && r.get("id").is_some()) {
        task(r)
    } else if message.get("parts").is_some() {
        Answer::Text(texts(&message["parts"]).join("\n"))
    } else {
        Answer::Failed("the agent's answer is neither a task nor a message".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_0_interface_is_preferred_and_a_0_3_card_is_read_from_its_url() {
        let hybrid = json!({"supportedInterfaces": [
            {"url": "http://a/v03", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
            {"url": "http://a/v1", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
            "url": "http://a/v03", "protocolVersion": "0.3"});
        assert_eq!(
            endpoint(&hybrid).unwrap(),
            Endpoint {
                url: "http://a/v1".into(),
                version: Version::V1
            }
        );
        let kagent = json!({"url": "http://k/api/a2a/ns/agent/", "protocolVersion": "0.3.0"});
        assert_eq!(endpoint(&kagent).unwrap().version, Version::V03);
        assert!(endpoint(&json!({"url": "http://g", "preferredTransport": "GRPC"})).is_err());
    }

    #[test]
    fn artifact_text_wins_then_the_status_message_and_a_failed_task_is_an_error_with_its_reason() {
        let done = json!({"result": {"task": {"id": "T", "status": {"state": "TASK_STATE_COMPLETED"},
            "artifacts": [{"parts": [{"text": "echo: hi"}, {"data": {"x": 1}}]}]}}});
        assert_eq!(answer(&done), Answer::Text("echo: hi".into()));
        let kagent = json!({"result": {"kind": "task", "id": "T", "status": {"state": "completed",
            "message": {"kind": "message", "parts": [{"kind": "text", "text": "done"}]}}}});
        assert_eq!(answer(&kagent), Answer::Text("done".into()));
        let failed = json!({"result": {"kind": "task", "id": "T", "status": {"state": "failed",
            "message": {"parts": [{"kind": "text", "text": "model error"}]}}}});
        assert_eq!(
            answer(&failed),
            Answer::Failed("the agent's task ended failed: model error".into())
        );
        let working =
            json!({"result": {"task": {"id": "T", "status": {"state": "TASK_STATE_WORKING"}}}});
        assert_eq!(answer(&working), Answer::Pending("T".into()));
        let err = json!({"error": {"code": -32601, "message": "Method not found"}});
        assert_eq!(
            answer(&err),
            Answer::Failed("the agent answered JSON-RPC error -32601: Method not found".into())
        );
        let message =
            json!({"result": {"message": {"role": "ROLE_AGENT", "parts": [{"text": "hi"}]}}});
        assert_eq!(answer(&message), Answer::Text("hi".into()));
    }
}
