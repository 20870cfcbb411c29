//! Kubeconfig files for the control plane's users: the admin and components (client
//! certificates) and ServiceAccounts (tokens from the TokenRequest API).

use std::path::{Path, PathBuf};

use super::pki::ClientCert;

/// How a kubeconfig's user authenticates.
pub enum Credentials<'a> {
    /// A client certificate and its key.
    Cert(&'a ClientCert),
    /// A bearer token.
    Token(&'a str),
}

/// The cluster's certificate authority.
pub enum Ca {
    /// A PEM file.
    File(PathBuf),
    /// Base64 PEM, as in `certificate-authority-data`.
    Data(String),
}

/// Writes a kubeconfig with one cluster, user and context to `path`.
pub fn write(
    path: &Path,
    server: &str,
    ca: Ca,
    credentials: Credentials<'_>,
) -> Result<(), String> {
    let mut cluster = serde_json::json!({ "server": server });
    match ca {
        Ca::File(f) => cluster["certificate-authority"] = serde_json::json!(f),
        Ca::Data(d) => cluster["certificate-authority-data"] = d.into(),
    }
    let user = match credentials {
        Credentials::Cert(c) => serde_json::json!({
            "client-certificate": c.cert, "client-key": c.key,
        }),
        Credentials::Token(t) => serde_json::json!({ "token": t }),
    };
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "agentry-test", "cluster": cluster}],
        "users": [{"name": "agentry-test", "user": user}],
        "contexts": [{"name": "agentry-test", "context": {"cluster": "agentry-test", "user": "agentry-test"}}],
        "current-context": "agentry-test",
    });
    let text = serde_yaml::to_string(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
