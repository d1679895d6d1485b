//! One of Alice's devices on XMPP ([`XDevice`]): an `xmpp_peer::PhoneAccount` with its XEP-0357
//! node and APNs tokens, and for the iPhone and iPad the `phone` iOS model fed by what mock-apns
//! delivers to the tokens. It sleeps (the session hibernates, or the network goes half-open),
//! and reconnects (resumption, else a new session and a MAM catch-up), keeping what it received.

use super::{peer_error, XMPP_STEP};
use crate::parties::device::{DeviceKind, DeviceLog};
use crate::scenario::Teardown;
use crate::verdict::StepError;
use phone::{Input, PhoneHandle};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timeline::lock;
use tokio::sync::Mutex;
use tokio::task::AbortHandle;
use xmpp_peer::message::Message;
use xmpp_peer::{Element, PhoneAccount, SleepMode};

/// What one of Alice's devices received after it reconnected.
#[derive(Clone, Debug)]
pub struct Reconnected {
    /// When it reconnected.
    pub at: Instant,
    /// Resumed or a new session (with the server's `<failed/>`).
    pub how: String,
    /// Every message it received since (carbons unwrapped), in order.
    pub messages: Vec<Message>,
}

/// One of Alice's devices on XMPP.
pub struct XDevice {
    /// Which.
    pub kind: DeviceKind,
    /// Its account (shared with the teardown).
    pub account: Arc<Mutex<PhoneAccount>>,
    /// Its XEP-0357 node (empty for the desktop).
    pub node: String,
    /// PushKit token.
    pub voip_token: Option<String>,
    /// User-notification token.
    pub alert_token: Option<String>,
    /// The iOS model (iPhone, iPad).
    pub phone: Option<PhoneHandle>,
    /// The pushes delivered to it.
    pub log: Arc<DeviceLog>,
    /// How it is asleep, if it is.
    pub asleep: Arc<std::sync::Mutex<Option<SleepMode>>>,
    /// What it received after it reconnected (set by the reconnect).
    pub reconnected: Option<Reconnected>,
    pub(super) rec: timeline::Recorder,
    pub(super) tasks: Vec<AbortHandle>,
}

impl Drop for XDevice {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl XDevice {
    /// Its tokens.
    pub fn tokens(&self) -> Vec<String> {
        self.voip_token
            .iter()
            .chain(self.alert_token.iter())
            .cloned()
            .collect()
    }

    /// The iOS model, or inconclusive for the desktop.
    pub fn phone(&self) -> Result<PhoneHandle, StepError> {
        self.phone.clone().ok_or_else(|| {
            StepError::inconclusive(format!("Alice's {} has no iOS model", self.kind))
        })
    }
}

/// Unwraps carbons: the message another of Alice's devices sent or received.
pub fn unwrap_carbon(m: Message) -> Message {
    match m.carbon {
        Some(c) => *c.message,
        None => m,
    }
}

/// Takes the messages waiting in a device's inbox, parsed (carbons unwrapped). A message that
/// does not parse is a failure showing it.
pub fn take_messages(account: &PhoneAccount) -> Result<Vec<Message>, StepError> {
    account
        .client()
        .inbox()
        .drain()
        .into_iter()
        .filter(|e| e.name() == "message")
        .map(|e| {
            Message::parse(&e).map(unwrap_carbon).map_err(|err| {
                StepError::fail_with_message(
                    format!("the server sent a malformed message: {err}"),
                    bytes::Bytes::from(e.to_xml()),
                )
            })
        })
        .collect()
}

/// A device's cleanup: wake a sleeping session, disable push, end the session.
pub struct DeviceTeardown {
    /// What it does.
    pub what: String,
    /// The cleanup.
    pub run: Teardown,
}

/// A XEP-0199 ping to the server: its answer comes after everything the server sent before it.
fn ping(domain: &str) -> Element {
    Element::new("iq", xmpp_peer::ns::CLIENT)
        .attr("type", "get")
        .attr("to", domain)
        .child(Element::new("ping", xmpp_peer::ns::PING))
}

impl XDevice {
    /// Drops off the network the given way (the inbox is emptied first: what arrives after the
    /// reconnect is what the reconnect brought).
    pub async fn sleep(&self, mode: SleepMode) -> Result<(), StepError> {
        let mut a = self.account.lock().await;
        a.client().inbox().drain();
        a.sleep(mode).await.map_err(peer_error(&format!(
            "Alice's {} could not go to sleep",
            self.kind
        )))?;
        *lock(&self.asleep) = Some(mode);
        Ok(())
    }

    /// Reconnects (resume, else a new session and a MAM catch-up), takes what arrived up to a
    /// ping round trip, and hands the iOS model the offers of the calls still live in it (the app
    /// rings for a propose nobody retracted). Once per sleep: a second call returns the first
    /// result.
    pub async fn reconnect(&mut self, domain: &str) -> Result<&Reconnected, StepError> {
        if self.reconnected.is_none() {
            let mut a = self.account.lock().await;
            let at = Instant::now();
            let mut messages = Vec::new();
            let asleep = lock(&self.asleep).take();
            let how = if let Some(mode) = asleep {
                let report = if mode == SleepMode::HalfOpen {
                    a.wake_on_new_network(50, XMPP_STEP).await
                } else {
                    a.wake(50, XMPP_STEP).await
                };
                let report = report.map_err(peer_error(&format!(
                    "Alice's {} could not reconnect",
                    self.kind
                )))?;
                for archived in &report.caught_up {
                    let m = Message::parse(&archived.message).map_err(|e| {
                        StepError::fail_with_message(
                            format!("the server's archive returned a malformed message: {e}"),
                            bytes::Bytes::from(archived.message.to_xml()),
                        )
                    })?;
                    messages.push(unwrap_carbon(m));
                }
                format!("{:?}", report.outcome)
            } else {
                "was not asleep".to_owned()
            };
            a.client()
                .iq(ping(domain), XMPP_STEP)
                .await
                .map_err(peer_error(
                    "the server did not answer a ping after the reconnect",
                ))?;
            messages.extend(take_messages(&a)?);
            drop(a);
            let live = xmpp_peer::roles::live_proposals(&messages);
            self.rec.note(format!(
                "reconnected ({how}): {} message(s), {} live call proposal(s)",
                messages.len(),
                live.len()
            ));
            if let Some(p) = &self.phone {
                p.send(Input::Registered { ok: true });
                for j in &live {
                    let caller = messages
                        .iter()
                        .find(|m| m.jmi.as_ref().is_some_and(|x| x.id == j.id))
                        .and_then(|m| m.from.clone())
                        .unwrap_or_default();
                    p.send(Input::Offer {
                        call_id: j.id.clone(),
                        caller,
                    });
                }
            }
            self.reconnected = Some(Reconnected { at, how, messages });
        }
        self.reconnected
            .as_ref()
            .ok_or_else(|| StepError::inconclusive("no reconnect"))
    }

    /// Waits until `within` for more messages after the reconnect (appended to it).
    pub async fn more_messages(&mut self, within: Duration) -> Result<(), StepError> {
        let a = self.account.lock().await;
        let got = a
            .client()
            .wait_for(within, "a message", |e| e.name() == "message")
            .await;
        let mut more = match got {
            Ok(e) => vec![Message::parse(&e).map(unwrap_carbon).map_err(|err| {
                StepError::fail_with_message(
                    format!("the server sent a malformed message: {err}"),
                    bytes::Bytes::from(e.to_xml()),
                )
            })?],
            Err(xmpp_peer::Error::Timeout { .. }) => Vec::new(),
            Err(e) => {
                return Err(StepError::inconclusive(format!(
                    "Alice's {}: {e}",
                    self.kind
                )))
            }
        };
        more.extend(take_messages(&a)?);
        if let Some(r) = self.reconnected.as_mut() {
            r.messages.extend(more);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carbons_are_unwrapped() {
        use xmpp_peer::message::{Carbon, CarbonDirection};
        let inner = Message {
            body: Some("hi".into()),
            ..Message::default()
        };
        let carbon = Message {
            carbon: Some(Carbon {
                direction: CarbonDirection::Sent,
                message: Box::new(inner.clone()),
            }),
            ..Message::default()
        };
        assert_eq!(unwrap_carbon(carbon), inner);
        assert_eq!(unwrap_carbon(inner.clone()), inner);
    }
}
