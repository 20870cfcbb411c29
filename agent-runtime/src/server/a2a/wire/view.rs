//! The store's tasks as either version writes them, serialised straight from borrowed data:
//! an answer is written once into the response body, with no `serde_json::Value` tree built
//! and dropped on the way (that tree was most of the A2A adapter's cost per invocation).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::super::store::{Message, Role, Task};
use super::{Version, state_name};

/// Text parts: 1.0 `{"text"}`, 0.3 `{"kind": "text", "text"}`.
pub struct Parts<'a> {
    /// The wire version.
    pub version: Version,
    /// The parts' texts.
    pub texts: &'a [String],
}

impl Serialize for Parts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Part<'a>(Version, &'a str);
        impl Serialize for Part<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(None)?;
                if self.0 == Version::V03 {
                    m.serialize_entry("kind", "text")?;
                }
                m.serialize_entry("text", self.1)?;
                m.end()
            }
        }
        let mut seq = s.serialize_seq(Some(self.texts.len()))?;
        for t in self.texts {
            seq.serialize_element(&Part(self.version, t))?;
        }
        seq.end()
    }
}

/// A message of a task.
pub struct MessageView<'a> {
    /// The wire version.
    pub version: Version,
    /// The message.
    pub message: &'a Message,
    /// The task it belongs to.
    pub task: &'a Task,
}

impl Serialize for MessageView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let role = match (self.version, self.message.role) {
            (Version::V1, Role::User) => "ROLE_USER",
            (Version::V1, Role::Agent) => "ROLE_AGENT",
            (Version::V03, Role::User) => "user",
            (Version::V03, Role::Agent) => "agent",
        };
        let mut m = s.serialize_map(None)?;
        if self.version == Version::V03 {
            m.serialize_entry("kind", "message")?;
        }
        m.serialize_entry("messageId", &self.message.message_id)?;
        m.serialize_entry("contextId", &self.task.context_id)?;
        m.serialize_entry("taskId", &self.task.id)?;
        m.serialize_entry("role", role)?;
        let parts = Parts {
            version: self.version,
            texts: &self.message.parts,
        };
        m.serialize_entry("parts", &parts)?;
        m.end()
    }
}

/// A task's status: state, timestamp and the message saying why it failed, if any.
pub struct StatusView<'a> {
    /// The wire version.
    pub version: Version,
    /// The task it belongs to.
    pub task: &'a Task,
}

impl Serialize for StatusView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.task;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("state", state_name(self.version, t.state))?;
        m.serialize_entry("timestamp", &t.timestamp)?;
        if let Some(message) = &t.status_message {
            let message = MessageView {
                version: self.version,
                message,
                task: t,
            };
            m.serialize_entry("message", &message)?;
        }
        m.end()
    }
}

/// The answer as an artifact: its id and text.
pub struct ArtifactView<'a> {
    /// The wire version.
    pub version: Version,
    /// The artifact id and the answer's text.
    pub answer: &'a (String, String),
}

impl Serialize for ArtifactView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (id, text) = self.answer;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("artifactId", id)?;
        m.serialize_entry("name", "answer")?;
        let parts = Parts {
            version: self.version,
            texts: std::slice::from_ref(text),
        };
        m.serialize_entry("parts", &parts)?;
        m.end()
    }
}

/// A task with its last `keep` history messages.
pub struct TaskView<'a> {
    /// The wire version.
    pub version: Version,
    /// The task it belongs to.
    pub task: &'a Task,
    /// How many of the newest history messages to write.
    pub keep: usize,
}

impl Serialize for TaskView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (version, t) = (self.version, self.task);
        let mut m = s.serialize_map(None)?;
        if version == Version::V03 {
            m.serialize_entry("kind", "task")?;
        }
        m.serialize_entry("id", &t.id)?;
        m.serialize_entry("contextId", &t.context_id)?;
        m.serialize_entry("status", &StatusView { version, task: t })?;
        if let Some(answer) = &t.answer {
            m.serialize_entry("artifacts", &[ArtifactView { version, answer }])?;
        }
        if self.keep > 0 {
            let from = t.history.len().saturating_sub(self.keep);
            let history: Vec<_> = t.history[from..]
                .iter()
                .map(|message| MessageView {
                    version,
                    message,
                    task: t,
                })
                .collect();
            m.serialize_entry("history", &history)?;
        }
        m.end()
    }
}

/// The result of a send: 1.0 wraps the task as `{"task": …}`, 0.3 sends it bare.
pub struct SendResult<'a>(
    /// The task.
    pub TaskView<'a>,
);

impl Serialize for SendResult<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.version {
            Version::V1 => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("task", &self.0)?;
                m.end()
            }
            Version::V03 => self.0.serialize(s),
        }
    }
}
