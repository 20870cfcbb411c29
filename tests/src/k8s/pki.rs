//! The control plane's certificates, made with the `openssl` command: a CA, the API server's
//! serving certificate (valid for loopback and the in-cluster `kubernetes` names), client
//! certificates for the admin and each component, and the ServiceAccount token signing key.
//! ECDSA P-256 throughout: a full set takes a few milliseconds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the files of one control plane's PKI live.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The folder holding every file.
    pub dir: PathBuf,
}

/// A client identity: certificate and key file.
#[derive(Clone, Debug)]
pub struct ClientCert {
    /// PEM certificate.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Names the API server's certificate is valid for.
const SERVER_SANS: &str = "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1";

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run openssl (install it: apt-get install openssl): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn ec_key(dir: &Path, name: &str) -> Result<(), String> {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            name,
        ],
    )
}

impl Pki {
    /// Creates the CA, the serving certificate and the token signing key in `dir`.
    pub fn create(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        ec_key(dir, "ca.key")?;
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca.key",
                "-subj",
                "/CN=agentry-test-ca",
                "-days",
                "30",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-out",
                "ca.crt",
            ],
        )?;
        let pki = Self {
            dir: dir.to_path_buf(),
        };
        pki.sign(
            "apiserver",
            "/CN=kube-apiserver",
            &format!("extendedKeyUsage=serverAuth\nsubjectAltName={SERVER_SANS}\n"),
        )?;
        ec_key(dir, "sa.key")?;
        openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
        Ok(pki)
    }

    /// A client certificate for `user` in `groups` (the API server reads CN and O).
    pub fn client(&self, name: &str, user: &str, groups: &[&str]) -> Result<ClientCert, String> {
        let mut subject = String::new();
        for g in groups {
            subject.push_str(&format!("/O={g}"));
        }
        subject.push_str(&format!("/CN={user}"));
        self.sign(name, &subject, "extendedKeyUsage=clientAuth\n")?;
        Ok(ClientCert {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        })
    }

    fn sign(&self, name: &str, subject: &str, extensions: &str) -> Result<(), String> {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let ext = format!("{name}.ext");
        ec_key(&self.dir, &key)?;
        openssl(
            &self.dir,
            &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
        )?;
        std::fs::write(
            self.dir.join(&ext),
            format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
        )
        .map_err(|e| e.to_string())?;
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                &ext,
                "-out",
                &format!("{name}.crt"),
            ],
        )
    }

    /// A file of the PKI folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}
