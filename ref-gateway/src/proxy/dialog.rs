//! In-dialog traffic: the ACK of our own error response (absorbed, stops Timer G), requests of an
//! established dialog relayed over the other side's flow (our Route entries stripped), and the
//! responses that come back for branches and relays.

use super::{header, pop_via, server_key, Proxy, Relay};
use crate::flow::Flow;
use sip_peer::{Message, NameAddr};

impl Proxy {
    pub(super) fn on_ack(&mut self, flow: Flow, req: Message) {
        if let Some(id) = server_key(&req).and_then(|k| self.server_index.get(&k).copied()) {
            let non2xx = self.calls.get(&id).is_some_and(|c| {
                c.last_response
                    .as_ref()
                    .and_then(Message::status)
                    .is_some_and(|s| s >= 300)
            });
            if non2xx {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.acked = true;
                }
                return; // the ACK of our (or a relayed) error response: hop by hop, absorbed
            }
        }
        self.on_in_dialog(flow, req);
    }

    pub(super) fn strip_our_routes(&self, req: &mut Message) {
        let routes: Vec<String> = req
            .header_values("Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        if routes.is_empty() {
            return;
        }
        let kept: Vec<String> = routes
            .into_iter()
            .filter(|r| {
                !NameAddr::parse(r)
                    .ok()
                    .and_then(|a| a.uri.socket_addr())
                    .is_some_and(|a| self.listeners.is_local(a))
            })
            .collect();
        req.remove_header("Route");
        for r in kept {
            req.push_header("Route", r);
        }
    }

    pub(super) fn on_in_dialog(&mut self, flow: Flow, mut req: Message) {
        let method = req.method().unwrap_or("").to_owned();
        self.strip_our_routes(&mut req);
        let call_id = req.call_id().unwrap_or("").to_owned();
        let from_tag = req
            .from()
            .ok()
            .and_then(|f| f.tag().map(str::to_owned))
            .unwrap_or_default();
        let Some(d) = self.dialogs.get(&call_id) else {
            if method != "ACK" {
                self.reply(&req, &flow, 481, "Call/Transaction Does Not Exist");
            }
            return;
        };
        let dest = if from_tag == d.caller_tag {
            d.callee_flow
        } else {
            d.caller_flow
        };
        if !self.listeners.is_open(&dest) {
            if method != "ACK" {
                self.reply(&req, &flow, 480, "Temporarily Unavailable");
            }
            return;
        }
        let (via, branch) = self.via(dest.transport);
        let mf = req.max_forwards().ok().flatten().unwrap_or(70);
        req.set_header("Max-Forwards", mf.saturating_sub(1).to_string());
        req.headers.insert(0, header("Via", via));
        if method != "ACK" {
            self.relays.insert(
                branch.clone(),
                Relay {
                    upstream: flow,
                    dest,
                    request: req.clone(),
                    answered: false,
                },
            );
            self.start_resend(&branch, dest);
        }
        self.send(&dest, &req);
    }

    pub(super) fn on_response(&mut self, mut resp: Message) {
        let Some(branch) = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned))
        else {
            return;
        };
        let code = resp.status().unwrap_or(0);
        if let Some(relay) = self.relays.get_mut(&branch) {
            relay.answered = true;
            let up = relay.upstream;
            pop_via(&mut resp);
            if code >= 200 {
                self.relays.remove(&branch);
                // The dialog ends with the BYE's final response (a lost BYE can be repeated).
                if resp.cseq().is_ok_and(|c| c.method == "BYE") {
                    if let Ok(cid) = resp.call_id() {
                        self.dialogs.remove(cid);
                    }
                }
            }
            self.send(&up, &resp);
            return;
        }
        let Some((id, idx)) = self.client_index.get(&branch).copied() else {
            tracing::debug!(%branch, "response to no branch of ours dropped");
            return;
        };
        if resp.cseq().map(|c| c.method == "CANCEL").unwrap_or(false) {
            return; // the 200 to our CANCEL
        }
        pop_via(&mut resp);
        self.on_branch_response(id, idx, resp);
    }
}
