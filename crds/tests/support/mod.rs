//! What the crds suites share: the repository root and the generated schema. The API server's
//! checks themselves are the library's `agentry_crds::validate`.

#![allow(dead_code, clippy::expect_used)]

use std::path::PathBuf;

use serde_json::Value;

/// The repository root (the parent of `crds/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ has a parent")
        .to_path_buf()
}

/// The openAPIV3Schema of the generated Agent CRD, as JSON.
pub fn agent_schema() -> Value {
    let crd = agentry_crds::crd::agent_crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("the CRD has a schema");
    serde_json::to_value(schema).expect("schema serializes")
}
