//! The app server against a scripted XMPP server (a hand-written XEP-0114 peer): malformed or
//! unexpected stanzas get an XMPP error that names the problem, never a panic or a hang, and the
//! app server keeps serving.

use anyhow::{bail, Context, Result};
use ref_gateway::app_server::{Answer, ApnsClients, AppServer, AppServerConfig};
use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xmpp_peer::ComponentConfig;

const STEP: Duration = Duration::from_secs(10);

/// Reads until `needle` has arrived (after what was already consumed), within the step deadline.
async fn read_until(s: &mut TcpStream, buf: &mut String, needle: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(i) = buf.find(needle) {
            let upto: String = buf.drain(..i + needle.len()).collect();
            return Ok(upto);
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .with_context(|| format!("waiting for {needle:?}; have {buf:?}"))??;
        if n == 0 {
            bail!("closed while waiting for {needle:?}; have {buf:?}");
        }
        buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
}

const PUBLISH_HEAD: &str = "<iq type='set' from='localhost' to='push.localhost' id='ID'>\
    <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='NODE'>";
const NOTIFICATION: &str = "<notification xmlns='urn:xmpp:push:0'/>";

fn publish(id: &str, node: &str, items: &str) -> String {
    format!(
        "{}{items}</publish></pubsub></iq>",
        PUBLISH_HEAD.replace("ID", id).replace("NODE", node)
    )
}

#[tokio::test]
async fn malformed_and_unexpected_stanzas_get_errors_and_the_server_keeps_serving() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let t = Timeline::new();
    let app = tokio::spawn({
        let rec = t.recorder("app-server", Protocol::Xmpp);
        async move {
            AppServer::start(
                AppServerConfig::new(ComponentConfig::new("push.localhost", "sekrit", addr)),
                ApnsClients::default(),
                rec,
            )
            .await
        }
    });
    let (mut s, _) = tokio::time::timeout(STEP, listener.accept()).await??;
    let mut buf = String::new();
    read_until(&mut s, &mut buf, "<stream:stream").await?;
    read_until(&mut s, &mut buf, ">").await?;
    s.write_all(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
          xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='push.localhost'>",
    )
    .await?;
    read_until(&mut s, &mut buf, "</handshake>").await?;
    s.write_all(b"<handshake/>").await?;
    let app = tokio::time::timeout(STEP, app).await???;

    // Two items: the parser refuses it; the answer says why and quotes nothing it cannot.
    let two = format!("<item>{NOTIFICATION}</item><item>{NOTIFICATION}</item>");
    s.write_all(publish("p1", "n1", &two).as_bytes()).await?;
    let reply = read_until(&mut s, &mut buf, "</iq>").await?;
    assert!(
        reply.contains("id='p1'") && reply.contains("bad-request") && reply.contains("exactly one"),
        "{reply}"
    );
    // The summary form beside <notification> (the prosody-modules 2021 nesting bug).
    let beside = format!("<item>{NOTIFICATION}<x xmlns='jabber:x:data' type='form'/></item>");
    s.write_all(publish("p2", "n1", &beside).as_bytes()).await?;
    let reply = read_until(&mut s, &mut buf, "</iq>").await?;
    assert!(
        reply.contains("id='p2'") && reply.contains("sibling"),
        "{reply}"
    );
    // A Tigase jingle marker without sid: bad-request naming it (after the node check, so the
    // node must exist).
    app.registry()
        .register(ref_gateway::app_server::Registration::new(
            "n1",
            "00aa",
            "com.example.app",
        ));
    let no_sid = "<item><notification xmlns='urn:xmpp:push:0'>\
        <jingle xmlns='tigase:push:jingle:0' action='propose'/></notification></item>";
    s.write_all(publish("p3", "n1", no_sid).as_bytes()).await?;
    let reply = read_until(&mut s, &mut buf, "</iq>").await?;
    assert!(
        reply.contains("id='p3'") && reply.contains("without sid"),
        "{reply}"
    );
    // Not a publish: feature-not-implemented.
    s.write_all(
        b"<iq type='get' from='localhost' to='push.localhost' id='d1'>\
          <query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
    )
    .await?;
    let reply = read_until(&mut s, &mut buf, "</iq>").await?;
    assert!(
        reply.contains("id='d1'") && reply.contains("feature-not-implemented"),
        "{reply}"
    );
    // An unknown node: item-not-found (what makes the server disable the registration).
    let ok_item = format!("<item>{NOTIFICATION}</item>");
    s.write_all(publish("p4", "nobody", &ok_item).as_bytes())
        .await?;
    let reply = read_until(&mut s, &mut buf, "</iq>").await?;
    assert!(
        reply.contains("id='p4'") && reply.contains("item-not-found"),
        "{reply}"
    );
    // Still serving, in order: the outcomes of p1..p4 (the disco get is not a publish).
    let mut answers = vec![];
    for _ in 0..4 {
        let o = app
            .next_outcome(STEP)
            .await
            .context("an outcome per publish")?;
        answers.push(o.answer);
    }
    let bad = Answer::Error {
        kind: "modify",
        condition: "bad-request",
    };
    assert_eq!(
        answers,
        [
            bad.clone(),
            bad.clone(),
            bad,
            Answer::Error {
                kind: "cancel",
                condition: "item-not-found"
            }
        ]
    );
    // Garbage on the stream: the app server ends the component session, it does not panic.
    s.write_all(b"<iq type='set' <<<").await?;
    drop(s);
    app.stop().await;
    Ok(())
}
