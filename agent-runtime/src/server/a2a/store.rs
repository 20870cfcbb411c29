//! The A2A task store: in memory, per replica, bounded. At most [`MAX_TASKS`] tasks are kept;
//! a finished task is kept for [`MAX_AGE`] after it finished, so `tasks/get` can fetch it, and
//! the oldest finished ones make room when the store is full. Running tasks are never evicted:
//! there are at most as many as the Agent's concurrency slots.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Most tasks kept.
pub const MAX_TASKS: usize = 1000;

/// How long a finished task is kept.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// A task's state, version-neutral.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Accepted, not yet started.
    Submitted,
    /// The invocation runs.
    Working,
    /// The Agent answered.
    Completed,
    /// The invocation failed or stopped on a limit.
    Failed,
    /// Cancelled by `tasks/cancel`.
    Canceled,
    /// The turn waits for a person's approval of its tool calls: the next message on the
    /// task's context carries the decision (on a new task).
    InputRequired,
}

impl State {
    /// Whether the task's invocation has ended: a final state, or input-required (the turn
    /// waits in the session, and the task itself changes no more).
    pub fn terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Canceled | Self::InputRequired
        )
    }
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The client.
    User,
    /// This Agent.
    Agent,
}

/// A message of text parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id.
    pub message_id: String,
    /// Its author.
    pub role: Role,
    /// Its text parts.
    pub parts: Vec<String>,
}

/// A task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Its id.
    pub id: String,
    /// Its context id (the client's, or a new one).
    pub context_id: String,
    /// Its state.
    pub state: State,
    /// When the state last changed, RFC 3339 UTC.
    pub timestamp: String,
    /// The message that started it.
    pub history: Vec<Message>,
    /// The answer, once completed: artifact id and text.
    pub answer: Option<(String, String)>,
    /// Why it failed or was cancelled.
    pub status_message: Option<Message>,
}

/// Why a task cannot be cancelled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    /// No task has this id (or it was evicted).
    #[error("task not found")]
    NotFound,
    /// It has ended already; its final state.
    #[error("task cannot be canceled")]
    Finished(Box<Task>),
}

struct Entry {
    task: Task,
    changed: Instant,
    cancel: Option<oneshot::Sender<()>>,
}

/// The tasks, and the finished ones in the order they finished: eviction and expiry look at
/// the front only, so adding a task costs the same however many are kept.
#[derive(Default)]
struct Tasks {
    map: HashMap<String, Entry>,
    finished: VecDeque<(Instant, String)>,
}

impl Tasks {
    /// Records that `id` finished at `at`.
    fn finished(&mut self, id: &str, at: Instant) {
        self.finished.push_back((at, id.to_string()));
    }

    /// Drops the oldest finished task.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, id)) = self.finished.pop_front() else {
            return false;
        };
        self.map.remove(&id);
        true
    }
}

/// The store.
#[derive(Default)]
pub struct Store {
    tasks: Mutex<Tasks>,
}

/// Now, RFC 3339 UTC ending in `Z`.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a running task, cancelled through `cancel`; evicts expired and, when full, the
    /// oldest finished tasks.
    pub fn insert(&self, task: Task, cancel: oneshot::Sender<()>) {
        let mut tasks = self.lock();
        let now = Instant::now();
        while tasks
            .finished
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > MAX_AGE)
        {
            tasks.evict_oldest();
        }
        while tasks.map.len() >= MAX_TASKS && tasks.evict_oldest() {}
        if task.state.terminal() {
            tasks.finished(&task.id, now);
        }
        let entry = Entry {
            task: task.clone(),
            changed: now,
            cancel: Some(cancel),
        };
        tasks.map.insert(task.id, entry);
    }

    /// The task `id`, unless it is unknown or expired.
    pub fn get(&self, id: &str) -> Option<Task> {
        let tasks = self.lock();
        let e = tasks.map.get(id)?;
        (!(e.task.state.terminal() && e.changed.elapsed() > MAX_AGE)).then(|| e.task.clone())
    }

    /// Applies `change` to a task that has not ended (a cancelled one stays cancelled); the
    /// task as it is afterwards.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Task)) -> Option<Task> {
        let mut tasks = self.lock();
        let e = tasks.map.get_mut(id)?;
        if e.task.state.terminal() {
            return Some(e.task.clone());
        }
        change(&mut e.task);
        e.task.timestamp = now();
        e.changed = Instant::now();
        let task = e.task.clone();
        if task.state.terminal() {
            e.cancel = None;
            let at = e.changed;
            tasks.finished(id, at);
        }
        Some(task)
    }

    /// Cancels a running task: marks it cancelled and signals its invocation to stop.
    pub fn cancel(&self, id: &str) -> Result<Task, CancelError> {
        let mut tasks = self.lock();
        let e = tasks.map.get_mut(id).ok_or(CancelError::NotFound)?;
        if e.task.state.terminal() {
            return Err(CancelError::Finished(Box::new(e.task.clone())));
        }
        e.task.state = State::Canceled;
        e.task.timestamp = now();
        e.task.status_message = Some(Message {
            message_id: super::new_id(),
            role: Role::Agent,
            parts: vec!["canceled by the client (tasks/cancel)".into()],
        });
        e.changed = Instant::now();
        if let Some(tx) = e.cancel.take() {
            let _ = tx.send(());
        }
        let (task, at) = (e.task.clone(), e.changed);
        tasks.finished(id, at);
        Ok(task)
    }

    /// How many tasks are kept.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str) -> Task {
        Task {
            id: id.into(),
            context_id: "c".into(),
            state: State::Working,
            timestamp: now(),
            history: vec![],
            answer: None,
            status_message: None,
        }
    }

    #[test]
    fn cancelling_a_running_task_signals_its_invocation_and_a_finished_one_is_refused() {
        let store = Store::default();
        let (tx, mut rx) = oneshot::channel();
        store.insert(task("t"), tx);
        assert_eq!(store.cancel("t").unwrap().state, State::Canceled);
        assert!(rx.try_recv().is_ok(), "the invocation is told to stop");
        // The invocation ending afterwards does not undo the cancellation.
        let after = store.update("t", |t| t.state = State::Completed).unwrap();
        assert_eq!(after.state, State::Canceled);
        assert!(matches!(store.cancel("t"), Err(CancelError::Finished(_))));
        assert_eq!(store.cancel("nope"), Err(CancelError::NotFound));
    }

    #[test]
    fn a_full_store_evicts_the_oldest_finished_task_and_keeps_running_ones() {
        let store = Store::default();
        for i in 0..MAX_TASKS {
            store.insert(task(&i.to_string()), oneshot::channel().0);
        }
        store.update("5", |t| t.state = State::Completed);
        store.update("7", |t| t.state = State::Failed);
        store.insert(task("new"), oneshot::channel().0);
        assert_eq!(store.len(), MAX_TASKS);
        assert!(
            store.get("5").is_none(),
            "the oldest finished one made room"
        );
        assert!(store.get("7").is_some() && store.get("0").is_some());
        // "7" makes room for one more; then no finished task is left and running ones are kept
        // (the concurrency slots bound them).
        store.insert(task("newer"), oneshot::channel().0);
        store.insert(task("newest"), oneshot::channel().0);
        assert_eq!(store.len(), MAX_TASKS + 1);
        assert!(store.get("0").is_some());
    }
}
