//! Tests of the parent module.

use super::*;
use crate::build::fixtures::{WEATHER, agent};

/// The status of `agent` at a fixed time, for tests where the time does not matter.
fn status(
    agent: &agentry_crds::Agent,
    deployment: Option<&Deployment>,
    problems: &[Problem],
    invalid: Option<(&'static str, String)>,
) -> AgentStatus {
    let observed = Observed {
        agent,
        deployment,
        problems,
        invalid,
    };
    desired_status(&observed, &time("2026-01-01T00:00:00Z"))
}

fn time(s: &str) -> Time {
    Time(s.parse().unwrap())
}

fn deployment(available: i32, updated: i32, generation: i64, observed: i64) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "weather", "generation": generation},
        "status": {"replicas": 2, "readyReplicas": available, "availableReplicas": available,
                   "updatedReplicas": updated, "observedGeneration": observed,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ok"}]}
    }))
    .unwrap()
}

fn cond<'a>(s: &'a AgentStatus, t: &str) -> &'a Condition {
    s.conditions.iter().find(|c| c.type_ == t).unwrap()
}

#[test]
fn ready_when_the_deployment_has_every_desired_replica_available() {
    let a = agent(WEATHER);
    let d = deployment(2, 2, 3, 3);
    let s = status(&a, Some(&d), &[], None);
    assert_eq!(cond(&s, "Ready").status, "True");
    assert_eq!(cond(&s, "Ready").message, "2/2 runtime pods available");
    assert_eq!(cond(&s, "Ready").observed_generation, Some(2));
    assert_eq!(
        s.endpoint.as_deref(),
        Some("http://weather.demo.svc.cluster.local")
    );
    assert_eq!((s.replicas, s.ready_replicas), (Some(2), Some(2)));
    assert_eq!(
        s.selector.as_deref(),
        Some("agentry.dev/agent=weather,app.kubernetes.io/name=agentry-agent")
    );
    assert_eq!(cond(&s, "Degraded").status, "False");
    assert_eq!(cond(&s, "Progressing").reason, "NewReplicaSetAvailable");
}

#[test]
fn not_ready_while_the_deployment_has_not_observed_its_latest_generation() {
    let a = agent(WEATHER);
    let d = deployment(2, 2, 4, 3);
    let s = status(&a, Some(&d), &[], None);
    assert_eq!(cond(&s, "Ready").status, "False");
    assert_eq!(cond(&s, "Ready").reason, "RolloutInProgress");
}

#[test]
fn missing_tool_target_gives_tools_resolved_false_with_reason_and_message() {
    let a = agent(WEATHER);
    let problems = [Problem {
        reason: "AgentNotFound",
        message: "tool ask_travel_agent: Agent demo/travel not found".into(),
    }];
    let s = status(&a, None, &problems, None);
    let c = cond(&s, "ToolsResolved");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "AgentNotFound")
    );
    assert!(c.message.contains("demo/travel"));
    assert_eq!(cond(&s, "Ready").reason, "DeploymentMissing");
}

#[test]
fn last_transition_time_moves_only_when_the_status_flips() {
    let mut a = agent(WEATHER);
    let d = deployment(2, 2, 3, 3);
    let t1 = time("2026-01-01T00:00:00Z");
    let first = desired_status(
        &Observed {
            agent: &a,
            deployment: Some(&d),
            problems: &[],
            invalid: None,
        },
        &t1,
    );
    a.status = Some(first.clone());
    let t2 = time("2026-01-01T01:00:00Z");
    let same = desired_status(
        &Observed {
            agent: &a,
            deployment: Some(&d),
            problems: &[],
            invalid: None,
        },
        &t2,
    );
    assert_eq!(
        same, first,
        "nothing changed, so the status is identical and no write follows"
    );
    let down = deployment(1, 2, 3, 3);
    let flipped = desired_status(
        &Observed {
            agent: &a,
            deployment: Some(&down),
            problems: &[],
            invalid: None,
        },
        &t2,
    );
    assert_eq!(cond(&flipped, "Ready").last_transition_time, t2);
    assert_eq!(cond(&flipped, "ToolsResolved").last_transition_time, t1);
}

#[test]
fn replica_failure_makes_the_agent_degraded() {
    let a = agent(WEATHER);
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "weather", "generation": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"weather-1\" is forbidden: exceeded quota"}]}
    })).unwrap();
    let s = status(&a, Some(&d), &[], None);
    let c = cond(&s, "Degraded");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("True", "FailedCreate")
    );
    assert!(c.message.contains("exceeded quota"));
}

#[test]
fn an_invalid_agent_reports_ready_false_and_stalled_with_the_reason_and_no_endpoint() {
    let a = agent(WEATHER);
    let s = status(&a, None, &[], Some(("InvalidName", "bad".into())));
    let types: Vec<_> = s.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Ready", "Reconciling", "Stalled"]);
    assert_eq!(cond(&s, "Ready").reason, "InvalidName");
    assert_eq!(
        (
            cond(&s, "Stalled").status.as_str(),
            cond(&s, "Stalled").reason.as_str()
        ),
        ("True", "InvalidName")
    );
    assert_eq!(cond(&s, "Reconciling").status, "False");
    assert!(s.endpoint.is_none());
}

#[test]
fn kstatus_sees_a_rollout_as_reconciling_and_a_ready_agent_as_done() {
    let a = agent(WEATHER);
    let rolling = deployment(1, 2, 3, 3);
    let s = status(&a, Some(&rolling), &[], None);
    assert_eq!(
        (
            cond(&s, "Reconciling").status.as_str(),
            cond(&s, "Reconciling").reason.as_str()
        ),
        ("True", "RolloutInProgress")
    );
    assert_eq!(cond(&s, "Stalled").status, "False");
    let done = deployment(2, 2, 3, 3);
    let s = status(&a, Some(&done), &[], None);
    assert_eq!(cond(&s, "Reconciling").status, "False");
    assert_eq!(cond(&s, "Stalled").status, "False");
}

#[test]
fn a_missing_prompt_config_map_stalls_the_agent_but_a_missing_tool_target_does_not() {
    let a = agent(WEATHER);
    let cm = [Problem {
        reason: "ConfigMapNotFound",
        message: "systemPromptFrom: ConfigMap demo/p not found".into(),
    }];
    let s = status(&a, None, &cm, None);
    assert_eq!(
        (
            cond(&s, "Stalled").status.as_str(),
            cond(&s, "Stalled").reason.as_str()
        ),
        ("True", "ConfigMapNotFound")
    );
    let tool = [Problem {
        reason: "AgentNotFound",
        message: "tool x: Agent demo/y not found".into(),
    }];
    let s = status(&a, None, &tool, None);
    assert_eq!(cond(&s, "Stalled").status, "False");
    assert_eq!(cond(&s, "Reconciling").status, "True");
}

#[test]
fn scaled_to_zero_is_ready() {
    let a = agent(&WEATHER.replace("replicas: 2", "replicas: 0"));
    let d = deployment(0, 0, 1, 1);
    let s = status(&a, Some(&d), &[], None);
    assert_eq!(cond(&s, "Ready").reason, "ScaledToZero");
}
