//! What Prosody 0.12 + Debian prosody-modules actually speaks, recorded as assertions (the README
//! cites these): advertised features, and what reaches an offline account.

use testkit::prosody::{Prosody, ProsodyOptions, DOMAIN, STEP};
use timeline::{Protocol, Timeline};
use xmpp_peer::jmi::{Jmi, Kind};
use xmpp_peer::message::Message;
use xmpp_peer::{ns, Caller, Client, Element, PhoneAccount};

async fn disco_features(c: &Client, to: &str) -> anyhow::Result<Vec<String>> {
    let iq = Element::new("iq", ns::CLIENT)
        .attr("type", "get")
        .attr("to", to)
        .child(Element::new("query", ns::DISCO_INFO));
    let res = c.iq(iq, STEP).await?;
    Ok(res
        .get_child("query", ns::DISCO_INFO)
        .map(|q| {
            q.children()
                .filter(|f| f.name() == "feature")
                .filter_map(|f| f.get_attr("var").map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn advertised_namespaces() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let c = Client::connect(
        prosody.account("alice", &t).await?,
        t.recorder("alice", Protocol::Xmpp),
    )
    .await?;
    let account = disco_features(&c, "alice@localhost").await?;
    let server = disco_features(&c, DOMAIN).await?;
    println!("account features: {account:?}\nserver features: {server:?}");
    for f in ["urn:xmpp:push:0", "urn:xmpp:mam:2"] {
        assert!(
            account.iter().any(|a| a == f),
            "account lacks {f}: {account:?}"
        );
    }
    for f in ["urn:xmpp:carbons:2", "urn:xmpp:ping"] {
        assert!(
            server.iter().any(|a| a == f),
            "server lacks {f}: {server:?}"
        );
    }
    // Stream features after auth offer both SM versions; we use urn:xmpp:sm:3.
    let features = t
        .events()
        .into_iter()
        .filter(|e| {
            e.party == "alice"
                && e.summary.starts_with("stream features [")
                && e.summary.contains("bind")
        })
        .map(|e| e.raw_text())
        .next()
        .expect("post-auth features");
    assert!(
        features.contains("urn:xmpp:sm:3") && features.contains("urn:xmpp:sm:2"),
        "{features}"
    );
    Ok(())
}

#[tokio::test]
async fn what_an_offline_account_gets_on_login() -> anyhow::Result<()> {
    let prosody = Prosody::start(ProsodyOptions::peer_suite()).await?;
    let t = Timeline::new();
    let alice_cfg = prosody.account("alice", &t).await?;
    let bob = Caller::connect(
        prosody.account("bob", &t).await?,
        t.recorder("bob", Protocol::Xmpp),
    )
    .await?;
    // alice has never been online: everything goes to offline storage (and MAM).
    let call = bob.propose("alice@localhost").await?;
    bob.retract("alice@localhost", &call).await?;
    bob.send_message("alice@localhost", "last").await?;
    bob.client().sync_acks(STEP).await?;
    let phone = PhoneAccount::connect(alice_cfg, t.recorder("alice", Protocol::Xmpp)).await?;
    // Offline messages are flushed in order on initial presence, so once "last" is here,
    // whatever offline storage held before it is in the inbox too.
    let last = phone.next_message(STEP).await?;
    assert!(
        last.delay.is_some(),
        "offline delivery carries a delay stamp"
    );
    let kinds: Vec<Kind> = phone
        .client()
        .inbox()
        .drain()
        .iter()
        .filter(|e| e.name() == "message")
        .filter_map(|e| Message::parse(e).ok().and_then(|m| m.jmi))
        .map(|j: Jmi| j.kind)
        .collect();
    println!("offline JMI delivered: {kinds:?}");
    // Observed: Prosody 0.12's mod_offline stores the body-less JMI messages too, so a phone
    // that logs in late gets the propose and the retract and must not ring.
    assert_eq!(kinds, [Kind::Propose, Kind::Retract], "{}", t.ladder());
    Ok(())
}
