//! A minimal XEP-0114 component (`jabber:component:accept`): the handshake and a stanza loop.
//!
//! This is what the XEP-0357 app server speaks to the XMPP server. It shares the framing,
//! timeline recording and inbox with the c2s client, so both roles live in one build.

use crate::conn::Connection;
use crate::error::Error;
use crate::inbox::Inbox;
use crate::ns;
use crate::push::Publish;
use crate::transport::Transport;
use crate::wire::{unexpected, Wire};
use crate::xml::Element;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use timeline::Recorder;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where and as what the component connects.
#[derive(Clone, Debug)]
pub struct ComponentConfig {
    /// The component's domain (`push.localhost`).
    pub domain: String,
    /// The shared secret.
    pub secret: String,
    /// The server's component port.
    pub server: SocketAddr,
    /// The peer name on the timeline.
    pub peer: String,
    /// Deadline for the handshake.
    pub step_timeout: Duration,
}

impl ComponentConfig {
    /// Defaults: peer "gateway", 10 s handshake.
    pub fn new(domain: &str, secret: &str, server: SocketAddr) -> Self {
        ComponentConfig {
            domain: domain.into(),
            secret: secret.into(),
            server,
            peer: "gateway".into(),
            step_timeout: Duration::from_secs(10),
        }
    }
}

/// The XEP-0114 handshake value: lowercase hex SHA-1 of stream id + secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{stream_id}{secret}").as_bytes(),
    );
    let mut out = String::with_capacity(40);
    for b in d.as_ref() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A connected component.
pub struct Component {
    domain: String,
    inbox: Inbox,
    conn: Connection,
}

impl Component {
    /// Connects and performs the handshake.
    pub async fn connect(cfg: ComponentConfig, rec: Recorder) -> Result<Component, Error> {
        let deadline = Instant::now() + cfg.step_timeout;
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(cfg.server))
            .await
            .map_err(|_| Error::Timeout {
                waiting_for: format!("TCP connect to {}", cfg.server),
                arrived: vec![],
            })?
            .map_err(Error::io(format!("connecting to {}", cfg.server)))?;
        let mut wire = Wire::new(Transport::Tcp(tcp), rec, cfg.peer.clone(), ns::COMPONENT);
        wire.open_stream(&cfg.domain).await?;
        let header = wire.recv_header(deadline).await?;
        let id = header
            .get_attr("id")
            .ok_or_else(|| unexpected("component stream header without id", &header))?;
        wire.send(
            &Element::new("handshake", ns::COMPONENT).text(handshake_digest(id, &cfg.secret)),
        )
        .await?;
        let reply = wire.recv_element(deadline, "handshake reply").await?;
        if !reply.is("handshake", ns::COMPONENT) {
            return Err(unexpected("waiting for <handshake/>", &reply));
        }
        wire.rec.note(format!("component {} online", cfg.domain));
        let inbox = Inbox::new();
        let conn = Connection::spawn(wire, inbox.clone(), None);
        Ok(Component {
            domain: cfg.domain,
            inbox,
            conn,
        })
    }

    /// The component's domain.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Received, unclaimed stanzas.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Sends a stanza (build it in `jabber:component:accept` with `from`/`to`).
    pub async fn send(&self, e: Element) -> Result<(), Error> {
        self.conn.send(e).await
    }

    /// Waits within `within` for a stanza matching `pred`.
    pub async fn wait_for(
        &self,
        within: Duration,
        waiting_for: &str,
        pred: impl FnMut(&Element) -> bool,
    ) -> Result<Element, Error> {
        self.inbox
            .wait_for(Instant::now() + within, waiting_for, pred)
            .await
    }

    /// Waits for the next XEP-0357 publish and parses it (a malformed one is an error with it).
    pub async fn next_publish(&self, within: Duration) -> Result<Publish, Error> {
        let e = self
            .wait_for(within, "push publish", Publish::matches)
            .await?;
        Ok(Publish::parse(&e)?)
    }

    /// Answers a publish with success.
    pub async fn ack_publish(&self, p: &Publish) -> Result<(), Error> {
        self.send(p.result_iq(ns::COMPONENT)).await
    }

    /// Closes the stream.
    pub async fn close(self, within: Duration) -> Result<(), Error> {
        self.conn.close(within).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn handshake_is_sha1_hex_of_id_and_secret() {
        // Expected value computed independently: python3 hashlib.sha1(b"3BF96D32sesame").
        assert_eq!(
            super::handshake_digest("3BF96D32", "sesame"),
            "7a98dc4c9e92493d7fd66a25364c862637789c45"
        );
    }
}
