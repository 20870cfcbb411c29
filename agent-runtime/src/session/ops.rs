//! The session operations: acquire and load, renew, release, commit, read and delete, each one
//! script and one round trip.

use std::time::Duration;

use redis::Value;

use super::lease::{Lease, token};
use super::record::{self, Meta, State};
use super::scripts;
use super::store::{self, Keys, Store};
use super::{Options, SessionError, SessionId, Sessions, trim};
use crate::conversation::Message;

/// A session as an invocation finds it, with the lease it now holds.
#[derive(Debug)]
pub struct Loaded {
    /// The lease.
    pub lease: Lease,
    /// The state hash (version 0: a new session).
    pub state: State,
    /// The committed messages.
    pub messages: Vec<Message>,
    /// An interrupted invocation's checkpointed messages (only when acquired to resume).
    pub checkpoint: Vec<Message>,
}

/// What a commit writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    /// The version loaded; the commit fails if the session moved since.
    pub expected_version: u64,
    /// Messages to drop from the front of the stored list first.
    pub drop_front: usize,
    /// A new summary of the history dropped (a compaction); `None` keeps the stored one.
    pub summary: Option<String>,
    /// The new bookkeeping.
    pub meta: Meta,
    /// Messages to append.
    pub messages: Vec<Message>,
}

/// A compaction to save with a turn: the first `summarized` stored messages are replaced by
/// `summary`.
#[derive(Clone, Debug, PartialEq)]
pub struct Compacted {
    /// Stored messages the summary replaces, from the front (whole turns).
    pub summarized: usize,
    /// The summary.
    pub summary: String,
}

impl Commit {
    /// The commit of one turn: the settled part of `new` ([`trim::settled`]) appended to the
    /// loaded history, trimmed to `max_messages` whole turns.
    pub fn turn(loaded: &Loaded, new: &[Message], max_messages: usize, now_ms: u64) -> Self {
        Self::compacted_turn(loaded, None, new, max_messages, now_ms)
    }

    /// Like [`Commit::turn`], after `compacted` replaced the oldest turns (if it did): the
    /// summarised messages go, the summary is written, in the same atomic commit.
    pub fn compacted_turn(
        loaded: &Loaded,
        compacted: Option<&Compacted>,
        new: &[Message],
        max_messages: usize,
        now_ms: u64,
    ) -> Self {
        let new = &new[..trim::settled(new)];
        let summarized = compacted.map_or(0, |c| c.summarized.min(loaded.messages.len()));
        let stored = &loaded.messages[summarized..];
        let all: Vec<Message> = stored.iter().chain(new).cloned().collect();
        let drop = trim::cut(&all, max_messages);
        let m = &loaded.state.meta;
        Self {
            expected_version: loaded.state.version,
            // Dropping past the stored part would drop new messages: cut keeps the last turn.
            drop_front: summarized + drop.min(stored.len()),
            summary: compacted.map(|c| c.summary.clone()),
            meta: Meta {
                created_at_ms: if loaded.state.version == 0 {
                    now_ms
                } else {
                    m.created_at_ms
                },
                updated_at_ms: now_ms,
                turns: m.turns + 1,
                context_tokens: 0,
            },
            messages: new.to_vec(),
        }
    }

    /// The same commit, recording that the conversation now weighs `tokens`
    /// ([`Meta::context_tokens`]).
    pub fn weighing(mut self, tokens: u64) -> Self {
        self.meta.context_tokens = tokens;
        self
    }
}

/// A session read without its lease (`GET /v1/sessions/{id}`).
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// The state hash.
    pub state: State,
    /// The committed messages.
    pub messages: Vec<Message>,
    /// Time left before it expires (`None`: nothing committed yet).
    pub expires_in: Option<Duration>,
    /// Whether an invocation holds it now.
    pub running: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A duration as whole milliseconds, at least 1 (Redis refuses a PX of 0).
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn busy(holder: &Value, pttl: &Value) -> SessionError {
    let holder = store::text(holder).unwrap_or_default();
    // The value is "<token> <pod> <invocation>": the token is not shown.
    let shown = holder.split_once(' ').map_or("", |(_, rest)| rest);
    SessionError::Busy {
        holder: shown.replace(' ', ", invocation "),
        retry_after: Duration::from_millis(store::int(pttl).unwrap_or(1000).max(1) as u64),
    }
}

impl Sessions {
    /// The sessions of Agent `namespace/agent` in `store`.
    pub fn new(store: Store, namespace: &str, agent: &str, options: Options) -> Self {
        Self {
            store,
            namespace: namespace.into(),
            agent: agent.into(),
            options,
            abandoned: Default::default(),
        }
    }

    /// How sessions behave.
    pub fn options(&self) -> &Options {
        &self.options
    }

    pub(super) fn keys(&self, id: &SessionId) -> Keys {
        Keys::new(&self.namespace, &self.agent, id.as_str())
    }

    /// Takes the lease of session `id` for `invocation_id` and loads it (a new id: an empty
    /// session at version 0).
    /// An interrupted invocation's checkpoint is dropped: the client chose a new turn.
    pub async fn acquire(
        &self,
        id: &SessionId,
        invocation_id: &str,
    ) -> Result<Loaded, SessionError> {
        self.acquire_as(id, invocation_id, "").await
    }

    /// Takes the lease of session `id` to continue its turn that waits for approval, with the
    /// decisions the caller sent ([`SessionError::NoPendingApproval`] when there is none,
    /// [`SessionError::ApprovalExpired`] when it expired, dropped then).
    pub async fn acquire_to_decide(
        &self,
        id: &SessionId,
        invocation_id: &str,
    ) -> Result<Loaded, SessionError> {
        self.acquire_as(id, invocation_id, "decide").await
    }

    /// Keeps the checkpoint of the turn holding `lease` for approval (`pending` names its
    /// waiting calls and expiry) and gives the lease back, in one round trip.
    pub async fn park(&self, lease: &Lease, pending: &record::Pending) -> Result<(), SessionError> {
        let json = serde_json::to_string(pending).unwrap_or_default();
        self.store
            .observed("park", async {
                let mut inv = scripts::PARK.prepare_invoke();
                lease
                    .keys
                    .add_to(&mut inv)
                    .arg(&lease.value)
                    .arg(&json)
                    .arg(pending.expires_at_ms)
                    .arg(ms(self.options.ttl));
                match store::text(&self.store.run(&inv).await?).as_deref() {
                    Some("ok") => Ok(()),
                    Some("lock_lost") => Err(SessionError::LockLost),
                    _ => Err(SessionError::Reply("park")),
                }
            })
            .await
    }

    /// Takes the lease of session `id` to continue the checkpoint of an invocation that was
    /// interrupted ([`SessionError::NothingToResume`] when there is none, and no lease is
    /// taken then).
    pub async fn acquire_to_resume(
        &self,
        id: &SessionId,
        invocation_id: &str,
    ) -> Result<Loaded, SessionError> {
        self.acquire_as(id, invocation_id, "resume").await
    }

    async fn acquire_as(
        &self,
        id: &SessionId,
        invocation_id: &str,
        mode: &str,
    ) -> Result<Loaded, SessionError> {
        let now = now_ms();
        let keys = self.keys(id);
        let value = format!("{} {} {invocation_id}", token(), self.options.pod);
        let acquired = self
            .store
            .observed("acquire", async {
                let mut inv = scripts::ACQUIRE.prepare_invoke();
                let abandoned = self.abandoned(&keys.lock);
                keys.add_to(&mut inv)
                    .arg(&value)
                    .arg(ms(self.options.lease))
                    .arg(abandoned.unwrap_or_default())
                    .arg(mode)
                    .arg(now);
                let reply = self.store.run(&inv).await?;
                match reply {
                    Value::Array(v) if v.len() == 1 => match store::text(&v[0]).as_deref() {
                        Some("nothing") => Err(SessionError::NothingToResume),
                        Some("expired") => Err(SessionError::ApprovalExpired),
                        Some("no_pending") => Err(SessionError::NoPendingApproval),
                        _ => Err(SessionError::Reply("acquire")),
                    },
                    Value::Array(v)
                        if v.len() == 2 && store::text(&v[0]).as_deref() == Some("pending") =>
                    {
                        let at = store::text(&v[1]).and_then(|t| t.parse::<u64>().ok());
                        Err(SessionError::ApprovalPending {
                            expires_in: Duration::from_millis(
                                at.unwrap_or(now).saturating_sub(now).max(1),
                            ),
                        })
                    }
                    Value::Array(v)
                        if v.len() == 3 && store::text(&v[0]).as_deref() == Some("busy") =>
                    {
                        Err(busy(&v[1], &v[2]))
                    }
                    Value::Array(v) if v.len() == 4 => Ok(v),
                    _ => Err(SessionError::Reply("acquire")),
                }
            })
            .await;
        let lease = Lease {
            keys,
            value,
            invocation_id: invocation_id.into(),
        };
        let reply = match acquired {
            Ok(reply) => {
                self.forget(&lease.keys.lock);
                reply
            }
            Err(e @ (SessionError::Timeout(_) | SessionError::Unavailable(_))) => {
                // The script may still run (a paused store answers later): give back a lease
                // this invocation will never use, or the session stays busy for a lease time.
                self.abandon(lease);
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let loaded = (|| {
            let fields = store::pairs(&reply[1]).ok_or(SessionError::Reply("acquire"))?;
            let raw = store::texts(&reply[2]).ok_or(SessionError::Reply("acquire"))?;
            let checkpoint = store::texts(&reply[3]).ok_or(SessionError::Reply("acquire"))?;
            Ok::<_, SessionError>((
                State::from_fields(fields)?,
                record::decode(raw)?,
                record::decode(checkpoint)?,
            ))
        })();
        match loaded {
            Ok((state, messages, checkpoint)) => Ok(Loaded {
                lease,
                state,
                messages,
                checkpoint,
            }),
            Err(e) => {
                // Unreadable: give the lease back rather than block the session for a lease.
                let _ = self.release(&lease).await;
                Err(e)
            }
        }
    }

    /// Gives the lease back without writing (a failed invocation). A lease already lost is
    /// no error.
    pub async fn release(&self, lease: &Lease) -> Result<(), SessionError> {
        self.give_back(lease).await.map(|_| ())
    }

    /// Releases `lease`; whether it was still this holder's.
    pub(super) async fn give_back(&self, lease: &Lease) -> Result<bool, SessionError> {
        self.store
            .observed("release", async {
                let mut inv = scripts::RELEASE.prepare_invoke();
                lease.keys.add_to(&mut inv).arg(&lease.value);
                Ok(store::int(&self.store.run(&inv).await?) == Some(1))
            })
            .await
    }

    /// Writes `commit` and gives the lease back, atomically. An unclear failure (a timeout,
    /// a dropped connection) is retried once; the store recognises a commit that had landed.
    /// Returns the new version.
    pub async fn commit(&self, lease: &Lease, commit: &Commit) -> Result<u64, SessionError> {
        let meta = serde_json::to_string(&commit.meta).unwrap_or_default();
        let messages: Vec<String> = commit.messages.iter().map(record::encode).collect();
        let attempt = || {
            self.store.observed("commit", async {
                let mut inv = scripts::COMMIT.prepare_invoke();
                lease
                    .keys
                    .add_to(&mut inv)
                    .arg(&lease.value)
                    .arg(commit.expected_version)
                    .arg(&lease.invocation_id)
                    .arg(ms(self.options.ttl))
                    .arg(commit.drop_front)
                    .arg(commit.summary.as_deref().unwrap_or_default())
                    .arg(&meta)
                    .arg("");
                for m in &messages {
                    inv.arg(m);
                }
                match store::text(&self.store.run(&inv).await?).as_deref() {
                    Some("ok" | "already") => Ok(commit.expected_version + 1),
                    Some("lock_lost") => Err(SessionError::LockLost),
                    Some("conflict") => Err(SessionError::Conflict),
                    _ => Err(SessionError::Reply("commit")),
                }
            })
        };
        match attempt().await {
            Err(SessionError::Timeout(_) | SessionError::Unavailable(_)) => attempt().await,
            other => other,
        }
    }

    /// Reads session `id` without its lease; `None` when there is no such session.
    pub async fn read(&self, id: &SessionId) -> Result<Option<Snapshot>, SessionError> {
        let keys = self.keys(id);
        self.store
            .observed("read", async {
                let mut inv = scripts::READ.prepare_invoke();
                keys.add_to(&mut inv);
                let Value::Array(v) = self.store.run(&inv).await? else {
                    return Err(SessionError::Reply("read"));
                };
                let [fields, raw, pttl, holder] = v.as_slice() else {
                    return Err(SessionError::Reply("read"));
                };
                let fields = store::pairs(fields).ok_or(SessionError::Reply("read"))?;
                let running = store::text(holder).is_some();
                if fields.is_empty() && !running {
                    return Ok(None);
                }
                let raw = store::texts(raw).ok_or(SessionError::Reply("read"))?;
                let pttl = store::int(pttl).unwrap_or(-1);
                Ok(Some(Snapshot {
                    state: State::from_fields(fields)?,
                    messages: record::decode(raw)?,
                    expires_in: u64::try_from(pttl).ok().map(Duration::from_millis),
                    running,
                }))
            })
            .await
    }

    /// Deletes session `id` unless an invocation holds it.
    pub async fn delete(&self, id: &SessionId) -> Result<(), SessionError> {
        let keys = self.keys(id);
        self.store
            .observed("delete", async {
                let mut inv = scripts::DELETE.prepare_invoke();
                keys.add_to(&mut inv);
                let Value::Array(v) = self.store.run(&inv).await? else {
                    return Err(SessionError::Reply("delete"));
                };
                match (v.first().and_then(store::text).as_deref(), v.len()) {
                    (Some("ok"), _) => Ok(()),
                    (Some("not_found"), _) => Err(SessionError::NotFound),
                    (Some("busy"), 3) => Err(busy(&v[1], &v[2])),
                    _ => Err(SessionError::Reply("delete")),
                }
            })
            .await
    }
}

impl Options {
    /// Defaults for a lease: 15 s.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
    /// Defaults for an approval's wait: an hour.
    pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(3600);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{Block, Role};

    fn answer(t: &str) -> Message {
        Message {
            role: Role::Assistant,
            content: vec![Block::Text(t.into())],
        }
    }

    fn loaded(turns: usize) -> Loaded {
        let messages = (0..turns)
            .flat_map(|t| {
                [
                    Message::user_text(&format!("q{t}")),
                    answer(&format!("a{t}")),
                ]
            })
            .collect();
        Loaded {
            lease: Lease {
                keys: Keys::new("n", "a", "s"),
                value: "tok pod inv".into(),
                invocation_id: "inv".into(),
            },
            state: State {
                version: 3,
                meta: Meta {
                    created_at_ms: 1,
                    updated_at_ms: 2,
                    turns: 3,
                    context_tokens: 9000,
                },
                ..State::default()
            },
            messages,
            checkpoint: vec![],
        }
    }

    #[test]
    fn a_compacted_turn_drops_the_summarised_messages_and_writes_the_summary_in_one_commit() {
        let l = loaded(3);
        let new = [Message::user_text("q3"), answer("a3")];
        let c = Compacted {
            summarized: 4,
            summary: "two turns".into(),
        };
        let commit = Commit::compacted_turn(&l, Some(&c), &new, 100, 7).weighing(812);
        assert_eq!(
            (commit.drop_front, commit.summary.as_deref()),
            (4, Some("two turns"))
        );
        assert_eq!(commit.messages, new);
        assert_eq!(
            commit.meta,
            Meta {
                created_at_ms: 1,
                updated_at_ms: 7,
                turns: 4,
                context_tokens: 812,
            }
        );
        // maxMessages still applies to what is kept after the summary: 2 kept + 2 new, cap 2.
        let capped = Commit::compacted_turn(&l, Some(&c), &new, 2, 7);
        assert_eq!(capped.drop_front, 6);
        // Without a compaction the stored summary is kept ('' to the script).
        let plain = Commit::turn(&l, &new, 100, 7);
        assert_eq!((plain.drop_front, plain.summary), (0, None));
    }
}
