//! The two roles the scenarios drive: the iPhone's account and the caller.
//!
//! [`PhoneAccount`] enables XEP-0357 push, sleeps (abrupt close, reset or half-open), and wakes by
//! resuming its XEP-0198 session or, failing that, by a new session plus a MAM catch-up.
//! [`Caller`] sends messages and drives XEP-0353 calls. Every wait has a deadline and its error
//! lists what did arrive.

use crate::client::{Client, ClientConfig, WakeOutcome};
use crate::conn::SleepMode;
use crate::error::Error;
use crate::forms::DataForm;
use crate::jmi::{Jmi, Kind, Reason};
use crate::mam::{self, Archived};
use crate::message::{self, Message};
use crate::push::{Disable, Enable};
use crate::xml::Element;
use std::time::{Duration, SystemTime};
use timeline::Recorder;

/// Waits for a message the predicate accepts, parsed; a message that fails to parse is an error.
async fn wait_message(
    client: &Client,
    within: Duration,
    waiting_for: &str,
    mut pred: impl FnMut(&Message) -> bool,
) -> Result<Message, Error> {
    let e = client
        .wait_for(within, waiting_for, |e| {
            e.name() == "message" && Message::parse(e).map(|m| pred(&m)).unwrap_or(true)
        })
        .await?;
    Ok(Message::parse(&e)?)
}

/// Waits for a JMI message of one of `kinds` (and session `id` if given).
async fn wait_jmi(
    client: &Client,
    within: Duration,
    id: Option<&str>,
    kinds: &[Kind],
) -> Result<Message, Error> {
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let what = format!("JMI {} id={}", names.join("/"), id.unwrap_or("*"));
    wait_message(client, within, &what, |m| {
        m.jmi
            .as_ref()
            .is_some_and(|j| kinds.contains(&j.kind) && id.is_none_or(|i| i == j.id))
    })
    .await
}

/// XEP-0082 UTC timestamp of a system time.
pub fn xep0082(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Calls still live in a catch-up: proposes with no later retract, proceed, reject or finish.
pub fn live_proposals(messages: &[Message]) -> Vec<Jmi> {
    let mut live: Vec<Jmi> = Vec::new();
    for j in messages.iter().filter_map(|m| m.jmi.as_ref()) {
        match j.kind {
            Kind::Propose => live.push(j.clone()),
            Kind::Retract | Kind::Proceed | Kind::Reject | Kind::Finish => {
                live.retain(|p| p.id != j.id)
            }
            Kind::Ringing | Kind::Accept => {}
        }
    }
    live
}

/// What a wake-up brought.
#[derive(Clone, Debug)]
pub struct WakeReport {
    /// Resumed, or a new session.
    pub outcome: WakeOutcome,
    /// For a new session: the messages fetched from MAM since going to sleep, in archive order.
    pub caught_up: Vec<Archived>,
}

impl WakeReport {
    /// The caught-up messages, parsed (unparsable ones are an error with the stanza).
    pub fn messages(&self) -> Result<Vec<Message>, Error> {
        self.caught_up
            .iter()
            .map(|a| Message::parse(&a.message).map_err(Error::from))
            .collect()
    }
}

/// The iPhone's XMPP account.
pub struct PhoneAccount {
    client: Client,
    push: Vec<Enable>,
    slept_at: Option<SystemTime>,
}

impl PhoneAccount {
    /// Logs in (XEP-0198 is on unless the config turns it off).
    pub async fn connect(cfg: ClientConfig, rec: Recorder) -> Result<Self, Error> {
        Ok(PhoneAccount {
            client: Client::connect(cfg, rec).await?,
            push: Vec::new(),
            slept_at: None,
        })
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client underneath, mutably.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The push registrations enabled so far.
    pub fn push_registrations(&self) -> &[Enable] {
        &self.push
    }

    /// XEP-0357 enable towards app server `jid` with `node` and the publish-options form.
    pub async fn enable_push(
        &mut self,
        jid: &str,
        node: &str,
        publish_options: Option<DataForm>,
        within: Duration,
    ) -> Result<(), Error> {
        let en = Enable {
            jid: jid.into(),
            node: node.into(),
            publish_options,
        };
        self.client.iq(en.to_iq(), within).await?;
        self.push
            .retain(|p| !(p.jid == en.jid && p.node == en.node));
        self.push.push(en);
        Ok(())
    }

    /// XEP-0357 disable (`node` None = every node of `jid`).
    pub async fn disable_push(
        &mut self,
        jid: &str,
        node: Option<&str>,
        within: Duration,
    ) -> Result<(), Error> {
        let d = Disable {
            jid: jid.into(),
            node: node.map(str::to_string),
        };
        self.client.iq(d.to_iq(), within).await?;
        self.push
            .retain(|p| !(p.jid == jid && node.is_none_or(|n| n == p.node)));
        Ok(())
    }

    /// Goes to sleep the given way.
    pub async fn sleep(&mut self, mode: SleepMode) -> Result<(), Error> {
        self.slept_at = Some(SystemTime::now());
        self.client.sleep(mode).await
    }

    /// Wakes: resumes the session if the server still has it; otherwise binds a new one and
    /// fetches from MAM what arrived since going to sleep (`page` messages per query).
    pub async fn wake(&mut self, page: usize, within: Duration) -> Result<WakeReport, Error> {
        self.wake_how(false, page, within).await
    }

    /// Like [`PhoneAccount::wake`] after flight mode: the half-open socket is left alone (see
    /// [`Client::wake_on_new_network`]).
    pub async fn wake_on_new_network(
        &mut self,
        page: usize,
        within: Duration,
    ) -> Result<WakeReport, Error> {
        self.wake_how(true, page, within).await
    }

    async fn wake_how(
        &mut self,
        new_network: bool,
        page: usize,
        within: Duration,
    ) -> Result<WakeReport, Error> {
        let wake = async {
            if new_network {
                self.client.wake_on_new_network().await
            } else {
                self.client.wake().await
            }
        };
        let outcome = tokio::time::timeout(within, wake)
            .await
            .map_err(|_| Error::Timeout {
                waiting_for: "wake (reconnect and resume)".into(),
                arrived: vec![],
            })??;
        let caught_up = match &outcome {
            WakeOutcome::Resumed { .. } => Vec::new(),
            WakeOutcome::NewSession { .. } => self.catch_up(page, within).await?,
        };
        Ok(WakeReport { outcome, caught_up })
    }

    /// MAM catch-up since going to sleep (or everything if it never slept).
    pub async fn catch_up(&self, page: usize, within: Duration) -> Result<Vec<Archived>, Error> {
        let filter = mam::Filter {
            // Archive stamps have one-second resolution: start a second early.
            start: self
                .slept_at
                .map(|t| xep0082(t.checked_sub(Duration::from_secs(1)).unwrap_or(t))),
            ..Default::default()
        };
        mam::fetch_all(&self.client, &filter, page, within).await
    }

    /// The next chat message with a body.
    pub async fn next_message(&self, within: Duration) -> Result<Message, Error> {
        wait_message(&self.client, within, "chat message with body", |m| {
            m.body.is_some()
        })
        .await
    }

    /// The next incoming call (JMI propose).
    pub async fn next_call_propose(&self, within: Duration) -> Result<Message, Error> {
        wait_jmi(&self.client, within, None, &[Kind::Propose]).await
    }

    /// The next JMI message of `kinds` for call `id` (retract, proceed elsewhere…).
    pub async fn next_jmi(
        &self,
        id: Option<&str>,
        kinds: &[Kind],
        within: Duration,
    ) -> Result<Message, Error> {
        wait_jmi(&self.client, within, id, kinds).await
    }

    /// Enables XEP-0280 carbons (to see what the account's other devices send and receive).
    pub async fn enable_carbons(&self, within: Duration) -> Result<(), Error> {
        self.client
            .iq(message::enable_carbons(), within)
            .await
            .map(|_| ())
    }

    /// Waits for a carbon copy of a JMI `kinds` message for call `id` that another of this
    /// account's devices sent (answered or declined elsewhere).
    pub async fn next_jmi_from_other_device(
        &self,
        id: &str,
        kinds: &[Kind],
        within: Duration,
    ) -> Result<Message, Error> {
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let what = format!("carbon of own JMI {} id={id}", names.join("/"));
        wait_message(&self.client, within, &what, |m| {
            m.carbon.as_ref().is_some_and(|c| {
                c.direction == message::CarbonDirection::Sent
                    && c.message
                        .jmi
                        .as_ref()
                        .is_some_and(|j| j.id == id && kinds.contains(&j.kind))
            })
        })
        .await
    }

    /// Sends a JMI action for call `id` to `to` (ringing, proceed, reject, finish).
    pub async fn send_jmi(&self, to: &str, jmi: Jmi) -> Result<(), Error> {
        self.client.send(jmi.to_message(to)).await
    }

    /// Sends a receipt for a received message that asked for one.
    pub async fn ack_receipt(&self, m: &Message) -> Result<(), Error> {
        match (&m.from, &m.id, m.receipt_request) {
            (Some(from), Some(id), true) => self.client.send(message::receipt(from, id)).await,
            _ => Ok(()),
        }
    }
}

/// How the callee answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `<proceed/>`.
    Proceed {
        /// The full JID that proceeded.
        from: String,
    },
    /// `<reject/>`.
    Reject {
        /// The full JID that rejected.
        from: String,
        /// Its reason, if it gave one.
        reason: Option<Reason>,
    },
}

/// The caller.
pub struct Caller {
    client: Client,
}

impl Caller {
    /// Logs in.
    pub async fn connect(cfg: ClientConfig, rec: Recorder) -> Result<Self, Error> {
        Ok(Caller {
            client: Client::connect(cfg, rec).await?,
        })
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client underneath, mutably.
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Sends a chat message (with a receipt request); returns its id.
    pub async fn send_message(&self, to: &str, body: &str) -> Result<String, Error> {
        let m = message::chat(to, body);
        let id = m.get_attr("id").unwrap_or_default().to_string();
        self.client.send(m).await?;
        Ok(id)
    }

    /// Sends a chat state.
    pub async fn send_chat_state(&self, to: &str, state: &str) -> Result<(), Error> {
        self.client.send(message::chat_state(to, state)).await
    }

    /// Waits for the XEP-0184 receipt of message `id`.
    pub async fn await_receipt(&self, id: &str, within: Duration) -> Result<Message, Error> {
        wait_message(&self.client, within, &format!("receipt for {id}"), |m| {
            m.receipt_for.as_deref() == Some(id)
        })
        .await
    }

    /// Proposes an audio call to `to` (a bare JID); returns the session id.
    pub async fn propose(&self, to: &str) -> Result<String, Error> {
        let id = uuid::Uuid::new_v4().to_string();
        self.client
            .send(Jmi::propose(&id, "audio").to_message(to))
            .await?;
        Ok(id)
    }

    /// Retracts call `id` (reason `cancel`).
    pub async fn retract(&self, to: &str, id: &str) -> Result<(), Error> {
        let mut reason = Reason::new("cancel");
        reason.text = Some("Retracted".into());
        let j = Jmi::new(Kind::Retract, id).with_reason(reason);
        self.client.send(j.to_message(to)).await
    }

    /// Ends call `id` (reason `success`).
    pub async fn finish(&self, to: &str, id: &str) -> Result<(), Error> {
        let j = Jmi::new(Kind::Finish, id).with_reason(Reason::new("success"));
        self.client.send(j.to_message(to)).await
    }

    /// Waits for `<ringing/>` for call `id`.
    pub async fn await_ringing(&self, id: &str, within: Duration) -> Result<Message, Error> {
        wait_jmi(&self.client, within, Some(id), &[Kind::Ringing]).await
    }

    /// Waits for the answer to call `id`: proceed or reject (ringing is left in the inbox).
    pub async fn await_answer(&self, id: &str, within: Duration) -> Result<Answer, Error> {
        let m = wait_jmi(
            &self.client,
            within,
            Some(id),
            &[Kind::Proceed, Kind::Reject],
        )
        .await?;
        let from = m.from.clone().unwrap_or_default();
        let j = m.jmi.expect("matched a JMI");
        Ok(match j.kind {
            Kind::Proceed => Answer::Proceed { from },
            _ => Answer::Reject {
                from,
                reason: j.reason,
            },
        })
    }

    /// Any stanza, for scripted checks.
    pub async fn wait_for(
        &self,
        within: Duration,
        what: &str,
        pred: impl FnMut(&Element) -> bool,
    ) -> Result<Element, Error> {
        self.client.wait_for(within, what, pred).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_live_calls() {
        assert_eq!(xep0082(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            xep0082(SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
        let m = |j: Jmi| Message {
            jmi: Some(j),
            ..Default::default()
        };
        let msgs = vec![
            m(Jmi::propose("a", "audio")),
            m(Jmi::propose("b", "audio")),
            m(Jmi::new(Kind::Retract, "a")),
        ];
        let live = live_proposals(&msgs);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].id, "b");
    }
}
