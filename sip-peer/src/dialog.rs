//! Dialog state (RFC 3261 §12): Call-ID, tags, remote target, route set and local CSeq, and the
//! in-dialog requests built from it (ACK for 2xx, BYE, …).

use crate::error::SipError;
use crate::headers::NameAddr;
use crate::message::Message;
use crate::uri::SipUri;
use std::net::SocketAddr;

/// One side of an established dialog.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our From/To value (with our tag).
    pub local: NameAddr,
    /// The peer's From/To value (with its tag).
    pub remote: NameAddr,
    /// The peer's Contact URI.
    pub remote_target: SipUri,
    /// Route set, in the order Route headers are written.
    pub route_set: Vec<String>,
    /// Our last CSeq number.
    pub local_cseq: u32,
    /// Where in-dialog requests are sent.
    pub dest: SocketAddr,
}

fn first_contact(m: &Message) -> Result<SipUri, SipError> {
    m.contacts()?
        .into_iter()
        .find_map(|c| c.addr().map(|a| a.uri.clone()))
        .ok_or_else(|| SipError::State(format!("{} has no Contact", m.summary())))
}

/// Where a request with this route set and target goes: the first route if it is an IP literal,
/// else the target if it is one, else `fallback`.
fn next_hop(route_set: &[String], target: &SipUri, fallback: SocketAddr) -> SocketAddr {
    if let Some(first) = route_set.first() {
        return NameAddr::parse(first)
            .ok()
            .and_then(|r| r.uri.socket_addr())
            .unwrap_or(fallback);
    }
    target.socket_addr().unwrap_or(fallback)
}

impl Dialog {
    /// The caller's dialog from the INVITE and its 2xx (route set = Record-Route reversed).
    pub fn uac(invite: &Message, ok: &Message, fallback: SocketAddr) -> Result<Dialog, SipError> {
        let remote_target = first_contact(ok)?;
        let mut route_set: Vec<String> = ok
            .header_values("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        route_set.reverse();
        let dest = next_hop(&route_set, &remote_target, fallback);
        Ok(Dialog {
            call_id: invite.call_id()?.to_owned(),
            local: invite.from()?,
            remote: ok.to()?,
            remote_target,
            route_set,
            local_cseq: invite.cseq()?.seq,
            dest,
        })
    }

    /// The callee's dialog from the INVITE it answered with `to_tag`.
    pub fn uas(invite: &Message, to_tag: &str, source: SocketAddr) -> Result<Dialog, SipError> {
        let remote_target = first_contact(invite)?;
        let route_set: Vec<String> = invite
            .header_values("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut local = invite.to()?;
        if local.tag().is_none() {
            local.set_param("tag", Some(to_tag));
        }
        // Without a route set, answer where the INVITE came from when the Contact is not an IP.
        let dest = next_hop(&route_set, &remote_target, source);
        Ok(Dialog {
            call_id: invite.call_id()?.to_owned(),
            local,
            remote: invite.from()?,
            remote_target,
            route_set,
            local_cseq: 0,
            dest,
        })
    }

    /// A request inside the dialog with the given CSeq number and method; Via is the caller's.
    pub fn request(&self, method: &str, seq: u32, via: &str) -> Message {
        let mut m = Message::request(method, self.remote_target.to_string());
        m.push_header("Via", via);
        for r in &self.route_set {
            m.push_header("Route", r.clone());
        }
        m.push_header("Max-Forwards", "70");
        m.push_header("From", self.local.to_string());
        m.push_header("To", self.remote.to_string());
        m.push_header("Call-ID", self.call_id.clone());
        m.push_header("CSeq", format!("{seq} {method}"));
        m
    }

    /// The next request (CSeq incremented).
    pub fn next_request(&mut self, method: &str, via: &str) -> Message {
        self.local_cseq += 1;
        self.request(method, self.local_cseq, via)
    }

    /// The ACK for the 2xx to the INVITE with CSeq `seq`.
    pub fn ack(&self, seq: u32, via: &str) -> Message {
        let mut m = self.request("ACK", seq, via);
        m.push_header("Content-Length", "0");
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uac_dialog_reverses_record_route_and_targets_the_first_hop() {
        let invite = Message::parse(b"INVITE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK1\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\nCall-ID: c1\r\nCSeq: 3 INVITE\r\nContent-Length: 0\r\n\r\n").unwrap();
        let ok = Message::parse(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK1\r\nRecord-Route: <sip:127.0.0.2:5060;lr>, <sip:127.0.0.3:5060;lr>\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>;tag=a1\r\nCall-ID: c1\r\nCSeq: 3 INVITE\r\nContact: <sip:alice@127.0.0.9:7000>\r\nContent-Length: 0\r\n\r\n").unwrap();
        let mut d = Dialog::uac(&invite, &ok, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(
            d.route_set,
            vec!["<sip:127.0.0.3:5060;lr>", "<sip:127.0.0.2:5060;lr>"]
        );
        assert_eq!(d.dest, "127.0.0.3:5060".parse().unwrap());
        let bye = d.next_request("BYE", "SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK2");
        assert_eq!(bye.request_uri(), Some("sip:alice@127.0.0.9:7000"));
        assert_eq!(bye.cseq().unwrap().seq, 4);
        assert_eq!(bye.to().unwrap().tag(), Some("a1"));
        assert_eq!(d.ack(3, "v").cseq().unwrap().method, "ACK");
    }

    #[test]
    fn a_2xx_without_contact_is_an_error() {
        let invite = Message::parse(b"INVITE sip:a@b SIP/2.0\r\nFrom: <sip:b@c>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n").unwrap();
        let ok = Message::parse(b"SIP/2.0 200 OK\r\nTo: <sip:a@b>;tag=2\r\nCSeq: 1 INVITE\r\n\r\n")
            .unwrap();
        assert!(matches!(
            Dialog::uac(&invite, &ok, "127.0.0.1:1".parse().unwrap()),
            Err(SipError::State(_))
        ));
    }
}
