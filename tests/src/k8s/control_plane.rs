//! The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
//! kwok as processes on loopback, in a throwaway folder. Everything it starts is killed when it
//! is dropped (a failing test unwinds through that too); the API server can be stopped and
//! started again in place, for fault tests.

use crate::process::free_port;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::kubeconfig::{self, Ca, Credentials};
use super::pki::Pki;
use crate::process::Process;

/// Controllers of kube-controller-manager the suites rely on: garbage collection, the workload
/// controllers, namespaces, ServiceAccounts and their tokens, EndpointSlices, PDBs and HPAs,
/// and node lifecycle (it lifts the not-ready taint once kwok reports the node Ready).
const CONTROLLERS: &str = "garbage-collector-controller,deployment-controller,\
replicaset-controller,namespace-controller,serviceaccount-controller,\
serviceaccount-token-controller,root-ca-certificate-publisher-controller,\
endpointslice-controller,disruption-controller,horizontal-pod-autoscaler-controller,\
clusterrole-aggregation-controller,pod-garbage-collector-controller,node-lifecycle-controller";

/// Name of the simulated node kwok keeps Ready.
pub const NODE: &str = "kwok-node-0";

/// Where the binaries are: `AGENTRY_K8S_BIN`, else what `tests/k8s/build` built (it builds them
/// on first use, printing progress, and caches them outside the work tree).
///
/// # Panics
/// When they cannot be built: the message says what is missing.
pub fn binaries() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("AGENTRY_K8S_BIN") {
            return PathBuf::from(dir);
        }
        let script = crate::fixtures::repo_root().join("tests/k8s/build");
        let out = Command::new(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "building the local control plane failed (tests/k8s/build; it needs the Go \
             toolchain and the Go module proxy). Its output is above."
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
    .clone()
}

/// A running local control plane.
pub struct ControlPlane {
    dir: PathBuf,
    pki: Pki,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    admin_kubeconfig: PathBuf,
    apiserver_args: Vec<String>,
    // Declared in stop order: dropped first to last.
    kwok: Option<Process>,
    scheduler: Option<Process>,
    controller_manager: Option<Process>,
    apiserver: Option<Process>,
    etcd: Option<Process>,
}

impl ControlPlane {
    /// Starts every component and waits until the API server is ready, the node is Ready and
    /// the `default` ServiceAccount exists (so the controllers run).
    ///
    /// # Panics
    /// When a component does not start or become ready; the message holds its log.
    pub fn start() -> Self {
        let started = Instant::now();
        let bin = binaries();
        let dir = std::env::temp_dir().join(crate::cluster::unique_name("agentry-k8s"));
        let pki = Pki::create(&dir.join("pki")).unwrap_or_else(|e| panic!("{e}"));
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let server = format!("https://127.0.0.1:{api_port}");

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data = dir.join("etcd");
        let etcd = Process::start(
            "etcd",
            &bin.join("etcd"),
            &[
                "--data-dir",
                &data.to_string_lossy(),
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("default={peer_url}"),
                // A test cluster: durability across power loss buys nothing and costs seconds.
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            &[],
        );

        let p = |f: &str| pki.path(f).to_string_lossy().into_owned();
        let apiserver_args: Vec<String> = [
            "--etcd-servers",
            &etcd_url,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--secure-port",
            &api_port.to_string(),
            "--tls-cert-file",
            &p("apiserver.crt"),
            "--tls-private-key-file",
            &p("apiserver.key"),
            "--client-ca-file",
            &p("ca.crt"),
            "--authorization-mode",
            "Node,RBAC",
            "--anonymous-auth=false",
            "--service-account-issuer",
            "https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file",
            &p("sa.pub"),
            "--service-account-signing-key-file",
            &p("sa.key"),
            "--service-cluster-ip-range",
            "10.96.0.0/16",
            // With a loopback advertise address the default reconciler logs an error every
            // few seconds (Endpoints may not be in the loopback range).
            "--endpoint-reconciler-type",
            "none",
            "--profiling=false",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();

        let admin = pki
            .client("admin", "agentry-admin", &["system:masters"])
            .unwrap_or_else(|e| panic!("{e}"));
        let admin_kubeconfig = dir.join("admin.kubeconfig");
        kubeconfig::write(
            &admin_kubeconfig,
            &server,
            Ca::File(pki.path("ca.crt")),
            Credentials::Cert(&admin),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let mut cp = Self {
            dir,
            pki: pki.clone(),
            server,
            admin_kubeconfig,
            apiserver_args,
            kwok: None,
            scheduler: None,
            controller_manager: None,
            apiserver: None,
            etcd: Some(etcd),
        };
        cp.start_apiserver();

        let kcm = cp.component_kubeconfig("controller-manager", "system:kube-controller-manager");
        cp.controller_manager = Some(Process::start(
            "kube-controller-manager",
            &bin.join("kube-controller-manager"),
            &[
                "--kubeconfig",
                &kcm,
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &free_port().to_string(),
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                "--controllers",
                CONTROLLERS,
                "--root-ca-file",
                &p("ca.crt"),
                "--service-account-private-key-file",
                &p("sa.key"),
                "--cluster-signing-cert-file",
                &p("ca.crt"),
                "--cluster-signing-key-file",
                &p("ca.key"),
                "--concurrent-deployment-syncs",
                "10",
                "--concurrent-replicaset-syncs",
                "10",
            ],
            &[],
        ));
        let sched = cp.component_kubeconfig("scheduler", "system:kube-scheduler");
        cp.scheduler = Some(Process::start(
            "kube-scheduler",
            &bin.join("kube-scheduler"),
            &[
                "--kubeconfig",
                &sched,
                "--bind-address",
                "127.0.0.1",
                "--secure-port",
                &free_port().to_string(),
                "--leader-elect=false",
            ],
            &[],
        ));
        let admin_path = cp.admin_kubeconfig.to_string_lossy().into_owned();
        let mut stages: Vec<String> = std::fs::read_dir(bin.join("kwok-stages"))
            .expect("kwok's stages next to its binary (tests/k8s/build puts them there)")
            .flatten()
            .map(|e| format!("--config={}", e.path().display()))
            .collect();
        stages.sort();
        let mut kwok_args: Vec<&str> = stages.iter().map(String::as_str).collect();
        cp.kwok = Some(Process::start(
            "kwok",
            &bin.join("kwok"),
            &[
                "--kubeconfig",
                &admin_path,
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.0.0.1/24",
                "--node-ip=10.0.0.1",
                // Heartbeats through a node Lease, as a kubelet's; without it the node lifecycle
                // controller marks the node NotReady after its grace period.
                "--node-lease-duration-seconds=40",
                "--server-address",
                &format!("127.0.0.1:{}", free_port()),
            ]
            .iter()
            .copied()
            .chain(kwok_args.drain(..))
            .collect::<Vec<_>>(),
            &[],
        ));
        cp.kubectl_ok(&["apply", "-f", "-"], Some(&node_manifest()));
        // Ready, and schedulable: the node lifecycle controller lifts the not-ready taint.
        cp.wait(
            "the simulated node to be Ready",
            Duration::from_secs(60),
            |cp| {
                let jsonpath =
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}/{.spec.taints}";
                cp.kubectl(&["get", "node", NODE, "-o", jsonpath], None)
                    .1
                    .trim()
                    == "True/"
            },
        );
        cp.wait(
            "the default ServiceAccount",
            Duration::from_secs(60),
            |cp| {
                cp.kubectl(&["get", "serviceaccount", "default", "-n", "default"], None)
                    .0
            },
        );
        let _ = writeln_stderr(&format!(
            "local control plane ready at {} in {:.1} s ({})",
            cp.server,
            started.elapsed().as_secs_f64(),
            cp.dir.display()
        ));
        cp
    }

    /// The admin's kubeconfig (`system:masters`).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// The cluster CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.pki.path("ca.crt")
    }

    /// The folder holding this control plane's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts (or starts again) the API server and waits until `/readyz` answers ok.
    ///
    /// # Panics
    /// When it does not become ready within 60 s.
    pub fn start_apiserver(&mut self) {
        let args: Vec<&str> = self.apiserver_args.iter().map(String::as_str).collect();
        self.apiserver = Some(Process::start(
            "kube-apiserver",
            &binaries().join("kube-apiserver"),
            &args,
            &[],
        ));
        self.wait("kube-apiserver /readyz", Duration::from_secs(60), |cp| {
            cp.kubectl(&["get", "--raw", "/readyz"], None).1.trim() == "ok"
        });
    }

    /// Kills the API server (SIGKILL), leaving etcd and the other components running.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut p) = self.apiserver.take() {
            p.kill();
        }
    }

    /// `kubectl` as the admin: whether it succeeded, and its stdout plus stderr.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        super::kubectl(&self.admin_kubeconfig, args, stdin)
    }

    fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out) = self.kubectl(args, stdin);
        assert!(ok, "kubectl {}: {out}\n{}", args.join(" "), self.logs());
        out
    }

    fn component_kubeconfig(&self, name: &str, user: &str) -> String {
        let cert = self
            .pki
            .client(name, user, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let path = self.dir.join(format!("{name}.kubeconfig"));
        kubeconfig::write(
            &path,
            &self.server,
            Ca::File(self.ca()),
            Credentials::Cert(&cert),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        path.to_string_lossy().into_owned()
    }

    fn wait(&self, what: &str, timeout: Duration, ready: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last lines of every component's log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for p in [
            &self.etcd,
            &self.apiserver,
            &self.controller_manager,
            &self.scheduler,
            &self.kwok,
        ]
        .into_iter()
        .flatten()
        {
            let log = p.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            out.push_str(&format!("--- {} (last 30 lines)\n{tail}\n", p.name()));
        }
        out
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for p in [
            &mut self.kwok,
            &mut self.scheduler,
            &mut self.controller_manager,
            &mut self.apiserver,
            &mut self.etcd,
        ] {
            if let Some(mut p) = p.take() {
                p.kill();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn writeln_stderr(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    // Straight to the process's stderr: libtest captures `eprintln!`.
    writeln!(std::io::stderr(), "{line}")
}

/// The simulated node: kwok manages nodes with this annotation and keeps them Ready.
fn node_manifest() -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": NODE,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": NODE,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "2000"},
        },
    })
    .to_string()
}
