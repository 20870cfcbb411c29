//! A real `redis-server` (Debian's package, which `.ci/run` installs) for the session suites:
//! one per test, on a free loopback port, in a temporary directory, with no persistence
//! (`--save ''`, `--appendonly no`). It can be stopped, paused (SIGSTOP), resumed and restarted
//! on the same port; only the process it started is ever signalled, and it is killed when
//! dropped, a failed test included.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::process::Process;

/// A running (or stopped) redis-server of the test's own.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    /// The test CA's folder of a TLS server (its certificates are read again on restart).
    pki: Option<PathBuf>,
    process: Option<Process>,
}

fn binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path
        .or_else(|| Some(PathBuf::from("/usr/bin").join(name)).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!("{name} is not installed: install redis-server (apt-get install redis-server)")
        })
}

impl RedisServer {
    /// Starts one on a free port.
    ///
    /// # Panics
    /// When redis-server is missing or does not become ready within 10 s.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`RedisServer::start`], with more configuration directives as arguments, e.g.
    /// `["--user", "agentry", "on", ">pw", "~agentry:*", "+@all"]` for an ACL user.
    ///
    /// # Panics
    /// As [`RedisServer::start`].
    pub fn start_with(extra: &[&str]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentry-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("redis temp dir");
        // A port picked by binding and released can be taken by someone else before Redis
        // binds it: try a few.
        for _ in 0..5 {
            let mut s = Self {
                port: crate::process::free_port(),
                dir: dir.clone(),
                extra: extra.iter().map(|a| a.to_string()).collect(),
                pki: None,
                process: None,
            };
            if s.launch() {
                return s;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn launch(&mut self) -> bool {
        let port = self.port.to_string();
        let dir = self.dir.to_str().expect("a UTF-8 temp path").to_string();
        let mut args = vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "notice",
        ];
        let extra: Vec<String> = self
            .extra
            .iter()
            .map(|a| a.replace("{port}", &port))
            .collect();
        args.extend(extra.iter().map(String::as_str));
        let p = Process::start("redis-server", &binary("redis-server"), &args, &[]);
        let ready = (0..200).any(|_| {
            let log = p.log();
            if log.contains("Ready to accept connections") || log.contains("Address already in use")
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        let log = p.log();
        assert!(ready, "redis-server did not become ready in 10 s:\n{log}");
        if log.contains("Address already in use") {
            return false;
        }
        self.process = Some(p);
        true
    }

    /// Starts one that speaks only TLS on its port, with a certificate for `127.0.0.1` and
    /// `localhost` from a new test CA (clients need no certificate); returns it and the CA's
    /// PEM. [`RedisServer::cli`] does not speak TLS.
    ///
    /// # Panics
    /// When openssl or redis-server fail.
    pub fn start_tls() -> (Self, String) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "agentry-redis-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let pki = crate::k8s::pki::Pki::create(&dir).expect("test certificates");
        let path = |f: &str| pki.path(f).to_str().expect("a UTF-8 path").to_string();
        let (cert, key, ca) = (path("apiserver.crt"), path("apiserver.key"), path("ca.crt"));
        let mut s = Self::start_with(&[
            "--port",
            "0",
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ]);
        let pem = std::fs::read_to_string(pki.path("ca.crt")).expect("ca.crt");
        s.pki = Some(dir);
        (s, pem)
    }

    /// Its URL, `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn signal(&self, sig: &str) {
        if let Some(p) = &self.process {
            let status = Command::new("kill")
                .args([sig, &p.pid().to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill {sig} {}", p.pid());
        }
    }

    /// Stops it at once (SIGKILL): everything it held is gone.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Stops it and starts a new, empty one on the same port.
    ///
    /// # Panics
    /// When the port was taken meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.launch(),
            "port {} was taken during the restart",
            self.port
        );
    }

    /// Runs one command with `redis-cli` (raw output) and returns what it printed.
    ///
    /// # Panics
    /// When redis-cli cannot run or fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(binary("redis-cli"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "redis-cli {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Every key it holds, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .cli(&["--scan"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        k.sort();
        k
    }

    /// Everything it printed.
    pub fn log(&self) -> String {
        self.process.as_ref().map(Process::log).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // A stopped process is killed too: SIGKILL needs no SIGCONT.
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(pki) = &self.pki {
            let _ = std::fs::remove_dir_all(pki);
        }
    }
}
