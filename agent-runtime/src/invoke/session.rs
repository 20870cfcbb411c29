//! An invocation on a session: the session's lease is taken and its history loaded before the
//! loop ([`acquire`]), the lease is renewed while the loop runs, and the turn's new messages are
//! committed atomically after it ([`Held::run`]). A failed invocation — a model error, the
//! deadline, a lost lease, or a client that went away (the [`Held`] is dropped) — releases the
//! lease without writing, so the session stays as it was.

use tokio::sync::mpsc::UnboundedSender;

use super::{Event, Progress, Request, Runtime, Summary};
use crate::bedrock::BedrockError;
use crate::machine::StopReason;
use crate::session::{Commit, Loaded, SessionError, SessionId, Sessions, trim};

/// How a session invocation ended: the store failed (`Err`), or the loop ran and ended as
/// a stateless one does (`Ok`).
pub type Outcome = Result<Result<Summary, BedrockError>, SessionError>;

/// A session whose lease this invocation holds. Dropped without [`Held::run`] finishing (a
/// client gone), it gives the lease back in the background.
pub struct Held {
    sessions: Sessions,
    id: SessionId,
    loaded: Option<Loaded>,
}

/// Takes the lease of session `id` and loads it.
pub async fn acquire(
    sessions: &Sessions,
    id: SessionId,
    invocation_id: &str,
) -> Result<Held, SessionError> {
    let loaded = sessions.acquire(&id, invocation_id).await?;
    Ok(Held {
        sessions: sessions.clone(),
        id,
        loaded: Some(loaded),
    })
}

async fn release(sessions: &Sessions, loaded: &Loaded) {
    if let Err(e) = sessions.release(&loaded.lease).await {
        // The lease runs out on its own; until then the session answers busy.
        tracing::warn!(error = %crate::error_chain(&e), "giving back a session lease failed");
    }
}

impl Held {
    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Runs `req` after the session's history and commits its new messages (the settled part,
    /// trimmed to whole turns within `maxMessages`); on any failure nothing is written.
    pub async fn run(
        mut self,
        rt: &Runtime,
        mut req: Request,
        events: Option<UnboundedSender<Event>>,
        progress: &Progress,
    ) -> Outcome {
        let Some((lease, history)) = self
            .loaded
            .as_ref()
            .map(|l| (l.lease.clone(), l.messages.clone()))
        else {
            return Err(SessionError::LockLost);
        };
        req.messages = history;
        let history = req.messages.len();
        // Dropped while this runs (a client gone), `self` gives the lease back.
        let work = super::converse(rt, req, events, progress);
        let ended = self.sessions.while_held(&lease, work).await;
        let Some(loaded) = self.loaded.take() else {
            return Err(SessionError::LockLost);
        };
        let (summary, messages) = match ended {
            Err(lost) => {
                release(&self.sessions, &loaded).await;
                return Err(lost);
            }
            Ok(Err(e)) => {
                release(&self.sessions, &loaded).await;
                return Ok(Err(e));
            }
            Ok(Ok(done)) => done,
        };
        let new = messages.get(history..).unwrap_or_default();
        if summary.stop_reason == StopReason::Deadline || trim::settled(new) == 0 {
            release(&self.sessions, &loaded).await;
            return Ok(Ok(summary));
        }
        let max = self.sessions.options().max_messages;
        let commit = Commit::turn(&loaded, new, max, crate::session::now_ms());
        if let Err(e) = self.sessions.commit(&loaded.lease, &commit).await {
            release(&self.sessions, &loaded).await;
            return Err(e);
        }
        Ok(Ok(summary))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(loaded) = self.loaded.take() else {
            return;
        };
        let sessions = self.sessions.clone();
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move { release(&sessions, &loaded).await });
        }
    }
}
