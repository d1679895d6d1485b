//! The byte transport under a stream: plain TCP, or TLS after STARTTLS, and the TLS client setup.

use crate::error::{Error, TlsError};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// TCP, or TLS over TCP.
pub(crate) enum Transport {
    /// Plain TCP (before STARTTLS, or a component connection).
    Tcp(TcpStream),
    /// TLS after STARTTLS.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP socket underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Tcp(t) => t,
            Transport::Tls(t) => t.get_ref().0,
        }
    }

    /// "tcp" or "tls", for the timeline.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Transport::Tcp(_) => "tcp",
            Transport::Tls(_) => "tls",
        }
    }

    /// Upgrades a TCP transport to TLS (STARTTLS).
    pub(crate) async fn start_tls(self, tls: &TlsClient) -> Result<Transport, Error> {
        let Transport::Tcp(tcp) = self else {
            return Err(TlsError::AlreadyTls.into());
        };
        let name =
            rustls::pki_types::ServerName::try_from(tls.server_name.clone()).map_err(|source| {
                TlsError::ServerName {
                    name: tls.server_name.clone(),
                    source,
                }
            })?;
        let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|source| TlsError::Handshake {
                name: tls.server_name.clone(),
                source,
            })?;
        Ok(Transport::Tls(Box::new(stream)))
    }
}

/// A rustls client configuration (ring provider) and the name to verify.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    server_name: String,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsClient {
    /// Trusts the CA certificates in a PEM file and verifies `server_name` (the XMPP domain).
    pub fn from_ca_file(ca_file: &Path, server_name: &str) -> Result<Self, Error> {
        let pem = std::fs::read(ca_file).map_err(|source| Error::CaFile {
            path: ca_file.to_owned(),
            source,
        })?;
        Self::from_ca_pem(&pem, server_name)
    }

    /// Trusts the CA certificates in PEM bytes.
    pub fn from_ca_pem(pem: &[u8], server_name: &str) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(TlsError::CaPem)?;
            roots.add(cert).map_err(|source| TlsError::Rustls {
                what: "bad CA certificate",
                source,
            })?;
        }
        if roots.is_empty() {
            return Err(TlsError::NoCaCertificate.into());
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "protocol versions",
            source,
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(TlsClient {
            config: Arc::new(config),
            server_name: server_name.to_string(),
        })
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(t) => Pin::new(t).poll_read(cx, buf),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(t) => Pin::new(t).poll_write(cx, buf),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(t) => Pin::new(t).poll_flush(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(t) => Pin::new(t).poll_shutdown(cx),
            Transport::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}
