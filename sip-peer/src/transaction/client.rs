//! Client transactions: one small task per request sent (retransmissions over UDP with Timers A
//! and E, Timer B or F when no final response comes, Timer C's three minutes once an INVITE is
//! proceeding), and the hop-by-hop ACK of a non-2xx final response to an INVITE.

use super::{txn_key, Event, SentAck};
use crate::error::{ConnectionError, SipError, TransportError};
use crate::message::{build_non2xx_ack, Message};
use crate::transport::net::{self, NetUser};
use crate::transport::Offline;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timeline::lock;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a client transaction task receives.
enum TxInput {
    Response(Box<Message>),
    TransportFailed(ConnectionError),
}

/// The client transactions in progress, by key, with where their request went.
#[derive(Default)]
pub(crate) struct ClientTxns {
    map: Mutex<HashMap<String, (SocketAddr, mpsc::UnboundedSender<TxInput>)>>,
}

impl ClientTxns {
    /// Hands a response to its transaction; gives it back when no transaction has that key
    /// (a retransmitted final response, or a 2xx from another fork).
    pub(crate) fn on_response(&self, key: &str, msg: Message) -> Option<Message> {
        match lock(&self.map).get(key) {
            Some((_, tx)) => {
                let _ = tx.send(TxInput::Response(Box::new(msg)));
                None
            }
            None => Some(msg),
        }
    }

    /// Ends the transactions whose request went to `dest`: the connection failed.
    pub(crate) fn connection_failed(&self, dest: SocketAddr, why: &ConnectionError) {
        for (to, tx) in lock(&self.map).values() {
            if *to == dest {
                let _ = tx.send(TxInput::TransportFailed(why.clone()));
            }
        }
    }
}

/// What a client transaction needs from the layer above.
pub(crate) trait ClientUser: NetUser {
    /// The transactions.
    fn client_txns(&self) -> &ClientTxns;
    /// The ACK of a non-2xx final response to the INVITE of call `call_id` was sent: keep it for
    /// a retransmitted final response.
    fn non2xx_ack_sent(&self, call_id: &str, ack: SentAck);
    /// A 2xx to an INVITE arrived and the caller ACKs 2xx itself (end to end, in the dialog).
    fn ack_2xx(this: &Arc<Self>, invite: &Message, ok: &Message, dest: SocketAddr);
}

/// Sends `req` in a new client transaction to `dest`; responses, timeouts and transport
/// errors go to `events`. For INVITE, a non-2xx final response is ACKed here (hop by hop)
/// and the ACK remembered through [`ClientUser::non2xx_ack_sent`]; a 2xx is ACKed through
/// [`ClientUser::ack_2xx`] when `ack_2xx` is set.
pub(crate) fn start<U: ClientUser>(
    up: &Arc<U>,
    req: Message,
    dest: SocketAddr,
    events: mpsc::UnboundedSender<Event>,
    ack_2xx: bool,
) -> Result<(), SipError> {
    let via = req.top_via()?;
    let cseq = req.cseq()?;
    let branch = via.branch().unwrap_or("").to_owned();
    let key = txn_key(&branch, &cseq.method);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let txns = up.client_txns();
    lock(&txns.map).insert(key.clone(), (dest, tx));
    let bytes = req.to_bytes();
    let summary = up.net().summary_of(&req);
    if let Err(e) = net::send(up, dest, bytes.clone(), &summary) {
        lock(&txns.map).remove(&key);
        return Err(e);
    }
    let u = up.clone();
    let task = tokio::spawn(async move {
        let t = u.net().cfg.timers;
        let reliable = u.net().cfg.transport.is_stream();
        let is_invite = cseq.method == "INVITE";
        let mut deadline = Instant::now() + t.transaction_timeout();
        let mut interval = t.t1;
        let mut next = (!reliable).then(|| Instant::now() + interval);
        let mut proceeding = false;
        loop {
            let wake = next.map_or(deadline, |n| n.min(deadline));
            tokio::select! {
                m = rx.recv() => {
                    let resp = match m {
                        None => break,
                        Some(TxInput::Response(r)) => *r,
                        Some(TxInput::TransportFailed(why)) => {
                            let _ = events.send(Event::Transport(TransportError::Connection { peer: dest, source: why }));
                            break;
                        }
                    };
                    let code = resp.status().unwrap_or(0);
                    if code < 200 {
                        if is_invite {
                            next = None;
                            // Timer C (RFC 3261 §16.6) is the proxy's; a UA waits for
                            // the callee: three minutes.
                            deadline = Instant::now() + Duration::from_secs(180);
                            proceeding = true;
                        } else if !reliable {
                            interval = t.t2;
                            next = Some(Instant::now() + interval);
                        }
                        let _ = events.send(Event::Response(Box::new(resp)));
                        continue;
                    }
                    if is_invite && code >= 300 {
                        let ack = build_non2xx_ack(&req, &resp);
                        let ack_bytes = ack.to_bytes();
                        let ack_summary = u.net().summary_of(&ack);
                        let _ = net::send(&u, dest, ack_bytes.clone(), &ack_summary);
                        if let Ok(cid) = req.call_id() {
                            u.non2xx_ack_sent(cid, SentAck {
                                to_tag: resp.to().ok().and_then(|t| t.tag().map(str::to_owned)),
                                bytes: ack_bytes,
                                dest,
                                summary: ack_summary,
                            });
                        }
                    }
                    if is_invite && ack_2xx && code < 300 {
                        U::ack_2xx(&u, &req, &resp, dest);
                    }
                    let _ = events.send(Event::Response(Box::new(resp)));
                    break;
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= deadline {
                        let timer = match (is_invite, proceeding) {
                            (true, false) => 'B',
                            (true, true) => 'C',
                            (false, _) => 'F',
                        };
                        u.net().recorder.note(format!("Timer {timer} fired for {}", req.summary()));
                        let _ = events.send(Event::TxTimeout { request: req.summary(), timer });
                        break;
                    }
                    if u.net().offline() == Offline::Online {
                        let _ = net::send(&u, dest, bytes.clone(), &summary);
                    }
                    interval = if is_invite { interval * 2 } else { (interval * 2).min(t.t2) };
                    next = Some(now + interval);
                }
            }
        }
        lock(&u.client_txns().map).remove(&key);
    });
    // The transaction dies with its endpoint: a torn-down party must not go on retransmitting
    // (an INVITE would otherwise reach the gateway until Timer B, 32 s later).
    up.net().keep_task(task.abort_handle());
    Ok(())
}

/// Sends a request and waits for its final response (provisional ones are skipped but
/// listed in a timeout error).
pub(crate) async fn request<U: ClientUser>(
    up: &Arc<U>,
    req: Message,
    dest: SocketAddr,
    within: Duration,
) -> Result<Message, SipError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let what = format!("final response to {}", req.summary());
    start(up, req, dest, tx, false)?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + within;
    let mark = up.net().malformed_mark();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Err(up.net().timeout_error(mark, what, within, seen)),
            Ok(None) => return Err(TransportError::TransactionEnded.into()),
            Ok(Some(Event::Response(m))) if m.status().unwrap_or(0) >= 200 => return Ok(*m),
            Ok(Some(Event::Response(m))) => seen.push(m.summary()),
            Ok(Some(Event::TxTimeout { request, timer })) => {
                return Err(SipError::TransactionTimeout {
                    request,
                    timer,
                    received: seen,
                })
            }
            Ok(Some(Event::Transport(e))) => return Err(SipError::Transport(e)),
            Ok(Some(Event::Request(m))) => seen.push(m.summary()),
        }
    }
}
