//! The dispatch layer: where every message that arrived goes, and the state shared by the layers
//! of one endpoint ([`Core`]).
//!
//! Dispatch is synchronous, on the receive task: responses go to their client transaction (a late
//! final response re-sends the ACK, a 2xx from another fork is ACKed in its own dialog);
//! retransmitted requests are answered by their server transaction; CANCEL is answered 200 +
//! 487; in-dialog requests (a To-tag) go to the call's route; new requests go to the role's
//! handler (the phone account), or get a default answer.

use crate::dialog::Dialog;
use crate::error::SipError;
use crate::message::Message;
use crate::transaction::client::{self, ClientTxns, ClientUser};
use crate::transaction::server::{self, Arrival, IncomingRequest, ServerTxns, ServerUser};
use crate::transaction::{txn_key, Event, SentAck};
use crate::transport::net::{self, Net, NetUser};
use crate::transport::EndpointConfig;
use crate::uri::SipUri;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use timeline::{lock, Recorder};
use tokio::sync::mpsc;

/// What a role does with a new request (not in a dialog, not a retransmission).
pub(crate) type Handler = Box<dyn Fn(&Arc<Core>, IncomingRequest) + Send + Sync>;

/// Where the messages of one call go.
pub(crate) struct CallRoute {
    pub(crate) events: mpsc::UnboundedSender<Event>,
    /// The ACKs sent for this call's INVITE, one per To-tag (forked 2xx each get their own),
    /// re-sent on a retransmitted final response.
    pub(crate) acks: Vec<SentAck>,
    /// The INVITE as last sent (caller side) when 2xx are ACKed automatically, to ACK a 2xx
    /// from another fork.
    pub(crate) invite: Option<(Message, SocketAddr)>,
}

/// The shared state of one endpoint: its sockets, its transactions, and the routes of its calls.
pub(crate) struct Core {
    net: Net,
    clients: ClientTxns,
    servers: ServerTxns,
    pub(crate) routes: Mutex<HashMap<String, CallRoute>>,
    pub(crate) handler: OnceLock<Handler>,
}

impl NetUser for Core {
    fn net(&self) -> &Net {
        &self.net
    }

    fn on_message(this: &Arc<Self>, msg: Message, raw: Bytes, from: SocketAddr) {
        if msg.is_request() {
            this.on_request(msg, raw, from);
        } else {
            this.on_response(msg);
        }
    }

    fn on_connection_failed(&self, dest: SocketAddr, why: &crate::error::ConnectionError) {
        self.clients.connection_failed(dest, why);
    }
}

impl ClientUser for Core {
    fn client_txns(&self) -> &ClientTxns {
        &self.clients
    }

    fn non2xx_ack_sent(&self, call_id: &str, ack: SentAck) {
        if let Some(r) = lock(&self.routes).get_mut(call_id) {
            r.acks.push(ack);
        }
    }

    fn ack_2xx(this: &Arc<Self>, invite: &Message, ok: &Message, dest: SocketAddr) {
        this.ack_2xx(invite, ok, dest);
    }
}

impl ServerUser for Core {
    fn server_txns(&self) -> &ServerTxns {
        &self.servers
    }
}

/// True when a From/To value has a `tag` header parameter (cheaper than a full parse: only
/// the parameters after the URI are looked at).
fn has_tag_param(value: &str) -> bool {
    let params = match value.rfind('>') {
        Some(gt) => &value[gt + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').any(|p| {
        let name = p.split('=').next().unwrap_or("").trim();
        name.eq_ignore_ascii_case("tag")
    })
}

impl Core {
    /// Binds the sockets and starts receiving.
    pub(crate) async fn start(
        cfg: EndpointConfig,
        recorder: Recorder,
        peer: String,
    ) -> Result<Arc<Core>, SipError> {
        let (net, listener) = Net::bind(cfg, recorder, peer).await?;
        let core = Arc::new(Core {
            net,
            clients: ClientTxns::default(),
            servers: ServerTxns::default(),
            routes: Mutex::new(HashMap::new()),
            handler: OnceLock::new(),
        });
        net::start(&core, listener);
        Ok(core)
    }

    /// The endpoint's configuration.
    pub(crate) fn cfg(&self) -> &EndpointConfig {
        &self.net.cfg
    }

    /// The bound address (the listener for TCP/TLS).
    pub(crate) fn local(&self) -> SocketAddr {
        self.net.local()
    }

    /// See [`net::reopen`].
    pub(crate) async fn reopen(self: &Arc<Self>) -> Result<SocketAddr, SipError> {
        net::reopen(self).await
    }

    /// Where every message is recorded.
    pub(crate) fn recorder(&self) -> &Recorder {
        &self.net.recorder
    }

    /// See [`Net::summary_of`].
    pub(crate) fn summary_of(&self, m: &Message) -> String {
        self.net.summary_of(m)
    }

    /// This endpoint's contact URI for `user` (`;transport=` added for TCP/TLS).
    pub(crate) fn contact_uri(&self, user: Option<&str>) -> SipUri {
        self.net.contact_uri(user)
    }

    /// A fresh Via value and its branch.
    pub(crate) fn new_via(&self) -> (String, String) {
        self.net.new_via()
    }

    /// A number unique in this endpoint.
    pub(crate) fn next_id(&self) -> u64 {
        self.net.next_id()
    }

    /// The sockets (for the layers above dispatch).
    pub(crate) fn net(&self) -> &Net {
        &self.net
    }

    /// Records and sends bytes to `dest`.
    pub(crate) fn send(
        self: &Arc<Self>,
        dest: SocketAddr,
        bytes: Bytes,
        summary: &str,
    ) -> Result<(), SipError> {
        net::send(self, dest, bytes, summary)
    }

    /// See [`client::start`].
    pub(crate) fn start_client(
        self: &Arc<Self>,
        req: Message,
        dest: SocketAddr,
        events: mpsc::UnboundedSender<Event>,
        ack_2xx: bool,
    ) -> Result<(), SipError> {
        client::start(self, req, dest, events, ack_2xx)
    }

    /// See [`client::request`].
    pub(crate) async fn request(
        self: &Arc<Self>,
        req: Message,
        dest: SocketAddr,
        within: Duration,
    ) -> Result<Message, SipError> {
        client::request(self, req, dest, within).await
    }

    /// See [`server::respond`].
    pub(crate) fn respond(
        self: &Arc<Self>,
        req: &IncomingRequest,
        resp: Message,
    ) -> Result<(), SipError> {
        server::respond(self, req, resp)
    }

    /// See [`server::respond_with`].
    pub(crate) fn respond_with(
        self: &Arc<Self>,
        req: &IncomingRequest,
        code: u16,
        contact: Option<&SipUri>,
        to_tag: Option<&str>,
    ) -> Result<(), SipError> {
        server::respond_with(self, req, code, contact, to_tag)
    }

    /// Sends the ACK for a 2xx to `invite` (end to end, in the dialog) and remembers it in the
    /// call's route so that a retransmitted 2xx is ACKed again.
    pub(crate) fn ack_2xx(self: &Arc<Self>, invite: &Message, ok: &Message, dest: SocketAddr) {
        let Ok(dialog) = Dialog::uac(invite, ok, dest) else {
            self.net
                .recorder
                .note(format!("cannot ACK {}: no dialog", ok.summary()));
            return;
        };
        let seq = invite.cseq().map(|c| c.seq).unwrap_or(1);
        let (via, _) = self.new_via();
        let ack = dialog.ack(seq, &via);
        let bytes = ack.to_bytes();
        let summary = self.summary_of(&ack);
        let _ = self.send(dialog.dest, bytes.clone(), &summary);
        if let Some(r) = lock(&self.routes).get_mut(&dialog.call_id) {
            r.acks.push(SentAck {
                to_tag: dialog.remote.tag().map(str::to_owned),
                bytes,
                dest: dialog.dest,
                summary,
            });
        }
    }

    fn on_response(self: &Arc<Self>, msg: Message) {
        let (Ok(via), Ok(cseq)) = (msg.top_via(), msg.cseq()) else {
            self.net
                .recorder
                .note("response without a usable Via/CSeq: ignored");
            return;
        };
        let key = txn_key(via.branch().unwrap_or(""), &cseq.method);
        let Some(msg) = self.clients.on_response(&key, msg) else {
            return;
        };
        // A final response after the transaction ended: a retransmission (re-send our ACK) or a
        // 2xx from another fork (ACK it in its own dialog, and show it to the call).
        let Ok(call_id) = msg.call_id().map(str::to_owned) else {
            return;
        };
        let status = msg.status().unwrap_or(0);
        let to_tag = msg.to().ok().and_then(|t| t.tag().map(str::to_owned));
        let (resend, fork_invite) = {
            let routes = lock(&self.routes);
            let Some(route) = routes.get(&call_id) else {
                drop(routes);
                self.net
                    .recorder
                    .note(format!("stray response ignored: {}", msg.summary()));
                return;
            };
            if cseq.method != "INVITE" || status < 200 {
                let _ = route.events.send(Event::Response(Box::new(msg)));
                return;
            }
            let resend = route.acks.iter().find(|a| a.to_tag == to_tag).cloned();
            let fork = match (&resend, &route.invite) {
                (None, Some(inv)) if (200..300).contains(&status) => Some(inv.clone()),
                _ => None,
            };
            (resend, fork)
        };
        if let Some(a) = resend {
            let _ = self.send(a.dest, a.bytes, &a.summary);
            return;
        }
        if let Some((invite, dest)) = fork_invite {
            self.ack_2xx(&invite, &msg, dest);
        }
        if let Some(route) = lock(&self.routes).get(&call_id) {
            let _ = route.events.send(Event::Response(Box::new(msg)));
        }
    }

    fn on_request(self: &Arc<Self>, msg: Message, raw: Bytes, from: SocketAddr) {
        let (Ok(via), Ok(cseq)) = (msg.top_via(), msg.cseq()) else {
            self.net
                .recorder
                .note("request without a usable Via/CSeq: ignored");
            return;
        };
        let branch = via.branch().unwrap_or("").to_owned();
        let method = msg.method().unwrap_or("").to_owned();
        let call_id = msg.call_id().unwrap_or("").to_owned();
        if method == "ACK" {
            self.servers.on_ack(&branch, &call_id, cseq.seq);
            if let Some(route) = lock(&self.routes).get(&call_id) {
                let _ = route.events.send(Event::Request(Box::new(msg)));
            }
            return;
        }
        let linger = self.net.cfg.timers.transaction_timeout();
        let req = match self
            .servers
            .on_request(msg, &raw, from, (&branch, cseq.seq), linger)
        {
            Arrival::Retransmission(last) => {
                // Answered from the transaction.
                if let Some((bytes, summary, src)) = last {
                    let _ = self.send(src, bytes, &summary);
                }
                return;
            }
            Arrival::New { request, ended } => {
                if !ended.is_empty() {
                    let mut routes = lock(&self.routes);
                    for cid in ended {
                        routes.remove(&cid);
                    }
                }
                request
            }
        };
        if method == "CANCEL" {
            if server::answer_cancel(self, &req, &branch) {
                if let Some(route) = lock(&self.routes).get(&call_id) {
                    let _ = route.events.send(Event::Request(Box::new(req.message)));
                }
            }
            return;
        }
        let has_to_tag = req.message.header("To").is_some_and(has_tag_param);
        if has_to_tag {
            let sender = lock(&self.routes).get(&call_id).map(|r| r.events.clone());
            match sender {
                Some(events) => {
                    let code = if method == "INVITE" { 488 } else { 200 };
                    let _ = self.respond_with(&req, code, None, None);
                    let _ = events.send(Event::Request(Box::new(req.message)));
                    if method == "BYE" {
                        lock(&self.routes).remove(&call_id);
                    }
                }
                None => {
                    let _ = self.respond_with(&req, 481, None, None);
                }
            }
            return;
        }
        match self.handler.get() {
            Some(h) => h(self, req),
            None => {
                let code = match method.as_str() {
                    "OPTIONS" | "MESSAGE" | "NOTIFY" => 200,
                    _ => 405,
                };
                let _ = self.respond_with(&req, code, None, None);
            }
        }
    }

    /// Aborts every task and closes every connection (the last [`crate::Endpoint`] is gone).
    pub(crate) fn stop(&self) {
        self.net.stop();
    }

    /// See [`Net::set_offline`].
    pub(crate) fn set_offline(&self, mode: crate::transport::Offline) {
        self.net.set_offline(mode);
    }

    /// See [`Net::offline`].
    pub(crate) fn offline(&self) -> crate::transport::Offline {
        self.net.offline()
    }

    /// See [`Net::close_connections`].
    pub(crate) fn close_connections(&self) {
        self.net.close_connections();
    }

    /// See [`Net::connection_count`].
    pub(crate) fn connection_count(&self) -> usize {
        self.net.connection_count()
    }
}

#[cfg(test)]
mod tests {
    use super::has_tag_param;

    #[test]
    fn a_tag_is_found_only_among_the_header_parameters() {
        assert!(has_tag_param("<sip:a@b;tag=x>;tag=1"));
        assert!(!has_tag_param("<sip:a@b;tag=x>"));
        assert!(has_tag_param("sip:a@b;tag=1"));
        assert!(!has_tag_param("sip:a@b"));
    }
}
