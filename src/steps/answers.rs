//! Alice's devices and Bob's calls: how she answers (on which device, when) and what each device
//! receives (the INVITE after its REGISTER, on the connection it opened, the CANCEL and its
//! Reason, no INVITE for a dead call) (SIP-B*, C*, D*, F*).

use super::{outcome, unquote, Dur};
use crate::parties::device::{DeviceKind, Entry, Event};
use crate::parties::sip::SipCast;
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{then, when};
use phone::Input;
use std::time::{Duration, Instant};

#[when(regex = r"^Alice taps Answer (\d+ (?:ms|s)) after her iPhone starts ringing$")]
async fn taps_answer(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call_id()?;
            let p = c.device(DeviceKind::Iphone)?.phone()?;
            let s = p
                .wait_until("ringing for the call", Duration::from_secs(3), |s| {
                    s.rang_at(&id).is_some()
                })
                .await
                .map_err(|e| StepError::fail(e.to_string()))?;
            let rang = s.rang_at(&id).unwrap_or_else(Instant::now);
            tokio::time::sleep_until((rang + d).into()).await;
            p.send(Input::Answer { call_id: Some(id) });
            Ok(())
        }
        .await,
    )
}

async fn answer_on(c: &mut SipCast, kind: DeviceKind, id: String) -> Result<(), StepError> {
    let deadline = Instant::now() + Duration::from_secs(3);
    c.invite_at(kind, &id, deadline).await?;
    let d = c.device(kind)?;
    match d.phone() {
        Ok(p) => {
            // The user answers what CallKit shows. The device's log sees the INVITE a moment
            // before the phone has taken it as the offer; when the push carried no call-id
            // (`no-call-id-in-payload`), only that offer makes the call ring, and an Answer sent
            // earlier finds nothing ringing. So wait until the phone has the offer (or has ended
            // the call, which the next step reports).
            let within = deadline.saturating_duration_since(Instant::now());
            p.wait_until("the INVITE to show as a call to answer", within, |s| {
                s.calls
                    .iter()
                    .any(|v| v.call_id.as_deref() == Some(id.as_str()) && v.has_offer)
                    || s.ended(&id).is_some()
            })
            .await
            .map_err(|e| {
                StepError::fail(format!(
                    "Alice's {kind} received Bob's INVITE ({id}) but CallKit shows no call to answer: {e}"
                ))
            })?;
            p.send(Input::Answer { call_id: Some(id) });
        }
        Err(_) => {
            d.answer_call(&id);
        }
    }
    Ok(())
}

#[when(regex = r"^Alice answers on her (iPhone|iPad|desktop)$")]
async fn answers_on(w: &mut BenchWorld, device: String) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let c = w.sip().await?;
            let id = c.call_id()?;
            answer_on(c, kind, id).await
        }
        .await,
    )
}

#[when("Alice answers call 2 on her iPhone")]
async fn answers_call_2(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let id = c.call_n(2)?.call_id.clone();
            answer_on(c, DeviceKind::Iphone, id).await
        }
        .await,
    )
}

#[when(regex = r"^Alice's desktop answers (\d+ (?:ms|s)) after the push$")]
async fn desktop_answers(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call_id()?;
            let push = c
                .push()
                .ok_or_else(|| StepError::inconclusive("no earlier step saw the push"))?
                .at;
            c.invite_at(DeviceKind::Desktop, &id, push + d).await?;
            tokio::time::sleep_until((push + d).into()).await;
            c.device(DeviceKind::Desktop)?.answer_call(&id);
            Ok(())
        }
        .await,
    )
}

// ----------------------------------------------------------------------------- devices see

#[then(regex = r"^Alice's iPhone registers within (\d+ (?:ms|s)) of the push$")]
async fn registers_within(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let push = c
                .push()
                .ok_or_else(|| StepError::inconclusive("no earlier step saw the push"))?
                .at;
            let reg = c.register_after(DeviceKind::Iphone, push).await?;
            if reg <= push + d {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "expected the iPhone's REGISTER within {d:?} of the push; it came after {} ms",
                    reg.duration_since(push).as_millis()
                )))
            }
        }
        .await,
    )
}

#[then(
    regex = r"^Alice's (iPhone|iPad|desktop) receives Bob's INVITE within (\d+ (?:ms|s)) of its REGISTER$"
)]
async fn invite_after_register(w: &mut BenchWorld, device: String, d: Dur) {
    outcome(async {
    let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
    let d = d.0;
    let c = w.sip().await?;
    let id = c.call_id()?;
    let origin = c.call()?.started;
    let reg = c.register_after(kind, origin).await?;
    let at = c.invite_at(kind, &id, reg + d).await?;
    if at <= reg + d {
        Ok(())
    } else {
        Err(StepError::fail(format!(
            "expected Bob's INVITE on Alice's {kind} within {d:?} of its REGISTER; it came {} ms after",
            at.saturating_duration_since(reg).as_millis()
        )))
    }
    }.await)
}

#[then(regex = r"^Alice's (iPhone|iPad|desktop) receives Bob's INVITE within (\d+ (?:ms|s))$")]
async fn invite_within(w: &mut BenchWorld, device: String, d: Dur) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call_id()?;
            let started = c.call()?.started;
            c.invite_at(kind, &id, started + d).await.map(|_| ())
        }
        .await,
    )
}

#[then(
    regex = r"^every INVITE reached Alice's iPhone on the connection it opened when it woke, within (\d+ (?:ms|s)) of its REGISTER$"
)]
async fn every_invite_on_new_connection(w: &mut BenchWorld, d: Dur) {
    outcome(async {
    let d = d.0;
    let c = w.sip().await?;
    let dev = c.device(DeviceKind::Iphone)?;
    let entries = dev.log.entries();
    let registrar = dev.registrar;
    let mut problems = Vec::new();
    for (i, b) in c.calls().iter().enumerate() {
        let reg = entries
            .iter()
            .find(|e| e.at >= b.started && e.event == Event::RegisterSent)
            .map(|e| e.at);
        let inv = entries.iter().find_map(|e| match &e.event {
            Event::Invite {
                call_id,
                source,
                connections,
            } if *call_id == b.call_id => Some((e.at, *source, *connections)),
            _ => None,
        });
        match (reg, inv) {
            (Some(r), Some((at, source, conns))) => {
                if at > r + d {
                    problems.push(format!(
                        "wake {}: INVITE {} ms after the REGISTER",
                        i + 1,
                        at.duration_since(r).as_millis()
                    ));
                }
                if source != registrar || conns != 1 {
                    problems.push(format!(
                        "wake {}: INVITE from {source} with {conns} connection(s) open, not on the connection the iPhone opened to {registrar}",
                        i + 1
                    ));
                }
            }
            (None, _) => problems.push(format!("wake {}: no REGISTER", i + 1)),
            (_, None) => problems.push(format!("wake {}: no INVITE", i + 1)),
        }
    }
    if problems.is_empty() && !c.calls().is_empty() {
        Ok(())
    } else {
        Err(StepError::fail(format!(
            "expected every INVITE on the connection the iPhone opened when it woke, within {d:?} of its REGISTER:\n  {}",
            problems.join("\n  ")
        )))
    }
    }.await)
}

async fn no_invite_after(
    c: &SipCast,
    kind: DeviceKind,
    reg: Instant,
    d: Duration,
    call_id: Option<&str>,
) -> Result<(), StepError> {
    let dev = c.device(kind)?;
    let matches = |e: &Entry| {
        e.at >= reg
            && matches!(&e.event, Event::Invite { call_id: x, .. } if call_id.is_none_or(|id| id == x))
    };
    let found = dev
        .log
        .wait_until(reg + d, |es| es.iter().find(|e| matches(e)).cloned())
        .await;
    match found {
        None => Ok(()),
        Some(e) => Err(StepError::fail(format!(
            "expected no INVITE{} within {d:?} of the REGISTER; one came {} ms after it:\n{}",
            call_id
                .map(|id| format!(" for the call {id}"))
                .unwrap_or_default(),
            e.at.saturating_duration_since(reg).as_millis(),
            dev.log.describe(reg)
        ))),
    }
}

#[then(regex = r"^Alice's iPhone receives no INVITE within (\d+ (?:ms|s)) of its REGISTER$")]
async fn no_invite(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let dev = c.device(DeviceKind::Iphone)?;
            let reg = dev
                .log
                .entries()
                .iter()
                .rev()
                .find(|e| e.event == Event::RegisterSent)
                .map(|e| e.at)
                .ok_or_else(|| StepError::inconclusive("Alice's iPhone sent no REGISTER"))?;
            no_invite_after(c, DeviceKind::Iphone, reg, d, None).await
        }
        .await,
    )
}

#[then(
    regex = r"^Alice's iPhone receives no INVITE for the call within (\d+ (?:ms|s)) of its REGISTER$"
)]
async fn no_invite_for_call(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call_id()?;
            let origin = c.wake_origin()?;
            let reg = c.register_after(DeviceKind::Iphone, origin).await?;
            no_invite_after(c, DeviceKind::Iphone, reg, d, Some(&id)).await
        }
        .await,
    )
}

#[then(
    regex = r"^Alice's iPhone receives Bob's INVITE and then its CANCEL within (\d+ (?:ms|s)) of its REGISTER$"
)]
async fn invite_then_cancel(w: &mut BenchWorld, d: Dur) {
    outcome(async {
    let d = d.0;
    let c = w.sip().await?;
    let id = c.call_id()?;
    let origin = c.wake_origin()?;
    let reg = c.register_after(DeviceKind::Iphone, origin).await?;
    let dev = c.device(DeviceKind::Iphone)?;
    let found = dev
        .log
        .wait_until(reg + d, |es| {
            let inv = es.iter().position(
                |e| matches!(&e.event, Event::Invite { call_id, .. } if *call_id == id),
            )?;
            es[inv..]
                .iter()
                .find(|e| matches!(&e.event, Event::Cancel { call_id, .. } if *call_id == id))
                .map(|e| e.at)
        })
        .await;
    match found {
        Some(at) if at <= reg + d => Ok(()),
        _ => Err(StepError::fail(format!(
            "expected Bob's INVITE and then its CANCEL within {d:?} of the iPhone's REGISTER; the iPhone saw:\n{}",
            dev.log.describe(reg)
        ))),
    }
    }.await)
}

#[then("Alice's iPhone receives no live INVITE for call 1")]
async fn no_live_invite(w: &mut BenchWorld) {
    outcome(async {
    let c = w.sip().await?;
    let b1 = c.call_n(1)?;
    let (id, started) = (b1.call_id.clone(), b1.started);
    let reg = c.register_after(DeviceKind::Iphone, started).await?;
    let dev = c.device(DeviceKind::Iphone)?;
    // Watch until the CANCEL of any INVITE for call 1 had its second to come.
    let window = reg + Duration::from_secs(3);
    tokio::time::sleep_until(window.into()).await;
    let invites: Vec<Instant> = dev
        .log
        .entries()
        .iter()
        .filter(|e| matches!(&e.event, Event::Invite { call_id, .. } if *call_id == id))
        .map(|e| e.at)
        .collect();
    for at in invites {
        // An INVITE near the end of the window has its CANCEL still to come: wait for it on the
        // iPhone's log until the INVITE's own second is over, never judge at this instant.
        let until = at + Duration::from_secs(1);
        let cancelled = dev
            .log
            .wait_until(until, |es| {
                es.iter()
                    .any(|x| {
                        x.at >= at
                            && x.at <= until
                            && matches!(&x.event, Event::Cancel { call_id, .. } if *call_id == id)
                    })
                    .then_some(())
            })
            .await
            .is_some();
        if !cancelled {
            return Err(StepError::fail(format!(
                "Alice's iPhone got a live INVITE for the cancelled call 1 ({id}): no CANCEL within 1 s:\n{}",
                dev.log.describe(started)
            )));
        }
    }
    Ok(())
    }.await)
}

#[then(
    regex = r#"^Alice's (iPhone|iPad|desktop) receives a CANCEL with Reason "(.*)" within (\d+ (?:ms|s))$"#
)]
async fn cancel_with_reason(w: &mut BenchWorld, device: String, reason: String, d: Dur) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let d = d.0;
            let want = unquote(&reason);
            let norm = |s: &str| {
                s.split_whitespace()
                    .collect::<String>()
                    .to_ascii_lowercase()
            };
            let c = w.sip().await?;
            let id = c.call_id()?;
            let dev = c.device(kind)?;
            let found = dev
                .log
                .wait_until(Instant::now() + d, |es| {
                    es.iter().find_map(|e| match &e.event {
                        Event::Cancel { call_id, reason } if *call_id == id => Some(reason.clone()),
                        _ => None,
                    })
                })
                .await;
            match found {
                Some(Some(r)) if norm(&r) == norm(&want) => Ok(()),
                Some(r) => Err(StepError::fail(format!(
                    "expected a CANCEL with Reason {want:?} on Alice's {kind}; it had Reason {r:?}"
                ))),
                None => Err(StepError::fail(format!(
            "expected a CANCEL with Reason {want:?} on Alice's {kind} within {d:?}; it saw:\n{}",
            dev.log.describe(c.calls().last().map(|b| b.started).unwrap_or_else(Instant::now))
        ))),
            }
        }
        .await,
    )
}

#[then(regex = r"^Alice's iPhone answers the INVITE within (\d+ (?:ms|s)) of receiving it$")]
async fn answers_within(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call_id()?;
            let inv = c
                .invite_at(
                    DeviceKind::Iphone,
                    &id,
                    Instant::now() + Duration::from_secs(6),
                )
                .await?;
            let dev = c.device(DeviceKind::Iphone)?;
            let ans = dev
                .log
                .wait_until(inv + d, |es| {
                    es.iter()
                        .find(|e| matches!(&e.event, Event::Answered { call_id } if *call_id == id))
                        .map(|e| e.at)
                })
                .await;
            match ans {
                Some(at) if at <= inv + d => Ok(()),
                _ => Err(StepError::fail(format!(
                    "expected the iPhone to answer within {d:?} of the INVITE; it saw:\n{}",
                    dev.log.describe(inv)
                ))),
            }
        }
        .await,
    )
}
