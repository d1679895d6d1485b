//! End to end over real sockets: mock-apns, the reference gateway, sip-peer callers and phones.
//! Registration (Feature-Caps, rotation, un-REGISTER, digest, bad tokens), the wake chain over
//! TCP/TLS/UDP, the bucket timer, CANCEL under each profile, APNs failures and forking.

use mock_apns::{Fault as ApnsFault, FaultAction};
use phone::{PayloadKind, PushPayload};
use ref_gateway::config::Account;
use ref_gateway::CancelPolicy;
use sip_peer::{PhoneConfig, PushParams, SipError, Transport};
use std::time::Duration;
use testkit::gateway::*;

const ONE_S: Duration = Duration::from_secs(1);
const TWO_S: Duration = Duration::from_secs(2);

fn payload(r: &mock_apns::PushRecord) -> PushPayload {
    PushPayload::parse(&r.payload).expect("the push payload follows phone::PushPayload")
}

#[tokio::test]
async fn register_gets_feature_caps_and_a_call_wakes_the_phone_over_tcp() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    let reg = alice.register(ONE_S).await.unwrap();
    assert_eq!(reg.pns.as_deref(), Some("apns"), "{:?}", reg.feature_caps);
    assert!(reg.feature_caps.iter().any(|f| f == "*;+sip.pns=\"apns\""));
    Bench::sleep(&alice);

    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    call.await_status(100, ONE_S).await.unwrap();
    let push = b.push_for(&tok).await;
    assert_eq!(push.status, 200);
    assert_eq!(push.header("apns-push-type").as_deref(), Some("voip"));
    let topic = format!("{}.voip", b.bundle());
    assert_eq!(push.header("apns-topic").as_deref(), Some(topic.as_str()));
    assert_eq!(push.header("apns-priority").as_deref(), Some("10"));
    assert_eq!(push.header("apns-expiration").as_deref(), Some("0"));
    let p = payload(&push);
    assert_eq!(p.kind, PayloadKind::Call);
    assert_eq!(p.call_id.as_deref(), Some(call.call_id()));
    assert!(p.caller.unwrap().contains("bob@"));
    assert!(p.send_time_ms.is_some());

    alice.wake(true, ONE_S).await.unwrap();
    let mut incoming = alice.next_call(ONE_S).await.unwrap();
    assert_eq!(incoming.call_id(), call.call_id());
    incoming.answer().unwrap();
    call.await_answered(TWO_S).await.unwrap();
    incoming.await_ack(TWO_S).await.unwrap();
    let bye = call.bye(TWO_S).await.unwrap();
    assert_eq!(bye.status(), Some(200), "{}", b.timeline.ladder());
    incoming.await_bye(ONE_S).await.unwrap();
    assert_eq!(b.pushes_for(&tok).len(), 1, "exactly one push per call");
}

#[tokio::test]
async fn each_wake_on_a_new_tls_connection_gets_the_invite_on_that_connection() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tls, Some(&tok)).await;
    alice.register(TWO_S).await.unwrap();
    let bob = b.caller(Transport::Udp).await;
    for round in 0..3 {
        Bench::sleep(&alice);
        let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
        let push = b.push_for(&tok).await;
        assert_eq!(payload(&push).call_id.as_deref(), Some(call.call_id()));
        alice.wake(true, TWO_S).await.unwrap();
        assert_eq!(alice.endpoint().connection_count(), 1, "round {round}");
        let mut incoming = alice.next_call(ONE_S).await.unwrap_or_else(|e| {
            panic!("round {round}: {e}\n{}", b.timeline.ladder());
        });
        assert_eq!(incoming.call_id(), call.call_id());
        incoming.answer().unwrap();
        call.await_answered(TWO_S).await.unwrap();
        call.bye(TWO_S).await.unwrap();
    }
}

#[tokio::test]
async fn the_bucket_timer_answers_480_and_a_late_register_gets_nothing() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let started = tokio::time::Instant::now();
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&tok).await;
    let fin = call.await_final(BUCKET + ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(480));
    assert!(started.elapsed() >= BUCKET, "480 only when the timer fired");
    alice.wake(false, ONE_S).await.unwrap();
    assert!(
        alice.next_call(QUIET).await.is_err(),
        "{}",
        b.timeline.ladder()
    );
    // A REGISTER with no call waiting gives no INVITE either (B7).
    alice.refresh(ONE_S).await.unwrap();
    assert!(alice.next_call(QUIET).await.is_err());
}

#[tokio::test]
async fn a_retransmitted_invite_gives_one_push() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let gw = b.gw.addr(Transport::Udp).unwrap();
    for _ in 0..2 {
        bob.endpoint()
            .send_raw(gw, call.invite().to_bytes(), "INVITE (retransmission)")
            .unwrap();
    }
    b.push_for(&tok).await;
    b.no_push_for(&tok).await;
    assert_eq!(b.pushes_for(&tok).len(), 1);
}

async fn cancel_after_push(
    cancel: CancelPolicy,
) -> (Bench, String, sip_peer::PhoneAccount, String) {
    let b = Bench::with(Options {
        cancel,
        ..Options::default()
    })
    .await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    call.await_status(100, ONE_S).await.unwrap();
    b.push_for(&tok).await;
    let c = call.cancel(ONE_S).await.unwrap();
    assert_eq!(c.status(), Some(200));
    call.await_status(487, ONE_S).await.unwrap();
    let id = call.call_id().to_owned();
    (b, tok, alice, id)
}

#[tokio::test]
async fn cancel_under_rfc8599_drop_gives_the_phone_nothing() {
    let (b, tok, alice, _) = cancel_after_push(CancelPolicy::Rfc8599Drop).await;
    alice.wake(true, ONE_S).await.unwrap();
    assert!(
        alice.next_call(QUIET).await.is_err(),
        "{}",
        b.timeline.ladder()
    );
    assert_eq!(b.pushes_for(&tok).len(), 1);
}

#[tokio::test]
async fn cancel_under_flexisip_replay_gives_invite_then_cancel_on_register() {
    let (b, _tok, alice, id) = cancel_after_push(CancelPolicy::FlexisipReplay).await;
    alice.wake(true, ONE_S).await.unwrap();
    let mut incoming = alice.next_call(ONE_S).await.unwrap();
    assert_eq!(incoming.call_id(), id);
    let cancel = incoming.await_cancel(ONE_S).await.unwrap_or_else(|e| {
        panic!("{e}\n{}", b.timeline.ladder());
    });
    assert_eq!(
        cancel.reason(),
        None,
        "a plain caller hang-up has no Reason"
    );
}

#[tokio::test]
async fn cancel_under_cancel_push_sends_a_call_ended_push_and_no_invite() {
    let (b, tok, alice, id) = cancel_after_push(CancelPolicy::CancelPush).await;
    let ended = b.push_for(&tok).await;
    let p = payload(&ended);
    assert_eq!(p.kind, PayloadKind::Cancel);
    assert_eq!(p.call_id.as_deref(), Some(id.as_str()));
    assert_eq!(ended.header("apns-push-type").as_deref(), Some("voip"));
    alice.wake(true, ONE_S).await.unwrap();
    assert!(alice.next_call(QUIET).await.is_err());
}

#[tokio::test]
async fn cancel_before_a_delayed_push_means_no_push_at_all() {
    let b = Bench::with(Options {
        push_delay: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    call.await_status(100, ONE_S).await.unwrap();
    call.cancel(ONE_S).await.unwrap();
    call.await_status(487, ONE_S).await.unwrap();
    b.no_push_for(&tok).await;
}

#[tokio::test]
async fn apns_410_evicts_the_binding_and_fails_the_call_at_once() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    b.apns.inject(
        ApnsFault::next(FaultAction::Reject {
            status: 410,
            reason: "Unregistered".into(),
        })
        .for_token(&tok),
    );
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = call.await_final(Duration::from_millis(800)).await.unwrap();
    assert_eq!(
        fin.status(),
        Some(480),
        "480 at once, not at the bucket timer"
    );
    assert!(
        b.gw.bindings("alice").await.is_empty(),
        "410 drops the binding"
    );
    let mut again = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = again.await_final(ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(404));
    assert_eq!(b.pushes_for(&tok).len(), 1, "no push to the dead token");
}

#[tokio::test]
async fn apns_503_is_retried_boundedly_then_480() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    b.apns.inject(
        ApnsFault::next(FaultAction::Reject {
            status: 503,
            reason: "ServiceUnavailable".into(),
        })
        .for_token(&tok)
        .times(100),
    );
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = call.await_final(Duration::from_millis(900)).await.unwrap();
    assert_eq!(fin.status(), Some(480));
    let n = b.pushes_for(&tok).len();
    assert_eq!(n, 3, "1 request + 2 retries (the default policy)");
}

#[tokio::test]
async fn apns_503_twice_then_accepted_still_delivers_the_call() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    b.apns.inject(
        ApnsFault::next(FaultAction::Reject {
            status: 503,
            reason: "ServiceUnavailable".into(),
        })
        .for_token(&tok)
        .times(2),
    );
    let bob = b.caller(Transport::Udp).await;
    let call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(b.push_for(&tok).await.status);
    }
    assert_eq!(statuses, vec![503, 503, 200]);
    alice.wake(false, ONE_S).await.unwrap();
    let incoming = alice.next_call(ONE_S).await.unwrap();
    assert_eq!(incoming.call_id(), call.call_id());
}

#[tokio::test]
async fn two_devices_fork_first_answer_wins_and_the_other_gets_cancel_with_reason() {
    let b = Bench::start().await;
    let (t1, t2) = (token(), token());
    b.voip_device(&t1);
    b.voip_device(&t2);
    let iphone = b.phone("alice", Transport::Tcp, Some(&t1)).await;
    let ipad = b.phone("alice", Transport::Tls, Some(&t2)).await;
    iphone.register(ONE_S).await.unwrap();
    ipad.register(ONE_S).await.unwrap();
    assert_eq!(b.gw.bindings("alice").await.len(), 2);
    Bench::sleep(&iphone);
    Bench::sleep(&ipad);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&t1).await;
    b.push_for(&t2).await;
    iphone.wake(true, ONE_S).await.unwrap();
    ipad.wake(true, ONE_S).await.unwrap();
    let mut on_iphone = iphone.next_call(ONE_S).await.unwrap();
    let mut on_ipad = ipad.next_call(ONE_S).await.unwrap();
    on_ipad.answer().unwrap();
    call.await_answered(TWO_S).await.unwrap();
    let cancel = on_iphone.await_cancel(ONE_S).await.unwrap_or_else(|e| {
        panic!("{e}\n{}", b.timeline.ladder());
    });
    assert_eq!(
        cancel.reason(),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    call.bye(TWO_S).await.unwrap();
    on_ipad.await_bye(ONE_S).await.unwrap();
}

#[tokio::test]
async fn an_awake_desktop_rings_at_once_and_its_answer_replays_invite_cancel_to_the_iphone() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let iphone = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    let desktop = b.phone("alice", Transport::Udp, None).await;
    iphone.register(ONE_S).await.unwrap();
    let reg = desktop.register(ONE_S).await.unwrap();
    assert_eq!(reg.pns, None, "no push asked, no +sip.pns");
    Bench::sleep(&iphone);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let mut on_desktop = desktop.next_call(Duration::from_millis(500)).await.unwrap();
    b.push_for(&tok).await;
    on_desktop.answer().unwrap();
    call.await_answered(ONE_S).await.unwrap();
    iphone.wake(true, ONE_S).await.unwrap();
    let mut on_iphone = iphone.next_call(ONE_S).await.unwrap();
    assert_eq!(on_iphone.call_id(), call.call_id());
    let cancel = on_iphone.await_cancel(ONE_S).await.unwrap();
    assert_eq!(
        cancel.reason(),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
}

#[tokio::test]
async fn token_rotation_and_a_new_address_update_the_binding_without_duplicates() {
    let b = Bench::start().await;
    let (old, new) = (token(), token());
    b.voip_device(&old);
    b.voip_device(&new);
    let alice = b.phone("alice", Transport::Udp, Some(&old)).await;
    alice.register(ONE_S).await.unwrap();
    alice.set_push(Some(PushParams::apns(&new, &b.team(), &b.bundle())));
    alice.register(ONE_S).await.unwrap();
    // The same pn-* parameters from a new address (another account, another port).
    let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(Transport::Udp).unwrap());
    cfg.push = Some(PushParams::apns(&new, &b.team(), &b.bundle()));
    let moved = b.phone_with(cfg, Transport::Udp).await;
    moved.register(ONE_S).await.unwrap();
    let bindings = b.gw.bindings("alice").await;
    assert_eq!(bindings.len(), 1, "{bindings:?}");
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let _call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&new).await;
    b.no_push_for(&new).await;
    assert!(b.pushes_for(&old).is_empty());
}

#[tokio::test]
async fn unregister_stops_pushes() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    alice.unregister(ONE_S).await.unwrap();
    assert!(b.gw.bindings("alice").await.is_empty());
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = call.await_final(TWO_S).await.unwrap();
    assert!(matches!(fin.status(), Some(404 | 480)));
    assert!(b.pushes_for(&tok).is_empty());
}

#[tokio::test]
async fn digest_auth_challenges_register_and_a_wrong_password_gets_403() {
    let b = Bench::with(Options {
        accounts: vec![Account {
            user: "alice".into(),
            password: "secret".into(),
        }],
        ..Options::default()
    })
    .await;
    let tok = token();
    let mk = |password: &str| {
        let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(Transport::Udp).unwrap());
        cfg.push = Some(PushParams::apns(&tok, &b.team(), &b.bundle()));
        cfg.credentials = Some(sip_peer::Credentials {
            username: "alice".into(),
            password: password.into(),
        });
        cfg
    };
    let good = b.phone_with(mk("secret"), Transport::Udp).await;
    let reg = good.register(ONE_S).await.unwrap();
    assert_eq!(reg.pns.as_deref(), Some("apns"));
    let bad = b.phone_with(mk("wrong"), Transport::Udp).await;
    match bad.register(ONE_S).await {
        Err(SipError::UnexpectedResponse { status, .. }) => assert_eq!(status, 403),
        other => panic!("expected 403, got {other:?}"),
    }
    let mut cfg = mk("x");
    cfg.credentials = None;
    let none = b.phone_with(cfg, Transport::Udp).await;
    match none.register(ONE_S).await {
        Err(SipError::UnexpectedResponse { status, .. }) => assert_eq!(status, 401),
        other => panic!("expected 401, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_token_is_answered_cleanly_and_the_gateway_keeps_serving() {
    let b = Bench::start().await;
    let alice = b.phone("alice", Transport::Udp, Some("zz-not-hex")).await;
    alice.register(ONE_S).await.unwrap();
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = call.await_final(ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(480));
    assert!(b.apns.push_log().is_empty());
    // Linphone dialect with a token/service count mismatch: refused with a 4xx.
    let mut cfg = PhoneConfig::new(Bench::aor("carol"), b.gw.addr(Transport::Udp).unwrap());
    cfg.push = Some(PushParams {
        provider: "apns.dev".into(),
        prid: format!("{}:remote&{}:voip", token(), token()),
        param: Some(format!("{}.{}.voip", b.team(), b.bundle())),
    });
    let carol = b.phone_with(cfg, Transport::Udp).await;
    match carol.register(ONE_S).await {
        Err(SipError::UnexpectedResponse { status, .. }) => assert_eq!(status, 400),
        other => panic!("expected 400, got {other:?}"),
    }
    // Garbage on UDP and TCP does not stop the gateway.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"\x00\xffINVITE garbage\r\n\r\n",
        b.gw.addr(Transport::Udp).unwrap(),
    )
    .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(b.gw.addr(Transport::Tcp).unwrap())
            .await
            .unwrap();
        tcp.write_all(b"REGISTER sip:x SIP/2.0\r\nContent-Length: nope\r\n\r\n")
            .await
            .unwrap();
    }
    alice.refresh(ONE_S).await.unwrap();
}

#[tokio::test]
async fn a_message_goes_as_an_alert_to_the_linphone_alert_token_never_as_voip() {
    let b = Bench::start().await;
    let (alert, voip) = (token(), token());
    let sandbox = mock_apns::Environment::Sandbox;
    b.apns.register_device(mock_apns::DeviceSpec::new(
        &alert,
        vec![b.bundle()],
        sandbox,
    ));
    b.apns.register_device(mock_apns::DeviceSpec::new(
        &voip,
        vec![format!("{}.voip", b.bundle())],
        sandbox,
    ));
    let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(Transport::Udp).unwrap());
    cfg.push = Some(PushParams {
        provider: "apns.dev".into(),
        prid: format!("{alert}:remote&{voip}:voip"),
        param: Some(format!("{}.{}.remote&voip", b.team(), b.bundle())),
    });
    let alice = b.phone_with(cfg, Transport::Udp).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let target = Bench::aor("alice").to_string();
    let answer = tokio::spawn(async move { bob.message(&target, "hello", TWO_S).await });
    let push = b.push_for(&alert).await;
    assert_eq!(push.status, 200, "{}", push.summary());
    assert_eq!(push.header("apns-push-type").as_deref(), Some("alert"));
    assert_eq!(push.header("apns-topic"), Some(b.bundle()));
    assert_eq!(push.environment, sandbox);
    assert!(
        b.pushes_for(&voip).is_empty(),
        "a message is never a VoIP push"
    );
    alice.wake(false, ONE_S).await.unwrap();
    let resp = testkit::within("MESSAGE answer", answer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), Some(200), "delivered after the REGISTER");
}

#[tokio::test]
async fn a_message_to_a_voip_only_phone_pushes_nothing_and_gets_480() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Udp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let resp = bob
        .message(&Bench::aor("alice").to_string(), "hi", TWO_S)
        .await
        .unwrap();
    assert_eq!(resp.status(), Some(480));
    b.no_push_for(&tok).await;
}

#[tokio::test]
async fn a_decline_on_one_device_ends_the_call_everywhere_with_busy_everywhere() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let iphone = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    let desktop = b.phone("alice", Transport::Udp, None).await;
    iphone.register(ONE_S).await.unwrap();
    desktop.register(ONE_S).await.unwrap();
    Bench::sleep(&iphone);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let on_desktop = desktop.next_call(ONE_S).await.unwrap();
    b.push_for(&tok).await;
    on_desktop.reject(603).unwrap();
    let fin = call.await_final(ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(603));
    iphone.wake(true, ONE_S).await.unwrap();
    let mut on_iphone = iphone.next_call(ONE_S).await.unwrap();
    let cancel = on_iphone.await_cancel(ONE_S).await.unwrap();
    assert_eq!(
        cancel.reason(),
        Some("SIP;cause=600;text=\"Busy Everywhere\"")
    );
}

#[tokio::test]
async fn a_challenged_register_after_the_push_keeps_the_invite_until_it_succeeds() {
    let b = Bench::with(Options {
        accounts: vec![Account {
            user: "alice".into(),
            password: "secret".into(),
        }],
        ..Options::default()
    })
    .await;
    let tok = token();
    b.voip_device(&tok);
    let mk = |password: &str| {
        let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(Transport::Tcp).unwrap());
        cfg.push = Some(PushParams::apns(&tok, &b.team(), &b.bundle()));
        cfg.credentials = Some(sip_peer::Credentials {
            username: "alice".into(),
            password: password.into(),
        });
        cfg
    };
    let alice = b.phone_with(mk("secret"), Transport::Tcp).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&tok).await;
    alice.wake(true, ONE_S).await.unwrap(); // 401, then the authenticated REGISTER
    let incoming = alice.next_call(ONE_S).await.unwrap();
    assert_eq!(incoming.call_id(), call.call_id());

    // The same with a wrong password: 403, and Bob gets 480 at once.
    let liar = b.phone_with(mk("wrong"), Transport::Tcp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&tok).await;
    assert!(liar.register(ONE_S).await.is_err());
    let fin = call.await_final(Duration::from_millis(500)).await.unwrap();
    assert_eq!(fin.status(), Some(480));
}

#[tokio::test]
async fn a_cancelled_call_is_not_replayed_into_the_next_one() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let mut call1 = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    call1.await_status(100, ONE_S).await.unwrap();
    b.push_for(&tok).await;
    call1.cancel(ONE_S).await.unwrap();
    call1.await_status(487, ONE_S).await.unwrap();
    let mut call2 = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let p2 = b.push_for(&tok).await;
    assert_eq!(payload(&p2).call_id.as_deref(), Some(call2.call_id()));
    alice.wake(true, ONE_S).await.unwrap();
    // Flexisip replay of call 1 (INVITE then CANCEL), and call 2 live.
    let mut first = alice.next_call(ONE_S).await.unwrap();
    let mut second = alice.next_call(ONE_S).await.unwrap();
    if first.call_id() != call1.call_id() {
        std::mem::swap(&mut first, &mut second);
    }
    assert_eq!(first.call_id(), call1.call_id());
    assert_eq!(second.call_id(), call2.call_id());
    first.await_cancel(ONE_S).await.unwrap();
    assert!(second.await_cancel(QUIET).await.is_err(), "call 2 is live");
    second.answer().unwrap();
    call2.await_answered(ONE_S).await.unwrap();
}

#[tokio::test]
async fn an_expired_binding_gets_no_push() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(Transport::Udp).unwrap());
    cfg.push = Some(PushParams::apns(&tok, &b.team(), &b.bundle()));
    cfg.expires = 1;
    let alice = b.phone_with(cfg, Transport::Udp).await;
    alice.register(ONE_S).await.unwrap();
    let until = tokio::time::Instant::now() + TWO_S;
    while !b.gw.bindings("alice").await.is_empty() {
        assert!(tokio::time::Instant::now() < until, "binding never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    assert_eq!(call.await_final(ONE_S).await.unwrap().status(), Some(404));
    assert!(b.pushes_for(&tok).is_empty());
}

#[tokio::test]
async fn the_whole_chain_works_on_ipv6_loopback() {
    let b = Bench::with(Options {
        ipv6: true,
        ..Options::default()
    })
    .await;
    assert!(b.gw.addr(Transport::Tls).unwrap().is_ipv6());
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tls, Some(&tok)).await;
    alice.register(TWO_S).await.unwrap();
    Bench::sleep(&alice);
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.push_for(&tok).await;
    alice.wake(true, TWO_S).await.unwrap();
    let mut incoming = alice.next_call(ONE_S).await.unwrap();
    incoming.answer().unwrap();
    call.await_answered(TWO_S).await.unwrap();
    let bye = call.bye(TWO_S).await.unwrap();
    assert_eq!(bye.status(), Some(200), "{}", b.timeline.ladder());
}

#[tokio::test]
async fn a_contact_whose_connection_is_gone_fails_fast_instead_of_hanging() {
    let b = Bench::start().await;
    let desktop = b.phone("alice", Transport::Tcp, None).await;
    desktop.register(ONE_S).await.unwrap();
    let bob = b.caller(Transport::Udp).await;
    // Answered call, then the callee's connection drops: Bob's BYE gets an answer.
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let mut incoming = desktop.next_call(ONE_S).await.unwrap();
    incoming.answer().unwrap();
    call.await_answered(ONE_S).await.unwrap();
    desktop.set_offline(sip_peer::Offline::Disconnected);
    // Wait (with a deadline) until the gateway has seen the connection close.
    let until = tokio::time::Instant::now() + TWO_S;
    while b.gw.connection_count() > 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "connection never closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bye = call.bye(ONE_S).await.ok();
    assert_eq!(bye.and_then(|r| r.status()), Some(480));
    // A new call to the unreachable contact gets 480 at once.
    let mut call2 = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let fin = call2.await_final(ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(480));
}
