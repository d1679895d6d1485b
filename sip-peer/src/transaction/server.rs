//! Server transactions: every request received opens one (keyed by branch and method); a
//! retransmission is answered from it with its last response; CANCEL is answered 200 and its
//! INVITE 487; a final response to INVITE over UDP is retransmitted until the ACK (Timers G/H);
//! transactions expire 64·T1 after they were created (an INVITE still unanswered lives on).

use super::txn_key;
use crate::error::SipError;
use crate::message::{build_response, reason_phrase, Message};
use crate::syntax::random_hex;
use crate::transport::net::{self, NetUser};
use crate::transport::{Offline, Transport};
use crate::uri::SipUri;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::lock;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A request received from the peer, with what is needed to answer it.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    /// The request.
    pub message: Message,
    /// Where it came from (responses go back there).
    pub source: SocketAddr,
    pub(crate) key: String,
}

struct AckSignal {
    done: AtomicBool,
    notify: Notify,
}

impl AckSignal {
    fn new() -> Arc<AckSignal> {
        Arc::new(AckSignal {
            done: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }
    fn fire(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_one();
    }
}

struct ServerTxn {
    final_code: Option<u16>,
    last: Option<(Bytes, String)>,
    source: SocketAddr,
    /// The INVITE's bytes (a cheap shared copy), parsed again to build a 487 on CANCEL.
    invite: Option<Bytes>,
    /// The INVITE's `call-id|cseq`, the key of its 2xx ACK signal.
    dialog_key: Option<String>,
    to_tag: Option<String>,
    ack: Arc<AckSignal>,
}

#[derive(Default)]
struct ServerTable {
    map: HashMap<String, ServerTxn>,
    expiry: VecDeque<(Instant, String)>,
    /// `call-id|cseq` → the ACK signal of a 2xx being retransmitted.
    ack2xx: HashMap<String, Arc<AckSignal>>,
}

/// What became of a request that arrived.
pub(crate) enum Arrival {
    /// It retransmits a request already received: its last response, if any, to send again
    /// (bytes, summary, to).
    Retransmission(Option<(Bytes, String, SocketAddr)>),
    /// A new transaction; the Call-IDs of INVITEs whose transactions just expired without a 2xx
    /// (their dialog routes can go).
    New {
        /// The request, ready to be answered.
        request: IncomingRequest,
        /// Call-IDs of INVITE transactions that ended without a 2xx.
        ended: Vec<String>,
    },
}

/// The server transactions of one endpoint.
#[derive(Default)]
pub(crate) struct ServerTxns {
    table: Mutex<ServerTable>,
}

/// What a server transaction needs from the layer above.
pub(crate) trait ServerUser: NetUser {
    /// The transactions.
    fn server_txns(&self) -> &ServerTxns;
}

impl ServerTxns {
    /// An ACK arrived: ends the retransmissions of a non-2xx final response to its INVITE, or of
    /// the 2xx of dialog `call_id` / `cseq`.
    pub(crate) fn on_ack(&self, branch: &str, call_id: &str, cseq: u32) {
        let key = txn_key(branch, "INVITE");
        let table = lock(&self.table);
        if let Some(t) = table.map.get(&key) {
            if t.final_code.is_some_and(|c| c >= 300) {
                // ACK for a non-2xx: ends the transaction's retransmissions; the call
                // still sees it.
                t.ack.fire();
            }
        }
        if let Some(sig) = table.ack2xx.get(&format!("{call_id}|{cseq}")) {
            sig.fire();
        }
    }

    /// A request (not ACK) with this top-Via branch and CSeq number arrived from `from`: a
    /// retransmission of one already received, or a new transaction (older ones expire
    /// meanwhile).
    pub(crate) fn on_request(
        &self,
        message: Message,
        raw: &Bytes,
        from: SocketAddr,
        (branch, cseq): (&str, u32),
        linger: Duration,
    ) -> Arrival {
        let method = message.method().unwrap_or("");
        let call_id = message.call_id().unwrap_or("");
        let key = txn_key(branch, method);
        let mut table = lock(&self.table);
        if let Some(t) = table.map.get(&key) {
            return Arrival::Retransmission(t.last.clone().map(|(b, s)| (b, s, t.source)));
        }
        let now = Instant::now();
        let ended = sweep(&mut table, now, linger);
        table.map.insert(
            key.clone(),
            ServerTxn {
                final_code: None,
                last: None,
                source: from,
                invite: (method == "INVITE").then(|| raw.clone()),
                dialog_key: (method == "INVITE").then(|| format!("{call_id}|{cseq}")),
                to_tag: None,
                ack: AckSignal::new(),
            },
        );
        table.expiry.push_back((now + linger, key.clone()));
        Arrival::New {
            request: IncomingRequest {
                message,
                source: from,
                key,
            },
            ended,
        }
    }
}

/// Drops expired server transactions; returns the Call-IDs of INVITEs that ended without a
/// 2xx (their dialog routes can go).
fn sweep(table: &mut ServerTable, now: Instant, linger: Duration) -> Vec<String> {
    let mut ended = Vec::new();
    while let Some((at, _)) = table.expiry.front() {
        if *at > now {
            break;
        }
        let Some((_, key)) = table.expiry.pop_front() else {
            break;
        };
        let keep = table
            .map
            .get(&key)
            .is_some_and(|t| t.invite.is_some() && t.final_code.is_none());
        if keep {
            // An INVITE still waiting for its answer lives on.
            table.expiry.push_back((now + linger, key));
            continue;
        }
        if let Some(t) = table.map.remove(&key) {
            if let Some(dk) = &t.dialog_key {
                table.ack2xx.remove(dk);
                if !t.final_code.is_some_and(|c| (200..300).contains(&c)) {
                    if let Some((cid, _)) = dk.rsplit_once('|') {
                        ended.push(cid.to_owned());
                    }
                }
            }
        }
    }
    ended
}

/// Answers a CANCEL (RFC 3261 §9.2): 481 when no INVITE of that branch is known (returns
/// false), else 200, and 487 to the INVITE if it is still unanswered (returns true).
pub(crate) fn answer_cancel<U: ServerUser>(
    up: &Arc<U>,
    req: &IncomingRequest,
    branch: &str,
) -> bool {
    let invite_key = txn_key(branch, "INVITE");
    let pending = {
        let table = lock(&up.server_txns().table);
        table.map.get(&invite_key).map(|t| {
            (
                t.final_code.is_none(),
                t.invite.clone(),
                t.to_tag.clone(),
                t.source,
            )
        })
    };
    let Some((unanswered, invite, to_tag, source)) = pending else {
        let _ = respond_with(up, req, 481, None, None);
        return false;
    };
    let _ = respond_with(up, req, 200, None, to_tag.as_deref());
    if unanswered {
        if let Some(invite) =
            invite.and_then(|raw| Message::parse_with(&raw, &up.net().cfg.limits).ok())
        {
            let inv = IncomingRequest {
                message: invite,
                source,
                key: invite_key,
            };
            let tag = to_tag.unwrap_or_else(random_hex);
            let _ = respond_with(up, &inv, 487, None, Some(&tag));
        }
    }
    true
}

/// Sends a response in the request's server transaction. A second final response is an
/// error. For INVITE over UDP, final responses are retransmitted until the ACK.
pub(crate) fn respond<U: ServerUser>(
    up: &Arc<U>,
    req: &IncomingRequest,
    resp: Message,
) -> Result<(), SipError> {
    let code = resp.status().unwrap_or(0);
    let bytes = resp.to_bytes();
    let summary = up.net().summary_of(&resp);
    let is_invite = req.message.method() == Some("INVITE");
    let ack = {
        let mut table = lock(&up.server_txns().table);
        let Some(t) = table.map.get_mut(&req.key) else {
            return Err(SipError::State(format!(
                "the transaction of {} is gone",
                req.message.summary()
            )));
        };
        if let Some(done) = t.final_code {
            return Err(SipError::State(format!(
                "{} was already answered {done}",
                req.message.summary()
            )));
        }
        if code >= 200 {
            t.final_code = Some(code);
        }
        if t.to_tag.is_none() {
            if let Ok(to) = resp.to() {
                t.to_tag = to.tag().map(str::to_owned);
            }
        }
        t.last = Some((bytes.clone(), summary.clone()));
        let ack = t.ack.clone();
        if is_invite && (200..300).contains(&code) {
            if let (Ok(cid), Ok(cseq)) = (req.message.call_id(), req.message.cseq()) {
                table
                    .ack2xx
                    .insert(format!("{cid}|{}", cseq.seq), ack.clone());
            }
        }
        ack
    };
    let dest = response_destination(up.net(), req);
    net::send(up, dest, bytes.clone(), &summary)?;
    if is_invite && code >= 200 && !up.net().cfg.transport.is_stream() {
        let u = up.clone();
        tokio::spawn(async move {
            let t = u.net().cfg.timers;
            let end = Instant::now() + t.transaction_timeout();
            let mut interval = t.t1;
            loop {
                tokio::select! {
                    _ = ack.notify.notified() => break,
                    _ = tokio::time::sleep(interval) => {
                        if ack.done.load(Ordering::Acquire) || Instant::now() >= end { break }
                        if u.net().offline() != Offline::Online { continue }
                        let _ = net::send(&u, dest, bytes.clone(), &summary);
                        interval = (interval * 2).min(t.t2);
                    }
                }
            }
        });
    }
    Ok(())
}

/// Where a response to `req` goes: its source, or over a stream transport whose connection is
/// gone, the address RFC 3261 §18.2.2 names: the top Via's `received` IP (else its sent-by
/// host, when that is an IP) and its sent-by port. A proxy's connection may carry its request
/// from an ephemeral port, which nobody listens on once that connection is closed.
fn response_destination(net: &net::Net, req: &IncomingRequest) -> SocketAddr {
    if !net.cfg.transport.is_stream() || net.has_connection(&req.source) {
        return req.source;
    }
    let Ok(via) = req.message.top_via() else {
        return req.source;
    };
    let host = via.param("received").unwrap_or(&via.host);
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse();
    let default_port = if net.cfg.transport == Transport::Tls {
        5061
    } else {
        5060
    };
    match ip {
        Ok(ip) => SocketAddr::new(ip, via.port.unwrap_or(default_port)),
        Err(_) => req.source,
    }
}

/// Builds and sends a response with `code` (standard reason), optional Contact, and To-tag.
pub(crate) fn respond_with<U: ServerUser>(
    up: &Arc<U>,
    req: &IncomingRequest,
    code: u16,
    contact: Option<&SipUri>,
    to_tag: Option<&str>,
) -> Result<(), SipError> {
    let mut resp = build_response(&req.message, code, reason_phrase(code), to_tag);
    if let Some(c) = contact {
        resp.push_header("Contact", format!("<{c}>"));
    }
    resp.set_header("Content-Length", "0");
    respond(up, req, resp)
}
