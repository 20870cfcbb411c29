//! Python virtual environments for suites that test against the official Python SDKs of a
//! protocol (MCP's `mcp`, later `a2a-sdk`, `openai`). Each is created once with
//! `python3 -m venv` and pip from PyPI, with pinned versions, and cached outside the work tree
//! in `~/.cache/agentry/venv-<name>-<hash>` (or under `$AGENTRY_CACHE_DIR`), where the hash
//! covers the requirements and the Python version. A file lock makes test binaries that start
//! at once wait for one another instead of racing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A ready virtual environment.
#[derive(Clone, Debug)]
pub struct Venv {
    /// Its directory.
    pub dir: PathBuf,
    /// Its interpreter, `<dir>/bin/python`.
    pub python: PathBuf,
}

/// Marks a venv whose installation finished.
const DONE: &str = ".agentry-complete";

pub(crate) fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGENTRY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    home.join("agentry")
}

/// FNV-1a 64: a stable hash for the cache key (std's hasher may change between releases).
pub(crate) fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Venv {
    /// The venv `name` with exactly `requirements` (pip specifiers, pinned: `mcp==2.3.0`),
    /// created on first use. Blocks while pip runs (or while another process creates it).
    ///
    /// # Errors
    /// When `python3` or its `venv` module is missing (on Debian: `apt-get install
    /// python3-venv`), or pip cannot install the requirements; the message says which.
    pub fn ensure(name: &str, requirements: &[&str]) -> Result<Self, String> {
        let version = run(
            Command::new("python3").arg("--version"),
            "python3 --version",
        )?;
        let mut key = vec![version.trim()];
        key.extend_from_slice(requirements);
        let root = cache_root();
        std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        let dir = root.join(format!("venv-{name}-{:016x}", fnv(&key)));
        let lock_path = root.join(format!("venv-{name}-{:016x}.lock", fnv(&key)));
        let lock = std::fs::File::create(&lock_path)
            .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let venv = Self {
            python: dir.join("bin").join("python"),
            dir: dir.clone(),
        };
        if dir.join(DONE).exists() && venv.python.exists() {
            return Ok(venv);
        }
        // A half-made venv (an interrupted run) is made again from nothing.
        let _ = std::fs::remove_dir_all(&dir);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&dir),
            "python3 -m venv (on Debian, install python3-venv)",
        )?;
        let mut pip = Command::new(&venv.python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .args(requirements);
        run(&mut pip, &format!("pip install {}", requirements.join(" ")))?;
        std::fs::write(dir.join(DONE), requirements.join("\n"))
            .map_err(|e| format!("marking {}: {e}", dir.display()))?;
        Ok(venv)
    }

    /// A command running `script` with this venv's interpreter.
    pub fn command(&self, script: &Path) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(script);
        c
    }
}

/// Runs `script` in `venv` with `spec` (JSON) as its one argument and returns the JSON line it
/// prints; polls the child, so a hung client is killed after `timeout`.
///
/// # Panics
/// When the script cannot start, prints no JSON, or runs past `timeout`.
pub async fn run_json(
    venv: &Venv,
    script: &Path,
    spec: &serde_json::Value,
    timeout: std::time::Duration,
) -> serde_json::Value {
    let mut child = venv
        .command(script)
        .arg(spec.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the client script");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait for the client").is_none() {
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} ran past {timeout:?}: {spec}", script.display());
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().expect("client output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "{} printed no JSON ({}):\n{stdout}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_changes_with_any_requirement() {
        assert_ne!(fnv(&["3.11", "mcp==2.3.0"]), fnv(&["3.11", "mcp==2.2.0"]));
        assert_ne!(fnv(&["3.11", "a", "b"]), fnv(&["3.11", "ab"]));
        assert_eq!(fnv(&["x"]), fnv(&["x"]));
    }
}
