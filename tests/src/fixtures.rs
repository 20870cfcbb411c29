//! The repository's example manifests and invalid-Agent cases, as JSON values.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every non-empty document of a multi-document YAML file.
pub fn yaml_documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(doc).map_err(|e| format!("{}: {e}", path.display()))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Every document of every `examples/*.yaml`, with its file name, in file order.
pub fn example_documents() -> Result<Vec<(String, Value)>, String> {
    let dir = repo_root().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.extend(
            yaml_documents(&file)?
                .into_iter()
                .map(|d| (name.clone(), d)),
        );
    }
    Ok(out)
}

/// An Agent the API server must refuse, and what its error message must contain.
#[derive(Deserialize, Debug, Clone)]
pub struct InvalidCase {
    /// What is wrong with it, in words.
    pub case: String,
    /// Substrings the refusal must contain: the field path and what is allowed.
    pub expect: Vec<String>,
    /// The Agent manifest.
    pub agent: Value,
}

/// The cases in `tests/fixtures/invalid-agents.yaml`.
pub fn invalid_agent_cases() -> Result<Vec<InvalidCase>, String> {
    yaml_documents(&repo_root().join("tests/fixtures/invalid-agents.yaml"))?
        .into_iter()
        .map(|d| serde_json::from_value(d).map_err(|e| format!("invalid-agents.yaml: {e}")))
        .collect()
}
