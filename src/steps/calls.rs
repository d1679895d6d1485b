//! Call steps: what Bob does (call, hang up, retransmit, send a message), what Alice's devices
//! do with the call (answer), and what Bob and the devices receive (SIP-B*, C*, D*, E*, F*).

use super::{outcome, unquote, Dur};
use crate::parties::device::{DeviceKind, Entry, Event};
use crate::parties::sip::{BobCall, SipCast};
use crate::target::CancelPolicy;
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{then, when};
use phone::Input;
use std::time::{Duration, Instant};

async fn call(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = w.sip().await?;
    let bob = c.bob().await?;
    let target = c.alice_aor().to_owned();
    // The call starts when its INVITE leaves: a gateway may push before `invite` even returns.
    c.mark_bob_move();
    let started = Instant::now();
    let call = bob
        .invite(&target)
        .map_err(|e| StepError::inconclusive(format!("Bob could not send his INVITE: {e}")))?;
    let call_id = call.call_id().to_owned();
    c.add_call(BobCall {
        call,
        call_id,
        started,
        hung_up: None,
        final_at: None,
        final_status: None,
    });
    Ok(())
}

#[when(regex = r"^Bob calls Alice(?: again)?$")]
async fn bob_calls(w: &mut BenchWorld) {
    outcome(async { call(w).await }.await)
}

#[when(regex = r"^Bob calls Alice again (\d+ (?:ms|s)) later$")]
async fn bob_calls_later(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let from = c
                .calls()
                .last()
                .map(|b| b.hung_up.unwrap_or(b.started))
                .unwrap_or_else(Instant::now);
            tokio::time::sleep_until((from + d).into()).await;
            call(w).await
        }
        .await,
    )
}

#[when("Bob calls Alice over UDP and retransmits the INVITE twice")]
async fn bob_retransmits(w: &mut BenchWorld) {
    outcome(
        async {
            call(w).await?;
            let c = w.sip().await?;
            let gw = c
                .gateway()
                .addrs
                .udp
                .ok_or_else(|| StepError::inconclusive("the target has no UDP listener"))?;
            let bob = c.bob().await?;
            let bytes = c.call()?.call.invite().to_bytes();
            for _ in 0..2 {
                bob.endpoint()
                    .send_raw(gw, bytes.clone(), "INVITE (retransmission)")
                    .map_err(|e| {
                        StepError::inconclusive(format!("retransmitting the INVITE: {e}"))
                    })?;
            }
            Ok(())
        }
        .await,
    )
}

/// Sends CANCEL for Bob's latest call and tells Alice's iOS devices (bench knowledge only).
async fn hang_up(c: &mut SipCast) -> Result<(), StepError> {
    let phones: Vec<_> = c.devices().filter_map(|d| d.phone().ok()).collect();
    let b = c.call_mut()?;
    let r = b.call.cancel(Duration::from_secs(2)).await;
    let now = Instant::now();
    b.hung_up = Some(now);
    for p in phones {
        p.send(Input::CallerEnded {
            call_id: b.call_id.clone(),
            at: now,
        });
    }
    match r {
        Ok(m) if m.status().is_some_and(|s| (200..300).contains(&s)) => Ok(()),
        // 481: the call had already ended at the gateway; the scenario checks Bob's 487.
        Ok(_) => Ok(()),
        Err(e) => Err(StepError::fail(format!(
            "Bob's CANCEL got no final response within 2 s: {e}"
        ))),
    }
}

#[when(regex = r"^Bob hangs up (\d+ (?:ms|s)) after the push$")]
async fn hangs_up_after_push(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let push = c
                .push()
                .ok_or_else(|| StepError::inconclusive("no earlier step saw the push"))?
                .at;
            tokio::time::sleep_until((push + d).into()).await;
            hang_up(c).await
        }
        .await,
    )
}

#[when(regex = r"^Bob hangs up (\d+ (?:ms|s)) after calling$")]
async fn hangs_up_after_calling(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let started = c.call()?.started;
            tokio::time::sleep_until((started + d).into()).await;
            hang_up(c).await
        }
        .await,
    )
}

#[when(regex = r"^Bob calls Alice (\d+) times, hanging up (\d+ (?:ms|s)) after each push$")]
async fn calls_hanging_up(w: &mut BenchWorld, n: usize, d: Dur) {
    outcome(
        async {
            let d = d.0;
            for i in 1..=n {
                call(w).await?;
                let c = w.sip().await?;
                let tokens = c.alice_tokens();
                let push = c
                    .next_push(&tokens, Duration::from_secs(2))
                    .await
                    .ok_or_else(|| {
                        StepError::fail(format!("call {i}: no push to Alice within 2 s"))
                    })?;
                c.set_push(push.clone());
                tokio::time::sleep_until((push.at + d).into()).await;
                hang_up(c).await?;
                let b = c.call_mut()?;
                let fin = b
                    .call
                    .await_final(Duration::from_secs(2))
                    .await
                    .map_err(|e| {
                        StepError::fail(format!("call {i}: Bob got no final response: {e}"))
                    })?;
                b.final_at = Some(Instant::now());
                b.final_status = fin.status();
                // Let the iPhone finish with this call before the next one (its grace period at most).
                let call_id = b.call_id.clone();
                if let Ok(p) = c.device(DeviceKind::Iphone).and_then(|d| d.phone()) {
                    let _ = p
                        .wait_until("the call to end", Duration::from_secs(6), |s| {
                            !s.is_ringing(&call_id)
                        })
                        .await;
                }
            }
            Ok(())
        }
        .await,
    )
}

#[when(
    regex = r"^Bob calls Alice (\d+) times, hanging up once her iPhone has the INVITE, her iPhone going back to sleep in between$"
)]
async fn calls_on_new_connections(w: &mut BenchWorld, n: usize) {
    outcome(
        async {
            for i in 1..=n {
                call(w).await?;
                let c = w.sip().await?;
                let call_id = c.call()?.call_id.clone();
                let log = c.device(DeviceKind::Iphone)?.log.clone();
                let deadline = Instant::now() + Duration::from_secs(8);
                let got = log
                    .wait_until(deadline, |es| {
                        es.iter()
                    .any(|e| matches!(&e.event, Event::Invite { call_id: x, .. } if *x == call_id))
                    .then_some(())
                    })
                    .await;
                hang_up(c).await?;
                let b = c.call_mut()?;
                let hung_up = b.hung_up.unwrap_or_else(Instant::now);
                let _ = b.call.await_final(Duration::from_secs(2)).await;
                if got.is_none() {
                    return Err(StepError::fail(format!(
                        "wake {i}: Alice's iPhone got no INVITE within 8 s of Bob's call"
                    )));
                }
                if c.gateway().cancel == CancelPolicy::CancelPush {
                    // The call-ended push of this call wakes the phone again: let it arrive first, so
                    // the next call's wake is its own.
                    let _ = log
                        .wait_until(hung_up + Duration::from_secs(2), |es| {
                            es.iter()
                                .any(|e| e.at >= hung_up && matches!(e.event, Event::Push { .. }))
                                .then_some(())
                        })
                        .await;
                }
                c.device(DeviceKind::Iphone)?.sleep();
            }
            Ok(())
        }
        .await,
    )
}

#[when("Bob sends Alice a message")]
async fn sends_message(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let bob = c.bob().await?;
            let target = c.alice_aor().to_owned();
            c.timeline().note("bench", "Bob sends Alice a MESSAGE");
            c.bob_moves();
            // The answer may wait for the bucket; the scenario looks at pushes and the phone.
            tokio::spawn(async move {
                let _ = bob
                    .message(&target, "Hello from Bob", Duration::from_secs(10))
                    .await;
            });
            Ok(())
        }
        .await,
    )
}

/// The Call-ID of Bob's latest call.
fn call_id(c: &SipCast) -> Result<String, StepError> {
    Ok(c.call()?.call_id.clone())
}

#[when(regex = r"^Alice taps Answer (\d+ (?:ms|s)) after her iPhone starts ringing$")]
async fn taps_answer(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = call_id(c)?;
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
            let id = call_id(c)?;
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
            let id = call_id(c)?;
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

// ---------------------------------------------------------------------------------- Bob sees

async fn bob_final(c: &mut SipCast, deadline: Instant) -> Result<sip_peer::Message, StepError> {
    let b = c.call_mut()?;
    let within = deadline.saturating_duration_since(Instant::now());
    let r = b.call.await_final(within).await;
    match r {
        Ok(m) => {
            b.final_at = Some(Instant::now());
            b.final_status = m.status();
            Ok(m)
        }
        Err(e) => Err(StepError::fail(format!(
            "Bob got no final response to his INVITE in time: {e}"
        ))),
    }
}

fn expect_status(m: &sip_peer::Message, ok: &[u16], what: &str) -> Result<(), StepError> {
    match m.status() {
        Some(s) if ok.contains(&s) => Ok(()),
        _ => Err(StepError::fail_with_message(
            format!("expected Bob to get {what}; he got {}", m.summary()),
            m.to_bytes(),
        )),
    }
}

#[then(regex = r"^Bob gets (\d+) ([A-Za-z ]+) within (\d+ (?:ms|s))$")]
async fn bob_gets(w: &mut BenchWorld, code: u16, reason: String, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let m = bob_final(c, Instant::now() + d).await?;
            expect_status(&m, &[code], &format!("{code} {reason} within {d:?}"))
        }
        .await,
    )
}

#[then(regex = r"^Bob gets 404 or 480 within (\d+ (?:ms|s))$")]
async fn bob_gets_404_480(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let started = c.call()?.started;
            let m = bob_final(c, started.max(Instant::now() - d) + d).await?;
            expect_status(&m, &[404, 480], &format!("404 or 480 within {d:?}"))
        }
        .await,
    )
}

#[then(
    regex = r"^Bob gets 480 Temporarily Unavailable within the bucket timer plus (\d+ (?:ms|s))$"
)]
async fn bob_gets_480_bucket(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let bucket = c.gateway().bucket;
            let started = c.call()?.started;
            let m = bob_final(c, started + bucket + d).await?;
            expect_status(
                &m,
                &[480],
                &format!("480 within the bucket timer ({bucket:?}) plus {d:?} of his INVITE"),
            )
        }
        .await,
    )
}

#[then(regex = r"^Bob gets 200 OK from Alice's (iPhone|iPad|desktop) within (\d+ (?:ms|s))$")]
async fn bob_gets_200_from(w: &mut BenchWorld, device: String, d: Dur) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let d = d.0;
            let c = w.sip().await?;
            let m = bob_final(c, Instant::now() + d).await?;
            expect_status(
                &m,
                &[200],
                &format!("200 OK from Alice's {kind} within {d:?}"),
            )?;
            let id = call_id(c)?;
            let answered = c
                .device(kind)?
                .log
                .entries()
                .iter()
                .any(|e| matches!(&e.event, Event::Answered { call_id } if *call_id == id));
            if answered {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "Bob got 200 OK, but Alice's {kind} never answered the call"
                )))
            }
        }
        .await,
    )
}

#[then(regex = r"^Bob gets 200 OK within (\d+ (?:ms|s)) of Alice's iPhone's REGISTER$")]
async fn bob_gets_200_after_register(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let origin = c.wake_origin()?;
            let reg = c.register_after(DeviceKind::Iphone, origin).await?;
            let m = bob_final(c, reg + d).await?;
            expect_status(
                &m,
                &[200],
                &format!("200 OK within {d:?} of the iPhone's REGISTER"),
            )
        }
        .await,
    )
}

#[then("Bob has no final response yet")]
async fn bob_no_final(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let b = c.call()?;
            match b
                .call
                .received()
                .iter()
                .find(|m| m.status().is_some_and(|s| s >= 200))
            {
                None => Ok(()),
                Some(m) => Err(StepError::fail_with_message(
                    format!(
                        "expected Bob's call to be still pending; he already got {}",
                        m.summary()
                    ),
                    m.to_bytes(),
                )),
            }
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
    let id = call_id(c)?;
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
            let id = call_id(c)?;
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
            let id = call_id(c)?;
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
    let id = call_id(c)?;
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
    let es = dev.log.entries();
    for (i, e) in es.iter().enumerate() {
        if matches!(&e.event, Event::Invite { call_id, .. } if *call_id == id) {
            let cancelled = es[i..].iter().any(|x| {
                matches!(&x.event, Event::Cancel { call_id, .. } if *call_id == id)
                    && x.at <= e.at + Duration::from_secs(1)
            });
            if !cancelled {
                return Err(StepError::fail(format!(
                    "Alice's iPhone got a live INVITE for the cancelled call 1 ({id}): no CANCEL within 1 s:\n{}",
                    dev.log.describe(started)
                )));
            }
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
            let id = call_id(c)?;
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
            let id = call_id(c)?;
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
