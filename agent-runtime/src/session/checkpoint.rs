//! Checkpoints: a session invocation saves its turn so far after each model reply that calls
//! tools (before the tools run) and after each round of tool results, beside the committed
//! history (the checkpoint list and the state hash's `checkpoint` header). The commit drops
//! it atomically with the turn; a release (an invocation that failed without crashing) drops
//! it too. A turn that stops for approval keeps it ([`Sessions::park`]) until the decisions
//! continue it ([`Sessions::acquire_to_decide`]) or it expires. Otherwise only a crash leaves
//! one behind, for `POST /v1/sessions/{id}/resume` on any replica
//! ([`Sessions::acquire_to_resume`], then [`resume_messages`]).

use crate::conversation::{Block, Message, Role, ToolResult};

use super::lease::Lease;
use super::ops::ms;
use super::record::{self, Checkpoint};
use super::{SessionError, Sessions, scripts, store};

impl Sessions {
    /// Appends `new` to the checkpoint of the invocation holding `lease` (which holds `have`
    /// of its messages already; 0 starts a new one) and writes `header`, if the lease is still
    /// this holder's and the session still at `expected_version`. One round trip; an unclear
    /// failure is not retried (the append may have landed).
    pub async fn checkpoint(
        &self,
        lease: &Lease,
        expected_version: u64,
        header: &Checkpoint,
        have: usize,
        new: &[Message],
    ) -> Result<(), SessionError> {
        // Plain data: serialising it cannot fail.
        let header = serde_json::to_string(header).unwrap_or_default();
        let messages: Vec<String> = new.iter().map(record::encode).collect();
        self.store
            .observed("checkpoint", async {
                let mut inv = scripts::CHECKPOINT.prepare_invoke();
                lease
                    .keys
                    .add_to(&mut inv)
                    .arg(&lease.value)
                    .arg(expected_version)
                    .arg(&header)
                    .arg(ms(self.options.ttl))
                    .arg(have);
                for m in &messages {
                    inv.arg(m);
                }
                match store::text(&self.store.run(&inv).await?).as_deref() {
                    Some("ok") => Ok(()),
                    Some("lock_lost") => Err(SessionError::LockLost),
                    Some("conflict") => Err(SessionError::Conflict),
                    _ => Err(SessionError::Reply("checkpoint")),
                }
            })
            .await
    }
}

/// What the model is told for a call that was running when its invocation was interrupted.
pub fn interrupted_message(tool: &str) -> String {
    format!(
        "the call to tool {tool} was interrupted: the runtime running it stopped before its result was saved. It was not run again and may or may not have taken effect; check before calling it again."
    )
}

/// The turn to continue from an interrupted invocation's checkpointed messages: a tool round
/// whose results were saved continues as it is; the calls of the last model reply without
/// saved results get an error result each saying they were interrupted (they are never run
/// again). Also the interrupted calls' ids. `None` when the checkpoint holds no tool call to
/// continue from (it is only written after a reply that calls tools).
pub fn resume_messages(checkpoint: Vec<Message>) -> Option<(Vec<Message>, Vec<String>)> {
    let last = checkpoint.last()?;
    match last.role {
        // The results of the last round were saved: the model is called next.
        Role::User
            if last
                .content
                .iter()
                .any(|b| matches!(b, Block::ToolResult(_))) =>
        {
            Some((checkpoint, vec![]))
        }
        Role::Assistant => {
            let uses = last.tool_uses();
            if uses.is_empty() {
                return None;
            }
            let ids = uses.iter().map(|u| u.tool_use_id.clone()).collect();
            let results = uses
                .iter()
                .map(|u| {
                    Block::ToolResult(ToolResult::error(
                        &u.tool_use_id,
                        interrupted_message(&u.name),
                    ))
                })
                .collect();
            let mut messages = checkpoint;
            messages.push(Message {
                role: Role::User,
                content: results,
            });
            Some((messages, ids))
        }
        Role::User => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ResultStatus, ToolUse};

    fn calls(ids: &[(&str, &str)]) -> Message {
        Message {
            role: Role::Assistant,
            content: std::iter::once(Block::Text("Let me look.".into()))
                .chain(ids.iter().map(|(id, name)| {
                    Block::ToolUse(ToolUse {
                        tool_use_id: (*id).into(),
                        name: (*name).into(),
                        input: serde_json::json!({}),
                    })
                }))
                .collect(),
        }
    }

    fn results(ids: &[&str]) -> Message {
        Message {
            role: Role::User,
            content: ids
                .iter()
                .map(|id| {
                    Block::ToolResult(ToolResult {
                        tool_use_id: (*id).into(),
                        content: vec![],
                        status: None,
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn calls_without_saved_results_are_answered_as_interrupted_never_run_again() {
        let cp = vec![
            Message::user_text("Plan my trip."),
            calls(&[("t1", "weather")]),
            results(&["t1"]),
            calls(&[("t2", "book"), ("t3", "pay")]),
        ];
        let (messages, interrupted) = resume_messages(cp.clone()).unwrap();
        assert_eq!(interrupted, ["t2", "t3"]);
        assert_eq!(messages[..4], cp[..]);
        let last = &messages[4];
        assert_eq!(last.role, Role::User);
        assert_eq!(
            last.content,
            [
                Block::ToolResult(ToolResult::error("t2", interrupted_message("book"))),
                Block::ToolResult(ToolResult::error("t3", interrupted_message("pay"))),
            ]
        );
        assert!(last.content.iter().all(|b| matches!(b,
            Block::ToolResult(r) if r.status == Some(ResultStatus::Error))));
        assert!(interrupted_message("book").contains("was interrupted"));
    }

    #[test]
    fn a_round_whose_results_were_saved_continues_with_the_model_and_nothing_added() {
        let cp = vec![
            Message::user_text("Plan my trip."),
            calls(&[("t1", "weather")]),
            results(&["t1"]),
        ];
        assert_eq!(resume_messages(cp.clone()), Some((cp, vec![])));
    }

    #[test]
    fn a_checkpoint_with_no_tool_call_to_continue_from_is_not_resumed() {
        assert_eq!(resume_messages(vec![]), None);
        assert_eq!(resume_messages(vec![Message::user_text("hi")]), None);
        let answer = Message {
            role: Role::Assistant,
            content: vec![Block::Text("Done.".into())],
        };
        assert_eq!(
            resume_messages(vec![Message::user_text("hi"), answer]),
            None
        );
    }
}
