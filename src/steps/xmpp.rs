//! XMPP steps (`features/xmpp/`, REQUIREMENTS.md § "XMPP step library"): Alice's devices enable
//! XEP-0357 push and sleep, Bob messages and calls her (XEP-0353), and the checks read what the
//! app server pushed (mock-apns' log), what it answered the XMPP server (its handled publishes),
//! what the iOS model did, and what the device received after reconnecting.
//!
//! The parties are in [`crate::parties::xmpp`]. The sentences shared with the SIP side (ringing,
//! notifications, CallKit end reasons, "no VoIP push") live in [`super::iphone`] and
//! [`super::apns`], which reach an XMPP scenario's cast through [`crate::parties::Alice`].
//!
//! Push windows: "exactly one … push … within D" watches the window after Bob's latest action to
//! its end and counts what came (Prosody publishes a propose twice, REQUIREMENTS.md § XMPP
//! conventions).

use super::{none_of, outcome, summaries, unquote, Dur};
use crate::parties::device::DeviceKind;
use crate::parties::xmpp::device::XDevice;
use crate::parties::xmpp::hibernation::confirm_hibernation;
use crate::parties::xmpp::{peer_error, Move, XCall, XmppCast, XMPP_STEP};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then, when};
use mock_apns::{DeviceState, PushRecord};
use phone::PayloadKind;
use ref_gateway::app_server::Answer;
use std::time::{Duration, Instant};
use xmpp_peer::jmi::{Jmi, Kind, Reason};
use xmpp_peer::roles::live_proposals;
use xmpp_peer::SleepMode;

/// How long a device that reconnected is watched for a second copy of a message.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(1);

fn device_kind(s: &str) -> Result<DeviceKind, StepError> {
    s.parse().map_err(StepError::inconclusive)
}

// ---- Given ----------------------------------------------------------------------------------

#[given(
    regex = r"^Alice's (iPhone|iPad) has enabled XMPP push with a VoIP token and an alert token$"
)]
async fn enabled_push(w: &mut BenchWorld, device: String) {
    outcome(
        async {
            let kind = device_kind(&device)?;
            let t = w.xmpp().await?.add_push_device(kind).await?;
            w.on_teardown(t.what, t.run);
            Ok(())
        }
        .await,
    )
}

#[given(regex = r"^Alice's (iPhone|iPad) drops off the network and its XMPP session hibernates$")]
async fn hibernates(w: &mut BenchWorld, device: String) {
    outcome(
        async {
            let kind = device_kind(&device)?;
            let c = w.xmpp().await?;
            let log = c.hibernation_log();
            let mark = log.map(|l| l.mark()).unwrap_or_default();
            c.device(kind)?.sleep(SleepMode::Close).await?;
            confirm_hibernation(log, mark, c.hibernation_confirm()).await
        }
        .await,
    )
}

#[given("Alice's iPhone goes into flight mode")]
async fn flight_mode(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            c.device(DeviceKind::Iphone)?
                .sleep(SleepMode::HalfOpen)
                .await?;
            c.set_tokens(DeviceKind::Iphone, DeviceState::Offline)
        }
        .await,
    )
}

#[given("Alice's desktop is online over XMPP")]
async fn desktop_online(w: &mut BenchWorld) {
    outcome(
        async {
            let t = w.xmpp().await?.add_desktop().await?;
            w.on_teardown(t.what, t.run);
            Ok(())
        }
        .await,
    )
}

#[given("APNs answers 410 Unregistered for both of Alice's tokens")]
async fn tokens_unregistered(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            c.set_tokens(DeviceKind::Iphone, DeviceState::Unregistered)
        }
        .await,
    )
}

// ---- When -----------------------------------------------------------------------------------

fn alice_bare(c: &XmppCast) -> String {
    c.alice_jid().to_owned()
}

#[when(regex = r#"^Bob sends Alice the XMPP message "(.*)"$"#)]
async fn bob_messages(w: &mut BenchWorld, text: String) {
    outcome(
        async {
            let text = unquote(&text);
            let c = w.xmpp().await?;
            c.mark(Move::Message);
            let to = alice_bare(c);
            c.bob()
                .lock()
                .await
                .send_message(&to, &text)
                .await
                .map_err(peer_error("Bob could not send his message"))?;
            Ok(())
        }
        .await,
    )
}

#[when("Bob sends Alice a typing notification")]
async fn bob_types(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            c.mark(Move::ChatState);
            let to = alice_bare(c);
            c.bob()
                .lock()
                .await
                .send_chat_state(&to, "composing")
                .await
                .map_err(peer_error("Bob could not send a chat state"))
        }
        .await,
    )
}

#[when("Bob calls Alice over XMPP")]
async fn bob_calls(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            c.mark(Move::Nothing);
            let to = alice_bare(c);
            let bob = c.bob();
            let bob = bob.lock().await;
            let id = bob
                .propose(&to)
                .await
                .map_err(peer_error("Bob could not propose the call"))?;
            let from = bob.client().jid().to_owned();
            drop(bob);
            c.set_call(XCall { id, from });
            Ok(())
        }
        .await,
    )
}

#[when("Bob retracts the call")]
async fn bob_retracts(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            let id = c.call()?.id.clone();
            c.mark(Move::CallEnd(id.clone()));
            let to = alice_bare(c);
            c.bob()
                .lock()
                .await
                .retract(&to, &id)
                .await
                .map_err(peer_error("Bob could not retract the call"))
        }
        .await,
    )
}

async fn desktop_acts(w: &mut BenchWorld, kind: Kind) -> Result<(), StepError> {
    let c = w.xmpp().await?;
    let XCall { id, from } = c.call()?.clone();
    let desktop = c.device(DeviceKind::Desktop)?.account.clone();
    let a = desktop.lock().await;
    // The desktop answers the propose it received (it must have: it is online).
    let propose = a
        .next_jmi(Some(&id), &[Kind::Propose], XMPP_STEP)
        .await
        .map_err(|e| {
            let why = format!("Alice's online desktop never received the propose of call {id}");
            match peer_error(&why)(e) {
                // Not the server's bytes: still a failure, the desktop is online.
                StepError::Inconclusive(e) => StepError::fail(e),
                shown => shown,
            }
        })?;
    let to = propose.from.unwrap_or(from);
    let jmi = match kind {
        Kind::Reject => Jmi::new(Kind::Reject, &id).with_reason(Reason::new("decline")),
        other => Jmi::new(other, &id),
    };
    drop(a);
    c.mark(Move::CallEnd(id.clone()));
    let a = desktop.lock().await;
    let sent = a.send_jmi(&to, jmi).await;
    sent.map_err(peer_error("Alice's desktop could not answer"))
}

#[when("Alice's desktop answers the call")]
async fn desktop_answers(w: &mut BenchWorld) {
    outcome(async { desktop_acts(w, Kind::Proceed).await }.await)
}

#[when("Alice's desktop rejects the call")]
async fn desktop_rejects(w: &mut BenchWorld) {
    outcome(async { desktop_acts(w, Kind::Reject).await }.await)
}

/// How long "leaves flight mode" lets the server finish what Bob's latest action set off (a
/// server that publishes at once is done well within it; Prosody publishes nothing for a stanza
/// queued on a half-open session until it notices the connection is gone).
const SETTLE: Duration = Duration::from_secs(2);

/// A phone leaves flight mode seconds after the caller's last move, not within the millisecond
/// the next step starts: first the app server handles the publish Bob's latest action caused (2 s
/// at most; a server that publishes nothing for it just costs the wait), so what it pushes for
/// it meets a phone still offline, as the scenario means. Then APNs delivers what it stored and
/// the account reconnects.
#[when("Alice's iPhone leaves flight mode")]
async fn leaves_flight_mode(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            let node = c.device(DeviceKind::Iphone)?.node.clone();
            c.outcome_of_last_move(&node, Instant::now() + SETTLE).await;
            c.set_back_online();
            // Online at APNs first (what it stored arrives), then the app reconnects.
            c.set_tokens(DeviceKind::Iphone, DeviceState::Online)?;
            let domain = c.domain().to_owned();
            c.device_mut(DeviceKind::Iphone)?
                .reconnect(&domain)
                .await
                .map(|_| ())
        }
        .await,
    )
}

// ---- Then: pushes -----------------------------------------------------------------------------

/// Every push to `tokens` since Bob's latest action that `keep` accepts, once the window `d` has
/// been watched to its end (a second push inside it counts).
async fn pushes_in_window(
    c: &XmppCast,
    tokens: &[String],
    d: Duration,
    keep: impl Fn(&PushRecord) -> bool,
) -> Vec<PushRecord> {
    tokio::time::sleep(d).await;
    c.pushes_since_mark(tokens)
        .into_iter()
        .filter(|r| keep(r))
        .collect()
}

#[when(
    regex = r"^the app server sends exactly one VoIP push to Alice's (iPhone|iPad) within (\d+ (?:ms|s))$"
)]
#[then(
    regex = r"^the app server sends exactly one VoIP push to Alice's (iPhone|iPad) within (\d+ (?:ms|s))$"
)]
async fn one_voip_push(w: &mut BenchWorld, device: String, d: Dur) {
    outcome(async {
    let kind = device_kind(&device)?;
    let d = d.0;
    let c = w.xmpp().await?;
    let dev = c.device(kind)?;
    let token = dev
        .voip_token
        .clone()
        .ok_or_else(|| StepError::inconclusive(format!("Alice's {kind} has no VoIP token")))?;
    let all = pushes_in_window(c, &dev.tokens(), d, |_| true).await;
    let voip: Vec<PushRecord> = all
        .iter()
        .filter(|r| r.token.as_deref() == Some(token.as_str()) && r.is_voip())
        .cloned()
        .collect();
    if voip.len() == 1 {
        if let Some(p) = voip.into_iter().next() {
            c.set_push(p);
        }
        return Ok(());
    }
    let why = format!(
        "expected exactly one VoIP push to Alice's {kind} within {d:?}; got {} VoIP push(es); everything to its tokens: {}",
        voip.len(),
        summaries(&all)
    );
    Err(match all.first() {
        Some(r) => StepError::fail_with_message(why, r.payload.clone()),
        None => StepError::fail(why),
    })
    }.await)
}

#[when(
    regex = r"^the app server sends exactly one alert push on the app's topic to Alice's alert token within (\d+ (?:ms|s))$"
)]
#[then(
    regex = r"^the app server sends exactly one alert push on the app's topic to Alice's alert token within (\d+ (?:ms|s))$"
)]
async fn one_alert_push(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.xmpp().await?;
            let token = c
                .device(DeviceKind::Iphone)?
                .alert_token
                .clone()
                .ok_or_else(|| StepError::inconclusive("Alice's iPhone has no alert token"))?;
            let got = pushes_in_window(c, std::slice::from_ref(&token), d, |_| true).await;
            let shaped = |r: &PushRecord| {
                r.header("apns-push-type").as_deref() == Some("alert")
                    && r.header("apns-topic").as_deref() == Some(c.bundle())
            };
            match got.as_slice() {
                [one] if shaped(one) => {
                    c.set_push(one.clone());
                    Ok(())
                }
                [one] => Err(StepError::fail_with_message(
                    format!(
                        "expected an alert push on topic {:?} to Alice's alert token; it was: {}",
                        c.bundle(),
                        one.summary()
                    ),
                    one.payload.clone(),
                )),
                _ => Err(StepError::fail(format!(
            "expected exactly one alert push to Alice's alert token within {d:?}; got {}: {}",
            got.len(),
            summaries(&got)
        ))),
            }
        }
        .await,
    )
}

fn the_push(c: &XmppCast) -> Result<&PushRecord, StepError> {
    c.push()
        .ok_or_else(|| StepError::inconclusive("no earlier step found the push"))
}

#[then(regex = r#"^the VoIP push has type voip, topic "(.*)", priority 10 and expiration 0$"#)]
async fn voip_push_shape(w: &mut BenchWorld, topic: String) {
    outcome(
        async {
            let c = w.xmpp().await?;
            let want_topic = unquote(&topic).replace("<bundle>", c.bundle());
            let p = the_push(c)?;
            let want = [
                ("apns-push-type", "voip"),
                ("apns-topic", want_topic.as_str()),
                ("apns-priority", "10"),
                ("apns-expiration", "0"),
            ];
            let wrong: Vec<String> = want
                .iter()
                .filter(|(h, v)| p.header(h).as_deref() != Some(*v))
                .map(|(h, v)| format!("{h} {:?} (expected {v:?})", p.header(h)))
                .collect();
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(StepError::fail_with_message(
                    format!("the VoIP push has {}", wrong.join(", ")),
                    p.payload.clone(),
                ))
            }
        }
        .await,
    )
}

#[then("the VoIP push's payload carries the call's JMI id and Bob's JID")]
async fn voip_payload(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            let id = c.call()?.id.clone();
            let p = the_push(c)?;
            let bad = |why: String| StepError::fail_with_message(why, p.payload.clone());
            let contract = c.payload_contract();
            let payload = contract
                .read(&p.payload)
                .map_err(|e| bad(format!("the VoIP push's payload: {e}")))?;
            if payload.kind != PayloadKind::Call || payload.call_id.as_deref() != Some(id.as_str())
            {
                return Err(bad(format!(
                    "expected a call payload with the JMI id {id:?} at {:?} (the target's \
                     [apns.payload] call_id); it has kind {:?}, id {:?}",
                    contract.call_id, payload.kind, payload.call_id
                )));
            }
            let from = payload.caller.unwrap_or_default();
            let bare = from
                .trim_start_matches("xmpp:")
                .split('/')
                .next()
                .unwrap_or_default();
            if bare.eq_ignore_ascii_case(c.bob_jid()) {
                Ok(())
            } else {
                Err(bad(format!(
                    "expected from-uri with Bob's JID {:?}; it is {from:?}",
                    c.bob_jid()
                )))
            }
        }
        .await,
    )
}

#[then(regex = r#"^no push to Alice contains "(.*)"$"#)]
async fn no_push_contains(w: &mut BenchWorld, text: String) {
    outcome(
        async {
            let text = unquote(&text);
            let c = w.xmpp().await?;
            let leaked: Vec<PushRecord> = c
                .pushes_since_start(&c.alice_tokens())
                .into_iter()
                .filter(|r| String::from_utf8_lossy(&r.payload).contains(&text))
                .collect();
            match leaked.first() {
                None => Ok(()),
                Some(r) => Err(StepError::fail_with_message(
                    format!(
                        "{} push(es) to Alice carry {text:?}: {}",
                        leaked.len(),
                        summaries(&leaked)
                    ),
                    r.payload.clone(),
                )),
            }
        }
        .await,
    )
}

#[then(regex = r"^the app server sends no push to Alice's tokens within (\d+ (?:ms|s))$")]
async fn no_push_to_tokens(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.xmpp().await?;
            let got = pushes_in_window(c, &c.alice_tokens(), d, |_| true).await;
            none_of(&got, "push to Alice's tokens", d)
        }
        .await,
    )
}

// ---- Then: the app server -------------------------------------------------------------------

#[then(
    regex = r"^the app server answers the publish for Alice's iPhone with an XMPP error within (\d+ (?:ms|s))$"
)]
async fn publish_error(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.xmpp().await?;
            let node = c.device(DeviceKind::Iphone)?.node.clone();
            let first = c.outcome_of_last_move(&node, Instant::now() + d).await;
            match first {
                Some(o) if matches!(o.answer, Answer::Error { .. }) => Ok(()),
                Some(o) => Err(StepError::fail(format!(
                    "the app server answered the publish for node {node:?} with {:?} (pushes: {})",
                    o.answer,
                    o.pushes
                        .iter()
                        .map(|(p, s)| format!("{} {} → {s:?}", p.push_type, p.device_token))
                        .collect::<Vec<_>>()
                        .join("; ")
                ))),
                None => Err(StepError::fail(format!(
                    "the app server handled no publish for node {node:?} within {d:?}"
                ))),
            }
        }
        .await,
    )
}

#[then("the app server has no registration for Alice's iPhone")]
async fn no_registration(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.xmpp().await?;
            let node = c.device(DeviceKind::Iphone)?.node.clone();
            match c.app().registry().get(&node) {
                None => Ok(()),
                Some(r) => Err(StepError::fail(format!(
                    "the app server still has the registration {r:?}"
                ))),
            }
        }
        .await,
    )
}

// ---- Then: the iPhone ---------------------------------------------------------------------

#[then(regex = r"^Alice's iPhone rings for the XMPP call within (\d+ (?:ms|s))$")]
#[when(regex = r"^Alice's iPhone rings for the XMPP call within (\d+ (?:ms|s))$")]
async fn rings_for_call(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.xmpp().await?;
            let id = c.call()?.id.clone();
            let origin = c.mark_at();
            let dev = c.device(DeviceKind::Iphone)?;
            let p = dev.phone()?;
            p.wait_until(
                &format!("a CallKit call reported from a push for the JMI call {id}"),
                d,
                |s| s.rang_from_push(&id).is_some(),
            )
            .await
            .map(|_| ())
            .map_err(|e| {
                StepError::fail(format!(
                    "{e}; the iPhone's pushes:\n{}",
                    dev.log.describe(origin)
                ))
            })
        }
        .await,
    )
}

#[then(regex = r#"^after reconnecting Alice's iPhone receives the message "(.*)" exactly once$"#)]
async fn receives_once(w: &mut BenchWorld, text: String) {
    outcome(async {
    let text = unquote(&text);
    let c = w.xmpp().await?;
    let domain = c.domain().to_owned();
    let dev = c.device_mut(DeviceKind::Iphone)?;
    dev.reconnect(&domain).await?;
    let count = |dev: &XDevice| {
        dev.reconnected
            .as_ref()
            .map(|r| {
                r.messages
                    .iter()
                    .filter(|m| m.body.as_deref() == Some(text.as_str()))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + XMPP_STEP;
    while count(dev) == 0 && Instant::now() < deadline {
        dev.more_messages(deadline.saturating_duration_since(Instant::now()))
            .await?;
    }
    // A second copy would come right behind the first.
    let watch_end = Instant::now() + DUPLICATE_WINDOW;
    while Instant::now() < watch_end {
        dev.more_messages(watch_end.saturating_duration_since(Instant::now()))
            .await?;
    }
    let n = count(dev);
    if n == 1 {
        return Ok(());
    }
    let r = dev.reconnected.as_ref();
    Err(StepError::fail(format!(
        "expected the message {text:?} exactly once after reconnecting ({}); received it {n} times; all messages: {:?}",
        r.map(|r| r.how.as_str()).unwrap_or("-"),
        r.map(|r| r
            .messages
            .iter()
            .map(|m| m.body.clone().unwrap_or_else(|| format!("{:?}", m.jmi.as_ref().map(|j| j.kind))))
            .collect::<Vec<_>>())
        .unwrap_or_default()
    )))
    }.await)
}

#[then("after reconnecting Alice's iPhone sees no live call proposal")]
async fn no_live_proposal(w: &mut BenchWorld) {
    outcome(async {
    let c = w.xmpp().await?;
    let domain = c.domain().to_owned();
    let r = c.device_mut(DeviceKind::Iphone)?.reconnect(&domain).await?;
    let live = live_proposals(&r.messages);
    if live.is_empty() {
        return Ok(());
    }
    Err(StepError::fail(format!(
        "after reconnecting ({}) the iPhone sees {} live call proposal(s) — a propose with no later retract, proceed, reject or finish: {:?}; JMI received: {:?}",
        r.how,
        live.len(),
        live.iter().map(|j| &j.id).collect::<Vec<_>>(),
        r.messages
            .iter()
            .filter_map(|m| m.jmi.as_ref().map(|j| format!("{} {}", j.kind.name(), j.id)))
            .collect::<Vec<_>>()
    )))
    }.await)
}
