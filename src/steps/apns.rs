//! APNs steps: what APNs is told to answer, and what the gateway pushed (checked on mock-apns'
//! push log: every request for the scenario's tokens, whatever its type or answer).

use super::{none_of, outcome, summaries, unquote, Dur};
use crate::parties::device::DeviceKind;
use crate::parties::sip::{PushMark, SipCast};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then, when};
use mock_apns::{DeviceState, Environment, Fault, FaultAction, PushRecord};
use std::time::{Duration, Instant};

fn voip_token(c: &SipCast) -> Result<String, StepError> {
    c.find_device(DeviceKind::Iphone)
        .and_then(|d| d.voip_token.clone())
        .or_else(|| c.pending_token().map(str::to_owned))
        .ok_or_else(|| StepError::inconclusive("Alice's iPhone has no VoIP token"))
}

fn reason_for(status: u16) -> &'static str {
    match status {
        400 => "BadDeviceToken",
        403 => "InvalidProviderToken",
        410 => "Unregistered",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        _ => "ServiceUnavailable",
    }
}

fn inject(c: &SipCast, status: u16, reason: &str, count: u32) -> Result<(), StepError> {
    let token = voip_token(c)?;
    let mut f = Fault::next(FaultAction::Reject {
        status,
        reason: reason.to_owned(),
    })
    .for_token(token);
    f.count = count;
    c.apns().inject(f);
    Ok(())
}

#[given(regex = r"^APNs answers (\d+) ([A-Za-z]+) to the next push for Alice's token$")]
async fn answers_next(w: &mut BenchWorld, status: u16, reason: String) {
    outcome(
        async {
            let c = w.sip().await?;
            inject(c, status, &reason, 1)
        }
        .await,
    )
}

#[given(regex = r"^APNs answers (\d+) to the next (\d+) pushes for Alice's token$")]
async fn answers_next_n(w: &mut BenchWorld, status: u16, n: u32) {
    outcome(
        async {
            let c = w.sip().await?;
            inject(c, status, reason_for(status), n)
        }
        .await,
    )
}

#[given(regex = r"^APNs answers (\d+) to every push for Alice's token$")]
async fn answers_every(w: &mut BenchWorld, status: u16) {
    outcome(
        async {
            let c = w.sip().await?;
            inject(c, status, reason_for(status), u32::MAX)
        }
        .await,
    )
}

#[given("APNs keeps pushes for Alice's iPhone even with expiration 0")]
async fn keeps_pushes(w: &mut BenchWorld) {
    outcome(
        async {
            // Apple forum 795610: a push sent with expiration 0 was still delivered 20-30 s later, after
            // flight mode ended. mock-apns models it as a per-device option.
            let c = w.sip().await?;
            let d = c.device(DeviceKind::Iphone)?;
            for t in d.tokens() {
                c.apns().set_keep_expired(&t, true).map_err(|e| {
                    StepError::inconclusive(format!("mock-apns does not know Alice's token: {e}"))
                })?;
            }
            Ok(())
        }
        .await,
    )
}

#[given("Alice's iPhone is in flight mode")]
async fn flight_mode(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let d = c.device(DeviceKind::Iphone)?;
            d.silence();
            for t in d.tokens() {
                c.set_token_state(&t, DeviceState::Offline)?;
            }
            Ok(())
        }
        .await,
    )
}

#[when(regex = r"^Alice's iPhone leaves flight mode (\d+ (?:ms|s)) later$")]
async fn leaves_flight_mode(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            tokio::time::sleep(d).await;
            let c = w.sip().await?;
            let dev = c.device(DeviceKind::Iphone)?;
            // Back to sleep with its network: the account wakes when a push arrives.
            dev.sleep();
            let tokens = dev.tokens();
            c.set_back_online();
            for t in tokens {
                c.set_token_state(&t, DeviceState::Online)?;
            }
            Ok(())
        }
        .await,
    )
}

#[given(regex = r"^the gateway delays its pushes by (\d+ (?:ms|s))$")]
async fn push_delay(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            if let Some(gw) = &c.gateway().embedded {
                gw.set_push_delay(d);
                c.timeline().note(
                    "bench",
                    format!("the reference gateway delays its pushes by {d:?}"),
                );
                return Ok(());
            }
            let declared = c.gateway().declared_push_delay;
            if declared >= d {
                return Ok(());
            }
            Err(StepError::inconclusive(format!(
                "the scenario needs a push delay of at least {d:?}; the target declares {:?} \
         ([timers] push_delay_ms)",
                declared
            )))
        }
        .await,
    )
}

async fn expect_push(
    c: &mut SipCast,
    tokens: &[String],
    d: Duration,
    whom: &str,
) -> Result<PushMark, StepError> {
    match c.next_push(tokens, d).await {
        Some(p) => {
            c.set_push(p.clone());
            Ok(p)
        }
        None => Err(StepError::fail(format!(
            "expected a push to {whom} within {d:?}; mock APNs got none for {tokens:?}"
        ))),
    }
}

#[when(regex = r"^the gateway pushes to Alice within (\d+ (?:ms|s))$")]
#[then(regex = r"^the gateway pushes to Alice within (\d+ (?:ms|s))$")]
async fn pushes_to_alice(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let tokens = c.alice_tokens();
            expect_push(c, &tokens, d, "Alice").await.map(|_| ())
        }
        .await,
    )
}

#[then(regex = r"^the gateway pushes to Alice's (iPhone|iPad|desktop) within (\d+ (?:ms|s))$")]
async fn pushes_to_device(w: &mut BenchWorld, device: String, d: Dur) {
    outcome(
        async {
            let kind: DeviceKind = device.parse().map_err(StepError::inconclusive)?;
            let d = d.0;
            let c = w.sip().await?;
            let tokens = c.device(kind)?.tokens();
            expect_push(c, &tokens, d, &format!("Alice's {kind}"))
                .await
                .map(|_| ())
        }
        .await,
    )
}

#[then(regex = r#"^the gateway pushes to token "(.*)" within (\d+ (?:ms|s))$"#)]
async fn pushes_to_token(w: &mut BenchWorld, token: String, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let t = c.token_for(&token);
            expect_push(c, &[t], d, &format!("token {token}"))
                .await
                .map(|_| ())
        }
        .await,
    )
}

#[then(regex = r"^the gateway pushes to Alice's VoIP token on the sandbox within (\d+ (?:ms|s))$")]
async fn pushes_sandbox(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let t = voip_token(c)?;
            let p = expect_push(c, &[t], d, "Alice's VoIP token").await?;
            if p.record.environment == Environment::Sandbox {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "expected the push on the sandbox (pn-provider=apns.dev); it went to {}: {}",
                    p.record.environment.as_str(),
                    p.record.summary()
                )))
            }
        }
        .await,
    )
}

async fn watch_window(d: Duration) {
    // "No … within D" watches the whole window.
    tokio::time::sleep(d).await;
}

#[then(regex = r"^the gateway sends no push to Alice within (\d+ (?:ms|s))$")]
async fn no_push(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            watch_window(d).await;
            none_of(&c.pushes_since_mark(&c.alice_tokens()), "push to Alice", d)
        }
        .await,
    )
}

#[then(regex = r#"^the gateway sends no push to token "(.*)" within (\d+ (?:ms|s))$"#)]
async fn no_push_token(w: &mut BenchWorld, token: String, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let t = c.token_for(&token);
            watch_window(d).await;
            none_of(
                &c.pushes_since_mark(&[t]),
                &format!("push to token {token}"),
                d,
            )
        }
        .await,
    )
}

#[then(regex = r"^the gateway sends no push to Alice's alert token within (\d+ (?:ms|s))$")]
async fn no_push_alert(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let t = c
                .device(DeviceKind::Iphone)?
                .alert_token
                .clone()
                .ok_or_else(|| StepError::inconclusive("Alice's iPhone has no alert token"))?;
            watch_window(d).await;
            none_of(&c.pushes_since_mark(&[t]), "push to Alice's alert token", d)
        }
        .await,
    )
}

#[then(regex = r"^the gateway sends no VoIP push to Alice within (\d+ (?:ms|s))$")]
async fn no_voip_push(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            // Created first (an XMPP cast is set up now, before the window), then watched.
            w.alice().await?;
            watch_window(d).await;
            let voip = w.alice().await?.voip_pushes_to_alice();
            none_of(&voip, "VoIP push to Alice", d)
        }
        .await,
    )
}

#[then(
    regex = r"^the gateway sends an alert push on the app's topic to Alice's alert token within (\d+ (?:ms|s))$"
)]
async fn alert_push(w: &mut BenchWorld, d: Dur) {
    outcome(async {
    let d = d.0;
    let c = w.sip().await?;
    let t = c
        .device(DeviceKind::Iphone)?
        .alert_token
        .clone()
        .ok_or_else(|| StepError::inconclusive("Alice's iPhone has no alert token"))?;
    let p = expect_push(c, &[t], d, "Alice's alert token").await?;
    let (ty, topic) = (
        p.record.header("apns-push-type").unwrap_or_default(),
        p.record.header("apns-topic").unwrap_or_default(),
    );
    if ty.eq_ignore_ascii_case("alert") && topic == c.app().bundle {
        Ok(())
    } else {
        Err(StepError::fail_with_message(
            format!(
                "expected an alert push on topic {:?}; it had apns-push-type {ty:?}, apns-topic {topic:?}",
                c.app().bundle
            ),
            p.record.payload.clone(),
        ))
    }
    }.await)
}

#[then(regex = r"^the gateway pushes to Alice's token exactly once within (\d+ (?:ms|s))$")]
async fn exactly_once(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            watch_window(d).await;
            let got = c.pushes_since_mark(&c.alice_tokens());
            if got.len() == 1 {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "expected exactly one push to Alice within {d:?}; mock APNs got {}: {}",
                    got.len(),
                    summaries(&got)
                )))
            }
        }
        .await,
    )
}

#[then(regex = r"^the gateway sent at most (\d+) push requests for the call$")]
async fn at_most(w: &mut BenchWorld, n: usize) {
    outcome(
        async {
            let c = w.sip().await?;
            let got = c.pushes_since_mark(&c.alice_tokens());
            if !got.is_empty() && got.len() <= n {
                Ok(())
            } else {
                Err(StepError::fail(format!(
                    "expected between 1 and {n} push requests for the call; mock APNs got {}: {}",
                    got.len(),
                    summaries(&got)
                )))
            }
        }
        .await,
    )
}

#[then(regex = r"^APNs accepts the third push request within (\d+ (?:ms|s))$")]
async fn third_accepted(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let tokens = c.alice_tokens();
            let deadline = Instant::now() + d;
            loop {
                let got = c.pushes_since_mark(&tokens);
                if let Some(third) = got.get(2) {
                    return if third.status == 200 {
                        Ok(())
                    } else {
                        Err(StepError::fail(format!(
                            "expected APNs to accept the third push request; it answered {}",
                            third.summary()
                        )))
                    };
                }
                if Instant::now() >= deadline {
                    return Err(StepError::fail(format!(
                        "expected a third push request within {d:?}; mock APNs got {}: {}",
                        got.len(),
                        summaries(&got)
                    )));
                }
                // The push log has no per-count signal; poll it with the step's deadline.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        .await,
    )
}

/// The push for Bob's latest call: "the push" if a step saw it, else the first since the call.
fn call_push(c: &SipCast) -> Result<PushRecord, StepError> {
    if let Some(p) = c.push() {
        return Ok(p.record.clone());
    }
    c.pushes_since_mark(&c.alice_tokens())
        .into_iter()
        .next()
        .ok_or_else(|| StepError::fail("expected a push for Bob's call; mock APNs got none"))
}

#[then(regex = r#"^the call push has "([^"]*)" set to "([^"]*)"$"#)]
async fn push_header(w: &mut BenchWorld, name: String, value: String) {
    outcome(
        async {
            let c = w.sip().await?;
            let want = unquote(&value)
                .replace("<bundle>", &c.app().bundle)
                .replace("<team>", &c.app().team);
            let p = call_push(c)?;
            match p.header(&name) {
                Some(v) if *v == want => Ok(()),
                got => Err(StepError::fail_with_message(
                    format!(
                        "expected the call push to have {name}: {want}; it has {}",
                        got.map(|v| format!("{name}: {v}"))
                            .unwrap_or_else(|| format!("no {name} header"))
                    ),
                    p.headers
                        .pairs()
                        .iter()
                        .map(|(n, v)| format!("{n}: {v}\r\n"))
                        .collect::<String>()
                        .into_bytes(),
                )),
            }
        }
        .await,
    )
}

/// A push whose payload lacks a key the target's `[apns.payload]` declares: the pointer looked
/// for and the payload got.
fn missing_key(p: &PushRecord, e: phone::PayloadError) -> StepError {
    StepError::fail_with_message(
        format!(
            "the call push's payload: {e}; the payload it got: {}",
            String::from_utf8_lossy(&p.payload)
        ),
        p.payload.clone(),
    )
}

#[then("the call push's payload carries the Call-ID of Bob's INVITE")]
async fn payload_call_id(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let id = c.call()?.call_id.clone();
            let p = call_push(c)?;
            let contract = &c.app().payload;
            let got = contract
                .call_id_of(&p.payload)
                .map_err(|e| missing_key(&p, e))?;
            if got == id {
                Ok(())
            } else {
                Err(StepError::fail_with_message(
                    format!(
                        "expected the Call-ID {id:?} at {:?} (the target's [apns.payload] call_id); \
                         the payload has {got:?} there",
                        contract.call_id
                    ),
                    p.payload.clone(),
                ))
            }
        }
        .await,
    )
}

#[then("the call push's payload carries every other key the target declares")]
async fn payload_declared_keys(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let p = call_push(c)?;
            let contract = &c.app().payload;
            // Only what the target declares: the payload is the app's contract, not a standard.
            contract
                .send_time_of(&p.payload)
                .map_err(|e| missing_key(&p, e))?;
            contract
                .caller_of(&p.payload)
                .map_err(|e| missing_key(&p, e))?;
            Ok(())
        }
        .await,
    )
}
