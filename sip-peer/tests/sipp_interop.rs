//! sip-peer against SIPp (Debian `sip-tester` 3.6.1, UDP and TCP; it has no TLS), with the
//! scenarios kept in `tests/sipp/`:
//! - the scenarios themselves, SIPp against SIPp, so that a failure below is ours, not theirs;
//! - SIPp as UAS answering our Caller: INVITE/180/200/ACK/BYE over UDP and TCP, and CANCEL;
//! - SIPp as UAC calling our PhoneAccount, including the CANCEL scenario (200 + 487).

use sip_peer::{
    Caller, CallerConfig, EndpointConfig, IncomingPolicy, PhoneAccount, PhoneConfig, SipUri,
};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::free_port;
use testkit::sipp::{Sipp, SippConfig};
use timeline::{Protocol, Timeline};

const STEP: Duration = Duration::from_secs(5);
const SIPP_EXIT: Duration = Duration::from_secs(15);

/// Runs a test body; on error, fails with the timeline as a ladder diagram.
async fn with_ladder<F, T>(timeline: &Timeline, body: F) -> T
where
    F: Future<Output = anyhow::Result<T>>,
{
    match tokio::time::timeout(Duration::from_secs(30), body).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!("{e:#}\n{}", timeline.ladder()),
        Err(_) => panic!(
            "test body did not finish within 30 s\n{}",
            timeline.ladder()
        ),
    }
}

async fn sipp_exit(sipp: Sipp) {
    tokio::task::spawn_blocking(move || sipp.expect_success(SIPP_EXIT))
        .await
        .expect("sipp waiter");
}

fn endpoint(transport: &str) -> EndpointConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cfg = match transport {
        "u1" => EndpointConfig::udp(any),
        "t1" => EndpointConfig::tcp(any),
        other => panic!("transport {other}"),
    };
    // shorter T1 keeps a lost-message failure fast; loopback never needs 500 ms
    cfg.with_t1(Duration::from_millis(100))
}

// ---- the scenarios, SIPp against SIPp -----------------------------------------------------------

fn sipp_pair(uas: &str, uac: &str, transport: &str) {
    let port = free_port();
    let server = Sipp::start(SippConfig::new(uas, transport, port));
    let mut cfg = SippConfig::new(uac, transport, free_port());
    cfg.remote = Some(format!("127.0.0.1:{port}"));
    let client = Sipp::start(cfg);
    client.expect_success(SIPP_EXIT);
    server.expect_success(SIPP_EXIT);
}

#[test]
fn sipp_call_scenarios_agree_with_each_other_over_udp_and_tcp() {
    sipp_pair("uas_answer.xml", "uac_call.xml", "u1");
    sipp_pair("uas_answer.xml", "uac_call.xml", "t1");
}

#[test]
fn sipp_cancel_scenarios_agree_with_each_other_over_udp_and_tcp() {
    sipp_pair("uas_cancelled.xml", "uac_cancel.xml", "u1");
    sipp_pair("uas_cancelled.xml", "uac_cancel.xml", "t1");
}

// ---- SIPp as UAS, our Caller calls it -----------------------------------------------------------

async fn caller_completes_a_call_with_sipp(transport: &str) {
    let port = free_port();
    let sipp = Sipp::start(SippConfig::new("uas_answer.xml", transport, port));
    let timeline = Timeline::new();
    let sipp_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    with_ladder(&timeline, async {
        let caller = Caller::new(
            endpoint(transport),
            CallerConfig::new(SipUri::parse("sip:alice@127.0.0.1")?, sipp_addr),
            timeline.recorder("caller", Protocol::Sip),
            "sipp",
        )
        .await?;
        let mut call = caller.invite(&format!("sip:bob@127.0.0.1:{port}"))?;
        let ringing = call.await_status(180, STEP).await?;
        anyhow::ensure!(ringing.to()?.tag().is_some(), "180 without a To tag");
        let ok = call.await_answered(STEP).await?;
        anyhow::ensure!(
            ok.header("Content-Type") == Some("application/sdp"),
            "200 without SDP"
        );
        let bye_ok = call.bye(STEP).await?;
        anyhow::ensure!(
            bye_ok.status() == Some(200),
            "BYE answered {:?}",
            bye_ok.summary()
        );
        Ok(())
    })
    .await;
    sipp_exit(sipp).await;
    // what SIPp saw is in the timeline too: the ACK went out
    let events = timeline.events();
    assert!(
        events.iter().any(|e| e.summary.starts_with("ACK")),
        "no ACK recorded\n{}",
        timeline.ladder()
    );
}

#[tokio::test]
async fn caller_calls_sipp_uas_over_udp() {
    caller_completes_a_call_with_sipp("u1").await;
}

#[tokio::test]
async fn caller_calls_sipp_uas_over_tcp() {
    caller_completes_a_call_with_sipp("t1").await;
}

async fn caller_cancels_a_ringing_sipp(transport: &str) {
    let port = free_port();
    let sipp = Sipp::start(SippConfig::new("uas_cancelled.xml", transport, port));
    let timeline = Timeline::new();
    let sipp_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    with_ladder(&timeline, async {
        let caller = Caller::new(
            endpoint(transport),
            CallerConfig::new(SipUri::parse("sip:alice@127.0.0.1")?, sipp_addr),
            timeline.recorder("caller", Protocol::Sip),
            "sipp",
        )
        .await?;
        let mut call = caller.invite(&format!("sip:bob@127.0.0.1:{port}"))?;
        call.await_status(180, STEP).await?;
        let cancel_ok = call.cancel(STEP).await?;
        anyhow::ensure!(
            cancel_ok.status() == Some(200),
            "CANCEL answered {}",
            cancel_ok.summary()
        );
        call.await_status(487, STEP).await?;
        Ok(())
    })
    .await;
    // SIPp succeeds only once it has our ACK for the 487
    sipp_exit(sipp).await;
}

#[tokio::test]
async fn caller_cancels_sipp_uas_over_udp() {
    caller_cancels_a_ringing_sipp("u1").await;
}

#[tokio::test]
async fn caller_cancels_sipp_uas_over_tcp() {
    caller_cancels_a_ringing_sipp("t1").await;
}

// ---- SIPp as UAC, calling our PhoneAccount ------------------------------------------------------

async fn phone(
    transport: &str,
    timeline: &Timeline,
    policy: IncomingPolicy,
) -> anyhow::Result<PhoneAccount> {
    // no registrar in these tests: SIPp calls the phone's own address
    let unused_registrar: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut cfg = PhoneConfig::new(SipUri::parse("sip:bob@127.0.0.1")?, unused_registrar);
    cfg.policy = policy;
    Ok(PhoneAccount::start(
        endpoint(transport),
        cfg,
        timeline.recorder("phone", Protocol::Sip),
        "sipp",
    )
    .await?)
}

async fn sipp_calls_the_phone(transport: &str) {
    let timeline = Timeline::new();
    let phone = with_ladder(
        &timeline,
        phone(
            transport,
            &timeline,
            IncomingPolicy::RingThenAnswer(Duration::from_millis(50)),
        ),
    )
    .await;
    let mut cfg = SippConfig::new("uac_call.xml", transport, free_port());
    cfg.remote = Some(phone.endpoint().local_addr().to_string());
    let sipp = Sipp::start(cfg);
    with_ladder(&timeline, async {
        let mut call = phone.next_call(STEP).await?;
        anyhow::ensure!(
            call.request().header("Content-Type") == Some("application/sdp"),
            "INVITE without SDP"
        );
        call.await_ack(STEP).await?;
        call.await_bye(STEP).await?;
        Ok(())
    })
    .await;
    sipp_exit(sipp).await;
}

#[tokio::test]
async fn sipp_uac_calls_the_phone_over_udp() {
    sipp_calls_the_phone("u1").await;
}

#[tokio::test]
async fn sipp_uac_calls_the_phone_over_tcp() {
    sipp_calls_the_phone("t1").await;
}

async fn sipp_cancels_while_the_phone_rings(transport: &str) {
    let timeline = Timeline::new();
    let phone = with_ladder(&timeline, phone(transport, &timeline, IncomingPolicy::Ring)).await;
    let mut cfg = SippConfig::new("uac_cancel.xml", transport, free_port());
    cfg.remote = Some(phone.endpoint().local_addr().to_string());
    let sipp = Sipp::start(cfg);
    with_ladder(&timeline, async {
        let mut call = phone.next_call(STEP).await?;
        call.await_cancel(STEP).await?;
        Ok(())
    })
    .await;
    // SIPp checks 200 for the CANCEL, then 487 for the INVITE, and sends the ACK
    sipp_exit(sipp).await;
    let sent_487 = timeline
        .events()
        .iter()
        .any(|e| e.party == "phone" && e.summary.starts_with("487"));
    assert!(
        sent_487,
        "the phone did not record its 487\n{}",
        timeline.ladder()
    );
}

#[tokio::test]
async fn sipp_uac_cancels_and_the_phone_answers_487_over_udp() {
    sipp_cancels_while_the_phone_rings("u1").await;
}

#[tokio::test]
async fn sipp_uac_cancels_and_the_phone_answers_487_over_tcp() {
    sipp_cancels_while_the_phone_rings("t1").await;
}

// ---- IPv6 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn caller_calls_sipp_uas_over_udp_on_ipv6_loopback() {
    let port = free_port();
    let mut cfg = SippConfig::new("uas_answer.xml", "u1", port);
    cfg.ip = "::1";
    let sipp = Sipp::start(cfg);
    let timeline = Timeline::new();
    let sipp_addr: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    with_ladder(&timeline, async {
        let any6: SocketAddr = "[::1]:0".parse()?;
        let caller = Caller::new(
            EndpointConfig::udp(any6).with_t1(Duration::from_millis(100)),
            CallerConfig::new(SipUri::parse("sip:alice@[::1]")?, sipp_addr),
            timeline.recorder("caller", Protocol::Sip),
            "sipp",
        )
        .await?;
        let mut call = caller.invite(&format!("sip:bob@[::1]:{port}"))?;
        call.await_status(180, STEP).await?;
        let ok = call.await_answered(STEP).await?;
        // SIPp's Contact carries its IPv6 address, and the dialog follows it
        let contact = ok.contacts()?;
        let host = contact
            .first()
            .and_then(|c| c.addr())
            .map(|a| a.uri.host.clone())
            .unwrap_or_default();
        anyhow::ensure!(host == "[::1]", "SIPp's Contact host {host:?}");
        call.bye(STEP).await?;
        Ok(())
    })
    .await;
    sipp_exit(sipp).await;
}
