//! The XML namespaces this crate speaks, as observed on Prosody 0.12.3 + prosody-modules hg20230223.

pub use crate::xml::{NS_CLIENT as CLIENT, NS_COMPONENT as COMPONENT, NS_STREAM as STREAM};
/// STARTTLS (RFC 6120).
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
/// SASL (RFC 6120).
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
/// Resource binding (RFC 6120).
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
/// Stream errors (RFC 6120).
pub const STREAMS_ERRORS: &str = "urn:ietf:params:xml:ns:xmpp-streams";
/// Stanza errors (RFC 6120).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// XEP-0198 stream management, version 3.
pub const SM: &str = "urn:xmpp:sm:3";
/// XEP-0357 push.
pub const PUSH: &str = "urn:xmpp:push:0";
/// XEP-0060 pubsub.
pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// XEP-0004 data forms.
pub const DATA: &str = "jabber:x:data";
/// XEP-0353 Jingle Message Initiation.
pub const JMI: &str = "urn:xmpp:jingle-message:0";
/// XEP-0166 Jingle (for `<reason>`).
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// XEP-0167 RTP description (JMI `<description>`).
pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// XEP-0334 message processing hints.
pub const HINTS: &str = "urn:xmpp:hints";
/// XEP-0184 receipts.
pub const RECEIPTS: &str = "urn:xmpp:receipts";
/// XEP-0085 chat states.
pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
/// XEP-0313 MAM (version 2).
pub const MAM: &str = "urn:xmpp:mam:2";
/// XEP-0059 result set management.
pub const RSM: &str = "http://jabber.org/protocol/rsm";
/// XEP-0297 forwarding.
pub const FORWARD: &str = "urn:xmpp:forward:0";
/// XEP-0203 delayed delivery.
pub const DELAY: &str = "urn:xmpp:delay";
/// XEP-0359 stanza ids.
pub const SID: &str = "urn:xmpp:sid:0";
/// XEP-0199 ping.
pub const PING: &str = "urn:xmpp:ping";
/// XEP-0077 in-band registration.
pub const REGISTER: &str = "jabber:iq:register";
/// XEP-0030 disco#info.
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// XEP-0280 carbons.
pub const CARBONS: &str = "urn:xmpp:carbons:2";
