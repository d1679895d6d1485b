//! iPhone steps: what the simulated iPhone's user saw (IOS-*, and the iPhone side of the races):
//! rang for the call from its push, stopped ringing, missed call, CallKit end reasons,
//! notifications, bogus calls, app termination.

use super::{outcome, unquote, Dur};
use crate::parties::device::{DeviceKind, Event};
use crate::parties::Alice;
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then};
use phone::{Outcome, PayloadKind, Snapshot};
use std::time::{Duration, Instant};

fn wait_err(e: phone::WaitError) -> StepError {
    StepError::fail(e.to_string())
}

/// The id of Bob's latest call, or inconclusive when he has not called.
fn latest_call_id(a: &dyn Alice) -> Result<String, StepError> {
    a.latest_call_id()
        .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
}

#[given("Alice's app ignores VoIP pushes it cannot match to a call")]
async fn ignores_unmatched(w: &mut BenchWorld) {
    outcome(async { w.sip().await?.ignore_unmatched_pushes() }.await)
}

#[then("Alice's iPhone rings for the call before its REGISTER")]
async fn rings_before_register(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let id = c.call()?.call_id.clone();
            let dev = c.device(DeviceKind::Iphone)?;
            let p = dev.phone()?;
            let s = p
                .wait_until(
                    &format!("a CallKit call reported from a push for the call {id}"),
                    Duration::from_secs(3),
                    |s| s.rang_from_push(&id).is_some(),
                )
                .await
                .map_err(wait_err)?;
            let rang = s.rang_from_push(&id).unwrap_or_else(Instant::now);
            let first_register = dev
                .log
                .entries()
                .iter()
                .filter(|e| e.event == Event::RegisterSent)
                .map(|e| e.at)
                .find(|t| *t >= c.calls().last().map(|b| b.started).unwrap_or(rang));
            match first_register {
                Some(r) if r < rang => Err(StepError::fail(format!(
                    "the iPhone rang for the call only {} ms after its REGISTER",
                    rang.duration_since(r).as_millis()
                ))),
                _ => Ok(()),
            }
        }
        .await,
    )
}

/// Waits until the cancelled call `id` is not ringing, at most until `until`. Not
/// [`stops_ringing`]: that also needs the call to have rung under its Call-ID, which a push without
/// a Call-ID (fault `no-call-id-in-payload`) never gives; this check is only about the call not
/// ringing, and the fault matrix keeps that fault out of SIP-C6.
async fn no_longer_ringing(
    p: &phone::PhoneHandle,
    id: &str,
    until: Instant,
) -> Result<(), StepError> {
    let within = until.saturating_duration_since(Instant::now());
    p.wait_until(
        &format!("the cancelled call 1 ({id}) no longer ringing"),
        within,
        |s| !s.is_ringing(id),
    )
    .await
    .map(|_| ())
    .map_err(wait_err)
}

async fn stops_ringing(
    p: &phone::PhoneHandle,
    id: &str,
    within: Duration,
    missed: bool,
) -> Result<Snapshot, StepError> {
    let what = if missed {
        format!("the call {id} rung, ended and in Recents as missed")
    } else {
        format!("the call {id} rung and no longer ringing")
    };
    p.wait_until(&what, within, |s| {
        s.rang_at(id).is_some() && !s.is_ringing(id) && (!missed || s.missed(id))
    })
    .await
    .map_err(wait_err)
}

#[then(regex = r"^Alice's iPhone stops ringing within (\d+ (?:ms|s)) and shows a missed call$")]
async fn stops_ringing_missed(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call()?.call_id.clone();
            let p = c.device(DeviceKind::Iphone)?.phone()?;
            stops_ringing(&p, &id, d, true).await.map(|_| ())
        }
        .await,
    )
}

#[then(regex = r"^Alice's iPhone stops ringing within (\d+ (?:ms|s)) of its REGISTER$")]
async fn stops_ringing_after_register(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let id = c.call()?.call_id.clone();
            let origin = c.wake_origin()?;
            let reg = c.register_after(DeviceKind::Iphone, origin).await?;
            let p = c.device(DeviceKind::Iphone)?.phone()?;
            no_longer_ringing(&p, &id, reg + d).await
        }
        .await,
    )
}

#[then(regex = r"^Alice's iPhone stops ringing within (\d+ (?:ms|s))$")]
async fn stops_ringing_within(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let a = w.alice().await?;
            let p = a.phone(DeviceKind::Iphone)?;
            stops_ringing(&p, &latest_call_id(a)?, d, false)
                .await
                .map(|_| ())
        }
        .await,
    )
}

/// Call 1 was cancelled before the iPhone registered; its CallKit call must end (a CANCEL after a
/// replay, a "call ended" push, or the app's own offer grace when the gateway dropped it) and not
/// be revived by the REGISTER. Waits for the end rather than sampling at one instant: with
/// `rfc8599-drop` nothing tells the phone, and the ring ends at the push plus the phone's offer
/// grace (4 s), which a fixed sample can straddle by a millisecond.
#[then(regex = r"^Alice's iPhone stops ringing for call 1 within (\d+ (?:ms|s)) of its REGISTER$")]
async fn stops_ringing_call_1(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let (id, started) = {
                let b = c.call_n(1)?;
                (b.call_id.clone(), b.started)
            };
            let reg = c.register_after(DeviceKind::Iphone, started).await?;
            let p = c.device(DeviceKind::Iphone)?.phone()?;
            no_longer_ringing(&p, &id, reg + d).await
        }
        .await,
    )
}

#[then(
    regex = r#"^CallKit ends the call on Alice's (iPhone|iPad) as "([A-Za-z]+)" within (\d+ (?:ms|s))$"#
)]
async fn callkit_ends(w: &mut BenchWorld, device: String, reason: String, d: Dur) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let d = d.0;
            let want = unquote(&reason);
            let a = w.alice().await?;
            let (p, id) = (a.phone(kind)?, latest_call_id(a)?);
            p.wait_until(
                &format!("the call {id} ended by CallKit as {want}"),
                d,
                |s| s.ended(&id).is_some_and(|(_, r)| r.as_str() == want),
            )
            .await
            .map(|_| ())
            .map_err(wait_err)
        }
        .await,
    )
}

#[then(regex = r"^Alice's iPhone receives a call-ended push for the call within (\d+ (?:ms|s))$")]
async fn call_ended_push(w: &mut BenchWorld, d: Dur) {
    outcome(async {
    let d = d.0;
    let c = w.sip().await?;
    let id = c.call()?.call_id.clone();
    let dev = c.device(DeviceKind::Iphone)?;
    let found = dev
        .log
        .wait_until(Instant::now() + d, |es| {
            es.iter().find(|e| {
                matches!(&e.event, Event::Push { kind: Some(PayloadKind::Cancel), call_id: Some(x), .. } if *x == id)
            }).map(|e| e.at)
        })
        .await;
    match found {
        Some(_) => Ok(()),
        None => Err(StepError::fail(format!(
            "expected a call-ended push for the call {id} within {d:?}; the iPhone saw:\n{}",
            dev.log.describe(
                c.calls()
                    .last()
                    .map(|b| b.started)
                    .unwrap_or_else(Instant::now)
            )
        ))),
    }
    }.await)
}

#[then(regex = r"^Alice's iPhone does not ring within (\d+ (?:ms|s))$")]
async fn does_not_ring(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let a = w.alice().await?;
            let phone = a.phone(DeviceKind::Iphone)?;
            // The window opens when the iPhone came back online (what APNs stored arrives at once).
            let from = a
                .back_online(DeviceKind::Iphone)
                .unwrap_or_else(Instant::now);
            match phone
                .wait_until("a CallKit call", d, |s| {
                    s.reports.iter().any(|r| r.at >= from)
                })
                .await
            {
                Err(phone::WaitError::Timeout { .. }) => Ok(()),
                Err(e) => Err(StepError::inconclusive(e.to_string())),
                Ok(s) => Err(StepError::fail(format!(
                    "expected the iPhone not to ring within {d:?}; it rang:\n{s}"
                ))),
            }
        }
        .await,
    )
}

#[then(regex = r"^Alice's iPhone shows a notification within (\d+ (?:ms|s))$")]
async fn shows_notification(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let p = w.alice().await?.phone(DeviceKind::Iphone)?;
            p.wait_until("a notification", d, |s| {
                s.outcomes
                    .iter()
                    .any(|o| matches!(o, Outcome::Notification { .. }))
            })
            .await
            .map(|_| ())
            .map_err(wait_err)
        }
        .await,
    )
}

#[then("Alice's iPhone shows no bogus call")]
async fn no_bogus_call(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let s = c.device(DeviceKind::Iphone)?.phone()?.snapshot();
            if s.bogus_calls() == 0 {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "expected no bogus call; the user saw {}:\n{s}",
                    s.bogus_calls()
                )))
            }
        }
        .await,
    )
}

#[then("Alice's app has never been terminated and still receives VoIP pushes")]
async fn never_terminated(w: &mut BenchWorld) {
    outcome(async {
    let c = w.sip().await?;
    let p = c.device(DeviceKind::Iphone)?.phone()?;
    // Let the pushes of the last step reach the phone before judging (a MESSAGE may be pushed).
    let settle = Duration::from_secs(2);
    let bad = p
        .wait_until("the app terminated or cut off", settle, |s| {
            s.terminations() > 0 || s.voip_cut_off
        })
        .await;
    match bad {
        Err(phone::WaitError::Timeout { .. }) => {
            let s = p.snapshot();
            if s.voip_cut_off || s.terminations() > 0 {
                Err(StepError::fail(format!("the app was terminated or cut off:\n{s}")))
            } else {
                Ok(())
            }
        }
        Err(e) => Err(StepError::inconclusive(e.to_string())),
        Ok(s) => Err(StepError::fail(format!(
            "expected the app never terminated and VoIP delivery never cut off; {} termination(s), cut off: {}:\n{s}",
            s.terminations(),
            s.voip_cut_off
        ))),
    }
    }.await)
}
