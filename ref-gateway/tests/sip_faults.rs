//! One test per fault switch: with it on, the reference gateway shows the vendor mistake it is
//! named after, observably (push log headers, SIP responses, what the phone receives). Each test
//! also checks the correct behaviour with the fault off where that is cheap, so it can fail.

use ref_gateway::{Fault, Faults};
use sip_peer::{PhoneAccount, Transport};
use std::time::Duration;
use testkit::gateway::*;

const ONE_S: Duration = Duration::from_secs(1);

fn with_fault(f: Fault) -> Options {
    Options {
        faults: Faults::only(f),
        ..Options::default()
    }
}

/// A sleeping phone registered with a VoIP token known to mock-apns for `<bundle>.voip` only.
async fn sleeping_alice(b: &Bench) -> (PhoneAccount, String) {
    let tok = token();
    b.voip_device(&tok);
    let alice = b.phone("alice", Transport::Tcp, Some(&tok)).await;
    alice.register(ONE_S).await.unwrap();
    Bench::sleep(&alice);
    (alice, tok)
}

async fn call_alice(b: &Bench) -> sip_peer::Call {
    // The call keeps its caller's endpoint alive.
    let bob = b.caller(Transport::Udp).await;
    bob.invite(&Bench::aor("alice").to_string()).unwrap()
}

#[tokio::test]
async fn nonzero_expiration_asks_apns_to_store_call_pushes() {
    let b = Bench::with(with_fault(Fault::NonzeroExpiration)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let _call = call_alice(&b).await;
    let push = b.push_for(&tok).await;
    let exp: u64 = push.header("apns-expiration").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(exp > now + 60, "expiration {exp} is about now + 90 s");
}

#[tokio::test]
async fn alert_push_type_sends_calls_as_alerts_which_apns_refuses() {
    let b = Bench::with(with_fault(Fault::AlertPushType)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let mut call = call_alice(&b).await;
    let push = b.push_for(&tok).await;
    assert_eq!(push.header("apns-push-type").as_deref(), Some("alert"));
    assert_eq!(push.header("apns-topic"), Some(b.bundle()));
    assert_eq!(push.status, 400, "{}", push.summary());
    let fin = call.await_final(ONE_S).await.unwrap();
    assert_eq!(
        fin.status(),
        Some(480),
        "a refused push fails the call at once"
    );
}

#[tokio::test]
async fn no_voip_suffix_uses_the_bare_bundle_topic() {
    let b = Bench::with(with_fault(Fault::NoVoipSuffix)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let mut call = call_alice(&b).await;
    let push = b.push_for(&tok).await;
    assert_eq!(push.header("apns-push-type").as_deref(), Some("voip"));
    assert_eq!(push.header("apns-topic"), Some(b.bundle()));
    assert_eq!(push.status, 400);
    assert_eq!(call.await_final(ONE_S).await.unwrap().status(), Some(480));
}

#[tokio::test]
async fn priority_5_switched_on_at_run_time() {
    let b = Bench::start().await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let _c1 = call_alice(&b).await;
    let first = b.push_for(&tok).await;
    assert_eq!(first.header("apns-priority").as_deref(), Some("10"));
    b.gw.set_faults(Faults::only(Fault::Priority5));
    let _c2 = call_alice(&b).await;
    let second = b.push_for(&tok).await;
    assert_eq!(second.header("apns-priority").as_deref(), Some("5"));
}

#[tokio::test]
async fn no_replay_on_register_leaves_the_invite_in_the_bucket_until_480() {
    let b = Bench::with(with_fault(Fault::NoReplayOnRegister)).await;
    let (alice, tok) = sleeping_alice(&b).await;
    let mut call = call_alice(&b).await;
    b.push_for(&tok).await;
    alice.wake(true, ONE_S).await.unwrap();
    assert!(
        alice.next_call(QUIET).await.is_err(),
        "no INVITE after REGISTER"
    );
    let fin = call.await_final(BUCKET + ONE_S).await.unwrap();
    assert_eq!(fin.status(), Some(480));
}

#[tokio::test]
async fn replay_cancelled_call_sends_a_live_invite_for_a_dead_call() {
    let b = Bench::with(with_fault(Fault::ReplayCancelledCall)).await;
    let (alice, tok) = sleeping_alice(&b).await;
    let mut call = call_alice(&b).await;
    call.await_status(100, ONE_S).await.unwrap();
    b.push_for(&tok).await;
    call.cancel(ONE_S).await.unwrap();
    call.await_status(487, ONE_S).await.unwrap();
    alice.wake(true, ONE_S).await.unwrap();
    let mut incoming = alice.next_call(ONE_S).await.unwrap();
    assert_eq!(incoming.call_id(), call.call_id());
    assert!(
        incoming.await_cancel(QUIET).await.is_err(),
        "no CANCEL follows: the INVITE is live\n{}",
        b.timeline.ladder()
    );
}

#[tokio::test]
async fn ignore_410_keeps_pushing_a_dead_token() {
    let b = Bench::with(with_fault(Fault::Ignore410)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    b.apns
        .set_state(&tok, mock_apns::DeviceState::Unregistered)
        .unwrap();
    let mut c1 = call_alice(&b).await;
    assert_eq!(b.push_for(&tok).await.status, 410);
    assert_eq!(c1.await_final(ONE_S).await.unwrap().status(), Some(480));
    assert_eq!(b.gw.bindings("alice").await.len(), 1, "binding kept");
    let _c2 = call_alice(&b).await;
    assert_eq!(b.push_for(&tok).await.status, 410, "pushed again");
}

#[tokio::test]
async fn no_bucket_timer_never_answers_480() {
    let b = Bench::with(with_fault(Fault::NoBucketTimer)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let mut call = call_alice(&b).await;
    call.await_status(100, ONE_S).await.unwrap();
    b.push_for(&tok).await;
    let waited = call.await_final(BUCKET + Duration::from_millis(500)).await;
    assert!(waited.is_err(), "no final response: {waited:?}");
    call.cancel(ONE_S).await.unwrap();
    call.await_status(487, ONE_S).await.unwrap();
}

#[tokio::test]
async fn no_call_id_in_payload_strips_the_call_id() {
    let b = Bench::with(with_fault(Fault::NoCallIdInPayload)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let _call = call_alice(&b).await;
    let push = b.push_for(&tok).await;
    let json = push.json().unwrap();
    assert!(json.get("call-id").is_none(), "{json}");
    assert!(json.get("send-time").is_some());
}

#[tokio::test]
async fn message_as_voip_pushes_a_message_to_the_voip_token() {
    let b = Bench::with(with_fault(Fault::MessageAsVoip)).await;
    let (_alice, tok) = sleeping_alice(&b).await;
    let bob = b.caller(Transport::Udp).await;
    let target = Bench::aor("alice").to_string();
    let _answer = tokio::spawn(async move { bob.message(&target, "hi", ONE_S).await });
    let push = b.push_for(&tok).await;
    assert_eq!(push.header("apns-push-type").as_deref(), Some("voip"));
    let json = push.json().unwrap();
    assert_eq!(json.get("kind").and_then(|k| k.as_str()), Some("message"));
}
