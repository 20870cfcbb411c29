//! The reconcile pipeline for one Agent:
//!
//! 1. [`validate`](crate::validate): what the schema cannot check (permanent failures end here,
//!    reported in status, waiting for a change);
//! 2. [`resolve`](crate::resolve): the system prompt and the tool targets (reads only);
//! 3. [`build`](crate::build): the children, as pure functions;
//! 4. [`apply`](crate::apply): server-side apply of what differs from the cache;
//! 5. [`status`](crate::status): conditions, written only when they changed, with Events on
//!    notable transitions.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::context::FutureExt as _;

use agentry_crds::Agent;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::apply::{ApplyError, WriteLog, apply_child, delete_child};
use crate::build::{self, deployment::DeploymentInputs, stable_hash};
use crate::metrics::Metrics;
use crate::resolve::{Lookup, ResolveError, resolve};
use crate::status::{Observed, desired_status, types, write_status};
use crate::validate::validate;

/// How often an Agent is reconciled with no event at all, as a safety net.
pub const RESYNC: Duration = Duration::from_secs(30 * 60);

/// Caches of the children, fed by the controller's watches.
#[derive(Clone)]
pub struct ChildCaches {
    /// Deployments Agentry manages.
    pub deployments: Store<Deployment>,
    /// Services Agentry manages.
    pub services: Store<Service>,
    /// ConfigMaps Agentry manages.
    pub config_maps: Store<ConfigMap>,
    /// ServiceAccounts Agentry manages.
    pub service_accounts: Store<ServiceAccount>,
    /// PodDisruptionBudgets Agentry manages.
    pub pdbs: Store<PodDisruptionBudget>,
}

/// Everything reconcile needs.
pub struct Context {
    /// The client.
    pub client: kube::Client,
    /// Runtime image for Agents that set none.
    pub runtime_image: build::deployment::RuntimeImage,
    /// Children caches.
    pub children: ChildCaches,
    /// Lookups of referenced objects.
    pub lookup: Lookup,
    /// Event recorder.
    pub recorder: Recorder,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per Agent uid, for backoff.
    pub failures: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// What apply last wrote to each child.
    pub written: WriteLog,
}

/// Errors that make a reconcile retry with backoff. Invalid specs are not errors: they end in
/// a condition and wait for a change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a referenced object failed.
    #[error("resolving the Agent's references")]
    Resolve(#[from] ResolveError),
    /// Writing a child failed.
    #[error("writing the Agent's children")]
    Apply(#[from] ApplyError),
    /// Writing the status failed.
    #[error("writing the Agent's status")]
    Status(#[source] kube::Error),
}

impl Error {
    /// Every [`Error::category`], so the metrics can show each at zero before it happens.
    pub const CATEGORIES: [&'static str; 3] = ["resolve", "apply", "status"];

    /// Bounded metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Resolve(_) => "resolve",
            Self::Apply(_) => "apply",
            Self::Status(_) => "status",
        }
    }
}

fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Events for conditions whose status flipped (or appeared in a bad state).
pub fn transition_events(old: &[Condition], new: &[Condition]) -> Vec<Event> {
    let mut events = Vec::new();
    for c in new {
        let before = find(old, &c.type_).map(|o| o.status.as_str());
        if before == Some(c.status.as_str()) {
            continue;
        }
        let good = match c.type_.as_str() {
            types::READY | types::TOOLS_RESOLVED => c.status == "True",
            types::DEGRADED => c.status == "False",
            _ => continue,
        };
        // A first good state is not news; recovering from a bad one is. Nor is a first rollout.
        if good && before.is_none() && c.type_ != types::READY {
            continue;
        }
        let rolling_out = matches!(c.reason.as_str(), "RolloutInProgress" | "DeploymentMissing");
        if c.type_ == types::READY && !good && before.is_none() && rolling_out {
            continue;
        }
        events.push(Event {
            type_: if good {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: c.reason.clone(),
            note: Some(c.message.chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        });
    }
    events
}

async fn publish(ctx: &Context, agent: &Agent, events: Vec<Event>) {
    let reference = agent.object_ref(&());
    for event in events {
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, reason = %event.reason, "could not publish event");
        }
    }
}

async fn finish(ctx: &Context, agent: &Agent, observed: Observed<'_>) -> Result<(), Error> {
    let status = desired_status(&observed, &Time(Timestamp::now()));
    let old = agent
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let events = transition_events(&old, &status.conditions);
    let written = status.clone();
    if write_status(&ctx.client, agent, status)
        .await
        .map_err(Error::Status)?
    {
        ctx.metrics
            .ready_latency()
            .reported(agent, &written, std::time::Instant::now());
    }
    publish(ctx, agent, events).await;
    Ok(())
}

/// Reconciles one Agent: runs the pipeline in a span, records metrics, resets the Agent's
/// backoff on success and raises a Warning Event on failure.
pub async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = agent.namespace().unwrap_or_default();
    let span = tracing::info_span!("reconcile", agent = %agent.name_any(), namespace = %namespace);
    let trace =
        crate::telemetry::reconcile_span(&namespace, &agent.name_any(), agent.metadata.generation);
    let start = ctx.metrics.start();
    let result = tracing::Instrument::instrument(pipeline(agent.clone(), ctx.clone()), span)
        .with_context(trace.clone())
        .await;
    {
        let _trace = trace.clone().attach();
        tracing::debug!(
            agent = %agent.name_any(),
            namespace = %namespace,
            ok = result.is_ok(),
            "reconciled"
        );
    }
    crate::telemetry::end_reconcile(
        &trace,
        match &result {
            Ok(_) => Ok(()),
            Err(e) => Err((e.category(), crate::error_chain(e))),
        },
    );
    let uid = agent.uid().unwrap_or_default();
    match &result {
        Ok(_) => {
            ctx.metrics.success(start);
            ctx.failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&uid);
        }
        Err(e) => {
            ctx.metrics.failure(start, e.category());
            let event = Event {
                type_: EventType::Warning,
                reason: "ReconcileFailed".into(),
                note: Some(crate::error_chain(e).chars().take(1000).collect()),
                action: "Reconcile".into(),
                secondary: None,
            };
            publish(&ctx, &agent, vec![event]).await;
        }
    }
    result
}

async fn pipeline(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action, Error> {
    if agent.metadata.deletion_timestamp.is_some() {
        // Garbage collection removes the children through their owner references.
        let name = agent.name_any();
        ctx.written.forget(
            &agent.namespace().unwrap_or_default(),
            &[build::config_map_name(&name), name],
        );
        return Ok(Action::await_change());
    }
    let validated = match validate(&agent) {
        Ok(v) => v,
        Err(invalid) => {
            tracing::info!(error = %invalid, "agent is invalid");
            let message = invalid.to_string();
            let observed = Observed {
                agent: &agent,
                deployment: None,
                problems: &[],
                invalid: Some((invalid.reason(), message)),
            };
            finish(&ctx, &agent, observed).await?;
            return Ok(Action::await_change());
        }
    };
    let resolution = resolve(&agent, &validated, &ctx.lookup).await?;
    let problems = resolution.problems();
    let c = &ctx.children;

    let deployment = match &resolution.system_prompt {
        Ok(prompt) => {
            let config = build::runtime_config::runtime_config(
                &validated,
                prompt,
                &resolution.openapi,
                &resolution.agent_tool_descriptions,
            );
            let config_hash = stable_hash(config.to_json().as_bytes());
            match build::service_account::service_account(&validated) {
                Some(sa) => {
                    drop(apply_child(&ctx.client, &c.service_accounts, &ctx.written, &sa).await?)
                }
                None => {
                    delete_child(
                        &ctx.client,
                        &c.service_accounts,
                        &validated.namespace,
                        &validated.name,
                        &validated.owner.uid,
                    )
                    .await?
                }
            }
            apply_child(
                &ctx.client,
                &c.config_maps,
                &ctx.written,
                &build::config_map::config_map(&validated, &config),
            )
            .await?;
            let inputs = DeploymentInputs {
                runtime: &ctx.runtime_image,
                config_hash: &config_hash,
                service_account: &build::service_account::service_account_name(&validated),
            };
            let deployment = apply_child(
                &ctx.client,
                &c.deployments,
                &ctx.written,
                &build::deployment::deployment(&validated, &inputs),
            )
            .await?;
            apply_child(
                &ctx.client,
                &c.services,
                &ctx.written,
                &build::service::service(&validated),
            )
            .await?;
            match build::pdb::pod_disruption_budget(&validated) {
                Some(pdb) => drop(apply_child(&ctx.client, &c.pdbs, &ctx.written, &pdb).await?),
                None => {
                    delete_child(
                        &ctx.client,
                        &c.pdbs,
                        &validated.namespace,
                        &validated.name,
                        &validated.owner.uid,
                    )
                    .await?
                }
            }
            Some(deployment)
        }
        // Nothing correct to deploy: leave any running Deployment as it is and say why.
        Err(_) => c
            .deployments
            .get(&ObjectRef::new(&validated.name).within(&validated.namespace))
            .map(|d| d.as_ref().clone()),
    };

    let observed = Observed {
        agent: &agent,
        deployment: deployment.as_ref(),
        problems: &problems,
        invalid: None,
    };
    finish(&ctx, &agent, observed).await?;
    Ok(Action::requeue(RESYNC))
}

/// Backoff after `failures` consecutive failures: 5 s doubling to 5 min.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << failures.min(6)).min(300))
}

/// Retries transient errors with per-Agent exponential backoff.
pub fn error_policy(agent: Arc<Agent>, error: &Error, ctx: Arc<Context>) -> Action {
    let uid = agent.uid().unwrap_or_default();
    let failures = {
        let mut map = ctx.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(uid).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let delay = backoff(failures - 1);
    tracing::warn!(error = %crate::error_chain(error), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{type_} {status}"),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn a_missing_tool_target_raises_a_warning_event_with_its_reason() {
        let events = transition_events(
            &[],
            &[
                c("Ready", "False", "DeploymentMissing"),
                c("ToolsResolved", "False", "AgentNotFound"),
            ],
        );
        let reasons: Vec<_> = events
            .iter()
            .map(|e| (e.type_, e.reason.as_str()))
            .collect();
        assert_eq!(reasons, [(EventType::Warning, "AgentNotFound")]);
    }

    #[test]
    fn becoming_ready_and_recovering_are_normal_events() {
        let old = [
            c("Ready", "False", "RolloutInProgress"),
            c("ToolsResolved", "False", "AgentNotFound"),
        ];
        let new = [
            c("Ready", "True", "Available"),
            c("ToolsResolved", "True", "Resolved"),
        ];
        let events = transition_events(&old, &new);
        assert!(events.iter().all(|e| e.type_ == EventType::Normal));
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_first_rollout_is_not_a_warning_but_losing_readiness_is() {
        assert!(transition_events(&[], &[c("Ready", "False", "RolloutInProgress")]).is_empty());
        let lost = transition_events(
            &[c("Ready", "True", "Available")],
            &[c("Ready", "False", "RolloutInProgress")],
        );
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].type_, EventType::Warning);
        let invalid = transition_events(&[], &[c("Ready", "False", "InvalidName")]);
        assert_eq!(invalid[0].reason, "InvalidName");
    }

    #[test]
    fn unchanged_conditions_raise_no_event() {
        let same = [
            c("Ready", "True", "Available"),
            c("Degraded", "False", "AsExpected"),
        ];
        assert!(transition_events(&same, &same).is_empty());
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_five_minutes() {
        assert_eq!(backoff(0), Duration::from_secs(5));
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(300));
    }
}
