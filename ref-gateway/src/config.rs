//! The gateway's configuration: listeners, domain, APNs client, CANCEL profile, timers, faults
//! and digest accounts. Built in-process ([`GatewayConfig::new`] and its fields) or read from
//! TOML ([`FileConfig`], see `ref-gateway/README.md` for an example file).

use crate::apns::{ApnsAuth, ApnsError, RetryPolicy};
pub use crate::cancel::CancelPolicy;
use crate::design::Design;
use crate::faults::{Fault, Faults};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use timeline::{Protocol, Recorder};

/// The gateway's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// RFC 8599 Bucket Timer: how long a request waits for the phone's REGISTER before 480.
    pub bucket_timer: Duration,
    /// Delay before a call push is sent (0 = at once; the bench's `push-delay` capability).
    pub push_delay: Duration,
    /// Bounded retry of pushes answered 429/5xx (or lost connections).
    pub retry: RetryPolicy,
    /// How long a finished call is kept to absorb retransmissions and late responses.
    pub linger: Duration,
    /// RFC 3261 T1 for UDP retransmissions (requests forwarded, non-2xx finals until ACK);
    /// they stop after 64·T1.
    pub t1: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            bucket_timer: Duration::from_secs(6),
            push_delay: Duration::ZERO,
            retry: RetryPolicy::default(),
            linger: Duration::from_secs(32),
            t1: Duration::from_millis(500),
        }
    }
}

/// Where the APNs client connects and how it authenticates.
#[derive(Clone, Debug)]
pub struct ApnsSettings {
    /// Production endpoint (`pn-provider=apns`).
    pub production: SocketAddr,
    /// Sandbox endpoint (`pn-provider=apns.dev`, Linphone dialect).
    pub sandbox: SocketAddr,
    /// CA certificates (PEM) trusted for both.
    pub ca_pem: Vec<u8>,
    /// Token or certificate auth.
    pub auth: ApnsAuth,
}

/// The TLS listener's identity.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    /// Certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// Private key, PEM.
    pub key_pem: Vec<u8>,
}

/// A digest account: REGISTERs for `user` are challenged (401) and must answer with `password`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The AOR's user part (`alice`).
    pub user: String,
    /// The digest password.
    pub password: String,
}

/// Everything the gateway needs, in-process.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The SIP domain (digest realm, and the host of the AORs it serves).
    pub domain: String,
    /// UDP listener (port 0 picks a free port), if any.
    pub udp: Option<SocketAddr>,
    /// TCP listener, if any.
    pub tcp: Option<SocketAddr>,
    /// TLS listener and its identity, if any.
    pub tls: Option<(SocketAddr, TlsIdentity)>,
    /// The APNs client.
    pub apns: ApnsSettings,
    /// What a call cancelled after its push becomes.
    pub cancel: CancelPolicy,
    /// Timers.
    pub timers: Timers,
    /// Faults switched on at start (they can be changed at run time).
    pub faults: Faults,
    /// The design for push-bound bindings.
    pub design: Design,
    /// Digest accounts (REGISTER only).
    pub accounts: Vec<Account>,
    /// Records the gateway's SIP traffic (off by default: the bench's parties record it).
    pub sip_recorder: Recorder,
    /// Records the gateway's APNs traffic (off by default).
    pub apns_recorder: Recorder,
}

impl GatewayConfig {
    /// UDP and TCP on `127.0.0.1:0`, no TLS, profile `flexisip-replay`, default timers, no
    /// faults, no accounts, no recording.
    pub fn new(domain: impl Into<String>, apns: ApnsSettings) -> GatewayConfig {
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        GatewayConfig {
            domain: domain.into(),
            udp: Some(any),
            tcp: Some(any),
            tls: None,
            apns,
            cancel: CancelPolicy::default(),
            timers: Timers::default(),
            faults: Faults::none(),
            design: Design::default(),
            accounts: Vec::new(),
            sip_recorder: Recorder::off("gateway", Protocol::Sip),
            apns_recorder: Recorder::off("gateway", Protocol::Apns),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is inconsistent.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// APNs credentials cannot be loaded.
    #[error("APNs credentials: {0}")]
    Apns(#[from] ApnsError),
}

/// The TOML file (`ref-gateway --config FILE`). Paths are relative to the file's folder.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// SIP domain.
    pub domain: String,
    /// `rfc8599-drop`, `flexisip-replay` (default) or `cancel-push` (`profile = …` is read too,
    /// as earlier files wrote it).
    #[serde(default, alias = "profile")]
    pub cancel: CancelPolicy,
    /// Fault names from the fault matrix.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// `bucket` (default) or `tsilo`: see [`Design`].
    #[serde(default)]
    pub design: Design,
    /// Listeners.
    pub listen: FileListen,
    /// Timers.
    #[serde(default)]
    pub timers: FileTimers,
    /// APNs client.
    pub apns: FileApns,
    /// Digest accounts.
    #[serde(default)]
    pub accounts: Vec<Account>,
}

/// `[listen]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListen {
    /// UDP address.
    pub udp: Option<SocketAddr>,
    /// TCP address.
    pub tcp: Option<SocketAddr>,
    /// TLS address (needs `tls_cert` and `tls_key`).
    pub tls: Option<SocketAddr>,
    /// TLS certificate chain (PEM file).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM file).
    pub tls_key: Option<PathBuf>,
}

/// `[timers]`, in milliseconds.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileTimers {
    /// Bucket Timer.
    pub bucket_timer_ms: u64,
    /// Delay before call pushes.
    pub push_delay_ms: u64,
    /// Retries after the first push request (429/5xx).
    pub retry_max: u32,
    /// First retry backoff.
    pub retry_backoff_ms: u64,
    /// Longest retry backoff.
    pub retry_max_backoff_ms: u64,
    /// RFC 3261 T1 for UDP retransmissions.
    pub t1_ms: u64,
}

impl Default for FileTimers {
    fn default() -> Self {
        let t = Timers::default();
        FileTimers {
            bucket_timer_ms: t.bucket_timer.as_millis() as u64,
            push_delay_ms: 0,
            retry_max: t.retry.max_retries,
            retry_backoff_ms: t.retry.initial_backoff.as_millis() as u64,
            retry_max_backoff_ms: t.retry.max_backoff.as_millis() as u64,
            t1_ms: t.t1.as_millis() as u64,
        }
    }
}

/// `[apns]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileApns {
    /// Production endpoint.
    pub production: SocketAddr,
    /// Sandbox endpoint (defaults to the production one).
    pub sandbox: Option<SocketAddr>,
    /// CA file trusted for the APNs server.
    pub ca: PathBuf,
    /// `.p8` key for token auth (with `key_id` and `team_id`).
    pub key_p8: Option<PathBuf>,
    /// Key id for token auth.
    pub key_id: Option<String>,
    /// Team id for token auth.
    pub team_id: Option<String>,
    /// Client certificate for certificate auth (with `client_key`).
    pub client_cert: Option<PathBuf>,
    /// Client key for certificate auth.
    pub client_key: Option<PathBuf>,
}

fn read(base: &Path, p: &Path) -> Result<Vec<u8>, ConfigError> {
    let path = base.join(p);
    std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<(FileConfig, PathBuf), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_owned();
        Ok((FileConfig::parse(&text)?, base))
    }

    /// The in-process configuration; files are read relative to `base`.
    pub fn into_gateway_config(self, base: &Path) -> Result<GatewayConfig, ConfigError> {
        let a = &self.apns;
        let auth = match (&a.key_p8, &a.client_cert) {
            (Some(p8), None) => {
                let (Some(kid), Some(team)) = (&a.key_id, &a.team_id) else {
                    return Err(ConfigError::Invalid(
                        "token auth needs apns.key_id and apns.team_id".into(),
                    ));
                };
                ApnsAuth::token_from_p8_file(&base.join(p8), kid, team)?
            }
            (None, Some(cert)) => {
                let Some(key) = &a.client_key else {
                    return Err(ConfigError::Invalid(
                        "certificate auth needs apns.client_key".into(),
                    ));
                };
                ApnsAuth::certificate_from_pem(&read(base, cert)?, &read(base, key)?)?
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "set exactly one of apns.key_p8 (token auth) or apns.client_cert".into(),
                ))
            }
        };
        let apns = ApnsSettings {
            production: a.production,
            sandbox: a.sandbox.unwrap_or(a.production),
            ca_pem: read(base, &a.ca)?,
            auth,
        };
        let mut cfg = GatewayConfig::new(self.domain, apns);
        cfg.udp = self.listen.udp;
        cfg.tcp = self.listen.tcp;
        cfg.tls = match (self.listen.tls, &self.listen.tls_cert, &self.listen.tls_key) {
            (None, _, _) => None,
            (Some(addr), Some(c), Some(k)) => Some((
                addr,
                TlsIdentity {
                    cert_pem: read(base, c)?,
                    key_pem: read(base, k)?,
                },
            )),
            (Some(_), _, _) => {
                return Err(ConfigError::Invalid(
                    "listen.tls needs listen.tls_cert and listen.tls_key".into(),
                ))
            }
        };
        if cfg.udp.is_none() && cfg.tcp.is_none() && cfg.tls.is_none() {
            return Err(ConfigError::Invalid("no listener configured".into()));
        }
        cfg.cancel = self.cancel;
        cfg.faults = Faults::default();
        cfg.design = self.design;
        for f in self.faults {
            cfg.faults.insert(f);
        }
        let t = self.timers;
        cfg.timers = Timers {
            bucket_timer: Duration::from_millis(t.bucket_timer_ms),
            push_delay: Duration::from_millis(t.push_delay_ms),
            retry: RetryPolicy {
                max_retries: t.retry_max,
                initial_backoff: Duration::from_millis(t.retry_backoff_ms),
                max_backoff: Duration::from_millis(t.retry_max_backoff_ms),
            },
            t1: Duration::from_millis(t.t1_ms.max(1)),
            ..Timers::default()
        };
        cfg.accounts = self.accounts;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
domain = "example.com"
cancel = "cancel-push"
faults = ["priority-5", "no-bucket-timer"]
[listen]
udp = "127.0.0.1:0"
[timers]
bucket_timer_ms = 1500
[apns]
production = "127.0.0.1:4443"
ca = "ca.pem"
key_p8 = "AuthKey.p8"
key_id = "KEYID00001"
team_id = "TEAMID0001"
[[accounts]]
user = "alice"
password = "secret"
"#;

    #[test]
    fn sample_file_parses() {
        let f = FileConfig::parse(SAMPLE).unwrap();
        assert_eq!(f.cancel, CancelPolicy::CancelPush);
        assert_eq!(f.faults, vec![Fault::Priority5, Fault::NoBucketTimer]);
        assert_eq!(f.timers.bucket_timer_ms, 1500);
        assert_eq!(f.timers.retry_max, RetryPolicy::default().max_retries);
        assert_eq!(f.accounts[0].user, "alice");
    }

    #[test]
    fn unknown_keys_and_faults_are_errors() {
        let bad = SAMPLE.replace("priority-5", "priority-7");
        assert!(matches!(FileConfig::parse(&bad), Err(ConfigError::Toml(_))));
        let bad = SAMPLE.replace("cancel =", "cancl =");
        assert!(matches!(FileConfig::parse(&bad), Err(ConfigError::Toml(_))));
    }

    #[test]
    fn missing_credential_files_are_reported_with_their_path() {
        let f = FileConfig::parse(SAMPLE).unwrap();
        let err = f
            .into_gateway_config(Path::new("/nonexistent-dir"))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir"), "{err}");
    }
}
