//! Sessions: conversations kept in a Redis-compatible store, so a client sends only its new
//! input and any replica continues the conversation.
//!
//! An invocation on a session takes the session's *lease* and loads it in one round trip
//! ([`Sessions::acquire`]); a second invocation meanwhile, on any replica, is refused as
//! [`SessionError::Busy`]. The lease is renewed while the invocation runs
//! ([`Sessions::while_held`]). At the end, the new messages are appended and the lease given
//! back in one atomic script ([`Sessions::commit`]), which checks the lease token and the
//! version first, so a holder that lost its lease cannot write; a failed invocation releases
//! without writing ([`Sessions::release`]), leaving the session as it was.
//!
//! - [`store`]: the connection, timeouts, key layout and metrics;
//! - [`scripts`]: the Lua scripts, each validating before its first write;
//! - [`record`]: the stored shapes (schema 1);
//! - [`trim`]: where history may be cut (`maxMessages`), without I/O;
//! - [`compact`]: when and where history is summarised (`maxContextTokens`), without I/O;
//! - [`checkpoint`]: the running turn saved after each model reply that calls tools and each
//!   round of tool results, so another replica can resume it after a crash;
//! - `lease` and `ops`: the lease (token, renewal, abandoned acquires) and the operations.

pub mod checkpoint;
pub mod compact;
pub mod record;
pub mod scripts;
pub mod store;
pub mod trim;

mod lease;
mod ops;

use std::time::Duration;

// The bounds of `memory.approvalTimeoutSeconds` are the Agent API's.
use agentry_crds::memory::{MAX_APPROVAL_TIMEOUT_SECONDS, MIN_APPROVAL_TIMEOUT_SECONDS};
use agentry_crds::runtime_config::{AgentIdentity, MemoryConfig};

pub use lease::Lease;
pub use ops::{Commit, Compacted, Loaded, Snapshot, now_ms};
pub use store::{Store, StoreError, StoreMetrics};

/// Why a session operation failed. Each variant has one [`code`](SessionError::code), which
/// the HTTP API maps to one status.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The store did not answer in time.
    #[error("the session store did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The store cannot be reached.
    #[error("the session store cannot be reached")]
    Unavailable(#[source] redis::RedisError),
    /// The store answered with an error.
    #[error("the session store refused the request")]
    Refused(#[source] redis::RedisError),
    /// The store's answer is not what the script returns.
    #[error("the session store gave an unexpected reply to {0}")]
    Reply(&'static str),
    /// The stored session cannot be read.
    #[error("the stored session cannot be read")]
    Record(#[from] record::RecordError),
    /// Another invocation holds the session.
    #[error("another invocation is running on this session ({holder}); retry in {} ms", .retry_after.as_millis())]
    Busy {
        /// The holder's pod and invocation id.
        holder: String,
        /// When its lease runs out, if it is not renewed.
        retry_after: Duration,
    },
    /// The invocation's lease ran out (or was never renewed) and another may hold it now.
    #[error("this invocation lost its lease on the session; nothing was saved")]
    LockLost,
    /// The session changed since it was loaded (the lease was lost in between).
    #[error("the session changed since this invocation loaded it; nothing was saved")]
    Conflict,
    /// No such session (never created, expired or deleted).
    #[error("no such session: it was never created, it expired, or it was deleted")]
    NotFound,
    /// A resume found no checkpoint: the session's last invocation finished, or failed without
    /// crashing (and so saved nothing), or a newer invocation dropped it.
    #[error(
        "this session has no interrupted invocation to resume: its last invocation finished or saved nothing; send a new invocation"
    )]
    NothingToResume,
    /// The session's last turn waits for a person's decision on its tool calls.
    #[error("this session's last turn waits for approval of its tool calls (for {} more s): send the decisions to POST /v1/sessions/{{id}}/approvals first", .expires_in.as_secs())]
    ApprovalPending {
        /// Until it expires.
        expires_in: Duration,
    },
    /// The turn that waited for approval expired; it was dropped.
    #[error(
        "the approval this session waited for expired: the turn that asked for it was dropped, its calls never ran; send a new invocation"
    )]
    ApprovalExpired,
    /// Decisions were sent for a session whose turn waits for none.
    #[error("this session has no turn waiting for approval")]
    NoPendingApproval,
}

impl SessionError {
    /// The error code clients see; also the `outcome` label of the store metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_)
            | Self::Unavailable(_)
            | Self::Refused(_)
            | Self::Reply(_)
            | Self::Record(_) => "session_store_unavailable",
            Self::Busy { .. } => "session_busy",
            Self::LockLost | Self::Conflict => "session_lock_lost",
            Self::NotFound => "session_not_found",
            Self::NothingToResume => "nothing_to_resume",
            Self::ApprovalPending { .. } => "approval_pending",
            Self::ApprovalExpired => "approval_expired",
            Self::NoPendingApproval => "no_pending_approval",
        }
    }

    /// The `outcome` label of a store call that failed this way (bounded).
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::Refused(_) | Self::Reply(_) | Self::Record(_) => "error",
            Self::Busy { .. } => "busy",
            Self::LockLost => "lock_lost",
            Self::Conflict => "conflict",
            Self::NotFound => "not_found",
            Self::NothingToResume => "nothing_to_resume",
            Self::ApprovalPending { .. } => "approval_pending",
            Self::ApprovalExpired => "approval_expired",
            Self::NoPendingApproval => "no_pending_approval",
        }
    }
}

/// A session id a client chose: 1–128 characters of `A-Z a-z 0-9 . _ : -`, starting with a
/// letter or digit (no `{`, `}` or `/`, which would break the store's key layout).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct SessionId(String);

impl TryFrom<String> for SessionId {
    type Error = String;
    fn try_from(id: String) -> Result<Self, String> {
        Self::parse(&id)
    }
}

impl SessionId {
    /// Checks `id`; the error says what a valid one looks like.
    pub fn parse(id: &str) -> Result<Self, String> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id.as_bytes()[0].is_ascii_alphanumeric()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(Self(id.to_string()))
        } else {
            Err(format!(
                "sessionId {id:?} must be 1-128 characters of letters, digits, '.', '_', ':' and '-', starting with a letter or digit (a random UUID works)"
            ))
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The least `memory.maxContextTokens` taken.
pub const MIN_CONTEXT_TOKENS: u32 = 1000;

/// How sessions behave.
#[derive(Clone, Debug)]
pub struct Options {
    /// A session expires this long after its last commit.
    pub ttl: Duration,
    /// Most messages kept; older whole turns are dropped at commit ([`trim::cut`]).
    pub max_messages: usize,
    /// Past this many tokens (estimated) the oldest turns are summarised ([`compact`]);
    /// `None`: never.
    pub max_context_tokens: Option<u64>,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    /// The name of this replica, shown to a client refused as busy.
    pub pod: String,
    /// How long a turn waits for approval of its calls before it is dropped.
    pub approval_timeout: Duration,
}

/// The sessions of one Agent in one store.
#[derive(Clone)]
pub struct Sessions {
    store: Store,
    namespace: String,
    agent: String,
    options: Options,
    /// Leases of acquires whose answer never came (lock key → value): the store may still
    /// have granted them, so this replica's next acquire may take them over.
    abandoned: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

impl Sessions {
    /// The sessions `memory` describes for Agent `agent`, the URL read from the variable it
    /// names with `env`; leases last `lease`. Nothing connects yet.
    pub fn from_config(
        memory: &MemoryConfig,
        agent: &AgentIdentity,
        env: impl Fn(&str) -> Option<String>,
        lease: Duration,
        metrics: StoreMetrics,
    ) -> Result<Self, StoreError> {
        if memory.ttl_seconds == 0 {
            return Err(StoreError::Setting(
                "memory.ttlSeconds must be at least 1".into(),
            ));
        }
        if memory.max_messages < 2 {
            return Err(StoreError::Setting(
                "memory.maxMessages must be at least 2".into(),
            ));
        }
        if let Some(n) = memory.max_context_tokens
            && n < MIN_CONTEXT_TOKENS
        {
            return Err(StoreError::Setting(format!(
                "memory.maxContextTokens must be at least {MIN_CONTEXT_TOKENS} (it is {n}): below that a summary and one turn do not fit; leave it out to never compact"
            )));
        }
        let approval = memory.approval_timeout_seconds;
        if !(MIN_APPROVAL_TIMEOUT_SECONDS..=MAX_APPROVAL_TIMEOUT_SECONDS).contains(&approval) {
            return Err(StoreError::Setting(format!(
                "memory.approvalTimeoutSeconds must be between {MIN_APPROVAL_TIMEOUT_SECONDS} and {MAX_APPROVAL_TIMEOUT_SECONDS} (it is {approval})"
            )));
        }
        if lease < Duration::from_millis(300) {
            return Err(StoreError::Setting(
                "the session lease must be at least 0.3 seconds".into(),
            ));
        }
        let url = env(&memory.url_from_env)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| StoreError::MissingUrl(memory.url_from_env.clone()))?;
        let ca = memory.ca_pem.as_deref();
        let store = Store::connect_lazy(&url, ca, store::DEFAULT_CALL_TIMEOUT, metrics)?;
        let pod = env("HOSTNAME").unwrap_or_else(|| "agentry-runtime".into());
        let options = Options {
            ttl: Duration::from_secs(u64::from(memory.ttl_seconds)),
            max_messages: memory.max_messages as usize,
            max_context_tokens: memory.max_context_tokens.map(u64::from),
            lease,
            pod,
            approval_timeout: Duration::from_secs(u64::from(approval)),
        };
        Ok(Self::new(store, &agent.namespace, &agent.name, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_that_would_break_the_key_layout_are_refused_with_the_rule() {
        for good in [
            "c0ffee-42",
            "a",
            "550e8400-e29b-41d4-a716-446655440000",
            "x.y_z:1",
        ] {
            assert!(SessionId::parse(good).is_ok(), "{good}");
        }
        let long = "a".repeat(129);
        for bad in ["", "-a", "a}b", "a/b", "a b", "ü", long.as_str()] {
            let e = SessionId::parse(bad).unwrap_err();
            assert!(e.contains("1-128 characters"), "{e}");
        }
    }

    #[tokio::test]
    async fn settings_that_cannot_work_are_refused_at_start_naming_the_field() {
        let agent = AgentIdentity {
            name: "a".into(),
            namespace: "n".into(),
            description: None,
        };
        let memory = MemoryConfig {
            url_from_env: "AGENTRY_MEMORY_URL".into(),
            ttl_seconds: 60,
            max_messages: 10,
            ca_pem: None,
            max_context_tokens: None,
            approval_timeout_seconds: 3600,
        };
        let lease = Options::DEFAULT_LEASE;
        let build = |m: &MemoryConfig, env: Option<&str>| {
            let url = env.map(str::to_string);
            Sessions::from_config(m, &agent, |_| url.clone(), lease, StoreMetrics::default())
                .err()
                .map(|e| e.to_string())
        };
        let missing = build(&memory, None).unwrap();
        assert!(
            missing.contains("AGENTRY_MEMORY_URL, which is not set"),
            "{missing}"
        );
        let scheme = build(&memory, Some("memcached://h:1")).unwrap();
        assert!(scheme.contains("\"memcached\""), "{scheme}");
        let ttl = MemoryConfig {
            ttl_seconds: 0,
            ..memory.clone()
        };
        assert_eq!(
            build(&ttl, Some("redis://h:1")).unwrap(),
            "memory.ttlSeconds must be at least 1"
        );
        let max = MemoryConfig {
            max_messages: 1,
            ..memory.clone()
        };
        assert!(
            build(&max, Some("redis://h:1"))
                .unwrap()
                .contains("maxMessages")
        );
        let tiny = MemoryConfig {
            max_context_tokens: Some(999),
            ..memory.clone()
        };
        assert_eq!(
            build(&tiny, Some("redis://h:1")).unwrap(),
            "memory.maxContextTokens must be at least 1000 (it is 999): below that a summary and one turn do not fit; leave it out to never compact"
        );
        let enough = MemoryConfig {
            max_context_tokens: Some(1000),
            ..memory.clone()
        };
        assert_eq!(build(&enough, Some("redis://h:1")), None);
        for (seconds, refused) in [(9, true), (10, false), (604_800, false), (604_801, true)] {
            let approval = MemoryConfig {
                approval_timeout_seconds: seconds,
                ..memory.clone()
            };
            let want = refused.then(|| {
                format!(
                    "memory.approvalTimeoutSeconds must be between 10 and 604800 (it is {seconds})"
                )
            });
            assert_eq!(build(&approval, Some("redis://h:1")), want, "{seconds}");
        }
        assert_eq!(build(&memory, Some("redis://h:1")), None);
    }

    #[test]
    fn store_failures_share_one_code_and_keep_distinct_outcomes() {
        let t = SessionError::Timeout(Duration::from_secs(2));
        assert_eq!(
            (t.code(), t.outcome()),
            ("session_store_unavailable", "timeout")
        );
        assert_eq!(
            t.to_string(),
            "the session store did not answer within 2000 ms"
        );
        let b = SessionError::Busy {
            holder: "pod-a".into(),
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(b.code(), "session_busy");
    }
}
