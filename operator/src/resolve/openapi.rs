//! OpenAPI documents held in ConfigMaps: read, converted with the same code the runtime uses
//! ([`agentry_crds::openapi`]) and checked, so a document the runtime could not use shows as
//! `ToolsResolved=False` (`ConfigMapNotFound`, `ConfigMapKeyNotFound`,
//! `OpenApiDocumentInvalid`) instead of a tool that silently offers nothing. Operations whose
//! names collide with another tool's are reported too (`ToolNameConflict`); the runtime then
//! offers the first-come name only (a written tool name before a derived one).
//!
//! A tool whose document cannot be used offers no operations: the rest of the Agent still rolls
//! out, like a tool whose target Service is missing.

use std::collections::BTreeMap;

use agentry_crds::config_builder::OpenApiOperations;
use agentry_crds::openapi::{self, Operation};
use agentry_crds::{Agent, AgentSpec, ToolKind};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use super::{Problem, ResolveError};

/// One openapi tool's ConfigMap-held document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRef<'a> {
    /// The Agent tool.
    pub tool: &'a str,
    /// The ConfigMap (in the Agent's namespace).
    pub config_map: &'a str,
    /// Its key.
    pub key: &'a str,
    /// The operationIds to offer; empty means all.
    pub operations: &'a [String],
}

/// Every ConfigMap-held document of `spec`'s openapi tools.
pub fn document_refs(spec: &AgentSpec) -> Vec<DocumentRef<'_>> {
    spec.tools
        .iter()
        .filter_map(|t| match t.kind() {
            Some(ToolKind::OpenApi(api)) => {
                let key = api.document.config_map_key_ref.as_ref()?;
                Some(DocumentRef {
                    tool: &t.name,
                    config_map: &key.name,
                    key: &key.key,
                    operations: api.operations.as_deref().unwrap_or_default(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The ConfigMaps holding `agent`'s OpenAPI documents, as (namespace, name).
pub fn document_config_maps(agent: &Agent) -> Vec<(String, String)> {
    let ns = agent.metadata.namespace.clone().unwrap_or_default();
    document_refs(&agent.spec)
        .into_iter()
        .map(|d| (ns.clone(), d.config_map.to_string()))
        .collect()
}

/// The operations of one document, from what reading its ConfigMap gave: `None` if the
/// ConfigMap does not exist, else its `data`.
pub fn operations_of(
    doc: &DocumentRef<'_>,
    namespace: &str,
    data: Option<&BTreeMap<String, String>>,
) -> Result<Vec<Operation>, Problem> {
    let where_ = format!("ConfigMap {namespace}/{}", doc.config_map);
    let Some(data) = data else {
        return Err(Problem {
            reason: "ConfigMapNotFound",
            message: format!("tool {}: openapi document: {where_} not found", doc.tool),
        });
    };
    let Some(text) = data.get(doc.key) else {
        return Err(Problem {
            reason: "ConfigMapKeyNotFound",
            message: format!(
                "tool {}: openapi document: {where_} has no key {:?}",
                doc.tool, doc.key
            ),
        });
    };
    openapi::convert(doc.tool, text, doc.operations)
        .map(|c| {
            for s in &c.skipped {
                // Not a problem (the others are offered), but the author should hear of it.
                tracing::info!(tool = doc.tool, config_map = %where_, skipped = %s, "OpenAPI operation not offered");
            }
            c.operations
        })
        .map_err(|e| Problem {
            reason: "OpenApiDocumentInvalid",
            message: format!("{e} ({where_}, key {:?})", doc.key),
        })
}

/// Operations whose tool name another tool of the Agent already has: a written name (http,
/// lambda, agent tools) or an operation of an earlier openapi tool.
pub fn name_conflicts(spec: &AgentSpec, openapi: &OpenApiOperations) -> Vec<Problem> {
    let mut taken: BTreeMap<String, String> = spec
        .tools
        .iter()
        .filter(|t| {
            matches!(
                t.kind(),
                Some(ToolKind::Http(_) | ToolKind::Lambda(_) | ToolKind::Agent(_))
            )
        })
        .map(|t| (t.name.clone(), format!("tool {}", t.name)))
        .collect();
    let mut problems = Vec::new();
    // In configuration order, as the runtime reserves them.
    for tool in &spec.tools {
        for op in openapi.get(&tool.name).into_iter().flatten() {
            let this = format!("operation {} of tool {}", op.operation_id, tool.name);
            match taken.get(&op.name) {
                Some(holder) => problems.push(Problem {
                    reason: "ToolNameConflict",
                    message: format!(
                        "tool {}: operation {} is offered as {}, a name {holder} already has; \
                         rename one of the tools, or leave the operation out of operations",
                        tool.name, op.operation_id, op.name
                    ),
                }),
                None => {
                    taken.insert(op.name.clone(), this);
                }
            }
        }
    }
    problems
}

/// Adds `ops` to the Agent's running `total`; a tool whose operations push it over
/// [`openapi::MAX_AGENT_BYTES`] offers none.
fn within_budget(total: &mut usize, tool: &str, ops: &[Operation]) -> Result<(), Problem> {
    let size = serde_json::to_string(ops).map_or(0, |t| t.len());
    if *total + size > openapi::MAX_AGENT_BYTES {
        return Err(Problem {
            reason: "OpenApiDocumentInvalid",
            message: format!(
                "tool {tool}: its operations take {size} bytes converted, more than the {} left \
                 in the runtime ConfigMap by the Agent's other OpenAPI tools; select fewer \
                 operations",
                openapi::MAX_AGENT_BYTES - *total
            ),
        });
    }
    *total += size;
    Ok(())
}

/// Reads and converts every ConfigMap-held document of `spec` in `namespace`.
pub async fn resolve(
    client: &kube::Client,
    namespace: &str,
    spec: &AgentSpec,
) -> Result<(OpenApiOperations, Vec<Problem>), ResolveError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut read: BTreeMap<&str, Option<BTreeMap<String, String>>> = BTreeMap::new();
    let mut operations = OpenApiOperations::new();
    let mut problems = Vec::new();
    let mut total = 0;
    for doc in document_refs(spec) {
        if !read.contains_key(doc.config_map) {
            let cm = api
                .get_opt(doc.config_map)
                .await
                .map_err(|source| ResolveError::Read {
                    kind: "ConfigMap",
                    namespace: namespace.into(),
                    name: doc.config_map.into(),
                    source,
                })?;
            read.insert(doc.config_map, cm.map(|c| c.data.unwrap_or_default()));
        }
        let data = read.get(doc.config_map).and_then(Option::as_ref);
        match operations_of(&doc, namespace, data) {
            Ok(ops) => match within_budget(&mut total, doc.tool, &ops) {
                Ok(()) => {
                    operations.insert(doc.tool.to_string(), ops);
                }
                Err(p) => problems.push(p),
            },
            Err(p) => problems.push(p),
        }
    }
    problems.extend(name_conflicts(spec, &operations));
    Ok((operations, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{WEATHER, agent};

    const PETSTORE: &str = include_str!("../../../tests/fixtures/openapi/petstore.yaml");

    fn yaml(extra: &str) -> String {
        WEATHER.replace(
            "      agent: {name: travel}\n",
            &format!(
                "      agent: {{name: travel}}\n    - name: pets\n      description: The pet store.\n      openapi:\n        \
                 document: {{configMapKeyRef: {{name: pet-api, key: openapi.yaml}}}}\n        \
                 url: https://pets.example.com\n{extra}"
            ),
        )
    }

    fn with_openapi(extra: &str) -> Agent {
        agent(&yaml(extra))
    }

    fn data(text: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("openapi.yaml".to_string(), text.to_string())])
    }

    #[test]
    fn a_config_map_document_is_named_for_the_watch_and_read_with_its_selection() {
        let a = with_openapi("        operations: [listPets]\n");
        assert_eq!(
            document_config_maps(&a),
            [("demo".to_string(), "pet-api".to_string())]
        );
        let refs = document_refs(&a.spec);
        let ops = operations_of(&refs[0], "demo", Some(&data(PETSTORE))).unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["pets_listPets"]);
    }

    #[test]
    fn a_missing_config_map_or_key_names_the_tool_and_the_object() {
        let a = with_openapi("");
        let refs = document_refs(&a.spec);
        let p = operations_of(&refs[0], "demo", None).unwrap_err();
        assert_eq!(p.reason, "ConfigMapNotFound");
        assert_eq!(
            p.message,
            "tool pets: openapi document: ConfigMap demo/pet-api not found"
        );
        let p = operations_of(&refs[0], "demo", Some(&BTreeMap::new())).unwrap_err();
        assert_eq!(p.reason, "ConfigMapKeyNotFound");
        assert_eq!(
            p.message,
            "tool pets: openapi document: ConfigMap demo/pet-api has no key \"openapi.yaml\""
        );
    }

    #[test]
    fn a_document_that_cannot_be_used_is_invalid_with_the_conversion_message() {
        let a = with_openapi("        operations: [listCats]\n");
        let refs = document_refs(&a.spec);
        let p = operations_of(&refs[0], "demo", Some(&data(PETSTORE))).unwrap_err();
        assert_eq!(p.reason, "OpenApiDocumentInvalid");
        assert!(
            p.message.starts_with(
                "tool pets: operations names listCats, which the document does not have"
            ),
            "{}",
            p.message
        );
        assert!(
            p.message
                .ends_with("(ConfigMap demo/pet-api, key \"openapi.yaml\")"),
            "{}",
            p.message
        );
        let p = operations_of(&refs[0], "demo", Some(&data("swagger: '2.0'\n"))).unwrap_err();
        assert!(p.message.contains("Swagger 2.0"), "{}", p.message);
    }

    #[test]
    fn an_operation_named_like_another_tool_is_a_conflict_naming_both() {
        // An http tool named pets_listPets, and the openapi tool pets offering listPets.
        let a = agent(&yaml("").replace("name: get_weather", "name: pets_listPets"));
        let refs = document_refs(&a.spec);
        let ops = operations_of(&refs[0], "demo", Some(&data(PETSTORE))).unwrap();
        let openapi = OpenApiOperations::from([("pets".to_string(), ops)]);
        let problems = name_conflicts(&a.spec, &openapi);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].reason, "ToolNameConflict");
        assert_eq!(
            problems[0].message,
            "tool pets: operation listPets is offered as pets_listPets, a name tool pets_listPets \
             already has; rename one of the tools, or leave the operation out of operations"
        );
        assert!(name_conflicts(&with_openapi("").spec, &openapi).is_empty());
    }

    #[test]
    fn the_example_agent_offers_its_selected_operations_from_its_config_map() {
        use serde::Deserialize;
        let text = include_str!("../../../examples/openapi-tools.yaml");
        let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(text)
            .map(serde_yaml::Value::deserialize)
            .collect::<Result<_, _>>()
            .unwrap();
        let cm: ConfigMap = serde_yaml::from_value(docs[0].clone()).unwrap();
        let a: Agent = serde_yaml::from_value(docs[1].clone()).unwrap();
        let refs = document_refs(&a.spec);
        let ops = operations_of(&refs[0], "demo", cm.data.as_ref()).unwrap();
        let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["pets_get_pets", "pets_CreatePet", "pets_get_pets_by_petId"]
        );
    }

    #[test]
    fn operations_over_the_agents_budget_are_refused_for_the_tool_that_exceeds_it() {
        let a = with_openapi("");
        let refs = document_refs(&a.spec);
        let ops = operations_of(&refs[0], "demo", Some(&data(PETSTORE))).unwrap();
        let size = serde_json::to_string(&ops).unwrap().len();
        let mut total = openapi::MAX_AGENT_BYTES - size;
        assert_eq!(within_budget(&mut total, "pets", &ops), Ok(()));
        assert_eq!(total, openapi::MAX_AGENT_BYTES);
        let p = within_budget(&mut total, "more", &ops).unwrap_err();
        assert_eq!(p.reason, "OpenApiDocumentInvalid");
        assert!(
            p.message.starts_with(&format!(
                "tool more: its operations take {size} bytes converted, more than the 0 left"
            )),
            "{}",
            p.message
        );
        assert_eq!(
            total,
            openapi::MAX_AGENT_BYTES,
            "the refused tool adds nothing"
        );
    }
}
