//! The transport layer: how an endpoint is configured ([`EndpointConfig`]: transport kind, TLS
//! material, RFC 3261 timers, parser limits), the framing of a byte stream ([`StreamFramer`]), and
//! the sockets and connections themselves (`net`). It imports only the message layer below it;
//! what arrives goes up through the `NetUser` trait the layer above implements.

use crate::error::{ConfigError, SipError};
use crate::message::Limits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

mod framing;
pub(crate) mod net;

pub use framing::{FrameError, Framed, StreamFramer};

/// UDP, TCP or TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams; retransmissions by the transaction layer.
    Udp,
    /// One TCP connection per peer, reused.
    Tcp,
    /// TLS over TCP (rustls).
    Tls,
}

impl Transport {
    /// Lower-case name, as recorded in the timeline and written in `;transport=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The Via token (`UDP`, `TCP`, `TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// True for TCP and TLS.
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// TLS material for one endpoint: the client side trusts a given CA; the server side (for tests
/// and for the phone listening on TLS) presents a certificate chain.
#[derive(Clone)]
pub struct TlsConfig {
    /// Used when this endpoint connects.
    pub client: Option<Arc<rustls::ClientConfig>>,
    /// Used when this endpoint accepts.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// The name checked in the server's certificate when connecting.
    pub server_name: String,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client", &self.client.is_some())
            .field("server", &self.server.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    /// A client configuration trusting the CA certificates in `ca_pem`, checking `server_name`.
    pub fn client_trusting(ca_pem: &[u8], server_name: &str) -> Result<TlsConfig, SipError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
            let cert = cert.map_err(|source| ConfigError::Pem { what: "CA", source })?;
            roots.add(cert).map_err(|source| ConfigError::Tls {
                what: "CA certificate",
                source,
            })?;
        }
        if roots.is_empty() {
            return Err(ConfigError::Missing("certificate in the CA PEM").into());
        }
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| ConfigError::Tls {
                what: "protocol versions",
                source,
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsConfig {
            client: Some(Arc::new(client)),
            server: None,
            server_name: server_name.to_owned(),
        })
    }

    /// A server-only configuration presenting `cert_chain_pem` with `key_pem`.
    pub fn server(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, SipError> {
        Ok(TlsConfig {
            client: None,
            server: Some(Arc::new(server_config(cert_chain_pem, key_pem)?)),
            server_name: String::new(),
        })
    }

    /// Adds a server identity to this configuration (an endpoint that both connects and accepts).
    pub fn with_server(
        mut self,
        cert_chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<TlsConfig, SipError> {
        self.server = Some(Arc::new(server_config(cert_chain_pem, key_pem)?));
        Ok(self)
    }
}

fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, ConfigError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_chain_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|source| ConfigError::Pem {
            what: "certificate",
            source,
        })?;
    if certs.is_empty() {
        return Err(ConfigError::Missing("certificate in the chain PEM"));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|source| ConfigError::Pem {
            what: "key",
            source,
        })?
        .ok_or(ConfigError::Missing("private key in the key PEM"))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| ConfigError::Tls {
            what: "protocol versions",
            source,
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|source| ConfigError::Tls {
            what: "server certificate",
            source,
        })
}

/// RFC 3261 timer base values. Tests shrink T1 to run fast.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    /// RTT estimate (500 ms by default).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// How long the network keeps messages (5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J and the 2xx retransmission limit.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// How one endpoint is set up.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// UDP, TCP or TLS.
    pub transport: Transport,
    /// Where to bind (port 0 picks a free port; IPv4 or IPv6).
    pub bind: SocketAddr,
    /// TLS material (required for TLS: `client` to connect, `server` to accept).
    pub tls: Option<TlsConfig>,
    /// Transaction timers.
    pub timers: Timers,
    /// Parser limits for received messages.
    pub limits: Limits,
    /// `User-Agent` header value written in requests, if any.
    pub user_agent: Option<String>,
}

impl EndpointConfig {
    /// A UDP endpoint bound to `bind`.
    pub fn udp(bind: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Udp,
            bind,
            tls: None,
            timers: Timers::default(),
            limits: Limits::default(),
            user_agent: Some("pushbench-sip-peer".into()),
        }
    }

    /// A TCP endpoint listening on `bind`.
    pub fn tcp(bind: SocketAddr) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Tcp,
            ..Self::udp(bind)
        }
    }

    /// A TLS endpoint listening on `bind` (when `tls.server` is set) and connecting with
    /// `tls.client`.
    pub fn tls(bind: SocketAddr, tls: TlsConfig) -> EndpointConfig {
        EndpointConfig {
            transport: Transport::Tls,
            tls: Some(tls),
            ..Self::udp(bind)
        }
    }

    /// The same configuration with another T1 (T2 and T4 scaled alike).
    pub fn with_t1(mut self, t1: Duration) -> EndpointConfig {
        let scale = t1.as_secs_f64() / self.timers.t1.as_secs_f64();
        self.timers = Timers {
            t1,
            t2: self.timers.t2.mul_f64(scale),
            t4: self.timers.t4.mul_f64(scale),
        };
        self
    }
}

/// Flight mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offline {
    /// Normal operation.
    Online,
    /// Drop everything received, answer nothing (the connection stays up).
    Silent,
    /// Close every connection and drop everything received.
    Disconnected,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_config_errors_are_values() {
        assert!(matches!(
            TlsConfig::client_trusting(b"not pem", "x"),
            Err(SipError::Config(_))
        ));
        assert!(matches!(
            TlsConfig::server(b"", b""),
            Err(SipError::Config(_))
        ));
    }
}
