//! Transports: the transport kind, TLS material (rustls, ring provider only), and the framing of
//! SIP messages on a byte stream by Content-Length, with limits that become error values.

use crate::error::SipError;
use crate::message::{find_header_end, Limits, Message, ParseError};
use bytes::{Buf, Bytes, BytesMut};
use std::sync::Arc;
use tokio_rustls::rustls;

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
            let cert = cert.map_err(|e| SipError::Config(format!("CA PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| SipError::Config(format!("CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(SipError::Config("no certificate in the CA PEM".into()));
        }
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| SipError::Config(e.to_string()))?
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

fn server_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<rustls::ServerConfig, SipError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_chain_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| SipError::Config(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(SipError::Config("no certificate in the chain PEM".into()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| SipError::Config(format!("key PEM: {e}")))?
        .ok_or_else(|| SipError::Config("no private key in the key PEM".into()))?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SipError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SipError::Config(format!("server certificate: {e}")))
}

/// Cuts SIP messages out of a byte stream by Content-Length (RFC 3261 §18.3).
///
/// Push bytes as they arrive with [`StreamFramer::buffer`], then call [`StreamFramer::next`]
/// until it returns `Ok(None)`. CRLF keep-alives between messages are skipped. An error means
/// the stream cannot be resynchronised and the connection should be closed.
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
}

/// A message cut out of a stream, with its exact bytes.
#[derive(Debug)]
pub struct Framed {
    /// The parsed message.
    pub message: Message,
    /// The bytes it came from.
    pub raw: Bytes,
}

/// A stream that could not be framed: what is wrong and the bytes that show it.
#[derive(Debug)]
pub struct FrameError {
    /// What is wrong.
    pub error: ParseError,
    /// The offending bytes (at most the limit plus a little).
    pub bytes: Bytes,
}

impl StreamFramer {
    /// A framer with these limits.
    pub fn new(limits: Limits) -> StreamFramer {
        StreamFramer {
            buf: BytesMut::with_capacity(4096),
            limits,
        }
    }

    /// The buffer to read into.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Framed>, FrameError> {
        // Skip keep-alive CRLFs (RFC 5626 §3.5.1).
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(self.buf.len());
        self.buf.advance(skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let fail = |error: ParseError, buf: &BytesMut| FrameError {
            error,
            bytes: Bytes::copy_from_slice(&buf[..buf.len().min(self.limits.max_header_bytes + 64)]),
        };
        let head_end = match find_header_end(&self.buf) {
            Some(e) => e,
            None if self.buf.len() > self.limits.max_header_bytes => {
                return Err(fail(
                    ParseError::HeadersTooLarge {
                        limit: self.limits.max_header_bytes,
                    },
                    &self.buf,
                ))
            }
            None => return Ok(None),
        };
        if head_end > self.limits.max_header_bytes {
            return Err(fail(
                ParseError::HeadersTooLarge {
                    limit: self.limits.max_header_bytes,
                },
                &self.buf,
            ));
        }
        let mut message =
            Message::parse_head(&self.buf[..head_end]).map_err(|e| fail(e, &self.buf))?;
        let body_len = match message.content_length() {
            Ok(Some(n)) => n,
            Ok(None) => return Err(fail(ParseError::MissingContentLength, &self.buf)),
            Err(e) => return Err(fail(e, &self.buf)),
        };
        if body_len > self.limits.max_body_bytes {
            return Err(fail(
                ParseError::BodyTooLarge {
                    size: body_len,
                    limit: self.limits.max_body_bytes,
                },
                &self.buf,
            ));
        }
        if self.buf.len() < head_end + body_len {
            return Ok(None);
        }
        let raw = self.buf.split_to(head_end + body_len).freeze();
        message.body = raw.slice(head_end..);
        Ok(Some(Framed { message, raw }))
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"MESSAGE sip:a@b SIP/2.0\r\nCSeq: 1 MESSAGE\r\nl: 5\r\n\r\nhello";

    #[test]
    fn frames_split_and_joined_messages() {
        let mut f = StreamFramer::new(Limits::default());
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(MSG);
        // Feed one byte at a time: every prefix is "need more", never an error.
        let mut got = Vec::new();
        for b in &stream {
            f.buffer().extend_from_slice(&[*b]);
            while let Some(m) = f.next().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(&got[1].raw[..], MSG);
        assert_eq!(&got[0].message.body[..], b"hello");
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn stream_errors_are_values() {
        let mut f = StreamFramer::new(Limits::default());
        f.buffer()
            .extend_from_slice(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n");
        assert_eq!(
            f.next().unwrap_err().error,
            ParseError::MissingContentLength
        );

        let mut f = StreamFramer::new(Limits {
            max_header_bytes: 100,
            max_body_bytes: 10,
        });
        f.buffer().extend_from_slice(&[b'a'; 200]);
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::HeadersTooLarge { .. }
        ));

        let mut f = StreamFramer::new(Limits {
            max_header_bytes: 100,
            max_body_bytes: 10,
        });
        f.buffer()
            .extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 11\r\n\r\n");
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::BodyTooLarge { size: 11, .. }
        ));

        let mut f = StreamFramer::new(Limits::default());
        f.buffer()
            .extend_from_slice(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert!(matches!(
            f.next().unwrap_err().error,
            ParseError::BadContentLength(_)
        ));
    }

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
