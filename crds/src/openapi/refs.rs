//! Local `$ref`s: followed (JSON pointers with `~0`/`~1` and percent escapes) and expanded in
//! place, so each tool's input schema stands alone. Remote references are refused (the runtime
//! fetches nothing but the document), cycles are refused naming the chain, and an expansion is
//! bounded in nodes so a document of a few kilobytes cannot grow into gigabytes.
//!
//! A `$ref` with sibling keywords keeps them over the target's (OpenAPI 3.1 reads them so; 3.0
//! documents rarely have any). `x-` extensions are dropped from schemas; data keywords
//! (`example`, `examples`, `default`, `enum`, `const`) are copied as they are.

use serde_json::{Map, Value};

use super::OpenApiError;

/// Most JSON nodes one operation's input schema may expand to.
pub const MAX_SCHEMA_NODES: usize = 20_000;
/// Keywords whose value is data, not schemas: never expanded.
const DATA: [&str; 5] = ["example", "examples", "default", "enum", "const"];
/// Keywords whose value maps names to schemas: their keys are names, never extensions.
const NAMED: [&str; 4] = [
    "properties",
    "patternProperties",
    "$defs",
    "dependentSchemas",
];
/// Documentation-only keywords left out of tool schemas.
const DROPPED: [&str; 3] = ["xml", "externalDocs", "discriminator"];

/// Follows and expands references of one operation.
pub struct Resolver<'a> {
    tool: &'a str,
    operation_id: &'a str,
    root: &'a Value,
    nodes_left: usize,
}

impl<'a> Resolver<'a> {
    /// A resolver for `operation_id` of the document `root`.
    pub fn new(tool: &'a str, operation_id: &'a str, root: &'a Value) -> Self {
        Self {
            tool,
            operation_id,
            root,
            nodes_left: MAX_SCHEMA_NODES,
        }
    }

    fn target(&self, at: &str, reference: &str) -> Result<&'a Value, OpenApiError> {
        let Some(fragment) = reference.strip_prefix('#') else {
            return Err(OpenApiError::RemoteRef {
                tool: self.tool.into(),
                at: at.into(),
                reference: reference.into(),
            });
        };
        percent_decode(fragment)
            .and_then(|pointer| self.root.pointer(&pointer))
            .ok_or_else(|| OpenApiError::BrokenRef {
                tool: self.tool.into(),
                at: at.into(),
                reference: reference.into(),
            })
    }

    fn cycle(&self, chain: &[String], reference: &str) -> OpenApiError {
        let mut all = chain.to_vec();
        all.push(reference.to_string());
        OpenApiError::RefCycle {
            tool: self.tool.into(),
            operation_id: self.operation_id.into(),
            chain: all.join(" -> "),
        }
    }

    /// `value` with its own `$ref`s followed (a parameter or request body that is a
    /// reference), not expanded further.
    pub fn follow(&self, value: &'a Value, at: &str) -> Result<Value, OpenApiError> {
        let mut chain: Vec<String> = Vec::new();
        let mut current = value;
        let mut siblings = Map::new();
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            if chain.iter().any(|c| c == reference) {
                return Err(self.cycle(&chain, reference));
            }
            if let Some(map) = current.as_object() {
                for (k, v) in map.iter().filter(|(k, _)| *k != "$ref") {
                    siblings.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            chain.push(reference.to_string());
            current = self.target(at, reference)?;
        }
        let mut out = current.clone();
        if let Value::Object(map) = &mut out {
            for (k, v) in siblings {
                map.insert(k, v);
            }
        }
        Ok(out)
    }

    /// A schema with every `$ref` in it expanded.
    pub fn expand(&mut self, schema: &Value, at: &str) -> Result<Value, OpenApiError> {
        self.expand_in(schema, at, &mut Vec::new(), false)
    }

    fn expand_in(
        &mut self,
        value: &Value,
        at: &str,
        chain: &mut Vec<String>,
        names: bool,
    ) -> Result<Value, OpenApiError> {
        self.nodes_left =
            self.nodes_left
                .checked_sub(1)
                .ok_or_else(|| OpenApiError::SchemaTooLarge {
                    tool: self.tool.into(),
                    operation_id: self.operation_id.into(),
                })?;
        match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.expand_in(v, &format!("{at}[{i}]"), chain, false))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) if !names => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    if chain.iter().any(|c| c == reference) {
                        return Err(self.cycle(chain, reference));
                    }
                    let target = self.target(at, reference)?;
                    chain.push(reference.to_string());
                    let expanded = self.expand_in(target, reference, chain, false);
                    chain.pop();
                    let mut expanded = expanded?;
                    let rest: Map<String, Value> = map
                        .iter()
                        .filter(|(k, _)| *k != "$ref")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !rest.is_empty() {
                        let rest = self.expand_in(&Value::Object(rest), at, chain, false)?;
                        if let (Value::Object(e), Value::Object(r)) = (&mut expanded, rest) {
                            e.extend(r);
                        }
                    }
                    return Ok(expanded);
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if k.starts_with("x-") || DROPPED.contains(&k.as_str()) {
                        continue;
                    }
                    let v = if DATA.contains(&k.as_str()) {
                        v.clone()
                    } else {
                        let named = NAMED.contains(&k.as_str());
                        self.expand_in(v, &format!("{at}.{k}"), chain, named)?
                    };
                    out.insert(k.clone(), v);
                }
                Ok(Value::Object(out))
            }
            // A map of names to schemas: the keys are names, every value a schema.
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    out.insert(
                        k.clone(),
                        self.expand_in(v, &format!("{at}.{k}"), chain, false)?,
                    );
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }
}

/// Percent escapes decoded (`%7B` → `{`); `None` if malformed. Also the decoding of
/// `OTEL_EXPORTER_OTLP_HEADERS` values.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({"components": {"schemas": {
            "Pet": {"type": "object", "x-internal": true, "properties": {"x-tag": {"$ref": "#/components/schemas/Tag"}, "name": {"type": "string"}}},
            "Tag": {"type": "string", "example": {"$ref": "not expanded"}},
            "a/b~c": {"type": "integer"},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}},
            "Ping": {"$ref": "#/components/schemas/Pong"},
            "Pong": {"items": {"$ref": "#/components/schemas/Ping"}}
        }}})
    }

    #[test]
    fn local_refs_are_expanded_and_extensions_dropped_but_not_property_names() {
        let root = doc();
        let mut r = Resolver::new("t", "op", &root);
        let out = r
            .expand(&json!({"$ref": "#/components/schemas/Pet"}), "body")
            .unwrap();
        assert_eq!(
            out,
            json!({"type": "object", "properties": {"x-tag": {"type": "string", "example": {"$ref": "not expanded"}}, "name": {"type": "string"}}})
        );
    }

    #[test]
    fn json_pointer_and_percent_escapes_are_decoded() {
        let root = doc();
        let mut r = Resolver::new("t", "op", &root);
        let out = r
            .expand(&json!({"$ref": "#/components/schemas/a~1b~0c"}), "p")
            .unwrap();
        assert_eq!(out, json!({"type": "integer"}));
        let out = r
            .expand(&json!({"$ref": "#/components/schemas/a~1b%7E0c"}), "p")
            .unwrap();
        assert_eq!(out, json!({"type": "integer"}));
    }

    #[test]
    fn a_cycle_is_refused_naming_the_chain() {
        let root = doc();
        let mut r = Resolver::new("t", "listNodes", &root);
        let err = r
            .expand(&json!({"$ref": "#/components/schemas/Ping"}), "p")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("operation listNodes: recursive schema #/components/schemas/Ping -> #/components/schemas/Pong -> #/components/schemas/Ping"),
            "{err}"
        );
        let err = r
            .expand(&json!({"$ref": "#/components/schemas/Node"}), "p")
            .unwrap_err();
        assert!(matches!(err, OpenApiError::RefCycle { .. }), "{err}");
    }

    #[test]
    fn a_remote_or_broken_ref_is_refused_with_where_it_is() {
        let root = doc();
        let mut r = Resolver::new("t", "op", &root);
        let err = r
            .expand(&json!({"$ref": "other.yaml#/Pet"}), "paths./pets.post.body")
            .unwrap_err();
        assert_eq!(
            err,
            OpenApiError::RemoteRef {
                tool: "t".into(),
                at: "paths./pets.post.body".into(),
                reference: "other.yaml#/Pet".into()
            }
        );
        let err = r
            .expand(&json!({"$ref": "#/components/schemas/Nope"}), "x")
            .unwrap_err();
        assert!(matches!(err, OpenApiError::BrokenRef { .. }));
    }

    #[test]
    fn an_exponential_expansion_is_stopped() {
        // Each level refers to the one below twice: 2^30 nodes if expanded fully.
        let mut schemas = Map::new();
        for i in 0..30 {
            schemas.insert(
                format!("L{i}"),
                json!({"properties": {"a": {"$ref": format!("#/components/schemas/L{}", i + 1)}, "b": {"$ref": format!("#/components/schemas/L{}", i + 1)}}}),
            );
        }
        schemas.insert("L30".into(), json!({"type": "string"}));
        let root = json!({"components": {"schemas": schemas}});
        let mut r = Resolver::new("t", "op", &root);
        let err = r
            .expand(&json!({"$ref": "#/components/schemas/L0"}), "p")
            .unwrap_err();
        assert!(matches!(err, OpenApiError::SchemaTooLarge { .. }), "{err}");
    }

    #[test]
    fn follow_merges_siblings_over_the_target() {
        let root = json!({"components": {"parameters": {"Limit": {"name": "limit", "in": "query", "schema": {"type": "integer"}}}}});
        let r = Resolver::new("t", "op", &root);
        let p = r
            .follow(
                &json!({"$ref": "#/components/parameters/Limit", "description": "How many."}),
                "p",
            )
            .unwrap();
        assert_eq!(p["name"], "limit");
        assert_eq!(p["description"], "How many.");
    }
}
