//! An invocation on a session: the session's lease is taken and its history loaded before the
//! loop ([`acquire`]), the lease is renewed while the loop runs, and the turn's new messages are
//! committed atomically after it ([`Held::run`]). A failed invocation — a model error, the
//! deadline, a lost lease, or a client that went away (the [`Held`] is dropped) — releases the
//! lease without writing, so the session stays as it was. While the loop runs, the turn is
//! checkpointed ([`super::resume`]) so that a crash can be resumed on another replica; the
//! commit or the release drops the checkpoint.

use tokio::sync::mpsc::UnboundedSender;

use super::{Event, Progress, Request, Runtime, Summary, compaction};
use crate::bedrock::BedrockError;
use crate::conversation::Message;
use crate::machine::{Decision, StopReason};
use crate::session::{Commit, Loaded, SessionError, SessionId, Sessions, compact, trim};

/// How a session invocation ended: the store failed (`Err`), or the loop ran and ended as
/// a stateless one does (`Ok`).
pub type Outcome = Result<Result<Summary, BedrockError>, SessionError>;

/// A session whose lease this invocation holds. Dropped without [`Held::run`] finishing (a
/// client gone), it gives the lease back in the background. One pointer wide: every request's
/// future has room for one, stateless or not.
pub struct Held {
    s: Box<Lease>,
}

/// What a [`Held`] holds.
struct Lease {
    sessions: Sessions,
    id: SessionId,
    loaded: Option<Loaded>,
    /// Acquired to continue a checkpointed turn ([`super::resume`]), and how.
    continuing: Option<Continue>,
}

/// How a checkpointed turn continues.
#[derive(Clone, Debug)]
pub enum Continue {
    /// After a crash: calls without a saved result are answered as interrupted.
    Resume,
    /// After a person's decisions on the calls it waited for (by toolUse id).
    Decide(Vec<(String, Decision)>),
}

/// Takes the lease of session `id` and loads it.
pub async fn acquire(
    sessions: &Sessions,
    id: SessionId,
    invocation_id: &str,
) -> Result<Held, SessionError> {
    let loaded = sessions.acquire(&id, invocation_id).await?;
    Ok(Held {
        s: Box::new(Lease {
            sessions: sessions.clone(),
            id,
            loaded: Some(loaded),
            continuing: None,
        }),
    })
}

/// Runs `req` on the session of `held` when there is one (its compaction report, if any, is
/// left out), else as a stateless invocation: the one call of protocols that continue a session
/// the same way they run without one.
pub async fn run_maybe(
    held: Option<Held>,
    rt: &Runtime,
    req: Request,
    events: Option<UnboundedSender<Event>>,
    progress: &Progress,
) -> Outcome {
    // Each path boxed, so a stateless invocation holds only what it needs, not the larger
    // session path's state as well.
    match held {
        Some(h) => Box::pin(h.run(rt, req, events, progress)).await.0,
        None => Ok(Box::pin(super::invoke(rt, req, events, progress)).await),
    }
}

/// The `outcome` label of an invocation that ended as `o`: its stop reason, a Bedrock error
/// category, or a session error code.
pub fn outcome_label(o: &Outcome) -> String {
    match o {
        Ok(Ok(s)) => s.stop_reason.as_str().to_string(),
        Ok(Err(e)) => e.category().to_string(),
        Err(e) => e.code().to_string(),
    }
}

pub(super) async fn release(sessions: &Sessions, loaded: &Loaded) {
    if let Err(e) = sessions.release(&loaded.lease).await {
        // The lease runs out on its own; until then the session answers busy.
        tracing::warn!(error = %crate::error_chain(&e), "giving back a session lease failed");
    }
}

/// Keeps the turn of `loaded`, stopped for approval of `summary`'s pending calls, until they
/// are decided or expire, and gives the lease back; a failed store write releases the lease
/// (dropping the turn) and fails the invocation.
pub(super) async fn park(sessions: &Sessions, loaded: &Loaded, summary: Summary) -> Outcome {
    let now = crate::session::now_ms();
    let timeout =
        u64::try_from(sessions.options().approval_timeout.as_millis()).unwrap_or(u64::MAX);
    let pending = crate::session::record::Pending {
        invocation_id: loaded.lease.invocation_id.clone(),
        requested_at_ms: now,
        expires_at_ms: now.saturating_add(timeout),
        calls: summary.pending_approvals.clone(),
    };
    match sessions.park(&loaded.lease, &pending).await {
        Ok(()) => Ok(Ok(summary)),
        Err(e) => {
            release(sessions, loaded).await;
            Err(e)
        }
    }
}

impl Held {
    /// A session acquired to continue its checkpoint as `how`.
    pub(super) fn continuing(
        sessions: &Sessions,
        id: SessionId,
        loaded: Loaded,
        how: Continue,
    ) -> Self {
        Self {
            s: Box::new(Lease {
                sessions: sessions.clone(),
                id,
                loaded: Some(loaded),
                continuing: Some(how),
            }),
        }
    }

    pub(super) fn how(&self) -> Option<&Continue> {
        self.s.continuing.as_ref()
    }

    pub(super) fn sessions(&self) -> &Sessions {
        &self.s.sessions
    }

    pub(super) fn loaded(&self) -> Option<&Loaded> {
        self.s.loaded.as_ref()
    }

    /// The loaded session, which the caller now gives back (no release on drop).
    pub(super) fn into_loaded(mut self) -> Option<Loaded> {
        self.s.loaded.take()
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.s.id
    }

    /// Runs `req` after the session's history and commits its new messages (the settled part,
    /// trimmed to whole turns within `maxMessages`); on any failure nothing is written.
    ///
    /// With `maxContextTokens`, a history that would pass it is compacted first
    /// ([`compaction::attempt`]): the loop runs on the summary and the newest turns, and the
    /// commit replaces the summarised turns with the summary, atomically with the turn. A
    /// summary call that fails leaves the history whole: the loop runs on all of it. The
    /// report is returned when the compaction was saved.
    pub async fn run(
        mut self,
        rt: &Runtime,
        mut req: Request,
        events: Option<UnboundedSender<Event>>,
        progress: &Progress,
    ) -> (Outcome, Option<compaction::Report>) {
        if self.s.continuing.is_some() {
            return super::resume::run(self, rt, req, events, progress).await;
        }
        let Some((lease, state, stored)) = self
            .s
            .loaded
            .as_ref()
            .map(|l| (l.lease.clone(), l.state.clone(), l.messages.clone()))
        else {
            return (Err(SessionError::LockLost), None);
        };
        let max_context = self.s.sessions.options().max_context_tokens;
        // Dropped while this runs (a client gone), `self` gives the lease back.
        let work = async {
            let seen = compact::with_summary(state.summary.as_deref(), stored.clone());
            let attempt = match max_context {
                Some(max) => {
                    compaction::attempt(rt, &req, &seen, state.meta.context_tokens, max, progress)
                        .await
                }
                None => None,
            };
            req.messages = match attempt.as_ref().map(|a| &a.result) {
                Some(Ok((c, _))) => compact::with_summary(
                    Some(&c.summary),
                    stored.get(c.summarized..).unwrap_or_default().to_vec(),
                ),
                _ => seen,
            };
            let history = req.messages.len();
            let compacted = attempt.as_ref().and_then(|a| a.result.as_ref().ok());
            let saver = super::resume::Checkpointer::new(
                &self.s.sessions,
                &lease,
                state.version,
                history,
                compacted.map(|(c, _)| c),
            );
            let state = crate::machine::Loop::new(
                std::mem::take(&mut req.messages),
                req.input.as_deref(),
                rt.config.limits,
            );
            let ended = super::resume::converse(rt, req, state, &saver, events, progress).await;
            (attempt, history, ended)
        };
        let ended = self.s.sessions.while_held(&lease, work).await;
        let Some(loaded) = self.s.loaded.take() else {
            return (Err(SessionError::LockLost), None);
        };
        let (attempt, history, ended) = match ended {
            Err(lost) | Ok((_, _, Err(lost))) => {
                release(&self.s.sessions, &loaded).await;
                return (Err(lost), None);
            }
            Ok((attempt, history, Ok(ended))) => (attempt, history, ended),
        };
        let (outcome, saved) = self
            .settle(&loaded, ended, history, attempt.as_ref(), progress)
            .await;
        let report = attempt.and_then(|a| match a.result {
            Err(outcome) => {
                rt.metrics.compaction(outcome, 0);
                None
            }
            Ok((c, report)) if saved => {
                rt.metrics.compaction("compacted", c.summarized);
                Some(report)
            }
            // The invocation saved nothing, so its compaction is gone too; the next one on
            // the session compacts again.
            Ok(_) => {
                rt.metrics.compaction("not_saved", 0);
                None
            }
        });
        (outcome, report)
    }

    /// Commits the turn `ended` (its messages after the first `history`), with the compaction
    /// of `attempt` if it made one; also whether anything was written.
    async fn settle(
        &self,
        loaded: &Loaded,
        ended: Result<(Summary, Vec<Message>), BedrockError>,
        history: usize,
        attempt: Option<&compaction::Attempt>,
        progress: &Progress,
    ) -> (Outcome, bool) {
        let (mut summary, messages) = match ended {
            Err(e) => {
                release(&self.s.sessions, loaded).await;
                return (Ok(Err(e)), false);
            }
            Ok(done) => done,
        };
        if let Some(a) = attempt {
            // The summary call is one of the invocation's model calls.
            summary.usage.add(a.usage);
        }
        if summary.stop_reason == StopReason::ApprovalRequired {
            return (park(&self.s.sessions, loaded, summary).await, false);
        }
        let new = messages.get(history..).unwrap_or_default();
        if summary.stop_reason == StopReason::Deadline || trim::settled(new) == 0 {
            release(&self.s.sessions, loaded).await;
            return (Ok(Ok(summary)), false);
        }
        let max = self.s.sessions.options().max_messages;
        let compacted = attempt.and_then(|a| a.result.as_ref().ok()).map(|(c, _)| c);
        let commit = Commit::compacted_turn(loaded, compacted, new, max, crate::session::now_ms())
            .weighing(progress.context_tokens());
        if let Err(e) = self.s.sessions.commit(&loaded.lease, &commit).await {
            release(&self.s.sessions, loaded).await;
            return (Err(e), false);
        }
        (Ok(Ok(summary)), true)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(loaded) = self.s.loaded.take() else {
            return;
        };
        let sessions = self.s.sessions.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { release(&sessions, &loaded).await });
        }
    }
}
