//! The conversion of the fixture documents the runtime suites use, and of small inline ones.

use serde_json::json;

use super::*;

const PETSTORE: &str = include_str!("../../../tests/fixtures/openapi/petstore.yaml");
const ORDERS: &str = include_str!("../../../tests/fixtures/openapi/orders-3.1.json");
const APIGATEWAY: &str = include_str!("../../../tests/fixtures/openapi/apigateway-export.json");

fn op<'a>(c: &'a Conversion, id: &str) -> &'a Operation {
    c.operations
        .iter()
        .find(|o| o.operation_id == id)
        .unwrap_or_else(|| panic!("no {id} in {:?}", c.operations))
}

fn ids(c: &Conversion) -> Vec<&str> {
    c.operations
        .iter()
        .map(|o| o.operation_id.as_str())
        .collect()
}

#[test]
fn petstore_offers_every_json_operation_in_path_order_and_skips_the_binary_upload() {
    let c = convert("pets", PETSTORE, &[]).unwrap();
    assert_eq!(
        ids(&c),
        [
            "listPets",
            "createPet",
            "showPetById",
            "deletePet",
            "updatePet"
        ]
    );
    assert_eq!(c.skipped.len(), 1);
    assert_eq!(c.skipped[0].operation_id, "uploadPhoto");
    assert_eq!(c.skipped[0].at, "PUT /pets/{petId}/photo");
    assert!(
        c.skipped[0].reason.contains("image/png, not JSON"),
        "{:?}",
        c.skipped
    );
}

#[test]
fn parameters_and_their_refs_become_input_properties_with_what_a_call_needs() {
    let c = convert("pets", PETSTORE, &[]).unwrap();
    let list = op(&c, "listPets");
    assert_eq!(list.name, "pets_listPets");
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.description,
        "List pets\n\nPets in the store, newest first."
    );
    assert_eq!(
        list.input_schema,
        json!({"type": "object", "properties": {
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many pets to return (at most 100)."},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "Only pets with one of these tags."},
            "status": {"type": "string", "enum": ["available", "pending", "sold"]},
            "X-Request-Id": {"type": "string"}
        }})
    );
    let wire: Vec<(&str, ParameterLocation, bool)> = list
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.location, p.explode))
        .collect();
    assert_eq!(
        wire,
        [
            ("limit", ParameterLocation::Query, true),
            ("tags", ParameterLocation::Query, true),
            ("status", ParameterLocation::Query, true),
            ("X-Request-Id", ParameterLocation::Header, false),
        ]
    );
    assert_eq!(list.body, None);
}

#[test]
fn a_path_level_parameter_applies_and_a_spec_ignored_header_is_left_out() {
    let c = convert("pets", PETSTORE, &[]).unwrap();
    let delete = op(&c, "deletePet");
    assert_eq!(
        delete.description, "DELETE /pets/{petId}",
        "no summary: method and path"
    );
    let names: Vec<&str> = delete.parameters.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["petId", "X-Reason"], "Authorization is ignored");
    assert_eq!(
        delete.input_schema["required"],
        json!(["petId", "X-Reason"])
    );
}

#[test]
fn a_json_body_through_a_request_body_ref_is_the_body_property() {
    let c = convert("pets", PETSTORE, &[]).unwrap();
    let create = op(&c, "createPet");
    assert_eq!(
        create.body,
        Some(RequestBody {
            property: "body".into(),
            required: true,
            content_type: "application/json".into()
        })
    );
    assert_eq!(create.input_schema["required"], json!(["body"]));
    assert_eq!(
        create.input_schema["properties"]["body"]["properties"]["owner"]["properties"]["email"],
        json!({"type": "string", "format": "email"})
    );
    let patch = op(&c, "updatePet");
    assert_eq!(
        patch.body.as_ref().map(|b| b.content_type.as_str()),
        Some("application/merge-patch+json")
    );
}

#[test]
fn a_selection_offers_only_those_and_refuses_a_selected_operation_that_cannot_be_sent() {
    let c = convert("pets", PETSTORE, &["showPetById".into(), "listPets".into()]).unwrap();
    assert_eq!(ids(&c), ["listPets", "showPetById"], "document order");
    let err = convert("pets", PETSTORE, &["uploadPhoto".into()]).unwrap_err();
    assert!(matches!(err, OpenApiError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("tool pets: operation uploadPhoto (PUT /pets/{petId}/photo) cannot be offered: its request body is image/png"),
        "{err}"
    );
}

#[test]
fn a_selected_operation_id_the_document_lacks_is_refused_naming_it() {
    let err = convert("pets", PETSTORE, &["listCats".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("tool pets: operations names listCats, which the document does not have"),
        "{err}"
    );
    assert!(err.contains("listPets, createPet"), "{err}");
}

#[test]
fn openapi_3_1_json_with_escaped_refs_type_arrays_and_a_clashing_parameter() {
    let c = convert("shop", ORDERS, &[]).unwrap();
    assert_eq!(ids(&c), ["orders.create", "orders.get"]);
    let create = op(&c, "orders.create");
    assert!(naming::is_valid(&create.name));
    assert_eq!(create.name, naming::derive("shop", "orders.create"));
    assert_eq!(
        create.body.as_ref().unwrap().content_type,
        "application/json; charset=utf-8"
    );
    let body = &create.input_schema["properties"]["body"];
    assert_eq!(
        body["description"], "The order to place.",
        "a $ref's sibling is kept"
    );
    assert_eq!(
        body["properties"]["note"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(
        body["properties"]["lines"]["items"]["required"],
        json!(["sku", "quantity"])
    );
    let get = op(&c, "orders.get");
    let props: Vec<(&str, &str)> = get
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.property.as_str()))
        .collect();
    assert_eq!(
        props,
        [("id", "id"), ("fields", "fields"), ("id", "query_id")]
    );
    assert!(!get.parameters[1].explode, "explode: false is kept");
}

#[test]
fn an_api_gateway_export_works_as_it_comes_with_derived_operation_ids() {
    let c = convert("petstore", APIGATEWAY, &[]).unwrap();
    assert_eq!(ids(&c), ["get_pets", "CreatePet", "get_pets_by_petId"]);
    let get = op(&c, "get_pets_by_petId");
    assert_eq!(get.name, "petstore_get_pets_by_petId");
    assert_eq!(get.path, "/pets/{petId}");
    assert_eq!(get.parameters[0].location, ParameterLocation::Path);
    let create = op(&c, "CreatePet");
    assert_eq!(
        create.input_schema["properties"]["body"]["properties"]["type"]["enum"],
        json!(["dog", "cat", "fish", "bird", "gecko"])
    );
    let text = serde_json::to_string(&c.operations).unwrap();
    assert!(
        !text.contains("x-amazon-apigateway"),
        "extensions are ignored"
    );
    let skipped: Vec<&str> = c.skipped.iter().map(|s| s.at.as_str()).collect();
    assert_eq!(skipped, ["ANY /{proxy+}", "OPTIONS /pets"]);
    assert!(c.skipped[1].reason.contains("CORS preflight"));
    // Named, the preflight is offered like any operation.
    let c = convert("petstore", APIGATEWAY, &["options_pets".into()]).unwrap();
    assert_eq!(ids(&c), ["options_pets"]);
}

#[test]
fn derived_operation_ids_follow_method_and_path() {
    assert_eq!(
        derived_operation_id("get", "/pets/{petId}"),
        "get_pets_by_petId"
    );
    assert_eq!(derived_operation_id("post", "/"), "post");
    assert_eq!(
        derived_operation_id("put", "/a.b/{proxy+}"),
        "put_a_b_by_proxy"
    );
    assert_eq!(
        derived_operation_id("get", "/v1/{id}.json"),
        "get_v1__id__json"
    );
}

fn doc(paths: &str) -> String {
    format!("openapi: 3.0.0\ninfo: {{title: t, version: '1'}}\npaths:\n{paths}")
}

#[test]
fn two_operations_with_one_tool_name_are_refused_naming_both() {
    // `x.y` is hashed into `t_x_y_<hash>`; an operationId spelling out that name clashes.
    let hashed = naming::derive("t", "x.y");
    let spelled = hashed.strip_prefix("t_").unwrap();
    let text = doc(&format!(
        "  /a:\n    get: {{operationId: 'x.y', responses: {{}}}}\n  /b:\n    get: {{operationId: {spelled}, responses: {{}}}}\n"
    ));
    let err = convert("t", &text, &[]).unwrap_err();
    assert_eq!(
        err,
        OpenApiError::DuplicateName {
            tool: "t".into(),
            name: hashed.clone(),
            first: "x.y (GET /a)".into(),
            second: format!("{spelled} (GET /b)"),
        }
    );
    // Names cut to 64 keep a hash of the whole name: still apart.
    let long = "a".repeat(80);
    let text = doc(&format!(
        "  /a:\n    get: {{operationId: {long}x, responses: {{}}}}\n  /b:\n    get: {{operationId: {long}y, responses: {{}}}}\n"
    ));
    assert_eq!(convert("t", &text, &[]).unwrap().operations.len(), 2);
}

#[test]
fn a_derived_operation_id_clashing_with_a_given_one_is_refused_naming_both_paths() {
    let text = doc(
        "  /a:\n    get: {operationId: get_b, responses: {}}\n  /b:\n    get: {responses: {}}\n",
    );
    let err = convert("t", &text, &[]).unwrap_err();
    assert!(
        matches!(err, OpenApiError::DuplicateOperationId { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("GET /a and GET /b"), "{err}");
}

#[test]
fn a_recursive_schema_is_refused_naming_the_operation_and_the_chain() {
    let text = format!(
        "{}components:\n  schemas:\n    Node: {{type: object, properties: {{children: {{type: array, items: {{$ref: '#/components/schemas/Node'}}}}}}}}\n",
        doc(
            "  /tree:\n    post:\n      operationId: plant\n      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/Node'}}}}\n      responses: {}\n"
        )
    );
    let err = convert("garden", &text, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "tool garden: operation plant: recursive schema #/components/schemas/Node -> #/components/schemas/Node; \
         tool input schemas must be finite: replace the recursion with a plain object"
    );
}

#[test]
fn more_than_128_operations_without_a_selection_ask_for_one() {
    let paths: String = (0..129)
        .map(|i| format!("  /p{i}:\n    get: {{responses: {{}}}}\n"))
        .collect();
    let err = convert("big", &doc(&paths), &[]).unwrap_err().to_string();
    assert!(
        err.contains("129 operations") && err.contains("list the ones to offer in operations"),
        "{err}"
    );
    let c = convert("big", &doc(&paths), &["get_p7".into()]).unwrap();
    assert_eq!(ids(&c), ["get_p7"]);
}

#[test]
fn a_document_with_nothing_to_offer_is_refused_with_the_reasons() {
    let text = doc(
        "  /c:\n    get:\n      parameters: [{name: session, in: cookie, schema: {type: string}}]\n      responses: {}\n",
    );
    let err = convert("t", &text, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "tool t: the document has no operation that can be offered: get_c (GET /c): parameter session is a cookie, which tools do not send"
    );
}

#[test]
fn unsupported_styles_and_undescribed_placeholders_skip_the_operation() {
    let text = doc(
        "  /s:\n    get:\n      parameters: [{name: f, in: query, style: deepObject, schema: {type: object}}]\n      responses: {}\n  /u/{id}:\n    get: {responses: {}}\n  /ok:\n    get: {responses: {}}\n",
    );
    let c = convert("t", &text, &[]).unwrap();
    assert_eq!(ids(&c), ["get_ok"]);
    let reasons: Vec<&str> = c.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "parameter f uses style deepObject; query parameters are sent in style form only",
            "the path has {id}, but no path parameter describes it"
        ]
    );
}

#[test]
fn a_parameter_named_body_moves_the_body_to_request_body() {
    let text = doc(
        "  /b:\n    post:\n      parameters: [{name: body, in: query, schema: {type: string}}]\n      requestBody: {content: {application/json: {schema: {type: object}}}}\n      responses: {}\n",
    );
    let c = convert("t", &text, &[]).unwrap();
    assert_eq!(
        c.operations[0].body.as_ref().unwrap().property,
        "request_body"
    );
    assert_eq!(c.operations[0].parameters[0].property, "body");
}

#[test]
fn a_long_description_is_capped() {
    let text = doc(&format!(
        "  /d:\n    get: {{summary: '{}', responses: {{}}}}\n",
        "w".repeat(3000)
    ));
    let c = convert("t", &text, &[]).unwrap();
    assert_eq!(
        c.operations[0].description.chars().count(),
        MAX_DESCRIPTION_CHARS
    );
    assert!(c.operations[0].description.ends_with('…'));
}

#[test]
fn operations_round_trip_through_the_runtime_config_json() {
    let c = convert("pets", PETSTORE, &[]).unwrap();
    let text = serde_json::to_string(&c.operations).unwrap();
    let back: Vec<Operation> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, c.operations);
}

#[test]
fn property_names_are_made_valid_for_bedrock_and_the_wire_name_kept() {
    let text = doc(
        "  /s:\n    get:\n      parameters:\n        - {name: 'filter[status]', in: query, schema: {type: string}}\n        - {name: 'filter]status[', in: query, schema: {type: string}}\n        - {name: '$top', in: query, schema: {type: integer}}\n      responses: {}\n",
    );
    let c = convert("t", &text, &[]).unwrap();
    let wire: Vec<(&str, &str)> = c.operations[0]
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.property.as_str()))
        .collect();
    assert_eq!(
        wire,
        [
            ("filter[status]", "filter_status_"),
            ("filter]status[", "query_filter_status_"),
            ("$top", "_top")
        ]
    );
    let props = c.operations[0].input_schema["properties"]
        .as_object()
        .unwrap();
    assert!(props.keys().all(|k| {
        k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    }));
}

#[test]
fn a_path_item_given_by_ref_is_skipped_and_the_others_offered() {
    let text = doc("  /r: {$ref: '#/components/pathItems/R'}\n  /ok:\n    get: {responses: {}}\n");
    let c = convert("t", &text, &[]).unwrap();
    assert_eq!(ids(&c), ["get_ok"]);
    assert_eq!(c.skipped[0].at, "/r");
}
