//! The registrar: bindings per AOR, keyed by `+sip.instance` (else the Contact URI), each with
//! its RFC 8599 push parameters, expiry and the flow it came on. A re-REGISTER with the same
//! instance (token rotation) or the same `pn-*` parameters from a new address replaces the
//! binding instead of adding one; an un-REGISTER removes it, so no push goes to that token.

use crate::flow::Flow;
use sip_peer::{Contact, Message, PushError, PushParams, SipUri};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Longest binding lifetime granted (7 days, as the Flexisip wiki recommends for push clients).
pub(crate) const MAX_EXPIRES: u32 = 7 * 24 * 3600;
/// Lifetime when the REGISTER names none.
pub(crate) const DEFAULT_EXPIRES: u32 = 3600;

/// One registered contact of an AOR.
#[derive(Clone, Debug)]
pub struct Binding {
    /// Unique id (stable while the binding is refreshed).
    pub id: u64,
    /// The Contact URI as registered (with its `pn-*` parameters).
    pub contact: SipUri,
    /// `+sip.instance`, unquoted, if given.
    pub instance: Option<String>,
    /// RFC 8599 parameters, if the contact asked for push.
    pub push: Option<PushParams>,
    /// When it expires.
    pub expires_at: Instant,
    /// The flow of its last REGISTER (where requests for it go).
    pub flow: Flow,
}

impl Binding {
    /// Seconds left.
    pub fn remaining(&self, now: Instant) -> u32 {
        self.expires_at.saturating_duration_since(now).as_secs() as u32
    }
}

/// Why a REGISTER is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegisterError {
    /// The request lacks To or has an unusable Contact.
    #[error("bad REGISTER: {0}")]
    Malformed(String),
    /// `pn-provider` is not one this gateway pushes for (RFC 8599 §8.1: 555).
    #[error("push provider not supported: {0}")]
    UnsupportedProvider(String),
    /// The push parameters are inconsistent (Linphone token/service count mismatch, no
    /// `TEAM.bundle.service` form).
    #[error("bad push parameters: {0}")]
    BadPushParams(PushError),
}

impl RegisterError {
    /// The SIP status to answer with.
    pub(crate) fn status(&self) -> (u16, &'static str) {
        match self {
            RegisterError::Malformed(_) => (400, "Bad Request"),
            RegisterError::UnsupportedProvider(_) => {
                (555, "Push Notification Service Not Supported")
            }
            RegisterError::BadPushParams(_) => (400, "Bad Push Parameters"),
        }
    }
}

/// What a successful REGISTER changed.
#[derive(Debug, Default)]
pub(crate) struct RegisterOutcome {
    /// Bindings added or refreshed by this REGISTER (with push parameters or not).
    pub updated: Vec<Binding>,
    /// Bindings removed by it.
    pub removed: Vec<Binding>,
    /// True when at least one contact asked for APNs push (the 2xx carries `+sip.pns`).
    pub push: bool,
    /// The providers capability queries asked for (RFC 8599 §4.1.5: a Contact with `pn-provider`
    /// and no `pn-prid`), as written: `""` when the query names none.
    pub queries: Vec<String>,
}

/// The key of an AOR: its user part (one domain per gateway), else its host.
pub(crate) fn aor_key(uri: &SipUri) -> String {
    match uri.user_name() {
        Some(u) => u.to_owned(),
        None => uri.host.to_ascii_lowercase(),
    }
}

/// The provider a capability query asks about (RFC 8599 §4.1.5): `Some("")` for a query that
/// names none, `None` for a contact that is not a query (no `pn-provider`, or a `pn-prid`).
pub(crate) fn query_provider(uri: &SipUri) -> Option<String> {
    if uri.param("pn-prid").is_some() {
        return None;
    }
    uri.param_decoded("pn-provider")
}

/// Whether this gateway pushes for `provider` (APNs, production or sandbox).
pub(crate) fn serves_provider(provider: &str) -> bool {
    matches!(provider, "apns" | "apns.dev")
}

/// The first provider a capability query in `req` asks about that this gateway does not serve.
pub(crate) fn unserved_query(req: &Message) -> Option<String> {
    req.contacts()
        .ok()?
        .iter()
        .filter_map(|c| query_provider(&c.addr()?.uri))
        .find(|p| !p.is_empty() && !serves_provider(p))
}

/// The push parameters of a contact, checked: `None` for a contact without `pn-prid`.
pub(crate) fn checked_push(uri: &SipUri) -> Result<Option<PushParams>, RegisterError> {
    let Some(p) = PushParams::from_uri(uri) else {
        return Ok(None);
    };
    match p.apns_voip() {
        Ok(_) | Err(PushError::NoVoipToken(_)) => Ok(Some(p)),
        Err(PushError::NotApns(provider)) => Err(RegisterError::UnsupportedProvider(provider)),
        Err(e) => Err(RegisterError::BadPushParams(e)),
    }
}

fn same_address(a: &SipUri, b: &SipUri) -> bool {
    a.user == b.user
        && a.host.eq_ignore_ascii_case(&b.host)
        && a.port == b.port
        && a.param("transport").map(str::to_ascii_lowercase)
            == b.param("transport").map(str::to_ascii_lowercase)
}

fn instance_of(c: &Contact) -> Option<String> {
    c.addr()?
        .param("+sip.instance")
        .map(|v| v.trim_matches('"').to_owned())
}

/// Every binding, per AOR.
#[derive(Debug, Default)]
pub(crate) struct Registrar {
    by_aor: HashMap<String, Vec<Binding>>,
    next_id: u64,
}

impl Registrar {
    /// An empty registrar.
    pub(crate) fn new() -> Registrar {
        Registrar::default()
    }

    /// Applies a REGISTER that arrived on `flow` (authentication already checked).
    pub(crate) fn register(
        &mut self,
        req: &Message,
        flow: Flow,
        now: Instant,
    ) -> Result<RegisterOutcome, RegisterError> {
        let to = req
            .to()
            .map_err(|e| RegisterError::Malformed(format!("To: {e}")))?;
        let aor = aor_key(&to.uri);
        let contacts = req
            .contacts()
            .map_err(|e| RegisterError::Malformed(format!("Contact: {e}")))?;
        let header_expires = req
            .expires()
            .map_err(|e| RegisterError::Malformed(format!("Expires: {e}")))?;
        let mut out = RegisterOutcome::default();
        if contacts.iter().any(|c| matches!(c, Contact::Star)) {
            if header_expires != Some(0) || contacts.len() != 1 {
                return Err(RegisterError::Malformed(
                    "Contact: * needs Expires: 0 and no other contact".into(),
                ));
            }
            out.removed = self.by_aor.remove(&aor).unwrap_or_default();
            return Ok(out);
        }
        // Check everything before changing anything.
        let mut planned = Vec::new();
        for c in &contacts {
            let addr = c
                .addr()
                .ok_or_else(|| RegisterError::Malformed("Contact without an address".into()))?;
            let expires = c
                .expires()
                .or(header_expires)
                .unwrap_or(DEFAULT_EXPIRES)
                .min(MAX_EXPIRES);
            let push = if expires == 0 {
                PushParams::from_uri(&addr.uri)
            } else {
                checked_push(&addr.uri)?
            };
            if expires != 0 {
                if let Some(provider) = query_provider(&addr.uri) {
                    out.queries.push(provider);
                }
            }
            planned.push((addr.uri.clone(), instance_of(c), push, expires));
        }
        let list = self.by_aor.entry(aor.clone()).or_default();
        list.retain(|b| b.expires_at > now);
        for (uri, instance, push, expires) in planned {
            let matches = |b: &Binding| {
                (instance.is_some() && b.instance == instance)
                    || (push.is_some()
                        && b.push.as_ref().map(|p| (&p.provider, &p.prid, &p.param))
                            == push.as_ref().map(|p| (&p.provider, &p.prid, &p.param)))
                    || same_address(&b.contact, &uri)
            };
            let old: Vec<Binding> = list.iter().filter(|b| matches(b)).cloned().collect();
            list.retain(|b| !matches(b));
            if expires == 0 {
                out.removed.extend(old);
                continue;
            }
            if push.is_some() {
                out.push = true;
            }
            let id = old.first().map(|b| b.id).unwrap_or_else(|| {
                self.next_id += 1;
                self.next_id
            });
            let b = Binding {
                id,
                contact: uri,
                instance,
                push,
                expires_at: now + Duration::from_secs(u64::from(expires)),
                flow,
            };
            list.push(b.clone());
            out.updated.push(b);
        }
        if list.is_empty() {
            self.by_aor.remove(&aor);
        }
        Ok(out)
    }

    /// The live bindings of an AOR (expired ones are dropped first).
    pub(crate) fn lookup(&mut self, aor: &str, now: Instant) -> Vec<Binding> {
        let Some(list) = self.by_aor.get_mut(aor) else {
            return Vec::new();
        };
        list.retain(|b| b.expires_at > now);
        let out = list.clone();
        if list.is_empty() {
            self.by_aor.remove(aor);
        }
        out
    }

    /// Removes a binding by id (APNs said 410 for its token). True if it was there.
    pub(crate) fn remove(&mut self, aor: &str, id: u64) -> bool {
        let Some(list) = self.by_aor.get_mut(aor) else {
            return false;
        };
        let before = list.len();
        list.retain(|b| b.id != id);
        let removed = list.len() != before;
        if list.is_empty() {
            self.by_aor.remove(aor);
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sip_peer::Transport;

    const TOK1: &str = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";
    const TOK2: &str = "11fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0";

    fn flow(port: u16) -> Flow {
        Flow {
            transport: Transport::Udp,
            remote: SocketAddrV4(port),
            conn: 0,
        }
    }

    #[allow(non_snake_case)]
    fn SocketAddrV4(port: u16) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn register(contact: &str, expires: u32) -> Message {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: {contact}\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(text.as_bytes()).unwrap()
    }

    fn pn(port: u16, tok: &str) -> String {
        format!("<sip:alice@127.0.0.1:{port};pn-provider=apns;pn-prid={tok};pn-param=TEAM.com.example.app.voip>")
    }

    #[test]
    fn token_rotation_with_the_same_instance_replaces_the_binding() {
        let mut r = Registrar::new();
        let now = Instant::now();
        let inst = ";+sip.instance=\"<urn:uuid:1>\"";
        let out = r
            .register(
                &register(&format!("{}{inst}", pn(5000, TOK1)), 600),
                flow(5000),
                now,
            )
            .unwrap();
        assert!(out.push);
        r.register(
            &register(&format!("{}{inst}", pn(5000, TOK2)), 600),
            flow(5000),
            now,
        )
        .unwrap();
        let b = r.lookup("alice", now);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].push.as_ref().unwrap().prid, TOK2);
    }

    #[test]
    fn same_push_params_from_a_new_address_update_the_binding() {
        let mut r = Registrar::new();
        let now = Instant::now();
        r.register(&register(&pn(5000, TOK1), 600), flow(5000), now)
            .unwrap();
        r.register(&register(&pn(6000, TOK1), 600), flow(6000), now)
            .unwrap();
        let b = r.lookup("alice", now);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].flow, flow(6000));
        assert_eq!(b[0].contact.port, Some(6000));
    }

    #[test]
    fn unregister_without_prid_removes_the_binding() {
        let mut r = Registrar::new();
        let now = Instant::now();
        r.register(&register(&pn(5000, TOK1), 600), flow(5000), now)
            .unwrap();
        let out = r
            .register(
                &register(
                    "<sip:alice@127.0.0.1:5000;pn-provider=apns;pn-param=TEAM.com.example.app.voip>;expires=0",
                    0,
                ),
                flow(5000),
                now,
            )
            .unwrap();
        assert_eq!(out.removed.len(), 1);
        assert!(r.lookup("alice", now).is_empty());
    }

    #[test]
    fn bad_push_parameters_are_refused_with_the_right_status() {
        let mut r = Registrar::new();
        let now = Instant::now();
        let mismatch = "<sip:alice@127.0.0.1:5000;pn-provider=apns.dev;pn-prid=a:remote&b:voip;pn-param=TEAM.b.voip>";
        let e = r
            .register(&register(mismatch, 600), flow(5000), now)
            .unwrap_err();
        assert_eq!(e.status().0, 400);
        let fcm = "<sip:alice@127.0.0.1:5000;pn-provider=fcm;pn-prid=abc;pn-param=proj>";
        let e = r
            .register(&register(fcm, 600), flow(5000), now)
            .unwrap_err();
        assert_eq!(e.status().0, 555);
        assert!(r.lookup("alice", now).is_empty());
    }

    #[test]
    fn expired_bindings_are_not_returned() {
        let mut r = Registrar::new();
        let now = Instant::now();
        r.register(&register(&pn(5000, TOK1), 1), flow(5000), now)
            .unwrap();
        assert_eq!(r.lookup("alice", now).len(), 1);
        assert!(r.lookup("alice", now + Duration::from_secs(2)).is_empty());
    }
}
