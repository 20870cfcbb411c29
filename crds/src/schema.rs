//! Schema helpers for fields whose shape `schemars` cannot derive on its own.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A free-form JSON object (for example a tool's JSON Schema). The API server keeps every nested
/// field only because of `x-kubernetes-preserve-unknown-fields`; without it the object would be
/// pruned to `{}` or the CRD refused as non-structural.
pub(crate) fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
