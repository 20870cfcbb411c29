//! What a session looks like in the store (schema 1): the state hash's fields and one Converse
//! message as JSON per list element. The scripts never parse JSON; only this module does, so a
//! format change is one place and the `schema` field.

use serde::{Deserialize, Serialize};

use crate::conversation::{Message, Usage};

/// The store format this build writes and reads.
pub const SCHEMA: u32 = 1;

/// Why a stored session cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A message element is not a Converse message.
    #[error("stored message {index} is not a Converse message")]
    Message {
        /// Its index in the list.
        index: usize,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The `meta` field is not the expected JSON.
    #[error("the stored session metadata is not valid")]
    Meta(#[source] serde_json::Error),
    /// The version field is not a number.
    #[error("the stored session version {0:?} is not a number")]
    Version(String),
    /// The `checkpoint` field is not the expected JSON.
    #[error("the stored checkpoint header is not valid")]
    Checkpoint(#[source] serde_json::Error),
    /// The `pending` field is not the expected JSON.
    #[error("the stored pending approval is not valid")]
    Pending(#[source] serde_json::Error),
    /// Written by a newer runtime.
    #[error("the session was written in store format {0}; this runtime reads format {SCHEMA}")]
    Schema(String),
}

/// The `meta` field: bookkeeping the API shows (`GET /v1/sessions/{id}`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// When the first turn was committed, Unix milliseconds.
    pub created_at_ms: u64,
    /// When the last turn was committed, Unix milliseconds.
    pub updated_at_ms: u64,
    /// Invocations committed.
    pub turns: u64,
    /// What the conversation weighed at the last saved turn, as the model reported it: the
    /// last model call's input (cached part included) plus its reply. 0 when unknown (saved
    /// before this was recorded); compaction then estimates ([`super::compact`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The `checkpoint` field: the header of a running (or crashed) invocation's turn so far,
/// whose messages are the checkpoint list. Written by [`super::Sessions::checkpoint`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// The invocation that wrote it (the first one, when a resume continued it).
    pub invocation_id: String,
    /// When the invocation's first checkpoint was written, Unix milliseconds.
    pub started_at_ms: u64,
    /// When this one was written, Unix milliseconds.
    pub updated_at_ms: u64,
    /// Messages in the checkpoint list.
    pub messages: usize,
    /// Model calls the turn made so far (its `maxIterations` count).
    pub model_calls: u32,
    /// Tokens the turn used so far (its `maxTokensPerInvocation` count).
    pub usage: Usage,
    /// Stored messages a compaction before the turn summarised (0: none); the summary is
    /// `summary`, both saved with the turn's commit.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub summarized: usize,
    /// That compaction's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The `pending` field: a turn stopped for approval, whose model reply (the checkpoint's last
/// message) holds `calls`; its checkpoint stays until the calls are decided or it expires
/// (`pendingExpiresAt`, the same instant, is what the scripts compare).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    /// The invocation that stopped.
    pub invocation_id: String,
    /// When it stopped, Unix milliseconds.
    pub requested_at_ms: u64,
    /// When the approval expires, Unix milliseconds.
    pub expires_at_ms: u64,
    /// The calls waiting for a decision.
    pub calls: Vec<crate::conversation::ToolUse>,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

/// The state hash, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// The version, incremented by every commit; 0 for a session never committed.
    pub version: u64,
    /// Bookkeeping.
    pub meta: Meta,
    /// A compaction summary of dropped history, when there is one.
    pub summary: Option<String>,
    /// A turn waiting for approval (JSON, [`Pending`]), when there is one.
    pub pending: Option<String>,
    /// The header of an interrupted invocation's checkpoint (JSON), when there is one.
    pub checkpoint: Option<String>,
    /// The id of the invocation committed last.
    pub last_invocation: Option<String>,
}

impl State {
    /// From the field/value pairs of `HGETALL` (empty for a new session).
    pub fn from_fields(fields: Vec<(String, String)>) -> Result<Self, RecordError> {
        let mut s = State::default();
        for (k, v) in fields {
            match k.as_str() {
                "v" => s.version = v.parse().map_err(|_| RecordError::Version(v.clone()))?,
                "schema" if v != SCHEMA.to_string() => return Err(RecordError::Schema(v)),
                "meta" => s.meta = serde_json::from_str(&v).map_err(RecordError::Meta)?,
                "summary" => s.summary = Some(v),
                "pending" => s.pending = Some(v),
                "checkpoint" => s.checkpoint = Some(v),
                "lastInvocation" => s.last_invocation = Some(v),
                // Fields of a later step this build does not use yet.
                _ => {}
            }
        }
        Ok(s)
    }
}

impl State {
    /// The turn waiting for approval, when there is one.
    pub fn pending(&self) -> Result<Option<Pending>, RecordError> {
        self.pending
            .as_deref()
            .map(|c| serde_json::from_str(c).map_err(RecordError::Pending))
            .transpose()
    }

    /// The checkpoint header, when an invocation left one.
    pub fn checkpoint(&self) -> Result<Option<Checkpoint>, RecordError> {
        self.checkpoint
            .as_deref()
            .map(|c| serde_json::from_str(c).map_err(RecordError::Checkpoint))
            .transpose()
    }
}

/// One message as stored.
pub fn encode(m: &Message) -> String {
    // A Message is plain data (strings, JSON values): serialising it cannot fail.
    serde_json::to_string(m).unwrap_or_default()
}

/// The stored messages, in order.
pub fn decode(raw: Vec<String>) -> Result<Vec<Message>, RecordError> {
    raw.iter()
        .enumerate()
        .map(|(index, m)| {
            serde_json::from_str(m).map_err(|source| RecordError::Message { index, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_session_has_version_zero_and_no_fields() {
        assert_eq!(State::from_fields(vec![]).unwrap(), State::default());
    }

    #[test]
    fn a_session_of_a_newer_format_is_refused_with_both_formats_named() {
        let e = State::from_fields(vec![("schema".into(), "2".into())]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the session was written in store format 2; this runtime reads format 1"
        );
    }

    #[test]
    fn metadata_saved_before_the_context_count_existed_still_reads() {
        let m: Meta =
            serde_json::from_str(r#"{"createdAtMs":1,"updatedAtMs":2,"turns":3}"#).unwrap();
        assert_eq!((m.turns, m.context_tokens), (3, 0));
        let m = Meta {
            context_tokens: 812,
            ..m
        };
        assert!(
            serde_json::to_string(&m)
                .unwrap()
                .contains(r#""contextTokens":812"#)
        );
    }

    #[test]
    fn messages_round_trip_through_their_stored_form() {
        let m = Message::user_text("hello");
        assert_eq!(decode(vec![encode(&m)]).unwrap(), vec![m]);
        let e = decode(vec!["{}".into()]).unwrap_err();
        assert!(e.to_string().contains("message 0"), "{e}");
    }
}
