//! The running app server: one component connection, publishes handled one at a time in arrival
//! order, each answered (result or XMPP error) after APNs answered its push.
//!
//! Answers, as the XMPP server reads them (XEP-0357 §7: an error means "disable"; Prosody counts
//! non-`wait` errors, ejabberd drops the registration on any non-`wait` error):
//! - unknown node (never registered, or removed after a 410): `cancel`/`item-not-found`;
//! - wrong secret: `auth`/`forbidden`; unreadable call marker: `modify`/`bad-request`;
//! - APNs 410: `cancel`/`item-not-found` and the registration is removed;
//! - other APNs 4xx: `cancel`/`not-acceptable`; 429/5xx after retries or no connection:
//!   `wait`/`resource-constraint` (retry later, keep the registration).

use super::classify::{classify, CallEnd, PublishKind};
use super::faults::{AppFault, AppFaults};
use super::policy::{CallEndPush, MessagePush, Policy};
use super::registry::{LookupError, Registration, Registry};
use crate::apns::{ApnsClient, ApnsError, ApnsResponse, Push};
use crate::call_push::{PushBuilder, MESSAGE_EXPIRATION_SECS};
use mock_apns::Environment;
use phone::{CancelReason, PushPayload, PushType};
use std::collections::HashMap;
use std::time::Duration;
use timeline::Recorder;
use tokio::sync::{broadcast, mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use xmpp_peer::push::Publish;
use xmpp_peer::xml::Element;
use xmpp_peer::{ns, Component, ComponentConfig};

/// The APNs clients, one per environment the registrations use.
#[derive(Clone, Default)]
pub struct ApnsClients {
    /// For sandbox tokens.
    pub sandbox: Option<ApnsClient>,
    /// For production tokens.
    pub production: Option<ApnsClient>,
}

impl ApnsClients {
    fn get(&self, env: Environment) -> Option<&ApnsClient> {
        match env {
            Environment::Sandbox => self.sandbox.as_ref(),
            Environment::Production => self.production.as_ref(),
        }
    }
}

/// Everything the app server needs besides its APNs clients.
#[derive(Clone, Debug)]
pub struct AppServerConfig {
    /// Where and as what to connect (XEP-0114).
    pub component: ComponentConfig,
    /// Message and call-end policy.
    pub policy: Policy,
    /// Switched-on mistakes.
    pub faults: AppFaults,
    /// Registrations known at start.
    pub registrations: Vec<Registration>,
}

impl AppServerConfig {
    /// Correct behaviour, default policy, no registrations.
    pub fn new(component: ComponentConfig) -> Self {
        AppServerConfig {
            component,
            policy: Policy::default(),
            faults: AppFaults::none(),
            registrations: vec![],
        }
    }
}

/// The app server's part of a configuration file (TOML), everything but where to connect:
///
/// ```toml
/// faults = ["ignore-410"]            # optional
/// [policy]                           # optional, see `Policy`
/// message = "background"
/// [[registrations]]
/// node = "alice-iphone"
/// secret = "s1"
/// voip_token = "00ab…"
/// alert_token = "00cd…"              # optional
/// bundle_id = "com.example.app"
/// environment = "sandbox"            # sandbox | production
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppServerSettings {
    /// Message and call-end policy.
    pub policy: Policy,
    /// Switched-on mistakes.
    pub faults: AppFaults,
    /// Registrations known at start.
    pub registrations: Vec<Registration>,
}

impl AppServerSettings {
    /// Reads the settings from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The full configuration, connecting as `component`.
    pub fn into_config(self, component: ComponentConfig) -> AppServerConfig {
        AppServerConfig {
            component,
            policy: self.policy,
            faults: self.faults,
            registrations: self.registrations,
        }
    }
}

/// How a publish was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `<iq type='result'/>`.
    Result,
    /// `<iq type='error'>` with this type and condition.
    Error {
        /// `cancel`, `wait`, `modify`, `auth`.
        kind: &'static str,
        /// The RFC 6120 condition.
        condition: &'static str,
    },
}

/// What the app server did with one publish (for tests and the bench's notes).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The node published to.
    pub node: String,
    /// What it was (`None` if it could not be read).
    pub kind: Option<PublishKind>,
    /// The pushes sent for it, with APNs' status (`None`: no answer).
    pub pushes: Vec<(Push, Option<u16>)>,
    /// The answer to the XMPP server.
    pub answer: Answer,
}

/// A running app server. Dropping it stops it.
pub struct AppServer {
    registry: Registry,
    outcomes: Mutex<mpsc::UnboundedReceiver<Outcome>>,
    watchers: broadcast::Sender<Outcome>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Call state per (node, JMI id): Prosody publishes a propose twice (urgent + smacks batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallState {
    Pushed,
    Ended,
}

struct Handler {
    registry: Registry,
    apns: ApnsClients,
    policy: Policy,
    faults: AppFaults,
    builder_faults: crate::faults::Faults,
    calls: HashMap<(String, String), CallState>,
    rec: Recorder,
}

use timeline::now_ms;

impl AppServer {
    /// Connects the component (handshake within the config's step timeout) and starts serving.
    /// `rec` records the XMPP side and the app server's decisions (notes); the APNs clients
    /// record their own requests.
    pub async fn start(
        cfg: AppServerConfig,
        apns: ApnsClients,
        rec: Recorder,
    ) -> Result<AppServer, xmpp_peer::Error> {
        let registry = Registry::new();
        for r in cfg.registrations {
            registry.register(r);
        }
        let component = Component::connect(cfg.component, rec.clone()).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (watchers, _) = broadcast::channel(1024);
        let (stop, stop_rx) = watch::channel(false);
        let handler = Handler {
            registry: registry.clone(),
            apns,
            builder_faults: cfg.faults.push_builder_faults(),
            policy: cfg.policy,
            faults: cfg.faults,
            calls: HashMap::new(),
            rec,
        };
        let sink = Sink {
            queue: tx,
            watchers: watchers.clone(),
        };
        let task = tokio::spawn(serve(component, handler, sink, stop_rx));
        Ok(AppServer {
            registry,
            outcomes: Mutex::new(rx),
            watchers,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// The registrations (register or remove devices while running).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every publish handled from now on (for several observers, e.g. concurrent scenarios
    /// that each filter on their own node; a slow observer loses the oldest, never blocks).
    pub fn subscribe(&self) -> broadcast::Receiver<Outcome> {
        self.watchers.subscribe()
    }

    /// The next handled publish not yet taken here, in order, within `within` (`None` on
    /// timeout or when stopped).
    pub async fn next_outcome(&self, within: Duration) -> Option<Outcome> {
        let mut rx = self.outcomes.lock().await;
        tokio::time::timeout(within, rx.recv()).await.ok().flatten()
    }

    fn take_task(&self) -> Option<JoinHandle<()>> {
        // A poisoned lock only means a panic elsewhere; the handle is still valid.
        timeline::lock(&self.task).take()
    }

    /// Closes the component stream (within 2 s) and stops. Takes `&self` so that a shared app
    /// server can be stopped (and its component domain freed) before the last owner drops it.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.take_task() {
            if tokio::time::timeout(Duration::from_secs(3), t)
                .await
                .is_err()
            {
                tracing::warn!("app server did not stop within 3 s");
            }
        }
    }
}

impl Drop for AppServer {
    fn drop(&mut self) {
        if let Some(t) = self.take_task() {
            t.abort();
        }
    }
}

/// Where handled publishes are reported.
struct Sink {
    queue: mpsc::UnboundedSender<Outcome>,
    watchers: broadcast::Sender<Outcome>,
}

impl Sink {
    fn send(&self, o: Outcome) {
        let _ = self.watchers.send(o.clone());
        let _ = self.queue.send(o);
    }
}

async fn serve(
    component: Component,
    mut h: Handler,
    outcomes: Sink,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            _ = stop.changed() => break,
            e = component.wait_for(Duration::from_secs(3600), "a stanza for the app server", |_| true) => e,
        };
        let e = match next {
            Ok(e) => e,
            Err(xmpp_peer::Error::Timeout { .. }) => continue,
            Err(e) => {
                h.rec
                    .note(format!("app server: component stream ended: {e}"));
                return;
            }
        };
        if let Some(reply) = h.handle_stanza(&e, &outcomes).await {
            if let Err(err) = component.send(reply).await {
                h.rec.note(format!("app server: cannot answer: {err}"));
                return;
            }
        }
    }
    let _ = component.close(Duration::from_secs(2)).await;
}

fn iq_error(e: &Element, kind: &str, condition: &str, text: &str) -> Element {
    Element::new("iq", ns::COMPONENT)
        .attr("type", "error")
        .attr_opt("id", e.get_attr("id").map(str::to_string))
        .attr_opt("from", e.get_attr("to").map(str::to_string))
        .attr_opt("to", e.get_attr("from").map(str::to_string))
        .child(
            Element::new("error", ns::COMPONENT)
                .attr("type", kind)
                .child(Element::new(condition, ns::STANZAS))
                .child(Element::new("text", ns::STANZAS).text(text)),
        )
}

impl Handler {
    /// The reply to one stanza, if it needs one.
    async fn handle_stanza(&mut self, e: &Element, outcomes: &Sink) -> Option<Element> {
        if e.name() != "iq" {
            return None; // messages and presence to the component need no answer
        }
        match e.get_attr("type") {
            Some("get") | Some("set") => {}
            _ => return None, // results and errors to us
        }
        if !Publish::matches(e) {
            return Some(iq_error(
                e,
                "cancel",
                "feature-not-implemented",
                "this component only takes XEP-0357 publishes",
            ));
        }
        let publish = match Publish::parse(e) {
            Ok(p) => p,
            Err(err) => {
                self.rec
                    .note(format!("app server: malformed publish: {err}"));
                outcomes.send(Outcome {
                    node: String::new(),
                    kind: None,
                    pushes: vec![],
                    answer: Answer::Error {
                        kind: "modify",
                        condition: "bad-request",
                    },
                });
                return Some(iq_error(e, "modify", "bad-request", &err.to_string()));
            }
        };
        let (outcome, text) = self.handle_publish(&publish).await;
        let reply = match outcome.answer {
            Answer::Result => publish.result_iq(ns::COMPONENT),
            Answer::Error { kind, condition } => {
                publish.error_iq(ns::COMPONENT, kind, condition, Some(&text))
            }
        };
        outcomes.send(outcome);
        Some(reply)
    }

    async fn handle_publish(&mut self, p: &Publish) -> (Outcome, String) {
        let mut out = Outcome {
            node: p.node.clone(),
            kind: None,
            pushes: vec![],
            answer: Answer::Result,
        };
        let secret = p.publish_options.as_ref().and_then(|f| f.value("secret"));
        let reg = match self.registry.lookup(&p.node, secret) {
            Ok(r) => r,
            Err(e) => {
                out.answer = match e {
                    LookupError::UnknownNode(_) => Answer::Error {
                        kind: "cancel",
                        condition: "item-not-found",
                    },
                    LookupError::BadSecret(_) => Answer::Error {
                        kind: "auth",
                        condition: "forbidden",
                    },
                };
                self.rec.note(format!("app server: {e}"));
                return (out, e.to_string());
            }
        };
        let kind = match classify(p) {
            Ok(k) => k,
            Err(e) => {
                out.answer = Answer::Error {
                    kind: "modify",
                    condition: "bad-request",
                };
                self.rec.note(format!("app server: {e}"));
                return (out, e.to_string());
            }
        };
        out.kind = Some(kind.clone());
        let Some(push) = self.decide(&reg, &kind) else {
            return (out, String::new());
        };
        let text = self.send(&reg, push, &mut out).await;
        (out, text)
    }

    /// The push for this publish, if any (updates the call states).
    fn decide(&mut self, reg: &Registration, kind: &PublishKind) -> Option<Push> {
        let now = now_ms();
        let builder = PushBuilder::new(reg.bundle_id.clone(), self.builder_faults.clone());
        match kind {
            PublishKind::Call { id, caller } => {
                let key = (reg.node.clone(), id.clone());
                if let Some(state) = self.calls.get(&key) {
                    self.rec.note(format!(
                        "app server: call {id} already {state:?} for node {}: no second push",
                        reg.node
                    ));
                    return None;
                }
                self.calls.insert(key, CallState::Pushed);
                let caller = caller.clone().unwrap_or_default();
                self.rec
                    .note(format!("app server: call {id} → VoIP push to {}", reg.node));
                Some(builder.call(&reg.voip_token, id, &caller, now))
            }
            PublishKind::CallEnded { id, how } => {
                if self.faults.has(AppFault::NoCancelHandling) {
                    return None;
                }
                let key = (reg.node.clone(), id.clone());
                let was = self.calls.insert(key, CallState::Ended);
                if was != Some(CallState::Pushed) || self.policy.call_end == CallEndPush::Nothing {
                    return None;
                }
                let reason = match how {
                    CallEnd::AnsweredElsewhere => CancelReason::AnsweredElsewhere,
                    CallEnd::RejectedElsewhere => CancelReason::DeclinedElsewhere,
                    CallEnd::Retracted | CallEnd::Finished => CancelReason::CallerHungUp,
                };
                self.rec.note(format!(
                    "app server: call {id} ended ({how:?}) → cancel push"
                ));
                Some(builder.call_ended(&reg.voip_token, id, reason, now))
            }
            PublishKind::Message { body, .. } => {
                let text = if self.policy.message_body {
                    body.clone()
                } else {
                    self.policy.generic_text.clone()
                };
                if self.faults.has(AppFault::MessageAsVoip) {
                    return builder.message(&reg.voip_token, None, &text, now);
                }
                match self.policy.message {
                    MessagePush::None => None,
                    MessagePush::Alert => {
                        builder.message(&reg.voip_token, reg.alert_token.as_deref(), &text, now)
                    }
                    MessagePush::Background => {
                        let token = reg.alert_token.as_deref()?;
                        let mut payload = PushPayload::message("", now);
                        payload.aps = serde_json::json!({ "content-available": 1 });
                        let mut push = Push::alert(
                            token,
                            &reg.bundle_id,
                            now / 1000 + MESSAGE_EXPIRATION_SECS,
                            payload.to_json().into(),
                        );
                        push.push_type = PushType::Background;
                        push.priority = Some(5);
                        Some(push)
                    }
                }
            }
            PublishKind::Unimportant => None,
        }
    }

    /// Sends the push and sets the answer; returns the error text.
    async fn send(&mut self, reg: &Registration, push: Push, out: &mut Outcome) -> String {
        let Some(client) = self.apns.get(reg.environment) else {
            out.pushes.push((push, None));
            out.answer = Answer::Error {
                kind: "wait",
                condition: "resource-constraint",
            };
            return format!("no APNs client for {:?}", reg.environment);
        };
        let res: Result<ApnsResponse, ApnsError> = client.send(&push).await;
        let (status, text) = match res {
            Ok(r) => (Some(r.status), apns_answer(self, reg, &r, out)),
            Err(e) => {
                out.answer = Answer::Error {
                    kind: "wait",
                    condition: "resource-constraint",
                };
                (None, format!("APNs: {e}"))
            }
        };
        out.pushes.push((push, status));
        text
    }
}

fn apns_answer(h: &mut Handler, reg: &Registration, r: &ApnsResponse, out: &mut Outcome) -> String {
    let reason = r.reason.clone().unwrap_or_default();
    if r.is_success() {
        return String::new();
    }
    if r.is_unregistered() {
        if h.faults.has(AppFault::Ignore410) {
            return String::new();
        }
        h.registry.remove(&reg.node);
        h.rec.note(format!(
            "app server: APNs 410 {reason}: registration {} removed",
            reg.node
        ));
        out.answer = Answer::Error {
            kind: "cancel",
            condition: "item-not-found",
        };
        return format!("device token unregistered (APNs 410 {reason})");
    }
    out.answer = if r.is_retryable() {
        Answer::Error {
            kind: "wait",
            condition: "resource-constraint",
        }
    } else {
        Answer::Error {
            kind: "cancel",
            condition: "not-acceptable",
        }
    };
    format!("APNs {} {reason}", r.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app_server::faults::AppFault;

    #[test]
    fn settings_read_from_toml() {
        let s = AppServerSettings::from_toml_str(
            r#"faults = ["no-cancel-handling"]
               [policy]
               message = "background"
               call_end = "nothing"
               [[registrations]]
               node = "n1"
               voip_token = "00ab"
               bundle_id = "com.example.app""#,
        )
        .unwrap();
        assert!(s.faults.has(AppFault::NoCancelHandling));
        assert_eq!(s.policy.message, MessagePush::Background);
        assert_eq!(s.policy.call_end, CallEndPush::Nothing);
        assert_eq!(s.registrations[0].node, "n1");
        let cfg = s.into_config(ComponentConfig::new(
            "push.localhost",
            "x",
            "127.0.0.1:5347".parse().unwrap(),
        ));
        assert_eq!(cfg.registrations.len(), 1);
        assert_eq!(
            AppServerSettings::from_toml_str("").unwrap(),
            AppServerSettings::default()
        );
        assert!(AppServerSettings::from_toml_str("fault = []").is_err());
        assert!(AppServerSettings::from_toml_str(r#"faults = ["nonsense"]"#).is_err());
    }
}
