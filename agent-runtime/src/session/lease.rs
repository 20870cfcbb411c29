//! The lease on a session: its token, its renewal while an invocation runs, and leases of
//! acquires whose answer never came (a store paused or cut off mid-call may still grant them).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ops::{ms, now_ms};
use super::store::Keys;
use super::{SessionError, Sessions, scripts, store};

/// A held lease on one session: what its commit or release proves it with.
#[derive(Clone, Debug)]
pub struct Lease {
    pub(super) keys: Keys,
    /// `"<token> <pod> <invocation id>"`.
    pub(super) value: String,
    /// The invocation holding it; a commit retried after an unclear failure is recognised by it.
    pub invocation_id: String,
}

/// 128 bits unlikely to repeat across replicas and restarts: a lease token fences writers, it
/// guards no secret.
pub(super) fn token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt ^ n);
        h.write_u128(now_ms().into());
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

impl Sessions {
    /// Releases `lease` of an acquire whose answer never came, in the background: the script
    /// may still run later (on a reconnected link, after a release already found nothing), so
    /// this keeps trying until a release finds it, for at most a lease time (after which it
    /// has run out anyway).
    pub(super) fn abandon(&self, lease: Lease) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        {
            let mut a = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: an entry only spares a retry on this replica a lease time of 409s.
            if a.len() >= 1024 {
                a.clear();
            }
            a.insert(lease.keys.lock.clone(), lease.value.clone());
        }
        let sessions = self.clone();
        handle.spawn(async move {
            let until = Instant::now() + sessions.options.lease;
            while Instant::now() < until {
                let ours = sessions.abandoned(&lease.keys.lock).as_ref() == Some(&lease.value);
                // Taken over by this replica's next acquire, or given back: done.
                if !ours || matches!(sessions.give_back(&lease).await, Ok(true)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut a = sessions.abandoned.lock().unwrap_or_else(|p| p.into_inner());
            if a.get(&lease.keys.lock) == Some(&lease.value) {
                a.remove(&lease.keys.lock);
            }
        });
    }

    /// This replica's abandoned lease on the session with lock key `lock`, if any.
    pub(super) fn abandoned(&self, lock: &str) -> Option<String> {
        let a = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
        a.get(lock).cloned()
    }

    pub(super) fn forget(&self, lock: &str) {
        let mut a = self.abandoned.lock().unwrap_or_else(|p| p.into_inner());
        a.remove(lock);
    }

    /// Extends the lease; [`SessionError::LockLost`] when it is no longer this holder's.
    pub async fn renew(&self, lease: &Lease) -> Result<(), SessionError> {
        self.store
            .observed("renew", async {
                let mut inv = scripts::RENEW.prepare_invoke();
                inv.key(&lease.keys.lock)
                    .arg(&lease.value)
                    .arg(ms(self.options.lease));
                match store::int(&self.store.run(&inv).await?) {
                    Some(1) => Ok(()),
                    Some(0) => Err(SessionError::LockLost),
                    _ => Err(SessionError::Reply("renew")),
                }
            })
            .await
    }

    /// Runs `work` while renewing `lease` every third of the lease time. Ends early with
    /// [`SessionError::LockLost`] (dropping `work`) when the lease is lost, or when no renewal
    /// succeeded for a whole lease time: another invocation may hold the session by then.
    pub async fn while_held<T>(
        &self,
        lease: &Lease,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, SessionError> {
        let every = self.options.lease / 3;
        let renewing = async {
            let mut last_ok = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                match self.renew(lease).await {
                    Ok(()) => last_ok = Instant::now(),
                    Err(SessionError::LockLost) => return SessionError::LockLost,
                    Err(e) => {
                        tracing::warn!(error = %crate::error_chain(&e), "session lease renewal failed");
                        if last_ok.elapsed() + every >= self.options.lease {
                            return SessionError::LockLost;
                        }
                    }
                }
            }
        };
        tokio::select! {
            done = work => Ok(done),
            lost = renewing => Err(lost),
        }
    }
}
