//! Launches the project's binaries as real processes for end-to-end suites: builds them once
//! with the same cargo that runs the tests, captures their logs, and kills them when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A loopback port free now, for a server a test starts (and may restart on the same port).
///
/// Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`): a port the
/// kernel hands out (`bind` to port 0) is also the kind it gives outgoing connections as their
/// source port, so one could take it while a test's server is down for a restart (a CI
/// failure: "port 40185 was taken during the restart"). Each call starts at a different port
/// of the range; the port is checked free by binding it.
///
/// # Panics
/// When no port of the range is free.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const FIRST: u32 = 10_000;
    let below = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|lo| *lo > FIRST + 1_000)
        .unwrap_or(32_768);
    let span = below - FIRST;
    // Spread over the range by process and call, so concurrent test binaries rarely meet.
    let seed = std::process::id().wrapping_mul(7_919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + seed.wrapping_add(n.wrapping_mul(997)) % span;
        let port = u16::try_from(port).expect("below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{below}")
}

/// Builds `bin` of `package` (debug profile) once per test process and returns its path.
///
/// # Panics
/// When the build fails: the suite cannot run without the binary.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    build(package, bin, false)
}

/// Like [`binary`], with the release profile (for benchmarks).
///
/// # Panics
/// When the build fails.
pub fn release_binary(package: &str, bin: &str) -> PathBuf {
    build(package, bin, true)
}

/// Whether `binary` is missing or older than any source it is built from. `cargo test
/// --workspace` builds every member's binaries first, so there the harness never has to call
/// cargo (a nested cargo inside a test run costs half a minute of lock waits and checks).
fn stale(binary: &std::path::Path, root: &std::path::Path) -> bool {
    fn newest(dir: &std::path::Path) -> std::time::SystemTime {
        let mut t = std::time::SystemTime::UNIX_EPOCH;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let m = if p.is_dir() {
                newest(&p)
            } else {
                e.metadata().and_then(|m| m.modified()).unwrap_or(t)
            };
            t = t.max(m);
        }
        t
    }
    let Ok(built) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return true;
    };
    let sources = ["crds/src", "operator/src", "agent-runtime/src"]
        .iter()
        .map(|d| newest(&root.join(d)))
        .max()
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    // The runtime's build script and its hot-symbols.txt shape its binary too.
    let manifests = [
        "Cargo.lock",
        "Cargo.toml",
        "agent-runtime/build.rs",
        "agent-runtime/hot-symbols.txt",
    ]
    .iter()
    .filter_map(|f| {
        std::fs::metadata(root.join(f))
            .and_then(|m| m.modified())
            .ok()
    })
    .max()
    .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    sources.max(manifests) > built
}

fn build(package: &str, bin: &str, release: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let root = crate::fixtures::repo_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let path = target
        .join(if release { "release" } else { "debug" })
        .join(bin);
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    let id = format!("{bin}:{release}");
    if !built.contains(&id) && (release || stale(&path, &root)) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        // Debug builds use the package selection and targets of `cargo test --workspace`, so
        // features unify the same way and neither build invalidates the other's artifacts.
        let args: Vec<&str> = if release {
            vec!["build", "--quiet", "--release", "-p", package, "--bin", bin]
        } else {
            vec!["build", "--quiet", "--workspace", "--bins", "--tests"]
        };
        let status = Command::new(cargo)
            .args(&args)
            .current_dir(&root)
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
        assert!(status.success(), "building {bin} failed");
        built.push(id);
    }
    path
}

/// A running process with its combined log. Killed on drop.
pub struct Process {
    name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `program` with `args` and extra environment, capturing stdout and stderr.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn start(name: &str, program: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    /// Everything the process printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits up to `timeout` for `needle` to appear in the log.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The port the process named with a `LISTENING <port>` line, once it accepts connections
    /// on it. A server that binds its own port and names it cannot lose it to another test's
    /// server between a port chosen here and its bind.
    ///
    /// # Panics
    /// When neither happens within `timeout`; the message holds the process's log.
    pub async fn listening_port(&self, timeout: Duration) -> u16 {
        let start = Instant::now();
        let port = loop {
            let named = self.log().lines().find_map(|l| {
                l.strip_prefix("LISTENING ")
                    .and_then(|p| p.trim().parse::<u16>().ok())
            });
            if let Some(port) = named {
                break port;
            }
            self.assert_within(start, timeout);
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.accepting(port, timeout.saturating_sub(start.elapsed()))
            .await;
        port
    }

    /// Waits until the process accepts connections on loopback `port`.
    ///
    /// # Panics
    /// When it does not within `timeout`; the message holds the process's log.
    pub async fn accepting(&self, port: u16, timeout: Duration) {
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            self.assert_within(start, timeout);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn assert_within(&self, start: Instant, timeout: Duration) {
        assert!(
            start.elapsed() < timeout,
            "{} did not start listening within {timeout:?}:\n{}",
            self.name,
            self.log()
        );
    }

    /// Whether the process is still running (it has not exited or been killed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (graceful shutdown) and waits up to `timeout` for the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Kills the process at once (SIGKILL), as a crashed node would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), or 0 once the process is gone.
pub fn proc_status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of `pid` so far, in seconds (clock ticks of 1/100 s).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_below_the_ephemeral_range_distinct_and_bindable() {
        let lo: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the ephemeral range")
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("its first port");
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for p in ports {
            assert!((10_000..lo).contains(&p), "{p}");
            std::net::TcpListener::bind(("127.0.0.1", p)).expect("free");
        }
    }
}
