//! mock-apns: a fake Apple Push Notification service for interop and conformance tests.
//!
//! It speaks the APNs provider API (HTTP/2 over TLS, ALPN `h2` or prior knowledge) with token
//! (ES256 JWT) and certificate authentication, answers with Apple's statuses and reasons, keeps a
//! device registry with store-and-forward, records every request, streams deliveries to simulated
//! phones, and can be told to misbehave. Use it in-process ([`MockApns`]), as the `mock-apns`
//! binary, or in a container; both expose the same control API.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mock_apns::{Config, DeviceSpec, Environment, MockApns};
//! use std::time::Duration;
//! let apns = MockApns::start(Config::default()).await?;
//! let bundle = apns.credentials().bundle_id().to_owned();
//! apns.register_device(DeviceSpec::new("ab".repeat(32), vec![format!("{bundle}.voip")], Environment::Sandbox));
//! // … point the gateway at apns.sandbox_addr() with apns.credentials().ca_path() …
//! let push = apns.next_push_for(&"ab".repeat(32), Duration::from_secs(2)).await?;
//! assert_eq!(push.status, 200);
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cert_ext;
pub mod config;
mod control;
pub mod credentials;
pub mod devices;
#[cfg(test)]
mod e2e_tests;
pub mod faults;
/// Entry points for fuzzers (a fixed signing key, the request check, the HTTP/2 engine fed raw
/// bytes): public only with the `fuzzing` feature, compiled for the crate's own tests.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
/// The HTTP/2 server engine: public only with the `fuzzing` feature (the fuzz targets and the
/// corpus tests drive it directly); otherwise an internal of the server.
#[cfg(feature = "fuzzing")]
pub mod http2;
#[cfg(not(feature = "fuzzing"))]
#[allow(unreachable_pub, dead_code, unused_imports)] // what only the fuzzing API uses
mod http2;
mod ids;
pub mod jwt;
pub mod push_log;
pub mod reason;
mod server;
pub mod validate;

pub use auth::AuthIdentity;
pub use config::{AuthMethod, Config, Environment, UnknownTokens};
pub use credentials::{Credentials, CredentialsError, Manifest};
pub use devices::{Delivery, DeliveryOutcome, DeviceSpec, DeviceState, UnknownDevice};
pub use faults::{Fault, FaultAction, FaultMatch};
pub use jwt::SignatureEncoding;
pub use push_log::{LogStats, NoPush, PushRecord};
pub use reason::Reason;
pub use validate::PushType;

use futures::channel::mpsc;
use server::Shared;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the mock could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Credentials could not be generated or loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// The push deliveries of one device token, as the simulated phone receives them.
pub type DeliveryStream = mpsc::UnboundedReceiver<Delivery>;

/// A running mock APNs. Dropping it stops every listener (connections get GOAWAY Shutdown).
pub struct MockApns {
    shared: Arc<Shared>,
    credentials: Credentials,
    production: SocketAddr,
    sandbox: SocketAddr,
    control: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    cursors: Mutex<HashMap<String, u64>>,
    temp_dir: Option<PathBuf>,
}

impl std::fmt::Debug for MockApns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockApns")
            .field("production", &self.production)
            .field("sandbox", &self.sandbox)
            .field("control", &self.control)
            .finish()
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

impl MockApns {
    /// Generates or loads credentials, binds the production, sandbox and control listeners and
    /// starts serving.
    pub async fn start(config: Config) -> Result<MockApns, StartError> {
        let (dir, temp_dir) = match &config.credentials_dir {
            Some(d) => (d.clone(), None),
            None => {
                let d = std::env::temp_dir().join(format!("mock-apns-{}", uuid::Uuid::new_v4()));
                (d.clone(), Some(d))
            }
        };
        let credentials = Credentials::generate_or_load(
            &dir,
            &config.bundle_id,
            config.team_id.as_deref(),
            &config.extra_server_names,
        )?;
        let mut providers = validate::Providers {
            token_updates_per_window: config.token_updates_per_window,
            ..Default::default()
        };
        for key in credentials.keys() {
            providers.keys.add_key(key);
            let bundles = providers.bundles.entry(key.team_id.clone()).or_default();
            if !bundles.iter().any(|b| b == credentials.bundle_id()) {
                bundles.push(credentials.bundle_id().to_owned());
            }
        }
        let tls = Arc::new(credentials.server_tls_config()?);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let shared = Arc::new(Shared::new(&config, providers));
        let production = bind(config.production_listen).await?;
        let sandbox = bind(config.sandbox_listen).await?;
        let control = bind(config.control_listen).await?;
        let local = |l: &TcpListener, a: SocketAddr| l.local_addr().unwrap_or(a);
        let (production_addr, sandbox_addr, control_addr) = (
            local(&production, config.production_listen),
            local(&sandbox, config.sandbox_listen),
            local(&control, config.control_listen),
        );
        let (tx, rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(server::serve(
                production,
                Environment::Production,
                shared.clone(),
                acceptor.clone(),
                rx.clone(),
            )),
            tokio::spawn(server::serve(
                sandbox,
                Environment::Sandbox,
                shared.clone(),
                acceptor,
                rx.clone(),
            )),
            tokio::spawn(control::serve(control, shared.clone(), rx)),
        ];
        tracing::info!(%production_addr, %sandbox_addr, %control_addr, "mock-apns listening");
        Ok(MockApns {
            shared,
            credentials,
            production: production_addr,
            sandbox: sandbox_addr,
            control: control_addr,
            shutdown: tx,
            tasks,
            cursors: Mutex::new(HashMap::new()),
            temp_dir,
        })
    }

    /// The production listener (`api.push.apple.com`).
    pub fn production_addr(&self) -> SocketAddr {
        self.production
    }

    /// The sandbox listener (`api.sandbox.push.apple.com`).
    pub fn sandbox_addr(&self) -> SocketAddr {
        self.sandbox
    }

    /// The listener of an environment.
    pub fn addr(&self, env: Environment) -> SocketAddr {
        match env {
            Environment::Production => self.production,
            Environment::Sandbox => self.sandbox,
        }
    }

    /// The control API.
    pub fn control_addr(&self) -> SocketAddr {
        self.control
    }

    /// Credentials: files, team id, key id, bundle id, and `provider_token(iat, encoding)`.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Registers (or replaces) a device.
    pub fn register_device(&self, spec: DeviceSpec) {
        self.shared.devices.register(spec, server::now_ms());
    }

    /// Forgets a device. Returns whether it existed.
    pub fn unregister_device(&self, token: &str) -> bool {
        self.shared.devices.remove(token)
    }

    /// Sets a device's state (410 timestamps are now). Going online delivers what APNs stored.
    pub fn set_state(&self, token: &str, state: DeviceState) -> Result<(), UnknownDevice> {
        self.shared
            .devices
            .set_state(token, state, None, server::now_ms())
    }

    /// Sets a device's state with an explicit 410 timestamp (ms).
    pub fn set_state_at(
        &self,
        token: &str,
        state: DeviceState,
        timestamp_ms: u64,
    ) -> Result<(), UnknownDevice> {
        self.shared
            .devices
            .set_state(token, state, Some(timestamp_ms), server::now_ms())
    }

    /// Makes APNs keep pushes for an offline device even with `apns-expiration` 0 or past
    /// (Apple forum 795610), or restores Apple's documented rule.
    pub fn set_keep_expired(&self, token: &str, keep: bool) -> Result<(), UnknownDevice> {
        self.shared.devices.set_keep_expired(token, keep)
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.add(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Every request recorded so far (up to the log's capacity).
    pub fn push_log(&self) -> Vec<PushRecord> {
        self.shared.log.snapshot()
    }

    /// The push log's latest sequence number: pushes with a higher [`PushRecord::seq`] came
    /// after this call (a mark that needs no clock).
    pub fn push_seq(&self) -> u64 {
        self.shared.log.last_seq()
    }

    /// Requests answered since start, by status, and what the push log keeps of them (also
    /// `GET /stats` on the control API).
    pub fn push_stats(&self) -> LogStats {
        self.shared.log.stats()
    }

    /// Forgets the push log.
    pub fn clear_push_log(&self) {
        self.shared.log.clear();
    }

    /// The pushes delivered to `token` from now on (subscribe before pushing).
    pub fn deliveries(&self, token: &str) -> DeliveryStream {
        self.shared.devices.subscribe(token)
    }

    /// The next request for `token` not returned by an earlier call, waiting at most `within`.
    /// The error lists every request actually received.
    pub async fn next_push_for(&self, token: &str, within: Duration) -> Result<PushRecord, NoPush> {
        let key = token.to_ascii_lowercase();
        let after = *timeline::lock(&self.cursors).get(&key).unwrap_or(&0);
        let deadline = tokio::time::Instant::now() + within;
        match self.shared.log.wait_for(&key, after, deadline).await {
            Some(r) => {
                timeline::lock(&self.cursors).insert(key, r.seq);
                Ok(r)
            }
            None => Err(NoPush {
                token: token.to_owned(),
                within,
                received: self
                    .shared
                    .log
                    .snapshot()
                    .iter()
                    .map(PushRecord::summary)
                    .collect(),
            }),
        }
    }

    /// Sends GOAWAY `{"reason":"Shutdown"}` on every connection and stops listening.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for MockApns {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(d) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
