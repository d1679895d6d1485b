//! A real Prosody 0.12 (Debian `prosody` + `prosody-modules`) on loopback, for the tests of
//! xmpp-peer ([`ProsodyOptions::peer_suite`]) and of the app server ([`target_options`]: the
//! bench's Prosody target configuration): a config template, a temp dir, free loopback ports, a CA
//! and server certificate from the test PKI, and a deadline on "listening". Killed on drop.

use crate::log::{tail_lines, wait_for_text};
use crate::net::free_port;
use crate::pki::TlsChain;
use crate::workspace_root;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::process::{Child, Command};
use tokio::time::Instant;
use xmpp_peer::{register_account, ClientConfig, ComponentConfig, Mechanism, TlsClient};

/// The virtual host.
pub const DOMAIN: &str = "localhost";
/// The app server's component domain.
pub const PUSH_JID: &str = "push.localhost";
/// Where Debian installs mod_cloud_notify.
pub const CLOUD_NOTIFY_DIR: &str = "/usr/lib/prosody/modules/mod_cloud_notify";
/// The component secret of the default options.
pub const COMPONENT_SECRET: &str = "pushsecret";
/// The password of the accounts [`Prosody::account`] registers.
pub const PASSWORD: &str = "pencil-9";
/// A generous per-step deadline for the bench's clients: Prosody on a loaded 2-core CI box.
pub const STEP: Duration = Duration::from_secs(10);

/// The bench's Prosody target configuration (`targets/prosody/prosody.cfg.lua.in`: smacks, mam,
/// offline, cloud_notify, component `push.localhost`; placeholders `@@NAME@@`).
pub const TARGET_CONFIG_TEMPLATE: &str = include_str!("../../targets/prosody/prosody.cfg.lua.in");
/// The target's module that marks JMI actions in the notification.
pub const JMI_MODULE: &str = include_str!("../../targets/prosody/mod_cloud_notify_jmi.lua");

/// Options for the bench's Prosody target; with `jmi_module` false it runs vanilla
/// mod_cloud_notify (to observe what it publishes for a call).
pub fn target_options(jmi_module: bool) -> ProsodyOptions {
    let (config_template, modules) = if jmi_module {
        (
            TARGET_CONFIG_TEMPLATE.to_owned(),
            vec![("mod_cloud_notify_jmi.lua".to_owned(), JMI_MODULE.to_owned())],
        )
    } else {
        (
            TARGET_CONFIG_TEMPLATE.replace("\"cloud_notify_jmi\";", ""),
            Vec::new(),
        )
    };
    ProsodyOptions {
        config_template,
        modules,
        ..ProsodyOptions::default()
    }
}

/// Why Prosody could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProsodyError {
    /// A package is missing.
    #[error(
        "{0} (install the Debian packages prosody and prosody-modules: scripts/install-deps.sh)"
    )]
    Missing(String),
    /// Files, ports or the process.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Prosody exited or never listened; the log tail shows why.
    #[error("{0}")]
    NotListening(String),
    /// In-band registration of an account failed.
    #[error("registering {user}: {source}\n{log}")]
    Register {
        /// The account.
        user: String,
        /// Why.
        source: Box<xmpp_peer::Error>,
        /// The end of Prosody's log.
        log: String,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProsodyError {
    let context = context.into();
    move |source| ProsodyError::Io { context, source }
}

/// Options for one server.
#[derive(Clone, Debug)]
pub struct ProsodyOptions {
    /// `password_hash`: "SHA-1" (SCRAM-SHA-1) or "SHA-256".
    pub password_hash: &'static str,
    /// `smacks_hibernation_time` and `push_max_hibernation_timeout`, seconds.
    pub hibernation_secs: u32,
    /// The component secret.
    pub component_secret: String,
    /// The config template. Placeholders: `@@DIR@@`, `@@C2S_PORT@@`, `@@COMPONENT_PORT@@`,
    /// `@@PASSWORD_HASH@@`, `@@HIBERNATION@@`, `@@COMPONENT_SECRET@@`; any left over is an error.
    pub config_template: String,
    /// Extra module files written to `<dir>/modules/` (file name, Lua source); the template adds
    /// that folder to `plugin_paths` if it loads them.
    pub modules: Vec<(String, String)>,
}

impl ProsodyOptions {
    /// The options of xmpp-peer's own suite (`xmpp-peer/tests/prosody/prosody.cfg.lua.in`).
    pub fn peer_suite() -> ProsodyOptions {
        let path = workspace_root().join("xmpp-peer/tests/prosody/prosody.cfg.lua.in");
        ProsodyOptions {
            config_template: std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            ..ProsodyOptions::default()
        }
    }
}

impl Default for ProsodyOptions {
    fn default() -> Self {
        ProsodyOptions {
            password_hash: "SHA-1",
            hibernation_secs: 60,
            component_secret: COMPONENT_SECRET.into(),
            config_template: String::new(),
            modules: Vec::new(),
        }
    }
}

/// A running Prosody.
pub struct Prosody {
    child: Child,
    dir: tempfile::TempDir,
    /// c2s (STARTTLS) address.
    pub c2s: SocketAddr,
    /// XEP-0114 component address.
    pub component: SocketAddr,
    /// The component secret.
    pub component_secret: String,
    ca_pem: String,
}

impl Drop for Prosody {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn make_certs(dir: &Path) -> Result<String, ProsodyError> {
    let chain = TlsChain::generate("pushbench Prosody CA", &[DOMAIN, PUSH_JID]);
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).map_err(io("creating certs/"))?;
    std::fs::write(certs.join("localhost.crt"), chain.cert_pem).map_err(io("writing the cert"))?;
    std::fs::write(certs.join("localhost.key"), chain.key_pem).map_err(io("writing the key"))?;
    Ok(chain.ca_pem)
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

impl Prosody {
    /// Starts Prosody in a fresh temp dir and waits (20 s deadline) until c2s and component ports
    /// accept connections.
    pub async fn start(opts: ProsodyOptions) -> Result<Prosody, ProsodyError> {
        let bin = which("prosody")
            .ok_or_else(|| ProsodyError::Missing("the `prosody` binary is not installed".into()))?;
        if !Path::new(CLOUD_NOTIFY_DIR).exists() {
            return Err(ProsodyError::Missing(format!(
                "mod_cloud_notify is missing ({CLOUD_NOTIFY_DIR})"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("pushbench-prosody-")
            .tempdir()
            .map_err(io("creating a temp dir"))?;
        for sub in ["data", "modules"] {
            std::fs::create_dir_all(dir.path().join(sub)).map_err(io("creating dirs"))?;
        }
        for (name, source) in &opts.modules {
            std::fs::write(dir.path().join("modules").join(name), source)
                .map_err(io(format!("writing {name}")))?;
        }
        let ca_pem = make_certs(dir.path())?;
        let (c2s_port, comp_port) = (free_port(), free_port());
        let cfg = opts
            .config_template
            .replace("@@DIR@@", &dir.path().display().to_string())
            .replace("@@C2S_PORT@@", &c2s_port.to_string())
            .replace("@@COMPONENT_PORT@@", &comp_port.to_string())
            .replace("@@PASSWORD_HASH@@", opts.password_hash)
            .replace("@@HIBERNATION@@", &opts.hibernation_secs.to_string())
            .replace("@@COMPONENT_SECRET@@", &opts.component_secret);
        if cfg.contains("@@") {
            return Err(ProsodyError::NotListening(
                "unsubstituted placeholder in the Prosody config".into(),
            ));
        }
        let cfg_path = dir.path().join("prosody.cfg.lua");
        std::fs::write(&cfg_path, cfg).map_err(io("writing the config"))?;
        let log = |name: &str| {
            std::fs::File::create(dir.path().join(name))
                .map(Stdio::from)
                .map_err(io(format!("creating {name}")))
        };
        let child = Command::new(bin)
            .arg("--config")
            .arg(&cfg_path)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(log("stdout.log")?)
            .stderr(log("stderr.log")?)
            .kill_on_drop(true)
            .spawn()
            .map_err(io("spawning prosody"))?;
        let mut p = Prosody {
            child,
            dir,
            c2s: SocketAddr::from(([127, 0, 0, 1], c2s_port)),
            component: SocketAddr::from(([127, 0, 0, 1], comp_port)),
            component_secret: opts.component_secret,
            ca_pem,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in [p.c2s, p.component] {
            loop {
                if let Ok(Some(status)) = p.child.try_wait() {
                    return Err(ProsodyError::NotListening(format!(
                        "prosody exited ({status}) before listening:\n{}",
                        p.log_tail(60)
                    )));
                }
                if tokio::net::TcpStream::connect(addr).await.is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(ProsodyError::NotListening(format!(
                        "prosody did not listen on {addr} within 20 s:\n{}",
                        p.log_tail(60)
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(p)
    }

    /// The CA that signed the server certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The client trust for this server.
    pub fn tls(&self) -> Result<TlsClient, xmpp_peer::Error> {
        TlsClient::from_ca_pem(self.ca_pem.as_bytes(), DOMAIN)
    }

    /// A client config for `user@localhost` (resource "phone"; not registered yet).
    pub fn client_config(
        &self,
        user: &str,
        password: &str,
    ) -> Result<ClientConfig, xmpp_peer::Error> {
        let mut c = ClientConfig::new(
            &format!("{user}@{DOMAIN}"),
            password,
            self.c2s,
            Some(self.tls()?),
        );
        c.resource = "phone".into();
        Ok(c)
    }

    /// The component config for the app server.
    pub fn component_config(&self) -> ComponentConfig {
        ComponentConfig::new(PUSH_JID, &self.component_secret, self.component)
    }

    /// The last `n` lines of Prosody's logs (for failure messages).
    pub fn log_tail(&self, n: usize) -> String {
        ["prosody.log", "stderr.log", "stdout.log"]
            .iter()
            .map(|f| tail_lines(&self.dir.path().join(f), n) + "\n")
            .collect()
    }

    /// Prosody's debug log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }
}

impl Prosody {
    /// Polls Prosody's debug log (every 50 ms) until it contains `needle`, within `within`: how
    /// tests observe server-internal events such as "Session going into hibernation".
    pub async fn wait_log(&self, needle: &str, within: Duration) -> Result<(), ProsodyError> {
        if wait_for_text(|| self.log(), needle, within).await {
            return Ok(());
        }
        Err(ProsodyError::NotListening(format!(
            "Prosody never logged {needle:?} within {within:?}:\n{}",
            self.log_tail(40)
        )))
    }

    /// A config for `user` with [`PASSWORD`] and [`STEP`] (not registered).
    pub fn config(&self, user: &str) -> ClientConfig {
        let mut c = self.client_config(user, PASSWORD).expect("the test CA");
        c.step_timeout = STEP;
        c
    }

    /// Registers `user` by in-band registration and returns its config; the error carries the
    /// end of Prosody's log.
    pub async fn account(
        &self,
        user: &str,
        timeline: &Timeline,
    ) -> Result<ClientConfig, ProsodyError> {
        let cfg = self.config(user);
        register_account(
            &cfg,
            &timeline.recorder(format!("{user}-register"), Protocol::Xmpp),
        )
        .await
        .map_err(|source| ProsodyError::Register {
            user: user.to_owned(),
            source: Box::new(source),
            log: self.log_tail(40),
        })?;
        Ok(cfg)
    }

    /// `cfg` allowing only `mech`.
    pub fn with_mechanism(mut cfg: ClientConfig, mech: Mechanism) -> ClientConfig {
        cfg.mechanisms = vec![mech];
        cfg
    }
}
