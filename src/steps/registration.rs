//! Registration steps: Alice's devices and their bindings (SIP-A*, and the set-up every
//! scenario starts with). REGISTERs of unusual shapes (compact headers, IPv6 Contact host, two
//! Contacts, escaped `pn-prid`, odd Contact parameters) are written byte by byte over UDP, as the
//! sip-peer corpus has them, and recorded on the timeline.

use super::calls::wake_origin;
use super::cast::{add_device, cast, random_token, register_or_inconclusive, Cast, NewDevice};
use super::device::{DeviceKind, Event};
use super::{parse_dur, unquote};
use crate::verdict::StepError;
use crate::world::BenchWorld;
use cucumber::{given, then, when};
use ref_gateway::config::Account;
use sip_peer::{Message, PushParams};
use std::time::{Duration, Instant};
use timeline::{Direction, Protocol};

/// The outcome of a REGISTER a step sent.
#[derive(Clone, Debug)]
pub struct RegResult {
    /// When it was sent.
    pub sent: Instant,
    /// How long until the final response (or the error).
    pub took: Duration,
    /// The final response, if one came.
    pub response: Option<Message>,
    /// Why there is none.
    pub error: Option<String>,
}

impl RegResult {
    fn status(&self) -> Option<u16> {
        self.response.as_ref().and_then(Message::status)
    }

    fn describe(&self) -> String {
        match (&self.response, &self.error) {
            (Some(r), _) => format!("{} after {} ms", r.summary(), self.took.as_millis()),
            (None, Some(e)) => format!("no response: {e}"),
            (None, None) => "nothing".into(),
        }
    }
}

fn rand_hex() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Sends a hand-written REGISTER over UDP and waits for its final response.
async fn raw_register(
    c: &Cast,
    contact: impl Fn(std::net::SocketAddr) -> String,
    compact: bool,
    within: Duration,
) -> Result<RegResult, StepError> {
    let gw = c
        .gateway
        .udp
        .ok_or_else(|| StepError::inconclusive("the target has no UDP listener"))?;
    let sock = tokio::net::UdpSocket::bind(super::cast::loopback_for(gw))
        .await
        .map_err(|e| StepError::inconclusive(format!("UDP socket: {e}")))?;
    let local = sock
        .local_addr()
        .map_err(|e| StepError::inconclusive(format!("UDP socket: {e}")))?;
    let rec = c.timeline.recorder("alice-iphone", Protocol::Sip);
    let (user, domain) = (&c.alice_user, &c.domain);
    let aor = format!("sip:{user}@{domain}");
    let h = |long: &'static str, short: &'static str| if compact { short } else { long };
    let text = format!(
        "REGISTER sip:{domain} SIP/2.0\r\n{}: SIP/2.0/UDP {local};branch=z9hG4bK{};rport\r\n{}: <{aor}>;tag={}\r\n{}: <{aor}>\r\n{}: {}@pushbench\r\nCSeq: 1 REGISTER\r\n{}: {}\r\nMax-Forwards: 70\r\nExpires: 3600\r\n{}: 0\r\n\r\n",
        h("Via", "v"),
        rand_hex(),
        h("From", "f"),
        rand_hex(),
        h("To", "t"),
        h("Call-ID", "i"),
        rand_hex(),
        h("Contact", "m"),
        contact(local),
        h("Content-Length", "l"),
    );
    let sent = Instant::now();
    rec.sent(
        "gateway",
        "udp",
        "REGISTER (hand-written)",
        text.clone().into_bytes(),
    );
    sock.send_to(text.as_bytes(), gw)
        .await
        .map_err(|e| StepError::inconclusive(format!("sending the REGISTER: {e}")))?;
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Err(_) => {
                return Ok(RegResult {
                    sent,
                    took: sent.elapsed(),
                    response: None,
                    error: Some(format!("no final response within {within:?}")),
                })
            }
            Ok(Err(e)) => {
                return Ok(RegResult {
                    sent,
                    took: sent.elapsed(),
                    response: None,
                    error: Some(e.to_string()),
                })
            }
            Ok(Ok((n, _))) => {
                let bytes = &buf[..n];
                match Message::parse(bytes) {
                    Ok(m) => {
                        rec.received("gateway", "udp", m.summary(), bytes.to_vec());
                        if m.status().is_some_and(|s| s >= 200) {
                            return Ok(RegResult {
                                sent,
                                took: sent.elapsed(),
                                response: Some(m),
                                error: None,
                            });
                        }
                    }
                    Err(e) => {
                        rec.received("gateway", "udp", "unparsable", bytes.to_vec());
                        return Err(StepError::fail_with_message(
                            format!("the gateway answered the REGISTER with bytes that are not SIP: {e}"),
                            bytes.to_vec(),
                        ));
                    }
                }
            }
        }
    }
}

fn pn(c: &Cast, token: &str) -> String {
    format!(
        "pn-provider=apns;pn-param={}.{}.voip;pn-prid={token}",
        c.team, c.bundle
    )
}

async fn asleep(
    w: &mut BenchWorld,
    kind: DeviceKind,
    tls: bool,
    alert: bool,
) -> Result<(), StepError> {
    let token = super::cast::random_token();
    add_device(
        w,
        NewDevice {
            kind,
            tls,
            voip_token: Some(token),
            alert,
            expires: 3600,
        },
    )
    .await?;
    let c = cast(w).await?;
    register_or_inconclusive(c, kind).await?;
    c.device(kind)?.sleep();
    Ok(())
}

#[given(regex = r"^Alice's (iPhone|iPad) is asleep with a VoIP token$")]
async fn asleep_voip(w: &mut BenchWorld, device: String) -> Result<(), StepError> {
    asleep(
        w,
        device.parse().map_err(StepError::inconclusive)?,
        false,
        false,
    )
    .await
}

#[given("Alice's iPhone is asleep with a VoIP token over TLS")]
async fn asleep_tls(w: &mut BenchWorld) -> Result<(), StepError> {
    // Replaces (and unregisters) a TCP iPhone a Background may have set up.
    let c = cast(w).await?;
    if let Some(old) = c.devices.remove(&DeviceKind::Iphone) {
        old.account.set_offline(sip_peer::Offline::Online);
        old.account
            .unregister(Duration::from_secs(2))
            .await
            .map_err(|e| {
                StepError::inconclusive(format!(
                    "the gateway refused to remove the TCP iPhone's binding: {e}"
                ))
            })?;
    }
    asleep(w, DeviceKind::Iphone, true, false).await
}

#[given("Alice's iPhone is asleep with a VoIP token and an alert token")]
async fn asleep_alert(w: &mut BenchWorld) -> Result<(), StepError> {
    asleep(w, DeviceKind::Iphone, false, true).await
}

#[given("Alice's desktop is awake and registered")]
async fn desktop(w: &mut BenchWorld) -> Result<(), StepError> {
    add_device(
        w,
        NewDevice {
            kind: DeviceKind::Desktop,
            tls: false,
            voip_token: None,
            alert: false,
            expires: 3600,
        },
    )
    .await?;
    register_or_inconclusive(cast(w).await?, DeviceKind::Desktop).await
}

#[given(regex = r#"^Alice's iPhone has a VoIP token "(.*)"$"#)]
async fn has_token(w: &mut BenchWorld, token: String) -> Result<(), StepError> {
    let c = cast(w).await?;
    let t = c.token_for(&token);
    let env = if c.embedded.is_some() {
        mock_apns::Environment::Production
    } else {
        c.environment
    };
    c.register_voip_token(&t, "alice-iphone", env);
    c.pending_token = Some(t);
    Ok(())
}

async fn registered_with(
    w: &mut BenchWorld,
    token: Option<String>,
    expires: u32,
) -> Result<(), StepError> {
    let token = match token {
        Some(t) => t,
        None => super::cast::random_token(),
    };
    add_device(
        w,
        NewDevice {
            kind: DeviceKind::Iphone,
            tls: false,
            voip_token: Some(token.clone()),
            alert: false,
            expires,
        },
    )
    .await?;
    let c = cast(w).await?;
    let d = c.device(DeviceKind::Iphone)?;
    let sent = Instant::now();
    let r = d.register(Duration::from_secs(2)).await;
    let well_formed = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    match r {
        Ok(reg) => {
            c.granted_expires = reg.expires;
            c.last_registration = Some(RegResult {
                sent,
                took: sent.elapsed(),
                response: Some(reg.response),
                error: None,
            });
            Ok(())
        }
        // A gateway may refuse a malformed token at once: the scenario then checks the call.
        Err(e) if !well_formed => {
            c.timeline.note(
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
async fn registered_token(w: &mut BenchWorld, token: String) -> Result<(), StepError> {
    let t = cast(w).await?.token_for(&token);
    registered_with(w, Some(t), 3600).await
}

#[given(regex = r"^Alice's iPhone is registered with a VoIP token and Expires (\d+ (?:ms|s))$")]
async fn registered_expires(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let secs = parse_dur(&d)?.as_secs().max(1) as u32;
    registered_with(w, None, secs).await
}

#[given(regex = r"^Alice's iPhone takes (\d+ (?:ms|s)) to register after a push$")]
async fn wake_delay(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    c.wake_delay = d;
    for dev in c.devices.values() {
        dev.set_wake_delay(d);
    }
    Ok(())
}

#[when("Alice's iPhone registers with its push parameters")]
async fn registers_push(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    let token = c
        .pending_token
        .clone()
        .ok_or_else(|| StepError::inconclusive("no step gave Alice's iPhone a token"))?;
    let contact = pn(c, &token);
    let user = c.alice_user.clone();
    let r = raw_register(
        c,
        |l| format!("<sip:{user}@{l};{contact}>"),
        false,
        Duration::from_secs(5),
    )
    .await?;
    c.last_registration = Some(r);
    Ok(())
}

#[when(regex = r#"^Alice's iPhone registers with a REGISTER that has "(.*)"$"#)]
async fn registers_shape(w: &mut BenchWorld, shape: String) -> Result<(), StepError> {
    let c = cast(w).await?;
    let token = c
        .pending_token
        .clone()
        .ok_or_else(|| StepError::inconclusive("no step gave Alice's iPhone a token"))?;
    let user = c.alice_user.clone();
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
    let r = raw_register(c, contact, compact, Duration::from_secs(5)).await?;
    c.last_registration = Some(r);
    Ok(())
}

#[when(regex = r#"^Alice's iPhone registers with Contact parameters "(.*)"$"#)]
async fn registers_params(w: &mut BenchWorld, params: String) -> Result<(), StepError> {
    let c = cast(w).await?;
    let mut params = unquote(&params)
        .replace("<team>", &c.team)
        .replace("<bundle>", &c.bundle);
    for (literal, own) in c.tokens.clone() {
        params = params.replace(&literal, &own);
    }
    let user = c.alice_user.clone();
    let r = raw_register(
        c,
        |l| format!("<sip:{user}@{l};{params}>"),
        false,
        Duration::from_secs(5),
    )
    .await?;
    c.last_registration = Some(r);
    Ok(())
}

#[when(regex = r#"^Alice's iPhone re-registers with VoIP token "(.*)" from the same instance$"#)]
async fn rotates(w: &mut BenchWorld, token: String) -> Result<(), StepError> {
    let c = cast(w).await?;
    let t = c.token_for(&token);
    let env = if c.embedded.is_some() {
        mock_apns::Environment::Production
    } else {
        c.environment
    };
    c.register_voip_token(&t, "alice-iphone", env);
    let (team, bundle) = (c.team.clone(), c.bundle.clone());
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

#[when("Alice's iPhone re-registers from a new address with the same push parameters")]
async fn moves(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    let old = c.device(DeviceKind::Iphone)?;
    let (token, instance) = (
        old.voip_token.clone(),
        old.account.config().instance.clone(),
    );
    let push = old.account.config().push.clone();
    old.sleep();
    let old = c
        .devices
        .remove(&DeviceKind::Iphone)
        .ok_or_else(|| StepError::inconclusive("no iPhone"))?;
    // The old account keeps its address but says nothing more.
    old.account.set_push(push.clone());
    add_device(
        w,
        NewDevice {
            kind: DeviceKind::Iphone,
            tls: false,
            voip_token: token,
            alert: false,
            expires: 3600,
        },
    )
    .await?;
    let c = cast(w).await?;
    let _ = instance; // a new address is a new Contact; the pn-* params are the same
    let d = c.device(DeviceKind::Iphone)?;
    d.account.set_push(push);
    d.register(Duration::from_secs(2)).await.map_err(|e| {
        StepError::fail(format!(
            "the REGISTER from the new address was refused: {e}"
        ))
    })?;
    c.timeline.note(
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

#[when("Alice's iPhone unregisters")]
async fn unregisters(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    let d = c.device(DeviceKind::Iphone)?;
    d.account
        .unregister(Duration::from_secs(2))
        .await
        .map_err(|e| StepError::fail(format!("the un-REGISTER (Expires 0) was refused: {e}")))?;
    d.sleep();
    Ok(())
}

#[when("Alice's iPhone refreshes its registration")]
async fn refreshes(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    let d = c.device(DeviceKind::Iphone)?;
    d.account.set_offline(sip_peer::Offline::Online);
    d.register(Duration::from_secs(2))
        .await
        .map_err(|e| StepError::fail(format!("the REGISTER refresh was refused: {e}")))?;
    Ok(())
}

#[when("Alice's iPhone goes to sleep")]
async fn goes_to_sleep(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    if let Some(d) = c.devices.get(&DeviceKind::Iphone) {
        d.sleep();
    }
    // A hand-written REGISTER's socket is already closed.
    Ok(())
}

#[when(regex = r"^Alice's iPhone registers again (\d+ (?:ms|s)) after Bob got 480$")]
async fn registers_again(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let got = c
        .calls
        .last()
        .and_then(|b| b.final_at)
        .ok_or_else(|| StepError::inconclusive("no earlier step saw Bob's final response"))?;
    tokio::time::sleep_until((got + d).into()).await;
    let dev = c.device(DeviceKind::Iphone)?;
    dev.account.set_offline(sip_peer::Offline::Online);
    dev.account.endpoint().close_connections();
    dev.register(Duration::from_secs(2))
        .await
        .map_err(|e| StepError::fail(format!("the late REGISTER was refused: {e}")))?;
    Ok(())
}

/// The longest granted lifetime "Alice's binding expires" waits out.
const MAX_EXPIRY_WAIT: u32 = 10;

#[when("Alice's binding expires")]
async fn binding_expires(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    let d = c.device(DeviceKind::Iphone)?;
    let requested = d.account.config().expires;
    let expires = c.granted_expires.unwrap_or(requested);
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
    let until = registered + Duration::from_secs(expires as u64) + Duration::from_millis(500);
    tokio::time::sleep_until(until.into()).await;
    Ok(())
}

#[given("the gateway requires digest authentication for Alice")]
async fn digest(w: &mut BenchWorld) -> Result<(), StepError> {
    let c = cast(w).await?;
    if let Some(gw) = &c.embedded {
        let password = format!("pw-{}", &random_token()[..16]);
        gw.set_accounts(vec![Account {
            user: c.alice_user.clone(),
            password: password.clone(),
        }]);
        c.alice_credentials = Some(sip_peer::Credentials {
            username: c.alice_user.clone(),
            password,
        });
        c.timeline.note(
            "bench",
            format!(
                "the reference gateway challenges REGISTERs for {}",
                c.alice_user
            ),
        );
        return Ok(());
    }
    if c.alice_credentials.is_none() {
        return Err(StepError::inconclusive(
            "the target declares no username and password for the SIP account \"alice\"",
        ));
    }
    Ok(())
}

#[given(regex = r"^Alice's iPhone answers challenges with (the right|a wrong) password$")]
async fn answers_challenges(w: &mut BenchWorld, which: String) -> Result<(), StepError> {
    let c = cast(w).await?;
    let right = c.alice_credentials.clone().ok_or_else(|| {
        StepError::inconclusive("no password for Alice: the gateway requires none")
    })?;
    let creds = if which == "the right" {
        right
    } else {
        sip_peer::Credentials {
            password: format!("{}-wrong", right.password),
            ..right
        }
    };
    c.device(DeviceKind::Iphone)?
        .account
        .set_credentials(Some(creds));
    Ok(())
}

#[then(
    regex = r"^Alice's iPhone's REGISTER is challenged and then (accepted|refused) within (\d+ (?:ms|s)) of the push$"
)]
async fn challenged_then(w: &mut BenchWorld, outcome: String, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let origin = wake_origin(c)?;
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
    let (party, after_push) = (DeviceKind::Iphone.party(), c.timeline.offset_of(origin));
    let challenged = c.timeline.events().iter().any(|e| {
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
    match (outcome.as_str(), answer.0) {
        ("accepted", true) | ("refused", false) => Ok(()),
        _ => Err(StepError::fail(format!(
            "expected the challenged REGISTER to be {outcome}; it ended with: {}",
            answer.1
        ))),
    }
}

#[then(regex = r"^the registration succeeds within (\d+ (?:ms|s))$")]
async fn reg_succeeds(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let r = c
        .last_registration
        .as_ref()
        .ok_or_else(|| StepError::inconclusive("no REGISTER was sent by an earlier step"))?;
    match r.status() {
        Some(s) if (200..300).contains(&s) && r.took <= d => Ok(()),
        _ => Err(StepError::fail(format!(
            "expected a 2xx to the REGISTER within {d:?}; got {}",
            r.describe()
        ))),
    }
}

#[then(regex = r#"^the 2xx carries its own Feature-Caps header "(.*)"$"#)]
async fn feature_caps(w: &mut BenchWorld, expected: String) -> Result<(), StepError> {
    let expected = unquote(&expected);
    let c = cast(w).await?;
    let r = c
        .last_registration
        .as_ref()
        .and_then(|r| r.response.clone())
        .ok_or_else(|| StepError::inconclusive("no REGISTER response to look at"))?;
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    let caps = r.feature_caps();
    if caps.iter().any(|v| norm(v) == norm(&expected)) {
        Ok(())
    } else {
        Err(StepError::fail_with_message(
            format!("expected a Feature-Caps header {expected:?} in the 2xx; it has {caps:?}"),
            r.to_bytes(),
        ))
    }
}

#[then(
    regex = r"^the registration is refused or confirmed without push support within (\d+ (?:ms|s))$"
)]
async fn reg_refused(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let r = c
        .last_registration
        .as_ref()
        .ok_or_else(|| StepError::inconclusive("no REGISTER was sent by an earlier step"))?;
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

#[then(regex = r"^the gateway still accepts a REGISTER within (\d+ (?:ms|s))$")]
async fn still_accepts(w: &mut BenchWorld, d: String) -> Result<(), StepError> {
    let d = parse_dur(&d)?;
    let c = cast(w).await?;
    let user = c.alice_user.clone();
    let r = raw_register(c, |l| format!("<sip:{user}@{l}>"), false, d).await?;
    match r.status() {
        Some(s) if (200..300).contains(&s) => Ok(()),
        _ => Err(StepError::fail(format!(
            "expected the gateway to accept a plain REGISTER within {d:?}; {}",
            r.describe()
        ))),
    }
}
