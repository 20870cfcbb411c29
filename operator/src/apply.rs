//! Step 3 of reconcile: writes the children with server-side apply under one field manager.
//!
//! A child is written only when its live state (from the controller's cache) does not already
//! hold every field Agentry sets: an unchanged Agent causes no writes, while a child deleted or
//! edited by hand is put back on the next reconcile (its change triggers one).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
    /// Reading a child to compare it failed.
    #[error("reading {kind} {name}")]
    Read {
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

/// A kind of child, and how to tell that a live one changed since Agentry wrote it.
pub trait Child:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Kinds whose status is written by another controller (Deployment, PodDisruptionBudget)
    /// are versioned by `metadata.generation`, which only spec changes bump, plus a digest of
    /// their labels and annotations (so a metadata-only hand edit is seen too); the others by
    /// `metadata.resourceVersion`.
    const BY_GENERATION: bool;

    /// Drops what the cache does not need, keeping identity, versions, owner references (and
    /// a Deployment's status). Keeps the operator small with thousands of children.
    fn compact(&mut self);
}

/// The version a live child has, in the sense of [`Child::BY_GENERATION`].
pub fn version_of<K: Child>(live: &K) -> String {
    let meta = live.meta();
    if K::BY_GENERATION {
        let generation = meta.generation.map(|g| g.to_string()).unwrap_or_default();
        format!("{generation}/{}", metadata_digest(meta))
    } else {
        meta.resource_version.clone().unwrap_or_default()
    }
}

/// Annotation under which a compacted cache entry keeps the digest of the labels and
/// annotations it dropped. It exists only in the operator's memory, never on the server.
const METADATA_DIGEST: &str = "agentry.dev/cached-metadata-digest";

/// A digest of an object's labels and annotations (or the one a compacted entry kept).
fn metadata_digest(meta: &ObjectMeta) -> String {
    if let Some(d) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(METADATA_DIGEST))
    {
        return d.clone();
    }
    let both = serde_json::json!([meta.labels, meta.annotations]);
    crate::build::stable_hash(both.to_string().as_bytes())
}

/// What Agentry last wrote to one child: the hash of the desired object, and the version the
/// write produced.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Written {
    hash: String,
    version: String,
}

/// Per-kind records of what Agentry wrote, so an unchanged child costs neither a write nor a
/// read. Lost on restart, after which each child is read once and compared in full.
#[derive(Default)]
pub struct WriteLog {
    written: std::sync::Mutex<std::collections::HashMap<(String, String, String), Written>>,
}

impl WriteLog {
    fn get(&self, key: &(String, String, String)) -> Option<Written> {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: (String, String, String), written: Written) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, written);
    }

    /// Forgets every record of children in `namespace` named `names` (the Agent is gone).
    pub fn forget(&self, namespace: &str, names: &[String]) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, ns, name), _| ns != namespace || !names.contains(name));
    }
}

/// Applies `desired` unless it is known to be live already. Returns the live object (compacted
/// when it came from the cache).
///
/// Known live: the record of our last write has the same hash as `desired` and the cached
/// child still has the version that write produced. Otherwise the live object is read and
/// compared field by field ([`needs_apply`]); only a difference leads to a write.
pub async fn apply_child<K: Child>(
    client: &kube::Client,
    cache: &Store<K>,
    log: &WriteLog,
    desired: &K,
) -> Result<K, ApplyError> {
    let name = desired.name_any();
    let namespace = desired.namespace().unwrap_or_default();
    let key = (K::kind(&()).into_owned(), namespace.clone(), name.clone());
    let body = serde_json::to_value(desired).unwrap_or_default();
    let hash = crate::build::stable_hash(body.to_string().as_bytes());
    let cached = cache.get(&ObjectRef::new(&name).within(&namespace));
    let record = log.get(&key);
    if let (Some(live), Some(w)) = (&cached, &record)
        && w.hash == hash
        && w.version == version_of(live.as_ref())
    {
        return Ok(live.as_ref().clone());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    // Not in a synced cache: missing (never created, or deleted since we wrote it), so there is
    // nothing to read. Before the cache's first list completes, read to be sure.
    let synced =
        futures::FutureExt::now_or_never(cache.wait_until_ready()).is_some_and(|r| r.is_ok());
    let missing = cached.is_none() && (synced || record.is_some());
    if !missing {
        let live = api
            .get_opt(&name)
            .await
            .map_err(|source| ApplyError::Read {
                kind: K::kind(&()).into(),
                name: name.clone(),
                source,
            })?;
        if let Some(live) = live
            && !needs_apply(&body, &serde_json::to_value(&live).unwrap_or_default())
        {
            log.put(
                key,
                Written {
                    hash,
                    version: version_of(&live),
                },
            );
            return Ok(live);
        }
    }
    let mut body = body;
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let live = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| ApplyError::Apply {
            kind: K::kind(&()).into(),
            name,
            source,
        })?;
    log.put(
        key,
        Written {
            hash,
            version: version_of(&live),
        },
    );
    Ok(live)
}

fn compact_meta(meta: &mut ObjectMeta) {
    let digest = metadata_digest(meta);
    meta.labels = None;
    meta.annotations = Some([(METADATA_DIGEST.to_string(), digest)].into());
    meta.managed_fields = None;
}

impl Child for k8s_openapi::api::apps::v1::Deployment {
    const BY_GENERATION: bool = true;
    fn compact(&mut self) {
        compact_meta(&mut self.metadata);
        self.spec = None;
    }
}

impl Child for k8s_openapi::api::policy::v1::PodDisruptionBudget {
    const BY_GENERATION: bool = true;
    fn compact(&mut self) {
        compact_meta(&mut self.metadata);
        self.spec = None;
        self.status = None;
    }
}

impl Child for k8s_openapi::api::core::v1::Service {
    const BY_GENERATION: bool = false;
    fn compact(&mut self) {
        compact_meta(&mut self.metadata);
        self.spec = None;
        self.status = None;
    }
}

impl Child for k8s_openapi::api::core::v1::ConfigMap {
    const BY_GENERATION: bool = false;
    fn compact(&mut self) {
        compact_meta(&mut self.metadata);
        self.data = None;
        self.binary_data = None;
    }
}

impl Child for k8s_openapi::api::core::v1::ServiceAccount {
    const BY_GENERATION: bool = false;
    fn compact(&mut self) {
        compact_meta(&mut self.metadata);
        self.secrets = None;
        self.image_pull_secrets = None;
    }
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

    fn deployment(generation: i64, label: &str) -> k8s_openapi::api::apps::v1::Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "a", "generation": generation, "labels": {"app": label}},
            "spec": {"selector": {}, "template": {}},
        }))
        .unwrap()
    }

    #[test]
    fn a_labels_only_edit_changes_a_deployments_version() {
        assert_eq!(
            version_of(&deployment(3, "x")),
            version_of(&deployment(3, "x"))
        );
        assert_ne!(
            version_of(&deployment(3, "x")),
            version_of(&deployment(3, "y"))
        );
        assert_ne!(
            version_of(&deployment(3, "x")),
            version_of(&deployment(4, "x"))
        );
    }

    #[test]
    fn a_compacted_deployment_keeps_its_version() {
        let full = deployment(3, "x");
        let mut compacted = full.clone();
        compacted.compact();
        assert_eq!(compacted.metadata.labels, None);
        assert_eq!(version_of(&compacted), version_of(&full));
    }

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
