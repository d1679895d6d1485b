//! Configuration of a mock APNs instance, and the APNs vocabulary the whole bench shares: the two
//! environments ([`Environment`]) and the two ways a provider authenticates ([`AuthMethod`]).

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// An APNs environment: `api.sandbox.push.apple.com` or `api.push.apple.com`. The one type for
/// the concept in the bench: the mock's listeners, a push's record, the reference gateway's APNs
/// client and the target file's `[apns] environment` all use it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Development (`api.sandbox.push.apple.com`, formerly `api.development.push.apple.com`):
    /// what development builds of an app get tokens for, and the default.
    #[default]
    Sandbox,
    /// Production (`api.push.apple.com`).
    Production,
}

impl Environment {
    /// `"sandbox"` or `"production"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Sandbox => "sandbox",
            Environment::Production => "production",
        }
    }

    /// Apple's host name for it (the TLS server name and `:authority` a provider uses).
    pub fn host(self) -> &'static str {
        match self {
            Environment::Sandbox => "api.sandbox.push.apple.com",
            Environment::Production => "api.push.apple.com",
        }
    }
}

/// How a provider authenticates to APNs: with a JSON Web Token signed by its `.p8` key
/// ("token-based connection trust") or with a TLS client certificate ("certificate-based
/// connection trust"); Apple, "Establishing a token-based connection to APNs" and "Establishing
/// a certificate-based connection to APNs".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// ES256 provider tokens in `authorization: bearer …`.
    Token,
    /// A provider client certificate presented in the TLS handshake.
    Certificate,
}

/// What to do with a push to a device token nobody registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UnknownTokens {
    /// Register it on first use (online, for the topic and environment of that push).
    #[default]
    Register,
    /// Answer 400 BadDeviceToken.
    Reject,
}

/// How a [`crate::MockApns`] starts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where credentials live. `None`: a fresh temporary directory, removed on drop.
    pub credentials_dir: Option<PathBuf>,
    /// Bundle id used when credentials are generated.
    pub bundle_id: String,
    /// Team id used when credentials are generated (`None`: random 10 characters).
    pub team_id: Option<String>,
    /// Extra DNS names or IP addresses for the server certificate (at generation time).
    pub extra_server_names: Vec<String>,
    /// Production listener.
    pub production_listen: SocketAddr,
    /// Sandbox listener.
    pub sandbox_listen: SocketAddr,
    /// Control API listener.
    pub control_listen: SocketAddr,
    /// Unknown device tokens: register or reject.
    pub unknown_tokens: UnknownTokens,
    /// MAX_CONCURRENT_STREAMS once a connection is authenticated (Apple: 1000).
    pub max_concurrent_streams: u32,
    /// MAX_CONCURRENT_STREAMS of a token-auth connection before its first valid JWT (Apple: 1).
    pub streams_before_auth: u32,
    /// New provider-token values a connection may adopt per 20-minute window (Apple: 1).
    pub token_updates_per_window: usize,
    /// How many push records the log keeps (oldest dropped first).
    pub push_log_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Config {
            credentials_dir: None,
            bundle_id: crate::credentials::DEFAULT_BUNDLE_ID.to_owned(),
            team_id: None,
            extra_server_names: Vec::new(),
            production_listen: loopback,
            sandbox_listen: loopback,
            control_listen: loopback,
            unknown_tokens: UnknownTokens::Register,
            max_concurrent_streams: 1000,
            streams_before_auth: 1,
            token_updates_per_window: 1,
            push_log_capacity: 10_000,
        }
    }
}
