//! sip-peer: scriptable SIP user agents for the bench — a caller and the SIP account inside the
//! simulated iPhone (RFC 8599 push parameters) — over UDP, TCP and TLS, IPv4 and IPv6.
//!
//! # API in one screen (names are stable; others build on them)
//!
//! Parsing and writing (tolerant reading, exact writing):
//! - [`Message::parse`]`(&[u8]) -> Result<Message, ParseError>`, [`Message::to_bytes`], typed
//!   accessors `call_id() cseq() vias() top_via() from() to() contacts() routes()
//!   record_routes() max_forwards() expires() content_length() challenge() authorization()
//!   feature_caps() feature_cap("+sip.pns") reason()`, raw `header(name)`, `header_values(name)`
//!   (compact names accepted everywhere), builders `request() response() push_header()
//!   set_header() set_body()`, and `summary()` (`INVITE sip:…`, `180 Ringing (INVITE)`).
//! - [`SipUri`] (ordered params, `param()`, `param_decoded()`, IPv6 kept bracketed),
//!   [`NameAddr`], [`Contact`], [`Via`], [`CSeq`], [`Challenge`].
//! - [`PushParams`]`{ provider, prid, param }`: `from_uri`, `apply_to`, `apns_voip() ->
//!   Result<ApnsVoip { token, team_id, bundle_id, topic, sandbox }, PushError>` (Linphone
//!   dialect: picks the `:voip` token, `apns.dev` = sandbox).
//! - [`StreamFramer`] frames a TCP/TLS byte stream by Content-Length, with [`Limits`].
//! - [`auth::authorization`] / [`auth::digest_response`]: digest MD5, `qop=auth`.
//!
//! Transport and transactions:
//! - [`EndpointConfig::udp`]`/tcp/tls(bind)` (+ `with_t1`), [`TlsConfig::client_trusting`]`(ca_pem,
//!   name)`, [`TlsConfig::server`]`(chain_pem, key_pem)`; [`Endpoint::bind`]`(cfg, recorder,
//!   peer_label)`; `local_addr()`, `send_raw(dest, bytes, summary)`, `close_connections()`,
//!   `set_offline(Offline::{Online, Silent, Disconnected})`.
//!
//! Roles (every step awaitable with a deadline; errors are [`SipError`]):
//! - [`Caller::new`]`(endpoint_cfg, CallerConfig::new(uri, proxy), recorder, "gateway")`;
//!   `invite(target) -> Result<Call>`; [`Call`]: `await_status(180, d)`, `await_provisional`,
//!   `await_final`, `await_answered`, `cancel(d)`, `ack()`, `bye(d)`, `await_request("BYE", d)`,
//!   `request_in_dialog(method, d)`, `received()`; `Caller::message(target, text, d)`,
//!   `Caller::options(target, d)`.
//! - [`PhoneAccount::start`]`(endpoint_cfg, PhoneConfig::new(aor, registrar), recorder,
//!   "gateway")`; `register(d) -> Result<Registration { response, expires, pns, feature_caps }>`,
//!   `refresh(d)`, `unregister(d)`, `set_policy(IncomingPolicy::…)`, `next_call(d) ->
//!   Result<IncomingCall>`, `next_message(d) -> Result<Message>`, `set_offline(mode)`,
//!   `wake(new_connection, d)`, `set_push(…)`, `unregister_all(d)`, `contact_uri()`;
//!   [`IncomingCall`]: `request()`, `call_id()`, `ring()`, `answer()`, `reject(code)`,
//!   `await_ack(d)`, `await_cancel(d)`, `await_bye(d)`, `bye(d)`, `received()`.
//!
//! ```no_run
//! use sip_peer::*;
//! use std::time::Duration;
//! use timeline::{Protocol, Timeline};
//!
//! # async fn demo() -> Result<(), SipError> {
//! let timeline = Timeline::new();
//! let d = Duration::from_secs(2);
//! let gateway: std::net::SocketAddr = "127.0.0.1:5060".parse().unwrap();
//!
//! // The iPhone's SIP account: REGISTER with pn-* params, then hold the early Answer.
//! let mut cfg = PhoneConfig::new(SipUri::parse("sip:alice@example.com")?, gateway);
//! cfg.push = Some(PushParams::apns("00fc13adff78512", "DEF123GHIJ", "com.example.app"));
//! cfg.instance = Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>".into());
//! cfg.policy = IncomingPolicy::Manual;
//! let alice = PhoneAccount::start(
//!     EndpointConfig::tcp("127.0.0.1:0".parse().unwrap()),
//!     cfg,
//!     timeline.recorder("alice-iphone", Protocol::Sip),
//!     "gateway",
//! )
//! .await?;
//! let reg = alice.register(d).await?;
//! assert_eq!(reg.pns.as_deref(), Some("apns"));
//!
//! let bob = Caller::new(
//!     EndpointConfig::udp("127.0.0.1:0".parse().unwrap()),
//!     CallerConfig::new(SipUri::parse("sip:bob@example.com")?, gateway),
//!     timeline.recorder("bob", Protocol::Sip),
//!     "gateway",
//! )
//! .await?;
//! let mut call = bob.invite("sip:alice@example.com")?;
//! call.await_status(180, d).await.ok(); // the gateway may or may not relay a 180
//! let mut incoming = alice.next_call(d).await?; // await the INVITE within d
//! incoming.answer()?; // the held early Answer
//! call.await_answered(d).await?; // the ACK goes out automatically
//! call.bye(d).await?;
//! incoming.await_bye(d).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Every message sent or received goes through the [`timeline::Recorder`] given at
//! construction, with the peer label given there.

pub mod auth;
pub mod caller;
pub mod dialog;
mod dispatch;
pub mod endpoint;
pub mod error;
pub mod headers;
mod inbox;
pub mod message;
pub mod phone;
pub mod push;
pub mod sdp;
mod syntax;
mod transaction;
pub mod transport;
pub mod uri;

pub use auth::Credentials;
pub use caller::{Call, Caller, CallerConfig};
pub use dialog::Dialog;
pub use endpoint::Endpoint;
pub use error::{ConfigError, ConnectionError, SipError, TransportError};
pub use headers::{CSeq, Challenge, Contact, NameAddr, Via};
pub use message::{
    build_non2xx_ack, build_response, reason_phrase, Header, Limits, Message, StartLine,
};
pub use phone::{IncomingCall, IncomingPolicy, PhoneAccount, PhoneConfig, Registration};
pub use push::{ApnsVoip, PushError, PushParams};
pub use syntax::{
    header_name_matches, host_of, long_header_name, percent_decode, split_list, Param, ParseError,
};
pub use transaction::server::IncomingRequest;
pub use transport::{EndpointConfig, Offline, StreamFramer, Timers, TlsConfig, Transport};
pub use uri::SipUri;

#[cfg(test)]
mod loopback_tests;
