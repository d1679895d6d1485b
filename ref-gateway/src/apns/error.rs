//! The APNs client's errors: what went wrong before an APNs answer could be read.
//!
//! An answer from APNs, even 410 or 500, is not an error: it is an [`super::ApnsResponse`].

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a push could not be sent or its answer not read.
#[derive(Debug, thiserror::Error)]
pub enum ApnsError {
    /// A credentials or CA file could not be read.
    #[error("reading {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The `.p8` signing key (or the client key) is not a usable key.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A certificate PEM (CA or client) holds no usable certificate.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// The SNI name is not a valid DNS name or IP address.
    #[error("invalid server name {0:?}")]
    InvalidServerName(String),
    /// TCP connect failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS handshake failed (bad certificate, wrong name, client certificate refused, …).
    #[error("TLS handshake with {addr}: {source}")]
    Tls {
        /// Where.
        addr: SocketAddr,
        /// The error rustls gave (wrapped in an I/O error by tokio-rustls).
        source: std::io::Error,
    },
    /// The server negotiated something other than HTTP/2 by ALPN.
    #[error("server negotiated ALPN {0:?}, not h2")]
    NotHttp2(String),
    /// An HTTP/2 protocol or connection error.
    #[error("HTTP/2: {0}")]
    Http2(#[from] h2::Error),
    /// Connecting took longer than the configured connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    /// No answer within the configured request timeout.
    #[error("no answer from APNs within {0:?}")]
    Timeout(std::time::Duration),
    /// The push cannot be expressed as an HTTP/2 request (bad header characters, …).
    #[error("invalid push: {0}")]
    InvalidPush(String),
    /// The answer's body is larger than an APNs answer can be.
    #[error("answer body larger than {0} bytes")]
    AnswerTooLarge(usize),
}
