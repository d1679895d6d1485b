//! REGISTER (RFC 3261 §10, RFC 8599 §5.6.2): digest challenges against the configured accounts,
//! the binding update, the 200 with the bindings and `Feature-Caps: +sip.pns`, and the release of
//! every bucket entry the REGISTER matches on its `pn-*` parameters (or their failure when the
//! REGISTER ends in an error).

use super::{push_params_of, random_hex, Proxy, NONCE_MEMORY};
use crate::bucket::{BucketEntry, EntryState};
use crate::config::Account;
use crate::design::Design;
use crate::faults::Fault;
use crate::flow::Flow;
use crate::registrar::{
    aor_key, serves_provider, unserved_query, Binding, RegisterError, RegisterOutcome,
};
use sip_peer::Message;
use std::collections::BTreeSet;
use tokio::time::Instant;

impl Proxy {
    pub(super) fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.user == user)
    }

    /// Digest check (RFC 2617, MD5, qop auth or none) against a nonce we issued.
    pub(super) fn authorized(&self, req: &Message, account: &Account) -> Option<bool> {
        let auth = req.authorization().ok().flatten()?;
        let field = |n: &str| auth.field(n).map(str::to_owned);
        let (Some(user), Some(realm), Some(nonce), Some(uri), Some(response)) = (
            field("username"),
            field("realm"),
            field("nonce"),
            field("uri"),
            field("response"),
        ) else {
            return Some(false);
        };
        if !self.nonces.contains(&nonce) || user != account.user || realm != self.domain {
            return Some(false);
        }
        let qop = field("qop");
        let nc = field("nc").unwrap_or_default();
        let cnonce = field("cnonce").unwrap_or_default();
        let expected = sip_peer::auth::digest_response(
            &user,
            &realm,
            &account.password,
            "REGISTER",
            &uri,
            &nonce,
            qop.as_deref().map(|q| (nc.as_str(), cnonce.as_str(), q)),
        );
        Some(expected.eq_ignore_ascii_case(&response))
    }

    pub(super) fn challenge(&mut self, req: &Message, flow: &Flow) {
        let nonce = random_hex() + &random_hex();
        self.nonces.push_back(nonce.clone());
        if self.nonces.len() > NONCE_MEMORY {
            self.nonces.pop_front();
        }
        let mut r = Self::response(req, 401, "Unauthorized", Some(&random_hex()));
        r.push_header(
            "WWW-Authenticate",
            format!(
                "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"",
                self.domain
            ),
        );
        r.push_header("Content-Length", "0");
        self.send(flow, &r);
    }

    /// RFC 8599 §5.6.2 (3): a REGISTER that ends in an error fails the requests waiting for it.
    pub(super) fn fail_waiting_for(&mut self, req: &Message) {
        let Ok(to) = req.to() else { return };
        let aor = aor_key(&to.uri);
        let pns = push_params_of(req);
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            let before = call.bucket.len();
            call.bucket
                .retain(|e| !(e.aor == aor && e.is_waiting() && pns.contains(&e.push)));
            if call.bucket.len() != before {
                self.maybe_finish(id);
            }
        }
    }

    /// Fault `trust-refresh`: whether `req` refreshes a binding `user` already has (same pn-*
    /// parameters), which that fault accepts without a challenge.
    pub(super) fn trusted_refresh(&mut self, user: &str, req: &Message) -> bool {
        if !self.faults.has(Fault::TrustRefresh) {
            return false;
        }
        let pns = push_params_of(req);
        let refresh = self
            .registrar
            .lookup(user, Instant::now())
            .iter()
            .any(|b| b.push.as_ref().is_some_and(|p| pns.contains(p)));
        if refresh {
            self.recorder.note(
                "fault trust-refresh: a REGISTER refreshing a known binding is accepted without a challenge",
            );
        }
        refresh
    }

    pub(super) fn on_register(&mut self, flow: Flow, req: Message) {
        let Ok(to) = req.to() else { return };
        let user = aor_key(&to.uri);
        let account = self.account(&user).cloned();
        if let Some(account) = account.filter(|_| !self.trusted_refresh(&user, &req)) {
            match self.authorized(&req, &account) {
                None => return self.challenge(&req, &flow),
                Some(false) => {
                    self.reply(&req, &flow, 403, "Forbidden");
                    self.fail_waiting_for(&req);
                    return;
                }
                Some(true) => {}
            }
        }
        let now = Instant::now();
        // RFC 8599 §5.6.1.2: a query for a PNS this gateway lacks gets a 555 (it is its own
        // registrar, so it knows no other proxy would push for it).
        let unserved = unserved_query(&req).filter(|_| !self.faults.has(Fault::ClaimAnyPns));
        let registered = match unserved {
            Some(p) => Err(RegisterError::UnsupportedProvider(p)),
            None => self.registrar.register(&req, flow, now),
        };
        let out = match registered {
            Ok(o) => o,
            Err(e) => {
                tracing::info!(%flow, error = %e, "REGISTER refused");
                let (code, reason) = e.status();
                let mut r = Self::response(&req, code, reason, Some(&random_hex()));
                if code == 555 {
                    r.push_header("Feature-Caps", "*;+sip.pns=\"apns\"");
                }
                r.push_header("Warning", format!("399 ref-gateway \"{e}\""));
                r.push_header("Content-Length", "0");
                self.send(&flow, &r);
                self.fail_waiting_for(&req);
                return;
            }
        };
        let mut r = Self::response(&req, 200, "OK", Some(&random_hex()));
        for b in self.registrar.lookup(&user, now) {
            let mut v = format!("<{}>", b.contact);
            if let Some(i) = &b.instance {
                v.push_str(&format!(";+sip.instance=\"{i}\""));
            }
            v.push_str(&format!(";expires={}", b.remaining(now)));
            r.push_header("Contact", v);
        }
        for caps in self.feature_caps(&out) {
            r.push_header("Feature-Caps", caps);
        }
        r.push_header("Content-Length", "0");
        self.send(&flow, &r);
        for b in out.updated.iter().filter(|b| b.push.is_some()) {
            self.release(&user, b);
        }
    }

    /// The Feature-Caps values of a REGISTER's 2xx: `+sip.pns` for a push binding (RFC 8599
    /// §5.6.1.1) and for a capability query (§5.6.1.2: the queried PNS, or every PNS this gateway
    /// serves when the query names none).
    fn feature_caps(&self, out: &RegisterOutcome) -> BTreeSet<String> {
        let mut pns = BTreeSet::new();
        if out.push {
            pns.insert("apns".to_owned());
        }
        if !out.queries.is_empty() && self.faults.has(Fault::IgnoreCapabilityQuery) {
            self.recorder.note(
                "fault ignore-capability-query: the query is registered like any contact, without +sip.pns",
            );
        } else {
            for q in &out.queries {
                let served = serves_provider(q) || self.faults.has(Fault::ClaimAnyPns);
                pns.insert(match q.as_str() {
                    "" => "apns".to_owned(),
                    p if served => p.to_owned(),
                    _ => continue,
                });
            }
        }
        pns.into_iter()
            .map(|p| format!("*;+sip.pns=\"{p}\""))
            .collect()
    }

    /// A REGISTER 2xx for `binding`: every bucket entry that matches on the pn-* parameters
    /// leaves the bucket and its request goes out on the REGISTER's flow (RFC 8599 §5.6.2 (2)).
    pub(super) fn release(&mut self, aor: &str, binding: &Binding) {
        if self.faults.has(Fault::NoReplayOnRegister) {
            self.recorder
                .note("fault no-replay-on-register: REGISTER does not release the bucket");
            return;
        }
        if self.faults.has(Fault::NoHandOver) && self.design == Design::Tsilo {
            self.recorder
                .note("fault no-hand-over: the new registration does not get the relayed INVITE");
            return;
        }
        let uri_match = self.faults.has(Fault::ContactUriMatch);
        let mut ids: Vec<u64> = self.calls.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            let (hits, keep): (Vec<BucketEntry>, Vec<BucketEntry>) =
                call.bucket.drain(..).partition(|e| {
                    e.matches(aor, binding)
                        && (!uri_match || e.contact.to_string() == binding.contact.to_string())
                });
            let stuck = uri_match && keep.iter().any(|e| e.aor == aor);
            call.bucket = keep;
            let final_sent = call.final_sent;
            if stuck {
                self.recorder.note(
                    "fault contact-uri-match: the bucket waits for a REGISTER from the pushed Contact URI",
                );
            }
            for e in hits {
                match e.state {
                    EntryState::Delayed | EntryState::Pushed if !final_sent => {
                        self.forward_branch(id, &binding.contact, binding.flow, false);
                    }
                    EntryState::Delayed | EntryState::Pushed => {}
                    EntryState::Replay { reason } => {
                        let idx = self.forward_branch(id, &binding.contact, binding.flow, true);
                        if let Some(idx) = idx {
                            self.cancel_branch(id, idx, reason);
                        }
                    }
                    EntryState::Live => {
                        self.forward_branch(id, &binding.contact, binding.flow, true);
                    }
                }
            }
            self.maybe_finish(id);
            self.maybe_linger(id);
        }
    }
}
