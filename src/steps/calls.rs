//! Bob's steps: what he does (call, hang up, retransmit, send a message) and what he gets back
//! (SIP-B*, C*, D*, E*, F*). What Alice's devices do with his calls is in [`super::answers`].

use super::{outcome, Dur};
use crate::parties::device::{DeviceKind, Event};
use crate::parties::sip::{BobCall, SipCast};
use crate::target::CancelPolicy;
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{then, when};
use phone::Input;
use std::time::{Duration, Instant};

/// How long after Bob's 200 OK the answering device's log may still be writing its `Answered`
/// entry (the device logs it once its 200 has left; the gateway may relay it to Bob first).
const ANSWER_LOG_GRACE: Duration = Duration::from_secs(1);

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
            let id = c.call_id()?;
            // The device logs `Answered` once its 200 has left, so Bob may hold the 200 (relayed
            // by the gateway) a moment before the device's log has the entry: wait for it on the
            // device's own log, with a grace, rather than reading the log at this instant.
            let dev = c.device(kind)?;
            let answered = dev
                .log
                .wait_until(Instant::now() + ANSWER_LOG_GRACE, |es| {
                    es.iter()
                        .any(|e| matches!(&e.event, Event::Answered { call_id } if *call_id == id))
                        .then_some(())
                })
                .await;
            match answered {
                Some(()) => Ok(()),
                None => Err(StepError::fail(format!(
                    "Bob got 200 OK, but Alice's {kind} never answered the call \
                     (nothing within {ANSWER_LOG_GRACE:?} of the 200); it saw:\n{}",
                    dev.log.describe(
                        c.calls()
                            .last()
                            .map(|b| b.started)
                            .unwrap_or_else(Instant::now)
                    )
                ))),
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

/// The `pn-*` parameter names of RFC 8599 §4.1 that identify Alice's device to its push service.
const PUSH_PARAMS: [&str; 3] = ["pn-provider", "pn-prid", "pn-param"];

#[then("nothing Bob received carries Alice's push parameters")]
async fn no_push_params_to_bob(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let tokens = c.alice_tokens();
            for m in c.calls().iter().flat_map(|b| b.call.received()) {
                let bytes = m.to_bytes();
                let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
                let leaked: Vec<&str> = PUSH_PARAMS
                    .iter()
                    .copied()
                    .filter(|p| text.contains(p))
                    .chain(
                        tokens
                            .iter()
                            .map(String::as_str)
                            .filter(|t| text.contains(&t.to_ascii_lowercase())),
                    )
                    .collect();
                if !leaked.is_empty() {
                    return Err(StepError::fail_with_message(
                        format!(
                            "Bob received Alice's push parameters ({}) in {} (RFC 8599 §13: \
                             they must not reach other users)",
                            leaked.join(", "),
                            m.summary()
                        ),
                        bytes,
                    ));
                }
            }
            Ok(())
        }
        .await,
    )
}
