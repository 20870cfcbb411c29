//! A real Kubernetes control plane for the cluster suites.
//!
//! By default each suite gets the local control plane ([`ControlPlane`]: etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok built from the Go modules pinned in
//! `tests/k8s/go.mod`), shared by the tests of one test binary and stopped when the last of them
//! ends. `AGENTRY_TEST_KUBECONFIG` points the suites at another cluster instead (kind, k3d,
//! EKS); the fault tests that stop the API server always start a private control plane.
//!
//! There is no skip: a suite that cannot get a cluster fails, saying why.

pub mod control_plane;
pub mod kubeconfig;
pub mod pki;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

pub use control_plane::ControlPlane;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// A cluster the suites can use.
pub struct Cluster {
    kubeconfig: PathBuf,
    local: Option<Mutex<ControlPlane>>,
}

impl Cluster {
    /// The cluster of this test binary: `AGENTRY_TEST_KUBECONFIG`'s, else the local control
    /// plane, started on first use and shared while any test holds it.
    ///
    /// # Panics
    /// When no cluster can be had (the message says why).
    pub fn shared() -> Arc<Cluster> {
        static SHARED: Mutex<Weak<Cluster>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = shared.upgrade() {
            return c;
        }
        let c = Arc::new(match std::env::var_os("AGENTRY_TEST_KUBECONFIG") {
            Some(path) => Cluster {
                kubeconfig: PathBuf::from(path),
                local: None,
            },
            None => Self::private(),
        });
        *shared = Arc::downgrade(&c);
        c
    }

    /// A local control plane of the caller's own, stopped when dropped.
    ///
    /// # Panics
    /// When it cannot be built or started.
    pub fn private() -> Cluster {
        let cp = ControlPlane::start();
        Cluster {
            kubeconfig: cp.admin_kubeconfig().to_path_buf(),
            local: Some(Mutex::new(cp)),
        }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client as the admin. Build one per test: a client belongs to the Tokio runtime that
    /// made it.
    ///
    /// # Panics
    /// When the kubeconfig cannot be read.
    pub async fn client(&self) -> Client {
        client_for(&self.kubeconfig).await
    }

    /// `kubectl` as the admin: whether it succeeded, and its stdout plus stderr.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        kubectl(&self.kubeconfig, args, stdin)
    }

    /// Like [`Cluster::kubectl`], failing the test when kubectl fails.
    ///
    /// # Panics
    /// When kubectl exits non-zero.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {} failed: {out}", args.join(" "));
        out
    }

    /// The local control plane, when this is one (for fault tests).
    pub fn control_plane(&self) -> Option<std::sync::MutexGuard<'_, ControlPlane>> {
        self.local
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The API server URL and CA of the admin kubeconfig, for kubeconfigs of other users.
    ///
    /// # Panics
    /// When the kubeconfig has no cluster.
    pub fn server_and_ca(&self) -> (String, kubeconfig::Ca) {
        let kc = Kubeconfig::read_from(&self.kubeconfig).expect("a readable kubeconfig");
        let cluster = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .expect("a cluster in the kubeconfig");
        let server = cluster.server.expect("a server URL");
        let ca = match (
            cluster.certificate_authority,
            cluster.certificate_authority_data,
        ) {
            (Some(path), _) => kubeconfig::Ca::File(PathBuf::from(path)),
            (None, Some(data)) => kubeconfig::Ca::Data(data),
            (None, None) => panic!("the kubeconfig names no certificate authority"),
        };
        (server, ca)
    }

    /// Writes a kubeconfig that authenticates as ServiceAccount `namespace/name`, with a token
    /// from the TokenRequest API (valid for an hour), and returns its path.
    ///
    /// # Panics
    /// When the token cannot be had.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let token = self.kubectl_ok(
            &["create", "token", name, "-n", namespace, "--duration=1h"],
            None,
        );
        let (server, ca) = self.server_and_ca();
        let path = std::env::temp_dir().join(format!(
            "{}.kubeconfig",
            crate::cluster::unique_name(&format!("sa-{name}"))
        ));
        kubeconfig::write(
            &path,
            &server,
            ca,
            kubeconfig::Credentials::Token(token.trim()),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        path
    }
}

/// A kube client for the kubeconfig at `path`.
///
/// # Panics
/// When the kubeconfig cannot be read or a client built.
pub async fn client_for(path: &Path) -> Client {
    let kc = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", path.display()));
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("kubeconfig {}: {e}", path.display()));
    Client::try_from(config).expect("a Kubernetes client")
}

/// `kubectl --kubeconfig <path> <args>`: whether it succeeded, and its stdout plus stderr.
///
/// # Panics
/// When kubectl cannot be started.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().expect("kubectl output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // kubectl v1.32 against a newer server warns about the skew on every call: noise here.
    let stderr: String = stderr
        .lines()
        .filter(|l| !l.contains("version difference"))
        .map(|l| format!("{l}\n"))
        .collect();
    (
        out.status.success(),
        format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)),
    )
}
