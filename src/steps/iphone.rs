//! iPhone steps: what the simulated iPhone's user saw (IOS-*, and the iPhone side of the races):
//! rang for the call from its push, stopped ringing, missed call, CallKit end reasons,
//! notifications, bogus calls, app termination.

use super::calls::{register_after, wake_origin};
use super::cast::cast;
use super::device::{DeviceKind, Event};
use super::xmpp_cast::AlicePhone;
use super::{parse_dur, unquote};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then};
use phone::{Outcome, PayloadKind, Snapshot};
use std::time::{Duration, Instant};

fn wait_err(e: phone::WaitError) -> StepError {
    StepError::fail(e.to_string())
}

/// Alice's device's iOS model, her latest call's id and when the iPhone came back online, from
/// the XMPP cast in an XMPP scenario, else from the SIP cast.
async fn alice_phone(w: &mut BenchWorld, kind: DeviceKind) -> Result<AlicePhone, StepError> {
    if let Some(p) = super::xmpp_cast::alice_phone(w, kind)? {
        return Ok(p);
    }
    let c = cast(w).await?;
    Ok(AlicePhone {
        phone: c.device(kind)?.phone()?,
        call_id: c.calls.last().map(|b| b.call_id.clone()),
        back_online: c.back_online,
    })
}

fn call_id(p: &AlicePhone) -> Result<String, StepError> {
    p.call_id
        .clone()
        .ok_or_else(|| StepError::inconclusive("Bob has not called yet"))
}

#[given("Alice's app ignores VoIP pushes it cannot match to a call")]
async fn ignores_unmatched(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    c.terminate_unmatched = true;
    c.device_mut(DeviceKind::Iphone)?.restart_model(true);
    Ok(())
}

#[then("Alice's iPhone rings for the call before its REGISTER")]
async fn rings_before_register(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
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
        .find(|t| *t >= c.calls.last().map(|b| b.started).unwrap_or(rang));
    match first_register {
        Some(r) if r < rang => Err(StepError::fail(format!(
            "the iPhone rang for the call only {} ms after its REGISTER",
            rang.duration_since(r).as_millis()
        ))),
        _ => Ok(()),
    }
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
async fn stops_ringing_missed(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let id = c.call()?.call_id.clone();
    let p = c.device(DeviceKind::Iphone)?.phone()?;
    stops_ringing(&p, &id, d, true).await.map(|_| ())
}

#[then(regex = r"^Alice's iPhone stops ringing within (\d+ (?:ms|s)) of its REGISTER$")]
async fn stops_ringing_after_register(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let id = c.call()?.call_id.clone();
    let origin = wake_origin(c)?;
    let reg = register_after(c, DeviceKind::Iphone, origin).await?;
    let p = c.device(DeviceKind::Iphone)?.phone()?;
    let within = (reg + d).saturating_duration_since(Instant::now());
    // Not `stops_ringing`: that also needs call 1 to have rung under its Call-ID, which a push
    // without a Call-ID (fault `no-call-id-in-payload`) never gives; this check is only about
    // call 1 not ringing, and the fault matrix keeps that fault out of SIP-C6.
    p.wait_until(
        &format!("the cancelled call 1 ({id}) no longer ringing"),
        within,
        |s| !s.is_ringing(&id),
    )
    .await
    .map(|_| ())
    .map_err(wait_err)
}

#[then(regex = r"^Alice's iPhone stops ringing within (\d+ (?:ms|s))$")]
async fn stops_ringing_within(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let a = alice_phone(w, DeviceKind::Iphone).await?;
    stops_ringing(&a.phone, &call_id(&a)?, d, false)
        .await
        .map(|_| ())
}

/// Call 1 was cancelled before the iPhone registered; its CallKit call must end (a CANCEL after a
/// replay, a "call ended" push, or the app's own offer grace when the gateway dropped it) and not
/// be revived by the REGISTER. Waits for the end rather than sampling at one instant: with
/// `rfc8599-drop` nothing tells the phone, and the ring ends at the push plus the phone's offer
/// grace (4 s), which a fixed sample can straddle by a millisecond.
#[then(regex = r"^Alice's iPhone stops ringing for call 1 within (\d+ (?:ms|s)) of its REGISTER$")]
async fn stops_ringing_call_1(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let (id, started) = {
        let b = c.call_n(1)?;
        (b.call_id.clone(), b.started)
    };
    let reg = register_after(c, DeviceKind::Iphone, started).await?;
    let p = c.device(DeviceKind::Iphone)?.phone()?;
    let within = (reg + d).saturating_duration_since(Instant::now());
    // Not `stops_ringing`: that also needs call 1 to have rung under its Call-ID, which a push
    // without a Call-ID (fault `no-call-id-in-payload`) never gives; this check is only about
    // call 1 not ringing, and the fault matrix keeps that fault out of SIP-C6.
    p.wait_until(
        &format!("the cancelled call 1 ({id}) no longer ringing"),
        within,
        |s| !s.is_ringing(&id),
    )
    .await
    .map(|_| ())
    .map_err(wait_err)
}

#[then(
    regex = r#"^CallKit ends the call on Alice's (iPhone|iPad) as "([A-Za-z]+)" within (\d+ (?:ms|s))$"#
)]
async fn callkit_ends(
    w: &mut BenchWorld,
    device: String,
    reason: String,
    d: String,
) -> Result<(), StepError> {
    let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
    let d = parse_dur(&d)?;
    let want = unquote(&reason);
    let a = alice_phone(w, kind).await?;
    let (p, id) = (a.phone.clone(), call_id(&a)?);
    p.wait_until(
        &format!("the call {id} ended by CallKit as {want}"),
        d,
        |s| s.ended(&id).is_some_and(|(_, r)| r.as_str() == want),
    )
    .await
    .map(|_| ())
    .map_err(wait_err)
}

#[then(regex = r"^Alice's iPhone receives a call-ended push for the call within (\d+ (?:ms|s))$")]
async fn call_ended_push(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
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
                c.calls
                    .last()
                    .map(|b| b.started)
                    .unwrap_or_else(Instant::now)
            )
        ))),
    }
}

#[then(regex = r"^Alice's iPhone does not ring within (\d+ (?:ms|s))$")]
async fn does_not_ring(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let a = alice_phone(w, DeviceKind::Iphone).await?;
    // The window opens when the iPhone came back online (what APNs stored arrives at once).
    let from = a.back_online.unwrap_or_else(Instant::now);
    match a
        .phone
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

#[then(regex = r"^Alice's iPhone shows a notification within (\d+ (?:ms|s))$")]
async fn shows_notification(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let p = alice_phone(w, DeviceKind::Iphone).await?.phone;
    p.wait_until("a notification", d, |s| {
        s.outcomes
            .iter()
            .any(|o| matches!(o, Outcome::Notification { .. }))
    })
    .await
    .map(|_| ())
    .map_err(wait_err)
}

#[then("Alice's iPhone shows no bogus call")]
async fn no_bogus_call(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
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

#[then("Alice's app has never been terminated and still receives VoIP pushes")]
async fn never_terminated(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
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
}
