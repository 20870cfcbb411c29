//! The chart's RBAC grants exactly what the operator declares in `rbac::API_ACCESS`: a missing
//! verb fails, and so does an unused one. In namespaced mode nothing namespaced is granted
//! cluster-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use agentry_operator::rbac::{API_ACCESS, Scope};
use agentry_tests::chart;
use serde_json::Value;

/// (group, resource, verb, resourceNames joined) — one permission.
type Perm = (String, String, String, String);

fn granted(docs: &[Value], kind: &str, namespace: Option<&str>) -> BTreeSet<Perm> {
    let mut out = BTreeSet::new();
    for d in docs.iter().filter(|d| {
        d["kind"] == kind && namespace.is_none_or(|ns| d["metadata"]["namespace"] == ns)
    }) {
        for rule in d["rules"].as_array().into_iter().flatten() {
            let names: Vec<&str> = rule["resourceNames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        out.insert((
                            g.as_str().unwrap().into(),
                            r.as_str().unwrap().into(),
                            v.as_str().unwrap().into(),
                            names.join(","),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn declared(scopes: &[Scope]) -> BTreeSet<Perm> {
    API_ACCESS
        .iter()
        .filter(|a| scopes.contains(&a.scope))
        .flat_map(|a| {
            a.verbs.iter().map(move |v| {
                (
                    a.group.into(),
                    a.resource.into(),
                    (*v).into(),
                    a.resource_names.join(","),
                )
            })
        })
        .collect()
}

fn assert_same(what: &str, granted: &BTreeSet<Perm>, declared: &BTreeSet<Perm>) {
    let missing: Vec<_> = declared.difference(granted).collect();
    let unused: Vec<_> = granted.difference(declared).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "{what}: missing {missing:?}; granted but unused {unused:?}"
    );
}

#[test]
fn cluster_mode_grants_exactly_the_declared_access() {
    let helm = chart::helm();
    let docs = chart::render(&helm, "agentry-system", &[]);
    assert_same(
        "ClusterRole",
        &granted(&docs, "ClusterRole", None),
        &declared(&[Scope::Watched, Scope::Cluster]),
    );
    assert_same(
        "Role in the release namespace",
        &granted(&docs, "Role", Some("agentry-system")),
        &declared(&[Scope::Own]),
    );
}

#[test]
fn namespaced_mode_grants_the_declared_access_per_namespace_and_nothing_namespaced_cluster_wide() {
    let helm = chart::helm();
    let docs = chart::render(
        &helm,
        "agentry-system",
        &["--set", "watchNamespaces={team-a,team-b}"],
    );
    for ns in ["team-a", "team-b"] {
        assert_same(
            &format!("Role in {ns}"),
            &granted(&docs, "Role", Some(ns)),
            &declared(&[Scope::Watched]),
        );
    }
    assert_same(
        "ClusterRole",
        &granted(&docs, "ClusterRole", None),
        &declared(&[Scope::Cluster]),
    );
    assert_same(
        "Role in the release namespace",
        &granted(&docs, "Role", Some("agentry-system")),
        &declared(&[Scope::Own]),
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == "default")
    );
}

#[test]
fn every_role_is_bound_to_the_operator_service_account() {
    let helm = chart::helm();
    for args in [&[][..], &["--set", "watchNamespaces={team-a}"][..]] {
        let docs = chart::render(&helm, "agentry-system", args);
        let sa = docs.iter().find(|d| d["kind"] == "ServiceAccount").unwrap()["metadata"]["name"]
            .clone();
        for role in docs
            .iter()
            .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        {
            let binding_kind = if role["kind"] == "Role" {
                "RoleBinding"
            } else {
                "ClusterRoleBinding"
            };
            let bound = docs.iter().any(|b| {
                b["kind"] == binding_kind
                    && b["roleRef"]["name"] == role["metadata"]["name"]
                    && b["metadata"]["namespace"] == role["metadata"]["namespace"]
                    && b["subjects"][0]["name"] == sa
                    && b["subjects"][0]["namespace"] == "agentry-system"
            });
            assert!(
                bound,
                "{} {} is not bound to {sa}",
                role["kind"], role["metadata"]["name"]
            );
        }
    }
}

#[test]
fn the_operator_never_gets_secrets() {
    let helm = chart::helm();
    let docs = chart::render(&helm, "agentry-system", &[]);
    assert!(
        !granted(&docs, "ClusterRole", None)
            .iter()
            .any(|p| p.1 == "secrets" || p.1 == "*" || p.2 == "*")
    );
}
