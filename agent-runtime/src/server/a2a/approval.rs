//! Human approval over A2A: a turn that waits for approval puts its task in `input-required`,
//! the status message saying which calls wait and how to answer ([`asking`]); the client's next
//! message on the same context is the decision ([`decision`]) for all of them: `approve`, or
//! `deny` with an optional reason after a colon (`deny: not on a Monday`).

use crate::conversation::ToolUse;
use crate::machine::Decision;

/// The status message of a task whose turn waits for approval of `calls`.
pub fn asking(calls: &[ToolUse]) -> String {
    let listed: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{} (toolUseId {}, input {})",
                c.name, c.tool_use_id, c.input
            )
        })
        .collect();
    format!(
        "approval required before calling {}. Reply on this context with \"approve\" to run {}, or \"deny: <reason>\" to refuse",
        listed.join(", "),
        if calls.len() == 1 { "it" } else { "them all" }
    )
}

/// The decision a message's text carries for every waiting call, or `None` when it is not one
/// (letter case and surrounding space do not matter; a reason keeps its own).
pub fn decision(text: &str) -> Option<Decision> {
    let t = text.trim();
    let (word, rest) = match t.split_once(':') {
        Some((w, r)) => (w.trim(), Some(r.trim())),
        None => (t, None),
    };
    match (word.to_ascii_lowercase().as_str(), rest) {
        ("approve", None) => Some(Decision::Approve),
        ("deny", reason) => Some(Decision::Deny(
            reason.filter(|r| !r.is_empty()).map(str::to_string),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approve_and_deny_with_or_without_a_reason_are_decisions_and_other_text_is_not() {
        assert_eq!(decision(" Approve \n"), Some(Decision::Approve));
        assert_eq!(decision("deny"), Some(Decision::Deny(None)));
        assert_eq!(
            decision("DENY: Not on a Monday "),
            Some(Decision::Deny(Some("Not on a Monday".into())))
        );
        assert_eq!(decision("deny:"), Some(Decision::Deny(None)));
        for other in ["yes", "approve: fine", "please approve", ""] {
            assert_eq!(decision(other), None, "{other}");
        }
    }

    #[test]
    fn the_question_names_each_call_and_the_answers() {
        let call = ToolUse {
            tool_use_id: "t1".into(),
            name: "book".into(),
            input: serde_json::json!({"table": 4}),
        };
        assert_eq!(
            asking(&[call]),
            r#"approval required before calling book (toolUseId t1, input {"table":4}). Reply on this context with "approve" to run it, or "deny: <reason>" to refuse"#
        );
    }
}
