//! How the APNs client connects and authenticates: address, SNI, trusted CA, token or
//! certificate auth, retries, timeouts, recording.

use super::jwt::TokenSigner;
use super::ApnsError;
use mock_apns::{AuthMethod, Environment};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use timeline::{Protocol, Recorder};

/// How the provider authenticates.
#[derive(Clone)]
pub enum ApnsAuth {
    /// Token auth: an ES256 JWT in `authorization: bearer …`.
    Token(Arc<TokenSigner>),
    /// Certificate auth: a TLS client certificate.
    Certificate {
        /// The client certificate chain.
        chain: Vec<CertificateDer<'static>>,
        /// Its private key.
        key: Arc<PrivateKeyDer<'static>>,
    },
}

impl std::fmt::Debug for ApnsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApnsAuth::Token(s) => f.debug_tuple("Token").field(s).finish(),
            ApnsAuth::Certificate { chain, .. } => f
                .debug_struct("Certificate")
                .field("chain_len", &chain.len())
                .finish_non_exhaustive(),
        }
    }
}

impl ApnsAuth {
    /// Which of the two methods this is.
    pub fn method(&self) -> AuthMethod {
        match self {
            ApnsAuth::Token(_) => AuthMethod::Token,
            ApnsAuth::Certificate { .. } => AuthMethod::Certificate,
        }
    }

    /// Token auth from a `.p8` file.
    pub fn token_from_p8_file(path: &Path, key_id: &str, team_id: &str) -> Result<Self, ApnsError> {
        Ok(ApnsAuth::Token(Arc::new(TokenSigner::from_p8_file(
            path, key_id, team_id,
        )?)))
    }

    /// Certificate auth from PEM text (certificate chain, private key).
    pub fn certificate_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ApnsError> {
        let chain = certs_from_pem(cert_pem)?;
        let key = rustls_pemfile::private_key(&mut &key_pem[..])
            .map_err(|e| ApnsError::InvalidKey(format!("unreadable PEM: {e}")))?
            .ok_or_else(|| ApnsError::InvalidKey("no private key in the PEM".into()))?;
        Ok(ApnsAuth::Certificate {
            chain,
            key: Arc::new(key),
        })
    }

    /// Certificate auth from PEM files.
    pub fn certificate_from_pem_files(cert: &Path, key: &Path) -> Result<Self, ApnsError> {
        Self::certificate_from_pem(&read(cert)?, &read(key)?)
    }
}

/// Bounded retry with exponential backoff for 429, 5xx and lost connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = never retry).
    pub max_retries: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// The wait doubles up to this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Everything the client needs.
#[derive(Clone, Debug)]
pub struct ApnsClientConfig {
    /// Where to connect (the bench's mock APNs, or a test server).
    pub addr: SocketAddr,
    /// SNI and `:authority`; default the sandbox host.
    pub server_name: String,
    /// The CA certificates trusted for the server.
    pub roots: Vec<CertificateDer<'static>>,
    /// Token or certificate auth.
    pub auth: ApnsAuth,
    /// Retries for 429/5xx/lost connections.
    pub retry: RetryPolicy,
    /// TCP + TLS + HTTP/2 handshake limit.
    pub connect_timeout: Duration,
    /// Limit for one answer.
    pub request_timeout: Duration,
    /// Records each request and answer; off by default (party "gateway").
    pub recorder: Recorder,
    /// The peer name used on the timeline.
    pub peer_name: String,
}

impl ApnsClientConfig {
    /// A client for `addr`, trusting the CA certificates in `ca_pem`, with sandbox SNI, default
    /// retries, 5 s timeouts and no recording.
    pub fn new(addr: SocketAddr, ca_pem: &[u8], auth: ApnsAuth) -> Result<Self, ApnsError> {
        Ok(ApnsClientConfig {
            addr,
            server_name: Environment::Sandbox.host().to_owned(),
            roots: certs_from_pem(ca_pem)?,
            auth,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            recorder: Recorder::off("gateway", Protocol::Apns),
            peer_name: "mock-apns".to_owned(),
        })
    }

    /// Same, reading the CA from a file.
    pub fn with_ca_file(addr: SocketAddr, ca: &Path, auth: ApnsAuth) -> Result<Self, ApnsError> {
        Self::new(addr, &read(ca)?, auth)
    }

    /// Uses this environment's host as SNI.
    pub fn environment(mut self, env: Environment) -> Self {
        self.server_name = env.host().to_owned();
        self
    }

    /// Uses this SNI / `:authority`.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = name.into();
        self
    }

    /// Records requests and answers on this recorder.
    pub fn recorder(mut self, recorder: Recorder) -> Self {
        self.recorder = recorder;
        self
    }

    /// Uses this retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ApnsError> {
    std::fs::read(path).map_err(|source| ApnsError::ReadFile {
        path: path.to_owned(),
        source,
    })
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ApnsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApnsError::InvalidCertificate(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ApnsError::InvalidCertificate(
            "no certificate in the PEM".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        let waits: Vec<u128> = (1..=4).map(|i| r.backoff(i).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 350, 350]);
    }

    #[test]
    fn pem_without_certificates_is_an_error() {
        assert!(matches!(
            certs_from_pem(b"nothing here"),
            Err(ApnsError::InvalidCertificate(_))
        ));
        assert!(matches!(
            ApnsAuth::certificate_from_pem(b"", b""),
            Err(ApnsError::InvalidCertificate(_))
        ));
    }
}
