//! Checkpoints and resume, the I/O side. A session invocation saves its turn so far through a
//! [`Checkpointer`] (the loop's [`Saver`]): after a model reply that calls tools, awaited before
//! the tools run, and after each round of tool results, written while the next model call runs.
//! When the pod running it dies, `POST /v1/sessions/{id}/resume` on any replica takes the lease
//! once the dead holder's has run out ([`acquire`]) and continues the turn from the checkpoint
//! ([`run`]): results already saved are not run again, calls without a saved result are
//! answered to the model as interrupted ([`resume_messages`]), and the turn is committed as any
//! other. A resume that fails without crashing drops the checkpoint, as any failed invocation.
//! A turn that stopped for approval continues the same way ([`acquire_to_decide`]), its held
//! round answered by the decisions instead of as interrupted.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc::UnboundedSender;

use super::session::{Continue, Held, Outcome, park, release};
use super::{Event, Halt, Progress, Request, Runtime, Saver, Summary, compaction};
use crate::bedrock::BedrockError;
use crate::conversation::{Message, Usage};
use crate::machine::{Decision, Loop, StopReason};
use crate::session::checkpoint::resume_messages;
use crate::session::record::Checkpoint;
use crate::session::{
    Commit, Compacted, Lease, SessionError, SessionId, Sessions, compact, now_ms, trim,
};

/// Saves a session invocation's turn (the loop's messages from `base` on) as its checkpoint.
pub struct Checkpointer<'s> {
    sessions: &'s Sessions,
    lease: Lease,
    version: u64,
    base: usize,
    /// Messages of the turn in the checkpoint list now.
    written: AtomicUsize,
    header: Checkpoint,
}

impl<'s> Checkpointer<'s> {
    /// For the turn that starts at message `base` of the loop, on the session loaded at
    /// `version` under `lease`, after the compaction `compacted` (if any); nothing of it is
    /// in the checkpoint yet.
    pub fn new(
        sessions: &'s Sessions,
        lease: &Lease,
        version: u64,
        base: usize,
        compacted: Option<&Compacted>,
    ) -> Self {
        let now = now_ms();
        Self {
            sessions,
            lease: lease.clone(),
            version,
            base,
            written: AtomicUsize::new(0),
            header: Checkpoint {
                invocation_id: lease.invocation_id.clone(),
                started_at_ms: now,
                updated_at_ms: now,
                summarized: compacted.map_or(0, |c| c.summarized),
                summary: compacted.map(|c| c.summary.clone()),
                ..Checkpoint::default()
            },
        }
    }
}

impl<'s> Saver for Checkpointer<'s> {
    type Error = SessionError;

    fn save<'a>(
        &'a self,
        messages: &[Message],
        model_calls: u32,
        usage: Usage,
    ) -> impl Future<Output = Result<(), SessionError>> + Send + use<'a, 's> {
        let turn = messages.get(self.base..).unwrap_or_default();
        let have = self
            .written
            .swap(turn.len(), Ordering::SeqCst)
            .min(turn.len());
        let new = turn[have..].to_vec();
        let header = Checkpoint {
            updated_at_ms: now_ms(),
            messages: turn.len(),
            model_calls,
            usage,
            ..self.header.clone()
        };
        async move {
            self.sessions
                .checkpoint(&self.lease, self.version, &header, have, &new)
                .await
        }
    }

    fn can_wait(&self) -> bool {
        true
    }
}

/// Runs `req` from `state` (the loop's messages from `base` on being the turn) on the session
/// whose lease `saver` proves, checkpointing as it goes: the store failing (`Err`), or the loop
/// ending as a stateless one does.
pub async fn converse(
    rt: &Runtime,
    req: Request,
    state: Loop,
    saver: &Checkpointer<'_>,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Result<Result<(Summary, Vec<Message>), BedrockError>, SessionError> {
    match super::converse_saving(rt, req, state, saver, events, progress).await {
        Ok(done) => Ok(Ok(done)),
        Err(Halt::Model(e)) => Ok(Err(e)),
        Err(Halt::Save(e)) => Err(e),
    }
}

/// Takes the lease of session `id` to resume its interrupted invocation: 409 `session_busy`
/// while the holder's lease runs (a live holder, or a dead one's not yet expired), 409
/// `nothing_to_resume` without a checkpoint, 404 `session_not_found` for no session at all.
pub async fn acquire(
    sessions: &Sessions,
    id: SessionId,
    invocation_id: &str,
) -> Result<Held, SessionError> {
    match sessions.acquire_to_resume(&id, invocation_id).await {
        Ok(loaded) => Ok(Held::continuing(sessions, id, loaded, Continue::Resume)),
        Err(SessionError::NothingToResume) => match sessions.read(&id).await? {
            None => Err(SessionError::NotFound),
            Some(_) => Err(SessionError::NothingToResume),
        },
        Err(e) => Err(e),
    }
}

/// Takes the lease of session `id` to continue its turn that waits for approval with
/// `decisions` (checked by the caller against the pending calls): 409 `no_pending_approval`
/// without one, 410 `approval_expired` when it expired (dropped then), 404 for no session.
pub async fn acquire_to_decide(
    sessions: &Sessions,
    id: SessionId,
    invocation_id: &str,
    decisions: Vec<(String, Decision)>,
) -> Result<Held, SessionError> {
    match sessions.acquire_to_decide(&id, invocation_id).await {
        Ok(loaded) => Ok(Held::continuing(
            sessions,
            id,
            loaded,
            Continue::Decide(decisions),
        )),
        Err(SessionError::NoPendingApproval) => match sessions.read(&id).await? {
            None => Err(SessionError::NotFound),
            Some(_) => Err(SessionError::NoPendingApproval),
        },
        Err(e) => Err(e),
    }
}

/// Continues the checkpointed turn of `held` (acquired with [`acquire`]) under `req`'s
/// deadline, stream and trace (its input and messages are not used), and commits it.
pub async fn run(
    held: Held,
    rt: &Runtime,
    req: Request,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> (Outcome, Option<compaction::Report>) {
    let Some(loaded) = held.loaded() else {
        return (Err(SessionError::LockLost), None);
    };
    let header = match loaded.state.checkpoint() {
        Ok(Some(h)) => h,
        Ok(None) => return (Err(SessionError::NothingToResume), None),
        Err(e) => return (Err(SessionError::Record(e)), None),
    };
    let decisions = match held.how() {
        Some(Continue::Decide(d)) => Some(d.clone()),
        _ => None,
    };
    let (turn, interrupted) = match &decisions {
        // The checkpoint ends with the reply whose calls waited: the decisions answer them.
        Some(_)
            if loaded
                .checkpoint
                .last()
                .is_some_and(|m| !m.tool_uses().is_empty()) =>
        {
            (loaded.checkpoint.clone(), vec![])
        }
        Some(_) => return (Err(SessionError::NoPendingApproval), None),
        None => match resume_messages(loaded.checkpoint.clone()) {
            Some(t) => t,
            None => return (Err(SessionError::NothingToResume), None),
        },
    };
    let compacted = header.summary.clone().map(|summary| Compacted {
        summarized: header.summarized,
        summary,
    });
    let history = match &compacted {
        Some(c) => compact::with_summary(
            Some(&c.summary),
            loaded
                .messages
                .get(c.summarized..)
                .unwrap_or_default()
                .to_vec(),
        ),
        None => compact::with_summary(loaded.state.summary.as_deref(), loaded.messages.clone()),
    };
    tracing::info!(
        request_id = %req.request_id,
        resumed_invocation = %header.invocation_id,
        interrupted = interrupted.len(),
        "resuming an interrupted invocation"
    );
    let base = history.len();
    let messages: Vec<Message> = history.into_iter().chain(turn).collect();
    let state = match &decisions {
        Some(d) => Loop::decided(
            messages,
            rt.config.limits,
            header.model_calls,
            header.usage,
            d,
        ),
        None => Loop::resumed(messages, rt.config.limits, header.model_calls, header.usage),
    };
    let sessions = held.sessions().clone();
    let lease = loaded.lease.clone();
    let mut saver = Checkpointer::new(
        &sessions,
        &lease,
        loaded.state.version,
        base,
        compacted.as_ref(),
    );
    saver.header.invocation_id = header.invocation_id.clone();
    saver.header.started_at_ms = header.started_at_ms;
    saver.written = AtomicUsize::new(loaded.checkpoint.len());
    let ended = sessions
        .while_held(&lease, converse(rt, req, state, &saver, events, progress))
        .await;
    let Some(loaded) = held.into_loaded() else {
        return (Err(SessionError::LockLost), None);
    };
    let ended = match ended {
        Err(e) | Ok(Err(e)) => {
            release(&sessions, &loaded).await;
            return (Err(e), None);
        }
        Ok(Ok(Err(e))) => {
            release(&sessions, &loaded).await;
            return (Ok(Err(e)), None);
        }
        Ok(Ok(Ok(done))) => done,
    };
    let (mut summary, messages) = ended;
    // The answer counts the whole turn, as its usage does (the loop carried the saved count).
    summary.iterations = summary.iterations.saturating_add(header.model_calls);
    if summary.stop_reason == StopReason::ApprovalRequired {
        return (park(&sessions, &loaded, summary).await, None);
    }
    let new = messages.get(base..).unwrap_or_default();
    if summary.stop_reason == StopReason::Deadline || trim::settled(new) == 0 {
        release(&sessions, &loaded).await;
        return (Ok(Ok(summary)), None);
    }
    let max = sessions.options().max_messages;
    let commit = Commit::compacted_turn(&loaded, compacted.as_ref(), new, max, now_ms())
        .weighing(progress.context_tokens());
    if let Err(e) = sessions.commit(&loaded.lease, &commit).await {
        release(&sessions, &loaded).await;
        return (Err(e), None);
    }
    (Ok(Ok(summary)), None)
}
