//! Retransmissions over UDP (RFC 3261 §17): a forwarded request without a response (Timers A/E)
//! and a non-2xx final response to an INVITE until its ACK (Timer G), both capped at T1·8.

use super::{Event, Proxy};
use crate::flow::Flow;
use sip_peer::Transport;
use std::time::Duration;

impl Proxy {
    /// Starts Timer A/E for a request just sent over UDP.
    pub(super) fn start_resend(&self, branch: &str, flow: Flow) {
        if flow.transport == Transport::Udp {
            self.after(
                self.timers.t1,
                Event::ResendRequest {
                    branch: branch.to_owned(),
                    wait: self.timers.t1,
                    left: 6,
                },
            );
        }
    }

    /// Starts Timer G for a non-2xx final response to an INVITE just sent over UDP.
    pub(super) fn start_resend_final(&self, id: u64, flow: Flow, method: &str) {
        if flow.transport == Transport::Udp && method == "INVITE" {
            self.after(
                self.timers.t1,
                Event::ResendFinal {
                    call: id,
                    wait: self.timers.t1,
                    left: 6,
                },
            );
        }
    }

    pub(super) fn on_resend_request(&mut self, branch: String, wait: Duration, left: u32) {
        let pending = if let Some(&(id, idx)) = self.client_index.get(&branch) {
            self.calls
                .get(&id)
                .and_then(|c| c.branches.get(idx))
                .filter(|b| !b.provisional && !b.done)
                .map(|b| (b.flow, b.request.clone()))
        } else {
            self.relays
                .get(&branch)
                .filter(|r| !r.answered)
                .map(|r| (r.dest, r.request.clone()))
        };
        let Some((flow, req)) = pending else {
            return;
        };
        if left == 0 {
            return;
        }
        self.send(&flow, &req);
        let next = (wait * 2).min(self.timers.t1 * 8);
        self.after(
            next,
            Event::ResendRequest {
                branch,
                wait: next,
                left: left - 1,
            },
        );
    }

    pub(super) fn on_resend_final(&mut self, id: u64, wait: Duration, left: u32) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(last) = call.last_response.clone() else {
            return;
        };
        if call.acked || left == 0 || last.status().is_none_or(|s| s < 300) {
            return;
        }
        let flow = call.upstream;
        self.send(&flow, &last);
        let next = (wait * 2).min(self.timers.t1 * 8);
        self.after(
            next,
            Event::ResendFinal {
                call: id,
                wait: next,
                left: left - 1,
            },
        );
    }
}
