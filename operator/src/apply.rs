//! Step 3 of reconcile: writes the children with server-side apply under one field manager.
//!
//! A child is written only when its live state (from the controller's cache) does not already
//! hold every field Agentry sets: an unchanged Agent causes no writes, while a child deleted or
//! edited by hand is put back on the next reconcile (its change triggers one).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The one field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "agentry-operator";

/// Errors writing children.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Server-side apply of a child failed.
    #[error("applying {kind} {name}")]
    Apply {
        /// Kind of the child.
        kind: String,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
    /// Deleting a child that is no longer wanted failed.
    #[error("deleting {kind} {name}")]
    Delete {
        /// Kind of the child.
        kind: String,
        /// Its name.
        name: String,
        /// The API error.
        source: kube::Error,
    },
}

/// Whether `observed` lacks something `desired` sets: a field missing or different. Extra
/// fields in `observed` (server defaults, other managers' fields, status) do not count; lists
/// compare item by item. `null` in `desired` means "not set" and never counts.
pub fn needs_apply(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Null, _) => false,
        (Value::Object(d), Value::Object(o)) => d.iter().any(|(k, dv)| match o.get(k) {
            Some(ov) => needs_apply(dv, ov),
            // The server drops empty lists and maps; their absence is no difference.
            None => !is_empty(dv),
        }),
        (Value::Array(d), Value::Array(o)) => {
            d.len() != o.len() || d.iter().zip(o).any(|(dv, ov)| needs_apply(dv, ov))
        }
        (Value::Number(d), Value::Number(o)) => d.as_f64() != o.as_f64(),
        _ => desired != observed,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Applies `desired` unless the cached live object already matches it. Returns the live object.
pub async fn apply_child<K>(
    client: &kube::Client,
    cache: &Store<K>,
    desired: &K,
) -> Result<K, ApplyError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    if let Some(live) = cache.get(&ObjectRef::new(&name).within(&namespace)) {
        let d = serde_json::to_value(desired).unwrap_or_default();
        let o = serde_json::to_value(live.as_ref()).unwrap_or_default();
        if !needs_apply(&d, &o) {
            return Ok(live.as_ref().clone());
        }
    }
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let mut body = serde_json::to_value(desired).unwrap_or_default();
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| ApplyError::Apply {
        kind: K::kind(&()).into(),
        name,
        source,
    })
}

/// Deletes child `name` if the cache holds it and it is owned by the Agent with `owner_uid`
/// (an object of that name that Agentry does not own is left alone).
pub async fn delete_child<K>(
    client: &kube::Client,
    cache: &Store<K>,
    namespace: &str,
    name: &str,
    owner_uid: &str,
) -> Result<(), ApplyError>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let Some(live) = cache.get(&ObjectRef::new(name).within(namespace)) else {
        return Ok(());
    };
    if !live
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true))
    {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(ApplyError::Delete {
            kind: K::kind(&()).into(),
            name: name.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn identical_objects_need_no_apply() {
        let v = json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}});
        assert!(!needs_apply(&v, &v));
    }

    #[test]
    fn server_defaults_and_status_in_the_live_object_need_no_apply() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "runtime"}]}}}});
        let live = json!({
            "metadata": {"resourceVersion": "9", "managedFields": []},
            "spec": {"replicas": 2, "revisionHistoryLimit": 10,
                     "template": {"spec": {"containers": [{"name": "runtime", "terminationMessagePath": "/dev/termination-log"}]}}},
            "status": {"readyReplicas": 2}
        });
        assert!(!needs_apply(&desired, &live));
    }

    #[test]
    fn a_hand_edited_field_needs_apply() {
        let desired = json!({"spec": {"replicas": 2}});
        assert!(needs_apply(&desired, &json!({"spec": {"replicas": 5}})));
    }

    #[test]
    fn a_removed_field_or_list_item_needs_apply() {
        let desired = json!({"metadata": {"labels": {"agentry.dev/agent": "a"}}, "env": [{"name": "A"}, {"name": "B"}]});
        assert!(needs_apply(
            &desired,
            &json!({"metadata": {}, "env": [{"name": "A"}, {"name": "B"}]})
        ));
        assert!(needs_apply(
            &desired,
            &json!({"metadata": {"labels": {"agentry.dev/agent": "a"}}, "env": [{"name": "A"}]})
        ));
    }

    #[test]
    fn unset_fields_in_desired_never_need_apply() {
        assert!(!needs_apply(
            &json!({"spec": {"image": null}}),
            &json!({"spec": {}})
        ));
    }

    #[test]
    fn an_empty_list_the_server_dropped_needs_no_apply() {
        assert!(!needs_apply(
            &json!({"spec": {"tolerations": []}}),
            &json!({"spec": {}})
        ));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(!needs_apply(&json!({"a": 1}), &json!({"a": 1.0})));
    }
}
