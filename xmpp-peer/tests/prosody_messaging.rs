//! Against real Prosody 0.12: STARTTLS + SASL + bind, messages with receipts and chat states.

use testkit::prosody::{Prosody, ProsodyOptions, STEP};
use timeline::{Protocol, Timeline};
use xmpp_peer::{Caller, Client, Error, Mechanism, PhoneAccount};

fn authenticated_with(t: &Timeline, party: &str) -> Vec<String> {
    t.events()
        .into_iter()
        .filter(|e| e.party == party && e.summary.starts_with("authenticated with"))
        .map(|e| e.summary)
        .collect()
}

#[tokio::test]
async fn starttls_scram_sha1_bind_message_receipt_chat_state() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let alice_cfg =
        Prosody::with_mechanism(prosody.account("alice", &t).await?, Mechanism::ScramSha1);
    let bob_cfg = Prosody::with_mechanism(prosody.account("bob", &t).await?, Mechanism::ScramSha1);
    let alice = PhoneAccount::connect(alice_cfg, t.recorder("alice", Protocol::Xmpp)).await?;
    let bob = Caller::connect(bob_cfg, t.recorder("bob", Protocol::Xmpp)).await?;
    assert_eq!(alice.client().jid(), "alice@localhost/phone");
    assert_eq!(
        authenticated_with(&t, "alice"),
        ["authenticated with SCRAM-SHA-1"]
    );
    assert!(
        t.events().iter().any(|e| e.party == "alice"
            && e.transport == "tls"
            && e.summary.starts_with("iq result")),
        "bind did not happen over TLS:\n{}",
        t.ladder()
    );

    bob.send_chat_state("alice@localhost", "composing").await?;
    let id = bob.send_message("alice@localhost", "hi <&> there").await?;
    let m = alice
        .next_message(STEP)
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n{}", t.ladder()))?;
    assert_eq!(m.body.as_deref(), Some("hi <&> there"));
    assert_eq!(m.from_bare(), Some("bob@localhost"));
    assert!(m.receipt_request);
    assert_eq!(m.chat_state.as_deref(), Some("active"));
    let composing = alice
        .client()
        .wait_for(STEP, "composing", |e| {
            e.children().any(|c| c.name() == "composing")
        })
        .await?;
    assert_eq!(composing.get_attr("type"), Some("chat"));
    alice.ack_receipt(&m).await?;
    let r = bob.await_receipt(&id, STEP).await?;
    assert_eq!(r.from_bare(), Some("alice@localhost"));

    // Every stanza is on the timeline, with raw bytes.
    let ladder = t.ladder();
    assert!(
        ladder.contains("message chat to alice@localhost body=\"hi <&> there\""),
        "{ladder}"
    );
    assert!(t.events().iter().any(|e| e.party == "alice"
        && e.summary.contains("body=\"hi <&> there\"")
        && e.raw_text().contains("hi &lt;&amp;&gt; there")));
    alice.client().sync_acks(STEP).await?;
    bob.client().sync_acks(STEP).await?;
    Ok(())
}

#[tokio::test]
async fn scram_sha256_and_plain_and_wrong_password() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions {
        password_hash: "SHA-256",
        ..ProsodyOptions::peer_suite()
    })
    .await?;
    let t = Timeline::new();
    let cfg = prosody.account("carol", &t).await?;
    let c = Client::connect(
        Prosody::with_mechanism(cfg.clone(), Mechanism::ScramSha256),
        t.recorder("carol-256", Protocol::Xmpp),
    )
    .await?;
    assert_eq!(
        authenticated_with(&t, "carol-256"),
        ["authenticated with SCRAM-SHA-256"]
    );
    c.close(STEP).await?;
    let c = Client::connect(
        Prosody::with_mechanism(cfg.clone(), Mechanism::Plain),
        t.recorder("carol-plain", Protocol::Xmpp),
    )
    .await?;
    assert_eq!(
        authenticated_with(&t, "carol-plain"),
        ["authenticated with PLAIN"]
    );
    c.close(STEP).await?;
    // With SHA-256 hashes Prosody does not offer SCRAM-SHA-1.
    let err = Client::connect(
        Prosody::with_mechanism(cfg.clone(), Mechanism::ScramSha1),
        t.recorder("carol-1", Protocol::Xmpp),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::NoMechanism { offered } if offered.iter().any(|m| m == "SCRAM-SHA-256")),
        "{err}"
    );
    let mut bad = cfg;
    bad.password = "wrong".into();
    let err = Client::connect(bad, t.recorder("carol-bad", Protocol::Xmpp))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AuthRefused(raw) if raw.contains("not-authorized")),
        "{err}"
    );
    Ok(())
}
