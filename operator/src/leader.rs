//! Leader election on a `coordination.k8s.io/v1` Lease, so that two operator replicas never
//! both write. A replica reconciles only while it holds the Lease; one that cannot renew it in
//! time stops (the process exits and restarts as a follower).
//!
//! Writes use the Lease's `resourceVersion`, so two replicas racing for an expired Lease cannot
//! both win: the loser's write fails with a conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// How long a Lease stays valid without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews (a third of the duration, as client-go does).
pub const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a follower retries at most; it also wakes just after the holder's Lease expires,
/// so a crashed leader is replaced one Lease duration after its last renewal, not later.
pub const RETRY_EVERY: Duration = Duration::from_secs(2);

/// What to do with the Lease as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease yet: create it, held by us.
    Create,
    /// We hold it: renew.
    Renew,
    /// Someone else held it but let it expire: take it over.
    TakeOver,
    /// Someone else holds it.
    Wait {
        /// The holder.
        holder: String,
        /// Time until the Lease expires unless renewed.
        expires_in: Duration,
    },
}

/// Decides from the Lease's state. Pure, so the rules are tested without a cluster.
pub fn decide(lease: Option<&Lease>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(15)));
    let expires_in = match &spec.renew_time {
        Some(renewed) => (renewed.0 + duration).duration_since(now),
        None => SignedDuration::ZERO,
    };
    if holder.is_empty() || expires_in.is_negative() {
        Decision::TakeOver
    } else {
        Decision::Wait {
            holder,
            expires_in: Duration::try_from(expires_in).unwrap_or_default(),
        }
    }
}

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be renewed in time, or another replica took it.
    #[error("lost the leader-election Lease {0}")]
    Lost(String),
    /// Reading or writing the Lease failed for a reason other than a conflict.
    #[error("accessing the leader-election Lease")]
    Api(#[source] kube::Error),
}

/// Elects this replica through one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

impl LeaderElector {
    /// An elector for Lease `namespace/name`, as `identity`.
    pub fn new(client: kube::Client, namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp, take_over: bool) -> LeaseSpec {
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: if take_over || previous.is_none() {
                Some(MicroTime(now))
            } else {
                previous.and_then(|p| p.acquire_time.clone())
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if take_over {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    /// One attempt: returns whether we hold the Lease afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaderError> {
        self.attempt().await.map(|wait| wait.is_none())
    }

    /// One attempt: `None` when we hold the Lease afterwards, else how long until the holder's
    /// Lease expires (zero after a lost race).
    async fn attempt(&self) -> Result<Option<Duration>, LeaderError> {
        let now = Timestamp::now();
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(LeaderError::Api)?;
        let result = match decide(current.as_ref(), &self.identity, now) {
            Decision::Wait { holder, expires_in } => {
                tracing::debug!(%holder, ?expires_in, "another replica holds the lease");
                return Ok(Some(expires_in));
            }
            Decision::Create => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(None, now, false)),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            decision @ (Decision::Renew | Decision::TakeOver) => {
                let mut lease = current.unwrap_or_default();
                let take_over = decision == Decision::TakeOver;
                lease.spec = Some(self.spec(lease.spec.as_ref(), now, take_over));
                // `replace` sends the resourceVersion we read: a concurrent writer makes it fail.
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Some(Duration::ZERO)),
            Err(e) => Err(LeaderError::Api(e)),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        tracing::info!(lease = %self.name, identity = %self.identity, "waiting to become leader");
        loop {
            let wait = match self.attempt().await {
                Ok(None) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    return Ok(());
                }
                // Just past the expiry (renewTime has microsecond precision).
                Ok(Some(expires_in)) if expires_in > Duration::ZERO => {
                    RETRY_EVERY.min(expires_in + Duration::from_millis(50))
                }
                Ok(Some(_)) => RETRY_EVERY,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election attempt failed");
                    RETRY_EVERY
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Renews the Lease until that fails for longer than the Lease lasts, or another replica
    /// holds it; then returns the error. Never returns `Ok`.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return LeaderError::Lost(self.name.clone()),
                Err(e) => tracing::warn!(error = %e, "renewing the lease failed"),
            }
            // Stop before the Lease can expire while we still act as leader.
            if last_renewed.elapsed() + RENEW_EVERY >= LEASE_DURATION {
                return LeaderError::Lost(self.name.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed: &str) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                ..LeaseSpec::default()
            }),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn no_lease_is_created() {
        assert_eq!(
            decide(None, "a", at("2026-01-01T00:00:00Z")),
            Decision::Create
        );
    }

    #[test]
    fn our_own_lease_is_renewed() {
        let l = lease("a", "2026-01-01T00:00:00Z");
        assert_eq!(
            decide(Some(&l), "a", at("2026-01-01T00:00:05Z")),
            Decision::Renew
        );
    }

    #[test]
    fn a_fresh_lease_of_another_replica_is_respected() {
        let l = lease("b", "2026-01-01T00:00:00Z");
        assert_eq!(
            decide(Some(&l), "a", at("2026-01-01T00:00:14Z")),
            Decision::Wait {
                holder: "b".into(),
                expires_in: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn an_expired_lease_of_another_replica_is_taken_over() {
        let l = lease("b", "2026-01-01T00:00:00Z");
        assert_eq!(
            decide(Some(&l), "a", at("2026-01-01T00:00:16Z")),
            Decision::TakeOver
        );
    }
}
