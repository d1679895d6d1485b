//! INVITE and MESSAGE to an AOR: the call, its branches (awake contacts at once, push-bound ones
//! when their REGISTER releases the bucket), the best response upstream, the first 2xx wins and
//! the other branches are CANCELled, CANCEL from the caller, and forgetting a finished call.

use super::{
    header, random_hex, server_key, set_request_uri, Branch, Call, DialogRoute, Event, Proxy,
    STALE_SWEEP,
};
use crate::bucket::{BucketEntry, EntryState};
use crate::call_push::PushBuilder;
use crate::cancel::{on_call_ended, OnCallEnded, ANSWERED_ELSEWHERE, BUSY_EVERYWHERE};
use crate::design::Design;
use crate::faults::Fault;
use crate::flow::Flow;
use crate::push::{now_ms, target_for};
use crate::registrar::aor_key;
use phone::CancelReason;
use sip_peer::{build_non2xx_ack, Message, SipUri};
use tokio::time::Instant;

impl Proxy {
    pub(super) fn on_initial(&mut self, flow: Flow, req: Message) {
        let Some(key) = server_key(&req) else {
            return self.reply(&req, &flow, 400, "Bad Request");
        };
        if let Some(id) = self.server_index.get(&key) {
            // A retransmission: repeat the last response, push nothing.
            if let Some(r) = self.calls.get(id).and_then(|c| c.last_response.clone()) {
                self.send(&flow, &r);
            }
            return;
        }
        if req.max_forwards().ok().flatten() == Some(0) {
            return self.reply(&req, &flow, 483, "Too Many Hops");
        }
        let Some(ruri) = req.request_uri().and_then(|u| SipUri::parse(u).ok()) else {
            return self.reply(&req, &flow, 416, "Unsupported URI Scheme");
        };
        let method = req.method().unwrap_or("").to_owned();
        let aor = aor_key(&ruri);
        self.next_call += 1;
        let id = self.next_call;
        let call = Call {
            method: method.clone(),
            call_id: req.call_id().unwrap_or("").to_owned(),
            caller: req.from().map(|f| f.uri.to_string()).unwrap_or_default(),
            request: req,
            upstream: flow,
            server_key: key.clone(),
            to_tag: random_hex(),
            last_response: None,
            final_sent: false,
            answered: false,
            branches: Vec::new(),
            bucket: Vec::new(),
            best: None,
            timer: None,
            acked: false,
            held_awake: Vec::new(),
            late_487: false,
        };
        self.server_index.insert(key, id);
        self.calls.insert(id, call);
        if method == "INVITE" {
            self.respond_upstream(id, 100, "Trying");
        }
        let now = Instant::now();
        let seen_at = if self.faults.has(Fault::StaleBindings) {
            now.checked_sub(STALE_SWEEP).unwrap_or(now)
        } else {
            now
        };
        let bindings = self.registrar.lookup(&aor, seen_at);
        if bindings.is_empty() {
            self.respond_upstream(id, 404, "Not Found");
            self.maybe_linger(id);
            return;
        }
        // Fault ring-awake-after-wake: with a push-bound binding in the fork, the awake contacts
        // wait until the pushed device has registered (or the bucket gave up on it).
        let hold_awake =
            self.faults.has(Fault::RingAwakeAfterWake) && bindings.iter().any(|b| b.push.is_some());
        for b in &bindings {
            match &b.push {
                None if hold_awake => {
                    self.recorder.note(format!(
                        "fault ring-awake-after-wake: {} rings only after the pushed device registered",
                        b.contact
                    ));
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.held_awake.push((b.contact.clone(), b.flow));
                    }
                }
                None => {
                    self.forward_branch(id, &b.contact, b.flow, false);
                }
                Some(p) => match target_for(p, &self.faults) {
                    Ok(t) => {
                        if method == "MESSAGE"
                            && t.alert_token.is_none()
                            && !self.faults.has(Fault::MessageAsVoip)
                        {
                            self.recorder.note(format!(
                                "no alert token for binding {}: a message never goes as VoIP",
                                b.id
                            ));
                            continue;
                        }
                        if self.design == Design::Tsilo {
                            // tsilo relays at once to the contact it has, however stale.
                            if let Some(idx) = self.forward_branch(id, &b.contact, b.flow, false) {
                                if let Some(br) = self
                                    .calls
                                    .get_mut(&id)
                                    .and_then(|c| c.branches.get_mut(idx))
                                {
                                    br.stale = true;
                                }
                            }
                        }
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.bucket.push(BucketEntry {
                                binding_id: b.id,
                                aor: aor.clone(),
                                push: p.clone(),
                                contact: b.contact.clone(),
                                target: t,
                                state: EntryState::Delayed,
                            });
                        }
                        if method == "INVITE" && !self.timers.push_delay.is_zero() {
                            self.after(
                                self.timers.push_delay,
                                Event::PushDue {
                                    call: id,
                                    binding: b.id,
                                },
                            );
                        } else {
                            self.on_push_due(id, b.id);
                        }
                    }
                    Err(e) => {
                        tracing::info!(binding = b.id, error = %e, "no push possible");
                        self.recorder
                            .note(format!("no push for binding {}: {e}", b.id));
                    }
                },
            }
        }
        let has_bucket = self.calls.get(&id).is_some_and(|c| !c.bucket.is_empty());
        if has_bucket && !self.faults.has(Fault::NoBucketTimer) {
            let h = self.after(self.timers.bucket_timer, Event::BucketTimer { call: id });
            if let Some(c) = self.calls.get_mut(&id) {
                c.timer = Some(h);
            }
        }
        self.maybe_finish(id);
    }

    /// Sends the call's request to one contact over `flow`; returns the branch index.
    pub(super) fn forward_branch(
        &mut self,
        id: u64,
        contact: &SipUri,
        flow: Flow,
        replay: bool,
    ) -> Option<usize> {
        let (via, branch) = self.via(flow.transport);
        let rr_out = self.record_route(flow.transport);
        let call = self.calls.get(&id)?;
        let rr_in = self.record_route(call.upstream.transport);
        let mut req = call.request.clone();
        set_request_uri(&mut req, &contact.to_string());
        let mf = req.max_forwards().ok().flatten().unwrap_or(70);
        req.set_header("Max-Forwards", mf.saturating_sub(1).to_string());
        if call.method == "INVITE" {
            // RFC 5658 double Record-Route when the two sides use different transports.
            if rr_in != rr_out {
                if let Some(rr) = rr_in {
                    req.headers.insert(0, header("Record-Route", rr));
                }
            }
            if let Some(rr) = rr_out {
                req.headers.insert(0, header("Record-Route", rr));
            }
        }
        req.headers.insert(0, header("Via", via));
        // A contact whose connection is gone cannot be reached: the branch ends at once.
        let reachable = self.listeners.is_open(&flow);
        if reachable {
            self.send(&flow, &req);
        } else {
            self.recorder.note(format!(
                "flow {flow} of {contact} is closed: branch not sent"
            ));
        }
        let call = self.calls.get_mut(&id)?;
        call.branches.push(Branch {
            id: branch.clone(),
            flow,
            request: req,
            provisional: false,
            done: !reachable,
            cancelled: false,
            pending_cancel: None,
            replay,
            stale: false,
        });
        let idx = call.branches.len() - 1;
        self.client_index.insert(branch.clone(), (id, idx));
        self.start_resend(&branch, flow);
        Some(idx)
    }

    /// CANCELs a branch (held until its first provisional, RFC 3261 §9.1).
    pub(super) fn cancel_branch(&mut self, id: u64, idx: usize, reason: Option<String>) {
        let Some(b) = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.branches.get_mut(idx))
        else {
            return;
        };
        if b.done || b.cancelled {
            return;
        }
        if !b.provisional {
            b.pending_cancel = Some(reason);
            return;
        }
        b.cancelled = true;
        let inv = &b.request;
        let mut c = Message::request("CANCEL", inv.request_uri().unwrap_or("sip:invalid"));
        if let Some(v) = inv.header_values("Via").first() {
            c.push_header("Via", *v);
        }
        c.push_header("Max-Forwards", "70");
        for name in ["From", "To", "Call-ID"] {
            if let Some(v) = inv.header(name) {
                c.push_header(name, v);
            }
        }
        let seq = inv.cseq().map(|c| c.seq).unwrap_or(1);
        c.push_header("CSeq", format!("{seq} CANCEL"));
        if let Some(r) = reason {
            c.push_header("Reason", r);
        }
        c.push_header("Content-Length", "0");
        let flow = b.flow;
        self.send(&flow, &c);
    }

    /// A response generated here for the call's request (100, 404, 480, 487…).
    pub(super) fn respond_upstream(&mut self, id: u64, code: u16, reason: &str) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let tag = (code > 100).then_some(call.to_tag.as_str());
        let mut r = Self::response(&call.request, code, reason, tag);
        r.push_header("Content-Length", "0");
        if code >= 200 {
            call.final_sent = true;
            if let Some(t) = call.timer.take() {
                t.abort();
            }
        }
        call.last_response = Some(r.clone());
        let flow = call.upstream;
        let method = call.method.clone();
        self.send(&flow, &r);
        if code >= 300 {
            self.start_resend_final(id, flow, &method);
        }
    }

    /// Sends the final answer when nothing is pending any more: the best branch response, or
    /// 480 (bucket timer, failed pushes, no reachable contact).
    pub(super) fn maybe_finish(&mut self, id: u64) {
        self.release_held_awake(id);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.final_sent || call.late_487 {
            // Fault late-487: only the Bucket Timer answers this call.
            return;
        }
        let pending_branch = call
            .branches
            .iter()
            .any(|b| !b.done && !b.replay && !b.stale);
        let waiting = call.bucket.iter().any(BucketEntry::is_waiting);
        if pending_branch || waiting {
            return;
        }
        match call.best.take() {
            Some(best) => {
                call.final_sent = true;
                if let Some(t) = call.timer.take() {
                    t.abort();
                }
                call.last_response = Some(best.clone());
                let flow = call.upstream;
                let method = call.method.clone();
                self.send(&flow, &best);
                self.start_resend_final(id, flow, &method);
            }
            None => self.respond_upstream(id, 480, "Temporarily Unavailable"),
        }
        self.maybe_linger(id);
    }

    /// Fault `ring-awake-after-wake`: once no bucket entry waits any more (the pushed device
    /// registered, or its push failed, or the Bucket Timer fired), the held awake contacts get
    /// the call; a call already final forgets them.
    fn release_held_awake(&mut self, id: u64) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.held_awake.is_empty() || call.bucket.iter().any(BucketEntry::is_waiting) {
            return;
        }
        let held = std::mem::take(&mut call.held_awake);
        if call.final_sent {
            return;
        }
        for (contact, flow) in held {
            self.forward_branch(id, &contact, flow, false);
        }
    }

    /// Schedules forgetting a call once it is final and its bucket is empty.
    pub(super) fn maybe_linger(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.final_sent && call.bucket.is_empty() {
            self.after(self.timers.linger, Event::Linger { call: id });
        }
    }

    pub(super) fn on_linger(&mut self, id: u64) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if !(call.final_sent && call.bucket.is_empty()) {
            return;
        }
        if let Some(call) = self.calls.remove(&id) {
            self.server_index.remove(&call.server_key);
            for b in &call.branches {
                self.client_index.remove(&b.id);
            }
        }
    }

    /// The call ended (CANCEL, or answered elsewhere): branches get CANCEL, bucket entries
    /// follow the profile.
    pub(super) fn end_call(&mut self, id: u64, except: Option<usize>, reason: Option<String>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let n = call.branches.len();
        let policy = self.cancel;
        let faults = self.faults.clone();
        let mut cancel_pushes = Vec::new();
        let call_id = call.call_id.clone();
        let mut keep = Vec::new();
        for mut e in call.bucket.drain(..) {
            match on_call_ended(&e.state, reason.as_deref(), policy, &faults) {
                OnCallEnded::Drop => {}
                OnCallEnded::Replay(r) => {
                    e.state = EntryState::Replay { reason: r };
                    keep.push(e);
                }
                OnCallEnded::KeepLive => {
                    e.state = EntryState::Live;
                    keep.push(e);
                }
                OnCallEnded::KeepDelayed => keep.push(e),
                OnCallEnded::CancelPush => cancel_pushes.push(e.target.clone()),
            }
        }
        call.bucket = keep;
        for idx in 0..n {
            if Some(idx) != except {
                self.cancel_branch(id, idx, reason.clone());
            }
        }
        let why = CancelReason::from_reason_header(reason.as_deref());
        for t in cancel_pushes {
            let push = PushBuilder::new(t.bundle_id.clone(), faults.clone()).call_ended(
                &t.voip_token,
                &call_id,
                why,
                now_ms(),
            );
            let pusher = self.pusher.clone();
            tokio::spawn(async move {
                let outcome = pusher.send(t.sandbox, &push).await;
                tracing::debug!(outcome = %outcome.describe(), "call-ended push answered");
            });
        }
        self.maybe_linger(id);
    }

    pub(super) fn on_cancel(&mut self, flow: Flow, req: Message) {
        let Some(id) = server_key(&req).and_then(|k| self.server_index.get(&k).copied()) else {
            return self.reply(&req, &flow, 481, "Call/Transaction Does Not Exist");
        };
        let mut ok = Self::response(&req, 200, "OK", None);
        ok.push_header("Content-Length", "0");
        self.send(&flow, &ok);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.final_sent || call.method != "INVITE" {
            return;
        }
        let reason = req.reason().map(str::to_owned);
        let waking = call.bucket.iter().any(BucketEntry::is_waiting) && call.timer.is_some();
        if self.faults.has(Fault::Late487) && waking {
            // The call ends for the devices at once; only the caller's 487 waits.
            self.recorder
                .note("fault late-487: the 487 waits for the Bucket Timer");
            if let Some(c) = self.calls.get_mut(&id) {
                c.late_487 = true;
            }
            self.end_call(id, None, reason);
            return;
        }
        self.respond_upstream(id, 487, "Request Terminated");
        self.end_call(id, None, reason);
    }

    /// Fault `leak-push-params`: the response's Contact becomes the registered contact the
    /// branch was sent to, `pn-*` parameters and all, as a proxy that "fixes" Contacts from its
    /// location table would do (the address is unchanged, so routing is unchanged).
    fn leak_push_params(&self, id: u64, idx: usize, resp: &mut Message) {
        let Some(b) = self.calls.get(&id).and_then(|c| c.branches.get(idx)) else {
            return;
        };
        let Some(uri) = b.request.request_uri().filter(|u| u.contains("pn-prid")) else {
            return;
        };
        if resp.header("Contact").is_some() {
            resp.set_header("Contact", format!("<{uri}>"));
            self.recorder.note(
                "fault leak-push-params: the registered contact, pn-* and all, goes upstream",
            );
        }
    }

    pub(super) fn on_branch_response(&mut self, id: u64, idx: usize, mut resp: Message) {
        if self.faults.has(Fault::LeakPushParams) {
            self.leak_push_params(id, idx, &mut resp);
        }
        let code = resp.status().unwrap_or(0);
        let out = self.out.clone();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let is_invite = call.method == "INVITE";
        let Some(b) = call.branches.get_mut(idx) else {
            return;
        };
        if code < 200 {
            b.provisional = true;
            let pending = b.pending_cancel.take();
            let forward = code > 100 && !b.replay && !call.final_sent;
            if forward {
                call.last_response = Some(resp.clone());
                let up = call.upstream;
                out.send(&up, &resp);
            }
            if let Some(reason) = pending {
                self.cancel_branch(id, idx, reason);
            }
            return;
        }
        if code >= 300 && is_invite {
            let ack = build_non2xx_ack(&b.request, &resp);
            let f = b.flow;
            out.send(&f, &ack);
        }
        let retransmission = b.done;
        b.done = true;
        b.provisional = true;
        b.pending_cancel = None;
        let replay = b.replay;
        let branch_flow = b.flow;
        if (200..300).contains(&code) {
            // Every 2xx goes upstream (RFC 3261 §16.7), retransmissions included.
            let up = call.upstream;
            let first = !call.answered && !retransmission;
            if first {
                call.answered = true;
                call.final_sent = true;
                call.last_response = Some(resp.clone());
                if let Some(t) = call.timer.take() {
                    t.abort();
                }
            }
            out.send(&up, &resp);
            if first && is_invite {
                let caller_tag = call
                    .request
                    .from()
                    .ok()
                    .and_then(|f| f.tag().map(str::to_owned))
                    .unwrap_or_default();
                self.dialogs.insert(
                    call.call_id.clone(),
                    DialogRoute {
                        caller_tag,
                        caller_flow: up,
                        callee_flow: branch_flow,
                    },
                );
                self.end_call(id, Some(idx), Some(ANSWERED_ELSEWHERE.to_owned()));
            }
            self.maybe_linger(id);
            return;
        }
        if retransmission || replay || call.final_sent {
            return;
        }
        if code >= 600 && is_invite {
            // A global decline ends the call everywhere (RFC 3261 §16.7 step 5, Flexisip).
            call.final_sent = true;
            call.last_response = Some(resp.clone());
            if let Some(t) = call.timer.take() {
                t.abort();
            }
            let up = call.upstream;
            out.send(&up, &resp);
            self.end_call(id, Some(idx), Some(BUSY_EVERYWHERE.to_owned()));
            return;
        }
        let better = match &call.best {
            None => true,
            Some(b) => {
                let old = b.status().unwrap_or(999);
                old < 600 && (code >= 600 || code < old)
            }
        };
        if better && code != 487 {
            call.best = Some(resp);
        }
        self.maybe_finish(id);
    }
}
