//! REGISTERs written byte by byte, as the sip-peer corpus has them (compact headers, an IPv6
//! Contact host, two Contacts, an escaped `pn-prid`, odd Contact parameters), sent over UDP from a
//! fresh socket and recorded on the timeline; and the outcome of a REGISTER a step sent.

use super::gateway::loopback_for;
use super::SipCast;
use crate::verdict::StepError;
use sip_peer::Message;
use std::time::{Duration, Instant};
use timeline::Protocol;

/// The outcome of a REGISTER a step sent.
#[derive(Clone, Debug)]
pub struct RegResult {
    /// When it was sent.
    pub sent: Instant,
    /// How long until the final response (or the error).
    pub took: Duration,
    /// The final response, if one came.
    pub response: Option<Message>,
    /// Why there is none.
    pub error: Option<String>,
}

impl RegResult {
    /// The final response's status, if one came.
    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().and_then(Message::status)
    }

    /// What came back, for failure messages.
    pub fn describe(&self) -> String {
        match (&self.response, &self.error) {
            (Some(r), _) => format!("{} after {} ms", r.summary(), self.took.as_millis()),
            (None, Some(e)) => format!("no response: {e}"),
            (None, None) => "nothing".into(),
        }
    }
}

fn rand_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl SipCast {
    /// Sends a hand-written REGISTER from Alice's iPhone over UDP (a fresh socket; `contact`
    /// writes the Contact value for its local address; `compact` uses the compact header names)
    /// and waits for its final response. Recorded on the timeline like any other message.
    pub async fn raw_register(
        &self,
        contact: impl Fn(std::net::SocketAddr) -> String,
        compact: bool,
        within: Duration,
    ) -> Result<RegResult, StepError> {
        let c = self;
        let gw = c
            .gateway
            .addrs
            .udp
            .ok_or_else(|| StepError::inconclusive("the target has no UDP listener"))?;
        let sock = tokio::net::UdpSocket::bind(loopback_for(gw))
            .await
            .map_err(|e| StepError::inconclusive(format!("UDP socket: {e}")))?;
        let local = sock
            .local_addr()
            .map_err(|e| StepError::inconclusive(format!("UDP socket: {e}")))?;
        let rec = c.timeline.recorder("alice-iphone", Protocol::Sip);
        let (user, domain) = (&c.alice.user, &c.gateway.domain);
        let aor = format!("sip:{user}@{domain}");
        let h = |long: &'static str, short: &'static str| if compact { short } else { long };
        let text = format!(
        "REGISTER sip:{domain} SIP/2.0\r\n{}: SIP/2.0/UDP {local};branch=z9hG4bK{};rport\r\n{}: <{aor}>;tag={}\r\n{}: <{aor}>\r\n{}: {}@pushbench\r\nCSeq: 1 REGISTER\r\n{}: {}\r\nMax-Forwards: 70\r\nExpires: 3600\r\n{}: 0\r\n\r\n",
        h("Via", "v"),
        rand_hex(),
        h("From", "f"),
        rand_hex(),
        h("To", "t"),
        h("Call-ID", "i"),
        rand_hex(),
        h("Contact", "m"),
        contact(local),
        h("Content-Length", "l"),
    );
        let sent = Instant::now();
        rec.sent(
            "gateway",
            "udp",
            "REGISTER (hand-written)",
            text.clone().into_bytes(),
        );
        sock.send_to(text.as_bytes(), gw)
            .await
            .map_err(|e| StepError::inconclusive(format!("sending the REGISTER: {e}")))?;
        let deadline = tokio::time::Instant::now() + within;
        let mut buf = vec![0u8; 65536];
        loop {
            match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                Err(_) => {
                    return Ok(RegResult {
                        sent,
                        took: sent.elapsed(),
                        response: None,
                        error: Some(format!("no final response within {within:?}")),
                    })
                }
                Ok(Err(e)) => {
                    return Ok(RegResult {
                        sent,
                        took: sent.elapsed(),
                        response: None,
                        error: Some(e.to_string()),
                    })
                }
                Ok(Ok((n, _))) => {
                    let bytes = &buf[..n];
                    match Message::parse(bytes) {
                        Ok(m) => {
                            rec.received("gateway", "udp", m.summary(), bytes.to_vec());
                            if m.status().is_some_and(|s| s >= 200) {
                                return Ok(RegResult {
                                    sent,
                                    took: sent.elapsed(),
                                    response: Some(m),
                                    error: None,
                                });
                            }
                        }
                        Err(e) => {
                            rec.received("gateway", "udp", "unparsable", bytes.to_vec());
                            return Err(StepError::fail_with_message(
                            format!("the gateway answered the REGISTER with bytes that are not SIP: {e}"),
                            bytes.to_vec(),
                        ));
                        }
                    }
                }
            }
        }
    }
}
