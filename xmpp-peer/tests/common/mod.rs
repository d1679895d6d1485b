//! A real Prosody 0.12 per test: templated config in a temp dir, loopback ports, a CA and server
//! certificate made with rcgen, in-band registration for accounts, killed on drop.

#![allow(dead_code)]

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use timeline::{Protocol, Timeline};
use xmpp_peer::{register_account, ClientConfig, Mechanism, TlsClient};

#[allow(unused_imports)] // each test file uses a different subset
pub use xmpp_peer::prosody::{DOMAIN, PUSH_JID};
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

/// A running Prosody: the crate's launcher ([`xmpp_peer::prosody`]) with this suite's config
/// template, plus the test conveniences below.
pub struct Prosody(xmpp_peer::prosody::Prosody);

impl std::ops::Deref for Prosody {
    type Target = xmpp_peer::prosody::Prosody;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/prosody/prosody.cfg.lua.in")
}

impl Prosody {
    /// Starts Prosody and waits (with a deadline) until its c2s and component ports accept.
    pub async fn start(opts: Options) -> Result<Prosody> {
        let options = xmpp_peer::prosody::ProsodyOptions {
            password_hash: opts.password_hash,
            hibernation_secs: opts.hibernation_secs,
            component_secret: COMPONENT_SECRET.into(),
            config_template: std::fs::read_to_string(template_path())?,
            modules: Vec::new(),
        };
        Ok(Prosody(xmpp_peer::prosody::Prosody::start(options).await?))
    }

    /// The client trust for this server.
    pub fn tls(&self) -> TlsClient {
        self.0.tls().expect("test CA")
    }

    /// A config for `user` (not registered).
    pub fn config(&self, user: &str) -> ClientConfig {
        let mut c = self.0.client_config(user, PASSWORD).expect("test CA");
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

    /// Polls Prosody's log until it contains `needle`, within `within`.
    pub async fn wait_log(&self, needle: &str, within: Duration) -> Result<()> {
        Ok(self.0.wait_log(needle, within).await?)
    }
}
