//! The Argo CD health check in `examples/gitops/` gives the right verdict for the statuses the
//! operator writes, run in a Lua 5.1 interpreter as Argo CD runs it (`obj` global, a returned
//! table with `status` and `message`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agentry_tests::fixtures::repo_root;
use mlua::{Lua, LuaSerdeExt, Table};
use serde_json::{Value, json};

fn script() -> String {
    std::fs::read_to_string(repo_root().join("examples/gitops/argocd-agent-health.lua")).unwrap()
}

fn health(obj: Value) -> (String, String) {
    let lua = Lua::new();
    lua.globals()
        .set("obj", lua.to_value(&obj).unwrap())
        .unwrap();
    let hs: Table = lua.load(script()).eval().expect("the script runs");
    (hs.get("status").unwrap(), hs.get("message").unwrap())
}

fn agent(generation: i64, observed: Option<i64>, conditions: Value) -> Value {
    let mut status = json!({"conditions": conditions});
    if let Some(o) = observed {
        status["observedGeneration"] = o.into();
    }
    json!({"apiVersion": "agentry.dev/v1alpha1", "kind": "Agent", "metadata": {"name": "a", "generation": generation}, "status": status})
}

fn c(t: &str, s: &str, reason: &str, message: &str) -> Value {
    json!({"type": t, "status": s, "reason": reason, "message": message})
}

fn ok_conditions() -> Vec<Value> {
    vec![
        c("Ready", "True", "Available", "2/2 runtime pods available"),
        c(
            "ToolsResolved",
            "True",
            "Resolved",
            "2 tools, every target found",
        ),
        c("Degraded", "False", "AsExpected", ""),
        c("Reconciling", "False", "Reconciled", ""),
        c("Stalled", "False", "AsExpected", ""),
    ]
}

#[test]
fn a_ready_agent_for_the_current_generation_is_healthy() {
    assert_eq!(
        health(agent(3, Some(3), json!(ok_conditions()))),
        ("Healthy".into(), "2/2 runtime pods available".into())
    );
}

#[test]
fn an_agent_without_status_or_with_an_old_one_is_progressing() {
    let mut no_status = agent(1, None, json!([]));
    no_status.as_object_mut().unwrap().remove("status");
    assert_eq!(health(no_status).0, "Progressing");
    assert_eq!(
        health(agent(4, Some(3), json!(ok_conditions()))).0,
        "Progressing"
    );
}

#[test]
fn a_rollout_is_progressing_with_the_ready_message() {
    let conds = json!([
        c(
            "Ready",
            "False",
            "RolloutInProgress",
            "1/2 runtime pods available, 2 up to date"
        ),
        c("Reconciling", "True", "RolloutInProgress", "")
    ]);
    assert_eq!(
        health(agent(1, Some(1), conds)),
        (
            "Progressing".into(),
            "1/2 runtime pods available, 2 up to date".into()
        )
    );
}

#[test]
fn stalled_degraded_or_unresolved_agents_are_degraded_with_the_reason() {
    let stalled = json!([
        c("Ready", "False", "InvalidName", "bad"),
        c(
            "Stalled",
            "True",
            "InvalidName",
            "metadata.name \"a.b\" cannot name the Agent's Service"
        )
    ]);
    let (status, message) = health(agent(1, Some(1), stalled));
    assert_eq!(status, "Degraded");
    assert!(message.starts_with("InvalidName: "), "{message}");

    let mut failing = ok_conditions();
    failing[2] = c("Degraded", "True", "FailedCreate", "exceeded quota");
    assert_eq!(
        health(agent(1, Some(1), json!(failing))).1,
        "FailedCreate: exceeded quota"
    );

    let mut missing = ok_conditions();
    missing[1] = c(
        "ToolsResolved",
        "False",
        "AgentNotFound",
        "tool ask: Agent demo/travel not found",
    );
    assert_eq!(
        health(agent(1, Some(1), json!(missing))),
        (
            "Degraded".into(),
            "AgentNotFound: tool ask: Agent demo/travel not found".into()
        )
    );
}

#[test]
fn the_argocd_cm_patch_carries_the_same_script() {
    let patch: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("examples/gitops/argocd-cm-patch.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        patch["data"]["resource.customizations.health.agentry.dev_Agent"]
            .as_str()
            .unwrap(),
        script()
    );
}
