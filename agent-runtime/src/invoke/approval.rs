//! Human approval of tool calls, the pure part: the decisions a client sends for a turn that
//! waits ([`check`]), each pending call decided exactly once.

use serde::Deserialize;

use crate::conversation::ToolUse;
use crate::machine::Decision;

/// One decision as a client sends it: `{"toolUseId": "...", "decision": "approve" | "deny",
/// "reason": "..."}` (a reason only with `deny`, optional).
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sent {
    /// The call decided.
    pub tool_use_id: String,
    /// What was decided.
    pub decision: Verdict,
    /// Why, for a denial: the model reads it.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `approve` or `deny`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Run the call.
    Approve,
    /// Do not run it.
    Deny,
}

/// The request body of `POST /v1/sessions/{id}/approvals`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// One per pending call.
    pub decisions: Vec<Sent>,
}

/// The decisions for the `pending` calls, by id, when `sent` decides each exactly once and
/// nothing else; otherwise what is wrong, naming the ids (unknown, decided twice, missing).
pub fn check(pending: &[ToolUse], sent: &[Sent]) -> Result<Vec<(String, Decision)>, String> {
    let mut problems = vec![];
    let unknown: Vec<&str> = sent
        .iter()
        .map(|s| s.tool_use_id.as_str())
        .filter(|id| !pending.iter().any(|p| p.tool_use_id == *id))
        .collect();
    if !unknown.is_empty() {
        problems.push(format!(
            "no pending call has toolUseId {}",
            unknown.join(", ")
        ));
    }
    let twice: Vec<&str> = pending
        .iter()
        .map(|p| p.tool_use_id.as_str())
        .filter(|id| sent.iter().filter(|s| s.tool_use_id == *id).count() > 1)
        .collect();
    if !twice.is_empty() {
        problems.push(format!("decided more than once: {}", twice.join(", ")));
    }
    let missing: Vec<String> = pending
        .iter()
        .filter(|p| !sent.iter().any(|s| s.tool_use_id == p.tool_use_id))
        .map(|p| format!("{} ({})", p.tool_use_id, p.name))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "every pending call needs a decision; missing: {}",
            missing.join(", ")
        ));
    }
    if let Some(s) = sent
        .iter()
        .find(|s| s.decision == Verdict::Approve && s.reason.is_some())
    {
        problems.push(format!(
            "reason is for a denial (toolUseId {} is approved)",
            s.tool_use_id
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(sent
        .iter()
        .map(|s| {
            let d = match s.decision {
                Verdict::Approve => Decision::Approve,
                Verdict::Deny => Decision::Deny(s.reason.clone()),
            };
            (s.tool_use_id.clone(), d)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str) -> ToolUse {
        ToolUse {
            tool_use_id: id.into(),
            name: name.into(),
            input: serde_json::json!({}),
        }
    }

    fn sent(json: serde_json::Value) -> Vec<Sent> {
        serde_json::from_value::<Body>(json).unwrap().decisions
    }

    #[test]
    fn each_pending_call_decided_once_gives_the_decisions_by_id() {
        let pending = [call("t1", "book"), call("t2", "pay")];
        let d = check(
            &pending,
            &sent(serde_json::json!({"decisions": [
                {"toolUseId": "t2", "decision": "deny", "reason": "too expensive"},
                {"toolUseId": "t1", "decision": "approve"},
            ]})),
        )
        .unwrap();
        assert_eq!(
            d,
            [
                ("t2".into(), Decision::Deny(Some("too expensive".into()))),
                ("t1".into(), Decision::Approve)
            ]
        );
    }

    #[test]
    fn unknown_repeated_and_missing_ids_are_all_named() {
        let pending = [call("t1", "book"), call("t2", "pay"), call("t3", "mail")];
        let e = check(
            &pending,
            &sent(serde_json::json!({"decisions": [
                {"toolUseId": "t1", "decision": "approve"},
                {"toolUseId": "t1", "decision": "deny"},
                {"toolUseId": "t9", "decision": "approve"},
            ]})),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "no pending call has toolUseId t9; decided more than once: t1; every pending call needs a decision; missing: t2 (pay), t3 (mail)"
        );
    }

    #[test]
    fn a_decision_other_than_approve_or_deny_or_an_approval_with_a_reason_is_refused() {
        assert!(
            serde_json::from_value::<Body>(serde_json::json!({"decisions": [
                {"toolUseId": "t1", "decision": "maybe"}]}))
            .is_err()
        );
        let e = check(
            &[call("t1", "book")],
            &sent(serde_json::json!({"decisions": [
                {"toolUseId": "t1", "decision": "approve", "reason": "fine"}]})),
        )
        .unwrap_err();
        assert!(e.contains("reason is for a denial"), "{e}");
    }
}
