//! Step 4 of reconcile: the Agent's status. Conditions `Ready`, `ToolsResolved`, `Progressing`
//! and `Degraded`, each with `observedGeneration`; `lastTransitionTime` moves only when a
//! condition's status flips; the status is written only when it changed.

use agentry_crds::{Agent, AgentStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use crate::apply::FIELD_MANAGER;
use crate::build::{agent_url, labels};
use crate::resolve::Problem;

/// Condition types.
pub mod types {
    /// The Agent serves requests: its Deployment has the desired replicas available.
    pub const READY: &str = "Ready";
    /// Every tool target and the system prompt source exist.
    pub const TOOLS_RESOLVED: &str = "ToolsResolved";
    /// The Deployment is rolling out (mirrors its `Progressing` condition).
    pub const PROGRESSING: &str = "Progressing";
    /// The Deployment cannot make progress (pods failing, deadline exceeded).
    pub const DEGRADED: &str = "Degraded";
    /// kstatus convention (abnormal-true): the Agent has not reached its spec yet.
    pub const RECONCILING: &str = "Reconciling";
    /// kstatus convention (abnormal-true): the Agent cannot reach its spec without a change.
    pub const STALLED: &str = "Stalled";
}

/// `Reconciling` and `Stalled`, as kstatus (Flux health checks, kpt, cli-utils) reads them,
/// derived from the other conditions: stalled when degraded, invalid or without a system
/// prompt; reconciling while not ready and not stalled.
fn kstatus_conditions(
    conditions: &[Condition],
    o: &Observed<'_>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let degraded = find(types::DEGRADED).filter(|c| c.status == "True");
    let ready = find(types::READY);
    let no_prompt = o
        .problems
        .iter()
        .find(|p| p.reason.starts_with("ConfigMap") || p.reason == "SystemPromptMissing");
    let stalled: Option<(String, String)> = if let Some((reason, message)) = &o.invalid {
        Some((reason.to_string(), message.clone()))
    } else if let Some(d) = degraded {
        Some((d.reason.clone(), d.message.clone()))
    } else {
        no_prompt.map(|p| (p.reason.to_string(), p.message.clone()))
    };
    let stalled_condition = match &stalled {
        Some((reason, message)) => condition(
            types::STALLED,
            true,
            reason,
            message.clone(),
            generation,
            now,
        ),
        None => condition(
            types::STALLED,
            false,
            "AsExpected",
            "nothing blocks the Agent".into(),
            generation,
            now,
        ),
    };
    let reconciling = match ready {
        Some(r) if r.status == "False" && stalled.is_none() => condition(
            types::RECONCILING,
            true,
            &r.reason,
            r.message.clone(),
            generation,
            now,
        ),
        _ => condition(
            types::RECONCILING,
            false,
            "Reconciled",
            "no work pending".into(),
            generation,
            now,
        ),
    };
    vec![reconciling, stalled_condition]
}

/// What the status is computed from.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The Agent as the controller saw it.
    pub agent: &'a Agent,
    /// The live Deployment, if there is one.
    pub deployment: Option<&'a Deployment>,
    /// What resolve could not find.
    pub problems: &'a [Problem],
    /// When the spec is invalid: its reason and message (no children are written).
    pub invalid: Option<(&'static str, String)>,
}

fn condition(
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    }
}

fn deployment_condition<'a>(
    d: &'a Deployment,
    type_: &str,
) -> Option<&'a k8s_openapi::api::apps::v1::DeploymentCondition> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn ready(o: &Observed<'_>, generation: Option<i64>, now: &Time) -> Condition {
    let desired = o.agent.spec.replicas;
    if let Some((reason, message)) = &o.invalid {
        return condition(
            types::READY,
            false,
            reason,
            message.clone(),
            generation,
            now,
        );
    }
    let Some(d) = o.deployment else {
        let message = match o.problems.first() {
            Some(p) => format!("the runtime Deployment is not created yet: {}", p.message),
            None => "the runtime Deployment is not created yet".into(),
        };
        return condition(
            types::READY,
            false,
            "DeploymentMissing",
            message,
            generation,
            now,
        );
    };
    let status = d.status.clone().unwrap_or_default();
    let current = status.observed_generation >= d.metadata.generation;
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if desired == 0 {
        return condition(
            types::READY,
            true,
            "ScaledToZero",
            "replicas is 0: the Agent is deployed but serves no requests until scaled up".into(),
            generation,
            now,
        );
    }
    if current && available >= desired && updated >= desired {
        let message = format!("{available}/{desired} runtime pods available");
        return condition(types::READY, true, "Available", message, generation, now);
    }
    let message = format!("{available}/{desired} runtime pods available, {updated} up to date");
    condition(
        types::READY,
        false,
        "RolloutInProgress",
        message,
        generation,
        now,
    )
}

fn tools_resolved(o: &Observed<'_>, generation: Option<i64>, now: &Time) -> Condition {
    match o.problems.first() {
        None => {
            let n = o.agent.spec.tools.len();
            condition(
                types::TOOLS_RESOLVED,
                true,
                "Resolved",
                format!("{n} tools, every target found"),
                generation,
                now,
            )
        }
        Some(first) => {
            let message = o
                .problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            condition(
                types::TOOLS_RESOLVED,
                false,
                first.reason,
                message,
                generation,
                now,
            )
        }
    }
}

fn progressing_and_degraded(
    o: &Observed<'_>,
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    let Some(d) = o.deployment else { return vec![] };
    let mut out = Vec::new();
    let progressing = deployment_condition(d, "Progressing");
    if let Some(p) = progressing {
        out.push(condition(
            types::PROGRESSING,
            p.status == "True",
            p.reason.as_deref().unwrap_or("Unknown"),
            p.message.clone().unwrap_or_default(),
            generation,
            now,
        ));
    }
    let failure = deployment_condition(d, "ReplicaFailure").filter(|c| c.status == "True");
    let stalled = progressing.filter(|p| p.status == "False");
    out.push(match (failure, stalled) {
        (Some(f), _) | (None, Some(f)) => condition(
            types::DEGRADED,
            true,
            f.reason.as_deref().unwrap_or("DeploymentFailing"),
            f.message.clone().unwrap_or_default(),
            generation,
            now,
        ),
        (None, None) => condition(
            types::DEGRADED,
            false,
            "AsExpected",
            "the runtime Deployment reports no failure".into(),
            generation,
            now,
        ),
    });
    out
}

/// Keeps the previous `lastTransitionTime` of every condition whose status did not flip.
fn keep_transition_times(conditions: &mut [Condition], previous: &[Condition]) {
    for c in conditions {
        if let Some(p) = previous
            .iter()
            .find(|p| p.type_ == c.type_ && p.status == c.status)
        {
            c.last_transition_time = p.last_transition_time.clone();
        }
    }
}

/// The status the Agent should have. Pure: `now` is only used for conditions that flipped.
pub fn desired_status(o: &Observed<'_>, now: &Time) -> AgentStatus {
    let agent = o.agent;
    let generation = agent.metadata.generation;
    let name = agent.name_any();
    let namespace = agent.namespace().unwrap_or_default();
    let mut conditions = vec![ready(o, generation, now)];
    if o.invalid.is_none() {
        conditions.push(tools_resolved(o, generation, now));
        conditions.extend(progressing_and_degraded(o, generation, now));
    }
    let kstatus = kstatus_conditions(&conditions, o, generation, now);
    conditions.extend(kstatus);
    let previous = agent
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    keep_transition_times(&mut conditions, previous);
    let dstatus = o.deployment.and_then(|d| d.status.as_ref());
    AgentStatus {
        observed_generation: generation,
        conditions,
        endpoint: o.invalid.is_none().then(|| agent_url(&name, &namespace)),
        replicas: Some(dstatus.and_then(|s| s.replicas).unwrap_or(0)),
        ready_replicas: Some(dstatus.and_then(|s| s.ready_replicas).unwrap_or(0)),
        selector: Some(labels::selector_string(&name)),
    }
}

/// Writes `status` to the Agent's status subresource, unless it is what the Agent already has.
/// Returns whether it wrote.
pub async fn write_status(
    client: &kube::Client,
    agent: &Agent,
    status: AgentStatus,
) -> Result<bool, kube::Error> {
    if agent.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let api: Api<Agent> = Api::namespaced(client.clone(), &agent.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "agentry.dev/v1alpha1",
        "kind": "Agent",
        "status": status,
    });
    api.patch_status(
        &agent.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests;
