//! Against real Prosody 0.12: XEP-0198 hibernation and resume, flight mode (half-open), and MAM
//! catch-up with RSM paging when resumption is impossible.

use testkit::prosody::{Prosody, ProsodyOptions, STEP};
use timeline::{Protocol, Timeline};
use xmpp_peer::{Caller, PhoneAccount, SleepMode, WakeOutcome};

fn ctx<'a>(t: &Timeline, p: &'a Prosody) -> impl Fn(xmpp_peer::Error) -> anyhow::Error + 'a {
    let t = t.clone();
    move |e| anyhow::anyhow!("{e}\n{}\n{}", t.ladder(), p.log_tail(30))
}

async fn resume_after(mode: SleepMode) -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let mut phone = PhoneAccount::connect(
        prosody.account("alice", &t).await?,
        t.recorder("alice", Protocol::Xmpp),
    )
    .await?;
    let bob = Caller::connect(
        prosody.account("bob", &t).await?,
        t.recorder("bob", Protocol::Xmpp),
    )
    .await?;
    let e = ctx(&t, &prosody);
    phone.sleep(mode).await?;
    prosody
        .wait_log("Session going into hibernation", STEP)
        .await?;
    bob.send_message("alice@localhost", "while you slept")
        .await?;
    bob.client().sync_acks(STEP).await.map_err(&e)?;
    let report = phone.wake(10, STEP).await.map_err(&e)?;
    assert!(
        matches!(report.outcome, WakeOutcome::Resumed { .. }),
        "{report:?}"
    );
    assert!(report.caught_up.is_empty());
    let m = phone.next_message(STEP).await.map_err(&e)?;
    assert_eq!(m.body.as_deref(), Some("while you slept"));
    // The resumed session is live both ways.
    let id = bob.send_message("alice@localhost", "again").await?;
    let m = phone.next_message(STEP).await.map_err(&e)?;
    phone.ack_receipt(&m).await?;
    bob.await_receipt(&id, STEP).await.map_err(&e)?;
    let ladder = t.ladder();
    assert!(
        t.events().iter().any(|ev| ev.party == "alice"
            && ev.summary.starts_with("sm resume h=")
            && ev.summary.contains("previd=")),
        "{ladder}"
    );
    assert!(ladder.contains("sm resumed h="), "{ladder}");
    Ok(())
}

#[tokio::test]
async fn resume_after_tcp_close_without_stream_end() -> anyhow::Result<()> {
    resume_after(SleepMode::Close).await
}

#[tokio::test]
async fn resume_after_tcp_reset() -> anyhow::Result<()> {
    resume_after(SleepMode::Reset).await
}

#[tokio::test]
async fn half_open_unacked_message_is_resent_on_resume() -> anyhow::Result<()> {
    half_open_then_resume(false).await
}

/// After flight mode the phone is on another network: it cannot reset the old socket, which the
/// server still holds; resuming on a new connection takes the session over all the same.
#[tokio::test]
async fn half_open_then_resume_on_a_new_network_leaving_the_old_socket() -> anyhow::Result<()> {
    half_open_then_resume(true).await
}

async fn half_open_then_resume(new_network: bool) -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let mut phone = PhoneAccount::connect(
        prosody.account("alice", &t).await?,
        t.recorder("alice", Protocol::Xmpp),
    )
    .await?;
    let bob = Caller::connect(
        prosody.account("bob", &t).await?,
        t.recorder("bob", Protocol::Xmpp),
    )
    .await?;
    let e = ctx(&t, &prosody);
    phone.sleep(SleepMode::HalfOpen).await?;
    bob.send_message("alice@localhost", "in flight mode")
        .await?;
    bob.client().sync_acks(STEP).await.map_err(&e)?;
    let before = phone.client().sm_state().expect("sm").inbound;
    let report = if new_network {
        phone.wake_on_new_network(10, STEP).await
    } else {
        phone.wake(10, STEP).await
    }
    .map_err(&e)?;
    let WakeOutcome::Resumed { .. } = report.outcome else {
        panic!("expected resume, got {report:?}\n{}", t.ladder());
    };
    let m = phone.next_message(STEP).await.map_err(&e)?;
    assert_eq!(m.body.as_deref(), Some("in flight mode"));
    assert_eq!(phone.client().sm_state().unwrap().inbound, before + 1);
    // The resumed session is live: a new message arrives on it.
    bob.send_message("alice@localhost", "back").await?;
    let m = phone.next_message(STEP).await.map_err(&e)?;
    assert_eq!(m.body.as_deref(), Some("back"), "{}", t.ladder());
    Ok(())
}

#[tokio::test]
async fn mam_catch_up_with_paging_when_the_app_was_killed() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let mut phone = PhoneAccount::connect(
        prosody.account("alice", &t).await?,
        t.recorder("alice", Protocol::Xmpp),
    )
    .await?;
    let bob = Caller::connect(
        prosody.account("bob", &t).await?,
        t.recorder("bob", Protocol::Xmpp),
    )
    .await?;
    let e = ctx(&t, &prosody);
    phone.sleep(SleepMode::Close).await?;
    let bodies: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    for b in &bodies {
        bob.send_message("alice@localhost", b).await?;
    }
    bob.client().sync_acks(STEP).await.map_err(&e)?;
    phone.client_mut().forget_resumption();
    let report = phone.wake(2, STEP).await.map_err(&e)?;
    assert_eq!(report.outcome, WakeOutcome::NewSession { failed: None });
    let got: Vec<String> = report
        .messages()
        .map_err(&e)?
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    assert_eq!(got, bodies, "{}", t.ladder());
    let queries = t
        .events()
        .iter()
        .filter(|ev| ev.party == "alice" && ev.summary.starts_with("iq set mam query"))
        .count();
    assert_eq!(
        queries,
        3,
        "5 messages at 2 per page take 3 queries\n{}",
        t.ladder()
    );
    Ok(())
}

#[tokio::test]
async fn hibernation_timeout_fails_resume_then_new_session_catches_up() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions {
        hibernation_secs: 1,
        ..ProsodyOptions::peer_suite()
    })
    .await?;
    let t = Timeline::new();
    let mut phone = PhoneAccount::connect(
        prosody.account("alice", &t).await?,
        t.recorder("alice", Protocol::Xmpp),
    )
    .await?;
    let bob = Caller::connect(
        prosody.account("bob", &t).await?,
        t.recorder("bob", Protocol::Xmpp),
    )
    .await?;
    let e = ctx(&t, &prosody);
    phone.sleep(SleepMode::Close).await?;
    prosody
        .wait_log("Session going into hibernation", STEP)
        .await?;
    bob.send_message("alice@localhost", "lost session").await?;
    bob.client().sync_acks(STEP).await.map_err(&e)?;
    prosody
        .wait_log("Destroying session for hibernating too long", STEP)
        .await?;
    let report = phone.wake(10, STEP).await.map_err(&e)?;
    match &report.outcome {
        WakeOutcome::NewSession { failed: Some(f) } => assert!(f.contains("item-not-found"), "{f}"),
        other => panic!("expected a failed resume, got {other:?}\n{}", t.ladder()),
    }
    let bodies: Vec<String> = report
        .messages()
        .map_err(&e)?
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["lost session"], "{}", t.ladder());
    Ok(())
}
