//! Runs one A2A task: the invocation as a future of its own ([`Running`]), which owns the
//! [`Invocation`] guard (slot, metrics, access log), so a task outlives the request that
//! started it — a client that goes away can still fetch it with `tasks/get`; only
//! `tasks/cancel` (or the invocation's own deadline) stops it. A blocking `message/send` runs
//! it in its own request, as `/v1/invoke` runs its loop (no second tokio task, no wake-up
//! across threads at the end), and hands the rest to a task of its own if the client goes away
//! first; a stream or a non-blocking send starts it on a task of its own. Cancelling drops the
//! loop's future, which cancels its model and tool calls. On a session, the turn is saved
//! before the task completes; a cancelled task gives the session back unchanged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::new_id;
use super::store::{Message, Role, State, Store, Task};
use crate::invoke::Request;
use crate::invoke::session::{self, Held, Outcome};
use crate::server::AppState;
use crate::server::invocation::Invocation;

/// Outcome label of an invocation stopped by `tasks/cancel`.
pub const CANCELLED: &str = "cancelled";

/// What the invocation needs besides the task.
pub struct Job {
    /// The admitted invocation.
    pub inv: Invocation,
    /// The session of the task's context, its lease taken (with memory).
    pub held: Option<Held>,
    /// The user's text.
    pub input: String,
    /// Agent-to-agent hops before this one.
    pub depth: u32,
    /// When it must end.
    pub deadline: Instant,
}

/// The task's state and message after the loop ended: a limit stop fails the task with the
/// stop reason and whatever partial text there was; a turn its session could not save fails
/// it too, saying why; a turn that waits for approval puts it in input-required, asking for
/// the decision ([`super::approval::asking`]).
fn ended(task: &mut Task, outcome: &Outcome) {
    match outcome {
        Ok(Ok(s)) if s.stop_reason.answered() => {
            task.state = State::Completed;
            task.answer = Some((new_id(), s.output.clone()));
        }
        Ok(Ok(s)) if s.stop_reason == crate::machine::StopReason::ApprovalRequired => {
            task.state = State::InputRequired;
            task.status_message = Some(Message {
                message_id: new_id(),
                role: Role::Agent,
                parts: vec![super::approval::asking(&s.pending_approvals)],
            });
        }
        _ => {
            let text = match outcome {
                Ok(ended) => crate::server::mcp::result_of(ended).0,
                Err(e) => crate::error_chain(e),
            };
            task.state = State::Failed;
            task.status_message = Some(Message {
                message_id: new_id(),
                role: Role::Agent,
                parts: vec![text],
            });
        }
    }
}

/// A task's invocation, to be run to its end: here ([`Running::finish`]) or on a tokio task of
/// its own ([`Running::detach`]). Dropped before its end, it goes on on a task of its own.
pub struct Running(Option<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Running {
    /// Runs it on a task of its own.
    pub fn detach(mut self) {
        if let Some(run) = self.0.take() {
            tokio::spawn(run);
        }
    }

    /// Runs it to its end in the caller's task. Should the caller be dropped first (its client
    /// went away), the rest runs on a task of its own.
    pub async fn finish(mut self) {
        if let Some(run) = self.0.as_mut() {
            run.await;
        }
        self.0 = None;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(run) = self.0.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(run);
        }
    }
}

/// Prepares `task` (submitted, in the store from now on): returns its invocation, which
/// nothing runs until the caller says where ([`Running`]), and a receiver of the task as it
/// changes (working, then its final state; only the final state when `progress` is false); the
/// receiver closes once the task has ended.
pub fn start(
    s: &AppState,
    store: &Arc<Store>,
    task: Task,
    job: Job,
    progress: bool,
) -> (Running, mpsc::UnboundedReceiver<Task>) {
    let (cancel_tx, cancel_rx) = oneshot::channel();
    let (tx, rx) = mpsc::unbounded_channel();
    store.insert(task.clone(), cancel_tx);
    let rt = s.rt.clone();
    let store = store.clone();
    let Job {
        mut inv,
        held,
        input,
        depth,
        deadline,
    } = job;
    let run = async move {
        if let Some(t) = store.update(&task.id, |t| t.state = State::Working)
            && progress
        {
            let _ = tx.send(t);
        }
        let request = Request {
            input: Some(input),
            messages: vec![],
            depth,
            deadline,
            stream: false,
            request_id: inv.request_id.clone(),
            overrides: Default::default(),
            trace: inv.trace.clone(),
        };
        // Boxed: the loop's future is large, and held inline it would make this task's future
        // as large, copied whole each time tokio moves it (callgrind: about 60,000 instructions
        // of memcpy per invocation, most of what A2A cost over /v1/invoke).
        let run = Box::pin(session::run_maybe(held, &rt, request, None, &inv.progress));
        let finished = tokio::select! {
            outcome = run => {
                inv.finish(200, &session::outcome_label(&outcome));
                store.update(&task.id, |t| ended(t, &outcome))
            }
            // The store marked it cancelled before signalling.
            _ = cancel_rx => {
                inv.finish(200, CANCELLED);
                store.get(&task.id)
            }
        };
        drop(inv);
        if let Some(t) = finished {
            let _ = tx.send(t);
        }
    };
    (Running(Some(Box::pin(run))), rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Usage;
    use crate::invoke;
    use crate::machine::StopReason;

    fn task() -> Task {
        Task {
            id: "t".into(),
            context_id: "c".into(),
            state: State::Working,
            timestamp: super::super::store::now(),
            history: vec![],
            answer: None,
            status_message: None,
        }
    }

    fn summary(stop: StopReason, output: &str) -> Outcome {
        Ok(Ok(invoke::Summary {
            output: output.into(),
            stop_reason: stop,
            iterations: 3,
            usage: Usage::default(),
            tool_calls: vec![],
            texts: vec![],
            pending_approvals: vec![],
        }))
    }

    #[test]
    fn a_turn_waiting_for_approval_puts_the_task_in_input_required_naming_the_calls() {
        let mut t = task();
        let mut waiting = summary(StopReason::ApprovalRequired, "I will book.");
        if let Ok(Ok(s)) = &mut waiting {
            s.pending_approvals = vec![crate::conversation::ToolUse {
                tool_use_id: "t1".into(),
                name: "book".into(),
                input: serde_json::json!({}),
            }];
        }
        ended(&mut t, &waiting);
        assert_eq!(t.state, State::InputRequired);
        assert!(t.state.terminal(), "its invocation has ended");
        assert!(t.answer.is_none());
        let text = &t.status_message.unwrap().parts[0];
        assert!(
            text.starts_with("approval required before calling book (toolUseId t1"),
            "{text}"
        );
    }

    #[test]
    fn an_answer_completes_the_task_with_it_as_the_artifact() {
        let mut t = task();
        ended(&mut t, &summary(StopReason::EndTurn, "Elemental Hotel"));
        assert_eq!(t.state, State::Completed);
        assert_eq!(t.answer.unwrap().1, "Elemental Hotel");
        assert!(t.status_message.is_none());
    }

    #[test]
    fn a_limit_stop_fails_the_task_naming_the_limit_and_keeping_the_partial_text() {
        let mut t = task();
        ended(&mut t, &summary(StopReason::MaxIterations, "Let me check."));
        assert_eq!(t.state, State::Failed);
        assert!(t.answer.is_none());
        assert_eq!(
            t.status_message.unwrap().parts,
            [
                "the agent stopped before finishing its answer: max_iterations. Partial answer: Let me check."
            ]
        );
    }

    #[test]
    fn a_turn_its_session_could_not_save_fails_the_task_saying_so() {
        let mut t = task();
        ended(&mut t, &Err(crate::session::SessionError::LockLost));
        assert_eq!(t.state, State::Failed);
        assert!(t.answer.is_none());
        assert_eq!(
            t.status_message.unwrap().parts,
            ["this invocation lost its lease on the session; nothing was saved"]
        );
    }
}
