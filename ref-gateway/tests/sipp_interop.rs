//! Interop with SIPp (a SIP implementation nobody here wrote), through the reference gateway:
//! SIPp calls an awake sip-peer phone over UDP and TCP (INVITE, 180, 200, ACK and BYE along the
//! gateway's Record-Route), and SIPp registers as an RFC 8599 phone (the 2xx must carry
//! Feature-Caps) whose token then gets the VoIP push for a call. A missing `sipp` fails the test.

use sip_peer::{IncomingPolicy, PhoneConfig, Transport};
use std::time::Duration;
use testkit::free_port;
use testkit::gateway::*;
use testkit::sipp::{Sipp, SippConfig};

const UAC_CALL: &str = "uac_call.xml";

async fn sipp_calls_an_awake_phone(sipp_transport: &'static str, t: Transport) {
    let b = Bench::start().await;
    let mut cfg = PhoneConfig::new(Bench::aor("alice"), b.gw.addr(t).unwrap());
    cfg.policy = IncomingPolicy::RingThenAnswer(Duration::from_millis(50));
    let alice = b.phone_with(cfg, t).await;
    alice.register(Duration::from_secs(1)).await.unwrap();
    let gw = b.gw.addr(t).unwrap();
    let mut sc = SippConfig::new(UAC_CALL, sipp_transport, free_port());
    sc.remote = Some(gw.to_string());
    sc.service = "alice";
    let sipp = Sipp::start(sc);
    let mut incoming = alice.next_call(WAIT).await.unwrap();
    incoming.await_ack(WAIT).await.unwrap_or_else(|e| {
        panic!("{e}\n{}\n{}", b.timeline.ladder(), sipp.report());
    });
    incoming.await_bye(WAIT).await.unwrap();
    tokio::task::spawn_blocking(move || sipp.expect_success(Duration::from_secs(10)))
        .await
        .unwrap();
}

#[tokio::test]
async fn sipp_calls_through_the_gateway_over_udp() {
    sipp_calls_an_awake_phone("u1", Transport::Udp).await;
}

#[tokio::test]
async fn sipp_calls_through_the_gateway_over_tcp() {
    sipp_calls_an_awake_phone("t1", Transport::Tcp).await;
}

#[tokio::test]
async fn a_sipp_register_with_pn_params_gets_feature_caps_and_its_token_is_pushed() {
    let b = Bench::start().await;
    let tok = token();
    b.voip_device(&tok);
    let gw = b.gw.addr(Transport::Udp).unwrap();
    let mut sc = SippConfig::new(
        "ref-gateway/tests/sipp/uac_register_pn.xml",
        "u1",
        free_port(),
    );
    sc.remote = Some(gw.to_string());
    sc.service = "alice";
    sc.extra = vec![
        "-set".into(),
        "token".into(),
        tok.clone(),
        "-set".into(),
        "contact_hostport".into(),
        format!("127.0.0.1:{}", free_port()),
        "-set".into(),
        "team".into(),
        b.team(),
        "-set".into(),
        "bundle".into(),
        b.bundle(),
    ];
    let sipp = Sipp::start(sc);
    tokio::task::spawn_blocking(move || sipp.expect_success(Duration::from_secs(10)))
        .await
        .unwrap();
    let bindings = b.gw.bindings("alice").await;
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        bindings[0].instance.as_deref(),
        Some("<urn:uuid:00000000-0000-1000-8000-00fcc0ffee00>")
    );
    let bob = b.caller(Transport::Udp).await;
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    let push = b.push_for(&tok).await;
    assert_eq!(push.header("apns-push-type").as_deref(), Some("voip"));
    let fin = call
        .await_final(BUCKET + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(fin.status(), Some(480));
}
