//! A real Prosody 0.12 per test: templated config in a temp dir, loopback ports, a CA and server
//! certificate made with rcgen, in-band registration for accounts, killed on drop.

#![allow(dead_code)]

use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use xmpp_peer::{register_account, ClientConfig, Mechanism, TlsClient};

pub const DOMAIN: &str = "localhost";
pub const PUSH_JID: &str = "push.localhost";
pub const COMPONENT_SECRET: &str = "pushsecret";
pub const PASSWORD: &str = "pencil-9";
/// Generous per-step deadline: Prosody on a loaded 2-core CI box.
pub const STEP: Duration = Duration::from_secs(10);

/// Options for one server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Prosody `password_hash`: "SHA-1" or "SHA-256".
    pub password_hash: &'static str,
    /// smacks_hibernation_time and push_max_hibernation_timeout, seconds.
    pub hibernation_secs: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            password_hash: "SHA-1",
            hibernation_secs: 60,
        }
    }
}

/// A running Prosody.
pub struct Prosody {
    child: Child,
    dir: tempfile::TempDir,
    pub c2s: SocketAddr,
    pub component: SocketAddr,
    ca_pem: String,
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prosody/prosody.cfg.lua.in")
}

fn make_certs(dir: &Path) -> Result<String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "xmpp-peer test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![DOMAIN.to_string(), PUSH_JID.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, DOMAIN);
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs)?;
    std::fs::write(certs.join("localhost.crt"), cert.pem())?;
    std::fs::write(certs.join("localhost.key"), key.serialize_pem())?;
    Ok(ca.pem())
}

impl Prosody {
    /// Starts Prosody and waits (with a deadline) until its c2s and component ports accept.
    pub async fn start(opts: Options) -> Result<Prosody> {
        let prosody = which("prosody").context(
            "the `prosody` binary is not installed (Debian packages prosody + prosody-modules; run scripts/install-deps.sh)",
        )?;
        if !Path::new("/usr/lib/prosody/modules/mod_cloud_notify").exists() {
            bail!("mod_cloud_notify is missing: install the Debian package prosody-modules (scripts/install-deps.sh)");
        }
        let dir = tempfile::Builder::new()
            .prefix("xmpp-peer-prosody-")
            .tempdir()?;
        std::fs::create_dir_all(dir.path().join("data"))?;
        let ca_pem = make_certs(dir.path())?;
        let (c2s_port, comp_port) = (free_port()?, free_port()?);
        let cfg = std::fs::read_to_string(template_path())?
            .replace("@@DIR@@", &dir.path().display().to_string())
            .replace("@@C2S_PORT@@", &c2s_port.to_string())
            .replace("@@COMPONENT_PORT@@", &comp_port.to_string())
            .replace("@@PASSWORD_HASH@@", opts.password_hash)
            .replace("@@HIBERNATION@@", &opts.hibernation_secs.to_string())
            .replace("@@COMPONENT_SECRET@@", COMPONENT_SECRET);
        if cfg.contains("@@") {
            bail!("unsubstituted placeholder in the Prosody config");
        }
        let cfg_path = dir.path().join("prosody.cfg.lua");
        std::fs::write(&cfg_path, cfg)?;
        let child = Command::new(prosody)
            .arg("--config")
            .arg(&cfg_path)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(
                dir.path().join("stdout.log"),
            )?))
            .stderr(Stdio::from(std::fs::File::create(
                dir.path().join("stderr.log"),
            )?))
            .kill_on_drop(true)
            .spawn()
            .context("spawning prosody")?;
        let mut p = Prosody {
            child,
            dir,
            c2s: SocketAddr::from(([127, 0, 0, 1], c2s_port)),
            component: SocketAddr::from(([127, 0, 0, 1], comp_port)),
            ca_pem,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in [p.c2s, p.component] {
            loop {
                if let Some(status) = p.child.try_wait()? {
                    bail!(
                        "prosody exited ({status}) before listening:\n{}",
                        p.log_tail(60)
                    );
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "prosody did not listen on {addr} within 20 s:\n{}",
                        p.log_tail(60)
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(p)
    }

    /// The client trust for this server.
    pub fn tls(&self) -> TlsClient {
        TlsClient::from_ca_pem(self.ca_pem.as_bytes(), DOMAIN).expect("test CA")
    }

    /// A config for `user` (not registered).
    pub fn config(&self, user: &str) -> ClientConfig {
        let mut c = ClientConfig::new(
            &format!("{user}@{DOMAIN}"),
            PASSWORD,
            self.c2s,
            Some(self.tls()),
        );
        c.resource = "phone".into();
        c.step_timeout = STEP;
        c
    }

    /// Registers `user` by in-band registration and returns its config.
    pub async fn account(&self, user: &str, timeline: &Timeline) -> Result<ClientConfig> {
        let cfg = self.config(user);
        register_account(
            &cfg,
            &timeline.recorder(format!("{user}-register"), Protocol::Xmpp),
        )
        .await
        .with_context(|| format!("registering {user}\n{}", self.log_tail(40)))?;
        Ok(cfg)
    }

    /// A config allowing only `mech`.
    pub fn with_mechanism(mut cfg: ClientConfig, mech: Mechanism) -> ClientConfig {
        cfg.mechanisms = vec![mech];
        cfg
    }

    /// The last `n` lines of Prosody's log (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = String::new();
        for f in ["prosody.log", "stderr.log", "stdout.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(n);
            out.push_str(&format!("--- {f} ---\n{}\n", lines[from..].join("\n")));
        }
        out
    }

    /// The whole Prosody log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

impl Prosody {
    /// Polls Prosody's log until it contains `needle` (used to observe server-internal events
    /// such as a hibernation timeout), within `within`.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "Prosody never logged {needle:?} within {within:?}:\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
