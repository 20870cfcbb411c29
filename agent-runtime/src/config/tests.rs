//! Tests of the parent module.

use super::*;

fn write(content: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(content)
}

/// A file removed on drop (no tempfile dependency for two tests).
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn new(content: &str) -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir()
                .join(format!("agentry-runtime-test-{}-{n}", std::process::id()));
            std::fs::write(&p, content).unwrap();
            Self(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

const AGENT: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather}
spec:
  model: {id: anthropic.claude-3-haiku-20240307-v1:0}
  systemPrompt: You answer weather questions.
  tools:
    - name: get_weather
      description: Weather.
      http: {service: {name: weather-api, path: /v1/weather}}
    - name: search
      description: Search.
      http: {url: "https://api.example.com/search"}
"#;

#[test]
fn in_cluster_tools_are_refused_locally_without_a_resolve() {
    let f = write(AGENT);
    let err = from_agent_file(&f.0, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("get_weather (http://weather-api.default.svc.cluster.local:80/v1/weather)"),
        "{err}"
    );
    assert!(err.contains("--resolve TOOL=URL"), "{err}");
}

#[test]
fn resolves_replace_in_cluster_urls_and_url_tools_work_as_they_are() {
    let f = write(AGENT);
    let r = parse_resolves(&["get_weather=http://localhost:9000/w".into()]).unwrap();
    let c = from_agent_file(&f.0, &r).unwrap();
    let urls: Vec<String> = c
        .tools
        .iter()
        .map(|t| match &t.kind {
            ToolKindConfig::Http(h) => h.url.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        urls,
        ["http://localhost:9000/w", "https://api.example.com/search"]
    );
}

#[test]
fn bad_resolves_and_bad_manifests_name_the_problem() {
    assert!(
        parse_resolves(&["nourl".into()])
            .unwrap_err()
            .to_string()
            .contains("expected TOOL=URL")
    );
    let f = write(AGENT);
    let err = from_agent_file(
        &f.0,
        &parse_resolves(&["get_weather=http://x".into(), "nope=http://y".into()]).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no tool named \"nope\""));
    let bad = write(
        "apiVersion: agentry.dev/v1alpha1\nkind: Agent\nmetadata: {name: x}\nspec: {model: {}}\n",
    );
    let err = from_agent_file(&bad.0, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("spec.model.id: Required value"), "{err}");
}

/// The API server's messages refusing `manifest`.
fn refusal(manifest: &str) -> Vec<String> {
    let f = write(manifest);
    match from_agent_file(&f.0, &BTreeMap::new()) {
        Err(LoadError::Refused { errors, .. }) => errors,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// A valid Agent with one url tool, for the tests to break.
const URL_AGENT: &str = r#"
apiVersion: agentry.dev/v1alpha1
kind: Agent
metadata: {name: weather}
spec:
  model:
    id: anthropic.claude-3-haiku-20240307-v1:0
  systemPrompt: You answer weather questions.
  tools:
    - name: search
      description: Search.
      http:
        url: "https://api.example.com/search"
"#;

#[test]
fn a_misspelt_field_under_spec_model_is_refused_naming_its_path() {
    let manifest = URL_AGENT.replace("    id:", "    maxTokkens: 5\n    id:");
    assert_eq!(
        refusal(&manifest),
        [".spec.model.maxTokkens: field not declared in schema"]
    );
}

#[test]
fn a_misspelt_system_prompt_is_refused_naming_its_path() {
    let manifest = URL_AGENT.replace("  systemPrompt:", "  systemPromt: x\n  systemPrompt:");
    assert_eq!(
        refusal(&manifest),
        [".spec.systemPromt: field not declared in schema"]
    );
}

#[test]
fn an_unknown_field_inside_a_tool_is_refused_rather_than_dropped() {
    // Dropped, a tool meant to be signed would be called unsigned.
    let manifest = URL_AGENT.replace("        url:", "        auth: {sigv4: true}\n        url:");
    assert_eq!(
        refusal(&manifest),
        [".spec.tools[0].http.auth.sigv4: field not declared in schema"]
    );
}

#[test]
fn a_bound_of_the_schema_is_refused_with_the_api_servers_message() {
    let manifest = format!("{URL_AGENT}  limits: {{maxIterations: 0}}\n");
    assert_eq!(
        refusal(&manifest),
        [
            "spec.limits.maxIterations: Invalid value: 0: spec.limits.maxIterations in body should be greater than or equal to 1"
        ]
    );
}

#[test]
fn a_cel_rule_of_the_schema_is_refused_with_the_api_servers_message() {
    let manifest = URL_AGENT.replace(
        "        url:",
        "        service: {name: search}\n        url:",
    );
    assert_eq!(
        refusal(&manifest),
        ["spec.tools[0].http: Invalid value: an http tool sets exactly one of url or service"]
    );
}

#[test]
fn every_message_is_given_on_its_own_line_prefixed_by_the_file() {
    let manifest = URL_AGENT
        .replace("  systemPrompt:", "  systemPromt: x\n  systemPrompt:")
        .replace("    id:", "    maxTokkens: 5\n    id:");
    let f = write(&manifest);
    let err = from_agent_file(&f.0, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    let p = f.0.display();
    assert_eq!(
        err,
        format!(
            "{p}: the API server would refuse this Agent, so the local run does too:\n\
                 {p}: .spec.model.maxTokkens: field not declared in schema\n\
                 {p}: .spec.systemPromt: field not declared in schema"
        )
    );
}

#[test]
fn a_manifest_of_another_kind_or_version_is_refused_saying_what_is_expected() {
    for (manifest, found) in [
        (
            URL_AGENT.replace("kind: Agent", "kind: Agnet"),
            r#"found apiVersion "agentry.dev/v1alpha1" and kind "Agnet""#,
        ),
        (
            URL_AGENT.replace("v1alpha1", "v1"),
            r#"found apiVersion "agentry.dev/v1" and kind "Agent""#,
        ),
        (
            "model: {id: x}\n".to_string(),
            "found apiVersion missing and kind missing",
        ),
    ] {
        let f = write(&manifest);
        let err = from_agent_file(&f.0, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"expected apiVersion "agentry.dev/v1alpha1" and kind "Agent""#)
                && err.contains(found),
            "{err}"
        );
    }
}

#[test]
fn valid_manifests_still_load_with_the_servers_defaults() {
    let f = write(&URL_AGENT.replace("    id:", "    maxTokens: 512.0\n    id:"));
    let c = from_agent_file(&f.0, &BTreeMap::new()).unwrap();
    assert_eq!(c.tools.len(), 1);
    assert_eq!(
        c.model.max_tokens, 512,
        "2.0-style integers are integers, as on the server"
    );
    let minimal = repo_file("examples/minimal.yaml");
    let c = from_agent_file(&minimal, &BTreeMap::new()).unwrap();
    assert_eq!(c.agent.name, "hello");
}

fn repo_file(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn config_file_errors_name_the_field() {
    let f = write(
        r#"{"apiVersion": "agentry.dev/runtime-config/v1", "agent": {"name": "a", "namespace": "b"}}"#,
    );
    let err = crate::error_chain(&from_config_file(&f.0).unwrap_err());
    assert!(err.contains("missing field `model`"), "{err}");
}
