//! Registration steps: Alice's devices and their bindings (SIP-A*, and the set-up every
//! scenario starts with). REGISTERs of unusual shapes (compact headers, IPv6 Contact host, two
//! Contacts, escaped `pn-prid`, odd Contact parameters) are written byte by byte over UDP, as the
//! sip-peer corpus has them, and recorded on the timeline.

use super::{outcome, unquote, Dur};
use crate::parties::device::{DeviceKind, Event};
use crate::parties::random_token;
use crate::parties::sip::raw::RegResult;
use crate::parties::sip::{NewDevice, SipCast};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then, when};
use ref_gateway::config::Account;
use sip_peer::{Credentials, PushParams, Transport};
use std::time::{Duration, Instant};
use timeline::Direction;

fn pn(c: &SipCast, token: &str) -> String {
    format!(
        "pn-provider=apns;pn-param={}.{}.voip;pn-prid={token}",
        c.app().team,
        c.app().bundle
    )
}

/// How a device sleeps: as iOS does it (its socket closed, relaunched by the push on a new
/// port), or as a suspended app that kept its socket (only where a scenario says so).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sleep {
    Relaunch,
    KeepSocket,
}

async fn asleep(
    w: &mut BenchWorld,
    kind: DeviceKind,
    transport: Option<Transport>,
    alert: bool,
    how: Sleep,
) -> Result<(), StepError> {
    let token = random_token();
    let c = w.sip().await?;
    c.add_device(NewDevice {
        kind,
        transport,
        voip_token: Some(token),
        alert,
        expires: 3600,
    })
    .await?;
    c.register_or_inconclusive(kind).await?;
    let d = c.device(kind)?;
    if how == Sleep::KeepSocket {
        d.keep_socket_when_suspended();
    }
    d.sleep();
    Ok(())
}

#[given(regex = r"^Alice's (iPhone|iPad) is asleep with a VoIP token$")]
async fn asleep_voip(w: &mut BenchWorld, device: String) {
    outcome(
        async {
            asleep(
                w,
                device.parse().map_err(StepError::inconclusive)?,
                None,
                false,
                Sleep::Relaunch,
            )
            .await
        }
        .await,
    )
}

#[given(regex = r"^Alice's iPhone is suspended with a VoIP token, its app keeping its socket$")]
async fn suspended_keeping_socket(w: &mut BenchWorld) {
    outcome(async { asleep(w, DeviceKind::Iphone, None, false, Sleep::KeepSocket).await }.await)
}

#[given(regex = r"^Alice's iPhone is asleep with a VoIP token over (UDP|TCP|TLS)$")]
async fn asleep_over(w: &mut BenchWorld, transport: String) {
    outcome(
        async {
            let transport = match transport.as_str() {
                "UDP" => Transport::Udp,
                "TCP" => Transport::Tcp,
                _ => Transport::Tls,
            };
            // Replaces (and unregisters) the iPhone a Background may have set up.
            let c = w.sip().await?;
            if let Some(old) = c.take_device(DeviceKind::Iphone) {
                old.account.set_offline(sip_peer::Offline::Online);
                old.account
                    .unregister(Duration::from_secs(2))
                    .await
                    .map_err(|e| {
                        StepError::inconclusive(format!(
                            "the gateway refused to remove the Background iPhone's binding: {e}"
                        ))
                    })?;
            }
            asleep(
                w,
                DeviceKind::Iphone,
                Some(transport),
                false,
                Sleep::Relaunch,
            )
            .await
        }
        .await,
    )
}

#[given("Alice's iPhone is asleep with a VoIP token and an alert token")]
async fn asleep_alert(w: &mut BenchWorld) {
    outcome(async { asleep(w, DeviceKind::Iphone, None, true, Sleep::Relaunch).await }.await)
}

#[given("Alice's desktop is awake and registered")]
async fn desktop(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            c.add_device(NewDevice {
                kind: DeviceKind::Desktop,
                transport: None,
                voip_token: None,
                alert: false,
                expires: 3600,
            })
            .await?;
            c.register_or_inconclusive(DeviceKind::Desktop).await
        }
        .await,
    )
}

#[given(regex = r#"^Alice's iPhone has a VoIP token "(.*)"$"#)]
async fn has_token(w: &mut BenchWorld, token: String) {
    outcome(
        async {
            let c = w.sip().await?;
            let t = c.token_for(&token);
            c.register_voip_token(&t, "alice-iphone", c.step_token_environment());
            c.set_pending_token(t);
            Ok(())
        }
        .await,
    )
}

async fn registered_with(
    w: &mut BenchWorld,
    token: Option<String>,
    expires: u32,
) -> Result<(), StepError> {
    let token = match token {
        Some(t) => t,
        None => random_token(),
    };
    let c = w.sip().await?;
    c.add_device(NewDevice {
        kind: DeviceKind::Iphone,
        transport: None,
        voip_token: Some(token.clone()),
        alert: false,
        expires,
    })
    .await?;
    let d = c.device(DeviceKind::Iphone)?;
    let sent = Instant::now();
    let r = d.register(Duration::from_secs(2)).await;
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    match r {
        Ok(reg) => {
            c.set_granted_expires(reg.expires);
            c.set_last_registration(RegResult {
                sent,
                took: sent.elapsed(),
                response: Some(reg.response),
                error: None,
            });
            Ok(())
        }
        // A gateway may refuse a malformed token at once: the scenario then checks the call.
        Err(e) if !well_formed => {
            c.timeline().note(
                "bench",
                format!("the REGISTER with a malformed token was refused: {e}"),
            );
            Ok(())
        }
        Err(e) => Err(StepError::inconclusive(format!(
            "the gateway did not accept Alice's iPhone's REGISTER: {e}"
        ))),
    }
}

#[given(regex = r#"^Alice's iPhone is registered with VoIP token "(.*)"$"#)]
async fn registered_token(w: &mut BenchWorld, token: String) {
    outcome(
        async {
            let t = w.sip().await?.token_for(&token);
            registered_with(w, Some(t), 3600).await
        }
        .await,
    )
}

#[given(regex = r"^Alice's iPhone is registered with a VoIP token and Expires (\d+ (?:ms|s))$")]
async fn registered_expires(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let secs = d.0.as_secs().max(1) as u32;
            registered_with(w, None, secs).await
        }
        .await,
    )
}

#[given(regex = r"^Alice's iPhone takes (\d+ (?:ms|s)) to register after a push$")]
async fn wake_delay(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            w.sip().await?.set_wake_delay(d);
            Ok(())
        }
        .await,
    )
}

#[when("Alice's iPhone registers with its push parameters")]
async fn registers_push(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let token = c
                .pending_token()
                .map(str::to_owned)
                .ok_or_else(|| StepError::inconclusive("no step gave Alice's iPhone a token"))?;
            let contact = pn(c, &token);
            let user = c.alice_user().to_owned();
            let r = c
                .raw_register(
                    |l| format!("<sip:{user}@{l};{contact}>"),
                    false,
                    Duration::from_secs(5),
                )
                .await?;
            c.set_last_registration(r);
            Ok(())
        }
        .await,
    )
}

#[when(regex = r#"^Alice's iPhone registers with a REGISTER that has "(.*)"$"#)]
async fn registers_shape(w: &mut BenchWorld, shape: String) {
    outcome(async {
    let c = w.sip().await?;
    let token = c
        .pending_token()
        .map(str::to_owned)
        .ok_or_else(|| StepError::inconclusive("no step gave Alice's iPhone a token"))?;
    let user = c.alice_user().to_owned();
    let params = pn(c, &token);
    let instance = uuid::Uuid::new_v4();
    let (contact, compact): (Box<dyn Fn(std::net::SocketAddr) -> String + Send>, bool) = match shape
        .as_str()
    {
        "compact headers" => (
            Box::new(move |l| format!("<sip:{user}@{l};{params}>")),
            true,
        ),
        "+sip.instance and reg-id" => {
            (
                Box::new(move |l| {
                    format!("<sip:{user}@{l};{params}>;+sip.instance=\"<urn:uuid:{instance}>\";reg-id=1")
                }),
                false,
            )
        }
        "an IPv6 Contact host" => (
            Box::new(move |l| format!("<sip:{user}@[::1]:{};{params}>", l.port())),
            false,
        ),
        "two Contacts" => (
            Box::new(move |l| {
                format!("<sip:{user}@{l};{params}>, <sip:{user}@{l};transport=tcp;{params}>")
            }),
            false,
        ),
        "an escaped pn-prid" => {
            // Every digit of the token's first byte escaped: %3x.
            let escaped: String = token
                .chars()
                .enumerate()
                .map(|(i, ch)| {
                    if i < 2 {
                        format!("%{:02X}", ch as u32)
                    } else {
                        ch.to_string()
                    }
                })
                .collect();
            let params = params.replace(&token, &escaped);
            (
                Box::new(move |l| format!("<sip:{user}@{l};{params}>")),
                false,
            )
        }
        other => {
            return Err(StepError::inconclusive(format!(
                "unknown REGISTER shape {other:?}"
            )))
        }
    };
    let r = c.raw_register(contact, compact, Duration::from_secs(5)).await?;
    c.set_last_registration(r);
    Ok(())
    }.await)
}

#[when(regex = r#"^Alice's iPhone registers with Contact parameters "(.*)"$"#)]
async fn registers_params(w: &mut BenchWorld, params: String) {
    outcome(
        async {
            let c = w.sip().await?;
            let mut params = unquote(&params)
                .replace("<team>", &c.app().team)
                .replace("<bundle>", &c.app().bundle);
            for (literal, own) in c.own_tokens() {
                params = params.replace(literal, own);
            }
            let user = c.alice_user().to_owned();
            let r = c
                .raw_register(
                    |l| format!("<sip:{user}@{l};{params}>"),
                    false,
                    Duration::from_secs(5),
                )
                .await?;
            c.set_last_registration(r);
            Ok(())
        }
        .await,
    )
}

#[when(regex = r#"^Alice's iPhone re-registers with VoIP token "(.*)" from the same instance$"#)]
async fn rotates(w: &mut BenchWorld, token: String) {
    outcome(
        async {
            let c = w.sip().await?;
            let t = c.token_for(&token);
            c.register_voip_token(&t, "alice-iphone", c.step_token_environment());
            let (team, bundle) = (c.app().team.clone(), c.app().bundle.clone());
            let d = c.device_mut(DeviceKind::Iphone)?;
            d.account
                .set_push(Some(PushParams::apns(&t, &team, &bundle)));
            d.voip_token = Some(t);
            d.register(Duration::from_secs(2)).await.map_err(|e| {
                StepError::fail(format!(
                    "the re-REGISTER with the new token was refused: {e}"
                ))
            })?;
            Ok(())
        }
        .await,
    )
}

#[when("Alice's iPhone re-registers from a new address with the same push parameters")]
async fn moves(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let old = c.device(DeviceKind::Iphone)?;
            let (token, instance) = (
                old.voip_token.clone(),
                old.account.config().instance.clone(),
            );
            let push = old.account.config().push.clone();
            old.sleep();
            let old = c
                .take_device(DeviceKind::Iphone)
                .ok_or_else(|| StepError::inconclusive("no iPhone"))?;
            // The old account keeps its address but says nothing more.
            old.account.set_push(push.clone());
            c.add_device(NewDevice {
                kind: DeviceKind::Iphone,
                transport: None,
                voip_token: token,
                alert: false,
                expires: 3600,
            })
            .await?;
            let _ = instance; // a new address is a new Contact; the pn-* params are the same
            let d = c.device(DeviceKind::Iphone)?;
            d.account.set_push(push);
            d.register(Duration::from_secs(2)).await.map_err(|e| {
                StepError::fail(format!(
                    "the REGISTER from the new address was refused: {e}"
                ))
            })?;
            c.timeline().note(
                "bench",
                format!(
                    "Alice's iPhone moved from {} to {}",
                    old.account.endpoint().local_addr(),
                    d.account.endpoint().local_addr()
                ),
            );
            drop(old.account.clone());
            Ok(())
        }
        .await,
    )
}

#[when("Alice's iPhone unregisters")]
async fn unregisters(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let d = c.device(DeviceKind::Iphone)?;
            d.account
                .unregister(Duration::from_secs(2))
                .await
                .map_err(|e| {
                    StepError::fail(format!("the un-REGISTER (Expires 0) was refused: {e}"))
                })?;
            d.sleep();
            Ok(())
        }
        .await,
    )
}

#[when("Alice's iPhone refreshes its registration")]
async fn refreshes(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let d = c.device(DeviceKind::Iphone)?;
            d.account.set_offline(sip_peer::Offline::Online);
            d.register(Duration::from_secs(2))
                .await
                .map_err(|e| StepError::fail(format!("the REGISTER refresh was refused: {e}")))?;
            Ok(())
        }
        .await,
    )
}

#[when("Alice's iPhone goes to sleep")]
async fn goes_to_sleep(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            if let Some(d) = c.find_device(DeviceKind::Iphone) {
                d.sleep();
            }
            // A hand-written REGISTER's socket is already closed.
            Ok(())
        }
        .await,
    )
}

#[when(regex = r"^Alice's iPhone registers again (\d+ (?:ms|s)) after Bob got 480$")]
async fn registers_again(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let got = c.calls().last().and_then(|b| b.final_at).ok_or_else(|| {
                StepError::inconclusive("no earlier step saw Bob's final response")
            })?;
            tokio::time::sleep_until((got + d).into()).await;
            let dev = c.device(DeviceKind::Iphone)?;
            dev.account.set_offline(sip_peer::Offline::Online);
            dev.account.endpoint().close_connections();
            dev.register(Duration::from_secs(2))
                .await
                .map_err(|e| StepError::fail(format!("the late REGISTER was refused: {e}")))?;
            Ok(())
        }
        .await,
    )
}

/// The longest granted lifetime "Alice's binding expires" waits out.
const MAX_EXPIRY_WAIT: u32 = 10;

#[when("Alice's binding expires")]
async fn binding_expires(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            let d = c.device(DeviceKind::Iphone)?;
            let requested = d.account.config().expires;
            let expires = c.granted_expires().unwrap_or(requested);
            if expires > requested && expires > MAX_EXPIRY_WAIT {
                return Err(StepError::inconclusive(format!(
            "Alice's iPhone asked for Expires {requested} s and the gateway granted {expires} s: \
             it does not take short registrations (capability short-expiry)"
        )));
            }
            let registered = d
                .log
                .entries()
                .iter()
                .rev()
                .find(|e| matches!(e.event, Event::Registered { ok: true, .. }))
                .map(|e| e.at)
                .ok_or_else(|| StepError::inconclusive("Alice's iPhone never registered"))?;
            d.sleep();
            // Waiting for a declared lifetime to pass is the scenario itself, not a guess.
            let until =
                registered + Duration::from_secs(expires as u64) + Duration::from_millis(500);
            tokio::time::sleep_until(until.into()).await;
            Ok(())
        }
        .await,
    )
}

#[given("the gateway requires digest authentication for Alice")]
async fn digest(w: &mut BenchWorld) {
    outcome(
        async {
            let c = w.sip().await?;
            if let Some(gw) = c.gateway().embedded.clone() {
                let password = format!("pw-{}", &random_token()[..16]);
                let user = c.alice_user().to_owned();
                gw.set_accounts(vec![Account {
                    user: user.clone(),
                    password: password.clone(),
                }]);
                c.set_alice_credentials(Credentials {
                    username: user.clone(),
                    password,
                });
                c.timeline().note(
                    "bench",
                    format!("the reference gateway challenges REGISTERs for {user}"),
                );
                return Ok(());
            }
            if c.alice_credentials().is_none() {
                return Err(StepError::inconclusive(
                    "the target declares no username and password for the SIP account \"alice\"",
                ));
            }
            Ok(())
        }
        .await,
    )
}

#[given(regex = r"^Alice's iPhone answers challenges with (the right|a wrong) password$")]
async fn answers_challenges(w: &mut BenchWorld, which: String) {
    outcome(
        async {
            let c = w.sip().await?;
            let right = c.alice_credentials().cloned().ok_or_else(|| {
                StepError::inconclusive("no password for Alice: the gateway requires none")
            })?;
            let creds = if which == "the right" {
                right
            } else {
                Credentials {
                    password: format!("{}-wrong", right.password),
                    ..right
                }
            };
            c.device(DeviceKind::Iphone)?
                .account
                .set_credentials(Some(creds));
            Ok(())
        }
        .await,
    )
}

#[then(
    regex = r"^Alice's iPhone's REGISTER is challenged and then (accepted|refused) within (\d+ (?:ms|s)) of the push$"
)]
async fn challenged_then(w: &mut BenchWorld, result: String, d: Dur) {
    outcome(async {
    let d = d.0;
    let c = w.sip().await?;
    let origin = c.wake_origin()?;
    let dev = c.device(DeviceKind::Iphone)?;
    let answer = dev
        .log
        .wait_until(origin + d, |es| {
            es.iter().find_map(|e| match &e.event {
                Event::Registered { ok, detail } if e.at >= origin => Some((*ok, detail.clone())),
                _ => None,
            })
        })
        .await
        .ok_or_else(|| {
            StepError::fail(format!(
                "Alice's iPhone's REGISTER had no final answer within {d:?} of the push; it saw:\n{}",
                dev.log.describe(origin)
            ))
        })?;
    // Only a challenge to the REGISTER the push set off counts (not one to an earlier REGISTER).
    let (party, after_push) = (DeviceKind::Iphone.party(), c.timeline().offset_of(origin));
    let challenged = c.timeline().events().iter().any(|e| {
        e.party == party
            && e.at >= after_push
            && e.direction == Direction::Received
            && (e.summary.starts_with("401 ") || e.summary.starts_with("407 "))
            && e.summary.ends_with("(REGISTER)")
    });
    if !challenged {
        return Err(StepError::fail(format!(
            "the gateway did not challenge the REGISTER Alice's iPhone sent after the push (no 401/407); its answer: {}",
            answer.1
        )));
    }
    match (result.as_str(), answer.0) {
        ("accepted", true) | ("refused", false) => Ok(()),
        _ => Err(StepError::fail(format!(
            "expected the challenged REGISTER to be {result}; it ended with: {}",
            answer.1
        ))),
    }
    }.await)
}

#[then(regex = r"^the registration succeeds within (\d+ (?:ms|s))$")]
async fn reg_succeeds(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let r = c.last_registration().ok_or_else(|| {
                StepError::inconclusive("no REGISTER was sent by an earlier step")
            })?;
            match r.status() {
                Some(s) if (200..300).contains(&s) && r.took <= d => Ok(()),
                _ => Err(StepError::fail(format!(
                    "expected a 2xx to the REGISTER within {d:?}; got {}",
                    r.describe()
                ))),
            }
        }
        .await,
    )
}

#[then(regex = r#"^the 2xx carries its own Feature-Caps header "(.*)"$"#)]
async fn feature_caps(w: &mut BenchWorld, expected: String) {
    outcome(
        async {
            let expected = unquote(&expected);
            let c = w.sip().await?;
            let r = c
                .last_registration()
                .and_then(|r| r.response.clone())
                .ok_or_else(|| StepError::inconclusive("no REGISTER response to look at"))?;
            let norm = |s: &str| s.split_whitespace().collect::<String>();
            let caps = r.feature_caps();
            if caps.iter().any(|v| norm(v) == norm(&expected)) {
                Ok(())
            } else {
                Err(StepError::fail_with_message(
                    format!(
                        "expected a Feature-Caps header {expected:?} in the 2xx; it has {caps:?}"
                    ),
                    r.to_bytes(),
                ))
            }
        }
        .await,
    )
}

#[then(
    regex = r"^the registration is refused or confirmed without push support within (\d+ (?:ms|s))$"
)]
async fn reg_refused(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let r = c.last_registration().ok_or_else(|| {
                StepError::inconclusive("no REGISTER was sent by an earlier step")
            })?;
            let Some(resp) = &r.response else {
                return Err(StepError::fail(format!(
                    "expected a 4xx, or a 2xx without +sip.pns, within {d:?}; {}",
                    r.describe()
                )));
            };
            let status = resp.status().unwrap_or(0);
            let ok = r.took <= d
                && ((400..500).contains(&status)
                    || ((200..300).contains(&status) && resp.feature_cap("+sip.pns").is_none()));
            if ok {
                Ok(())
            } else {
                Err(StepError::fail_with_message(
                    format!(
                        "expected a 4xx, or a 2xx without +sip.pns, within {d:?}; got {}",
                        r.describe()
                    ),
                    resp.to_bytes(),
                ))
            }
        }
        .await,
    )
}

#[then(
    regex = r#"^the query is refused with 555, or answered with a 2xx that claims no "(.*)", within (\d+ (?:ms|s))$"#
)]
async fn query_not_claimed(w: &mut BenchWorld, provider: String, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let r = c.last_registration().ok_or_else(|| {
                StepError::inconclusive("no REGISTER was sent by an earlier step")
            })?;
            let expected = format!(
                "a 555, or a 2xx without +sip.pns=\"{provider}\", within {d:?} (RFC 8599 §5.6.1.2)"
            );
            let Some(resp) = r.response.as_ref().filter(|_| r.took <= d) else {
                return Err(StepError::fail(format!(
                    "expected {expected}; {}",
                    r.describe()
                )));
            };
            let status = resp.status().unwrap_or(0);
            let claims = resp.feature_caps().iter().any(|v| {
                v.split(';')
                    .filter_map(|p| p.trim().strip_prefix("+sip.pns="))
                    .any(|v| v.trim_matches('"').eq_ignore_ascii_case(&provider))
            });
            if status == 555 || ((200..300).contains(&status) && !claims) {
                Ok(())
            } else {
                Err(StepError::fail_with_message(
                    format!("expected {expected}; got {}", r.describe()),
                    resp.to_bytes(),
                ))
            }
        }
        .await,
    )
}

#[then(regex = r"^the gateway still accepts a REGISTER within (\d+ (?:ms|s))$")]
async fn still_accepts(w: &mut BenchWorld, d: Dur) {
    outcome(
        async {
            let d = d.0;
            let c = w.sip().await?;
            let user = c.alice_user().to_owned();
            let r = c
                .raw_register(|l| format!("<sip:{user}@{l}>"), false, d)
                .await?;
            match r.status() {
                Some(s) if (200..300).contains(&s) => Ok(()),
                _ => Err(StepError::fail(format!(
                    "expected the gateway to accept a plain REGISTER within {d:?}; {}",
                    r.describe()
                ))),
            }
        }
        .await,
    )
}
