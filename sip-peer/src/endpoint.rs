//! The endpoint: one user agent's socket(s) and transaction layer, as the roles and the tests use
//! them. A thin facade over the layers below it: the sockets (`transport::net`), the client and
//! server transactions (`transaction`) and the dispatch of what arrives (`dispatch`).

use crate::dispatch::Core;
use crate::error::SipError;
use crate::transport::{EndpointConfig, Offline, Transport};
use crate::uri::SipUri;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use timeline::Recorder;

/// One user agent's transport and transaction layer. Cheap to clone; dropping the last clone
/// stops its tasks and closes its sockets.
#[derive(Clone)]
pub struct Endpoint {
    owner: Arc<Owner>,
}

struct Owner {
    core: Arc<Core>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.core.stop();
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("transport", &self.core().cfg().transport)
            .field("local", &self.core().local())
            .finish()
    }
}

impl Endpoint {
    /// Binds the socket (UDP) or the listener (TCP/TLS) and starts receiving. `recorder` records
    /// every message; `peer` labels the other end in the timeline ("gateway").
    pub async fn bind(
        cfg: EndpointConfig,
        recorder: Recorder,
        peer: impl Into<String>,
    ) -> Result<Endpoint, SipError> {
        let core = Core::start(cfg, recorder, peer.into()).await?;
        Ok(Endpoint {
            owner: Arc::new(Owner { core }),
        })
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.owner.core
    }

    /// The bound address (the listener for TCP/TLS).
    pub fn local_addr(&self) -> SocketAddr {
        self.core().local()
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.core().cfg().transport
    }

    /// This endpoint's contact URI for `user` (`;transport=` added for TCP/TLS).
    pub fn contact_uri(&self, user: Option<&str>) -> SipUri {
        self.core().contact_uri(user)
    }

    /// Sends bytes exactly as given (for deliberately odd messages). Recorded with `summary`.
    pub fn send_raw(
        &self,
        dest: SocketAddr,
        bytes: impl Into<Bytes>,
        summary: &str,
    ) -> Result<(), SipError> {
        self.core().send(dest, bytes.into(), summary)
    }

    /// Closes every TCP/TLS connection; the next message opens a new one (a waking iPhone).
    pub fn close_connections(&self) {
        self.core().close_connections();
    }

    /// Closes the socket (UDP) or the listener and every connection (TCP/TLS), as iOS does to an
    /// app it suspends or kills: nothing more is read or buffered, UDP to the old port gets ICMP
    /// port unreachable, and sending fails ([`crate::TransportError::Closed`]) until
    /// [`Endpoint::reopen`].
    pub fn close_sockets(&self) {
        self.core().net().close_sockets();
    }

    /// True while the sockets are closed.
    pub fn is_closed(&self) -> bool {
        self.core().net().is_closed()
    }

    /// A relaunched app: a new socket (UDP) or listener (TCP/TLS) on a new ephemeral port of the
    /// configured IP (never the old port); the old ones are closed first. Returns the new
    /// address.
    pub async fn reopen(&self) -> Result<SocketAddr, SipError> {
        self.core().reopen().await
    }

    /// Number of open TCP/TLS connections.
    pub fn connection_count(&self) -> usize {
        self.core().connection_count()
    }

    /// Switches flight mode.
    pub fn set_offline(&self, mode: Offline) {
        self.core().set_offline(mode);
    }

    /// The current flight mode.
    pub fn offline(&self) -> Offline {
        self.core().offline()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use timeline::{Protocol, Timeline};
    use tokio::net::UdpSocket;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\nFrom: <sip:b@x>;tag=1\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    #[tokio::test]
    async fn a_closed_udp_port_is_refused_and_a_reopened_endpoint_listens_on_a_new_one() {
        let t = Timeline::new();
        let ep = Endpoint::bind(
            EndpointConfig::udp(SocketAddr::from(([127, 0, 0, 1], 0))),
            t.recorder("alice", Protocol::Sip),
            "peer",
        )
        .await
        .unwrap();
        let old = ep.local_addr();
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        ep.close_sockets();
        assert!(ep.is_closed());
        assert!(matches!(
            ep.send_raw(peer.local_addr().unwrap(), &b"x"[..], "x"),
            Err(SipError::Transport(crate::TransportError::Closed))
        ));
        // The old port is closed: the kernel answers ICMP port unreachable, which a connected
        // socket reads as ECONNREFUSED.
        peer.connect(old).await.unwrap();
        peer.send(OPTIONS).await.unwrap();
        let mut buf = [0u8; 2048];
        let r = tokio::time::timeout(Duration::from_secs(2), peer.recv(&mut buf)).await;
        assert!(
            matches!(&r, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused),
            "{r:?}"
        );
        let new = ep.reopen().await.unwrap();
        assert_ne!(new.port(), old.port(), "a relaunched app gets a new port");
        assert_eq!(ep.local_addr(), new);
        assert!(!ep.is_closed());
        assert!(ep
            .contact_uri(Some("alice"))
            .to_string()
            .contains(&new.port().to_string()));
        // The new socket answers.
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        peer.send_to(OPTIONS, new).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), peer.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf[..n].starts_with(b"SIP/2.0 "), "{:?}", &buf[..n]);
    }
}
