//! Node packages for browser suites: `tests/js/package.json` and its lockfile, installed with
//! `npm ci` (exact versions and integrity hashes from the lockfile) into
//! `~/.cache/agentry/node-<name>-<hash>` (or under `$AGENTRY_CACHE_DIR`), never into the work
//! tree; npm's own download cache sits beside it. The hash covers the Node version and both
//! files, so a changed pin installs afresh. A file lock makes test binaries that start at once
//! wait for one another. Also finds Debian's Chromium for Playwright to drive.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::python::{cache_root, fnv, run};

/// Marks an installation that finished.
const DONE: &str = ".agentry-complete";

/// Installed packages.
#[derive(Clone, Debug)]
pub struct NodeModules {
    /// The prefix `npm ci` ran in; the packages are in its `node_modules`.
    pub dir: PathBuf,
}

/// The directory holding the suites' `package.json`, `package-lock.json` and scripts.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js")
}

impl NodeModules {
    /// The packages of `tests/js` under the cache name `name`, installed on first use. Blocks
    /// while npm runs (or while another process installs them).
    ///
    /// # Errors
    /// When `node` or `npm` is missing, or `npm ci` fails; the message says which.
    pub fn ensure(name: &str) -> Result<Self, String> {
        let version = run(Command::new("node").arg("--version"), "node --version")?;
        let read = |f: &str| {
            let p = js_dir().join(f);
            std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))
        };
        let (manifest, lock) = (read("package.json")?, read("package-lock.json")?);
        let key = fnv(&[version.trim(), &manifest, &lock]);
        let root = cache_root();
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        let dir = root.join(format!("node-{name}-{key:016x}"));
        let lock_path = root.join(format!("node-{name}-{key:016x}.lock"));
        let file_lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        file_lock
            .lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let modules = Self { dir: dir.clone() };
        if dir.join(DONE).exists() {
            return Ok(modules);
        }
        // A half-made install (an interrupted run) is made again from nothing.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for (f, text) in [("package.json", &manifest), ("package-lock.json", &lock)] {
            std::fs::write(dir.join(f), text)
                .map_err(|e| format!("writing {}: {e}", dir.display()))?;
        }
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .args(["--loglevel", "error", "--prefix"])
                .arg(&dir)
                .arg("--cache")
                .arg(root.join("npm-cache")),
            "npm ci (tests/js)",
        )?;
        std::fs::write(dir.join(DONE), &lock)
            .map_err(|e| format!("marking {}: {e}", dir.display()))?;
        Ok(modules)
    }

    /// A command running `script` with Node, resolving `require` from these packages.
    pub fn command(&self, script: &Path) -> Command {
        let mut c = Command::new("node");
        c.arg(script)
            .env("NODE_PATH", self.dir.join("node_modules"));
        c
    }
}

/// Debian's Chromium binary: the real executable behind the `/usr/bin/chromium` wrapper
/// script (which adds desktop flags Playwright does not need).
///
/// # Errors
/// When it is not installed; the message says how to install it.
pub fn chromium() -> Result<PathBuf, String> {
    ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            "Chromium is not installed: apt-get install --no-install-recommends chromium \
             fonts-liberation (.ci/run does it)"
                .to_string()
        })
}

/// Runs `cmd` with `arg` (JSON) as its last argument and returns the JSON line it prints last;
/// polls the child, so a hung script is killed after `timeout`.
///
/// # Panics
/// When the script cannot start, runs past `timeout`, or prints no JSON.
pub async fn run_json(
    mut cmd: Command,
    arg: &serde_json::Value,
    timeout: Duration,
) -> serde_json::Value {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .arg(arg.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let started = Instant::now();
    while child.try_wait().expect("wait for the script").is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            let out = child.wait_with_output().expect("script output");
            panic!(
                "{what} ran past {timeout:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().expect("script output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l.trim()).ok())
        .unwrap_or_else(|| {
            panic!(
                "{what} printed no JSON ({}):\n{stdout}\n{stderr}",
                out.status
            )
        })
}
