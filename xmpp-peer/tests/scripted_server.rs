//! A scripted, misbehaving server: malformed or unexpected input gives an error value that shows
//! the bytes, never a panic or a hang.

use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use xmpp_peer::{Client, ClientConfig, Error, Mechanism, PhoneAccount};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>";
const PLAIN_FEATURES: &str =
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
    <mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const BIND_FEATURES: &str =
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";

/// Reads until `needle` has been seen (or the peer closes).
async fn read_until(s: &mut TcpStream, needle: &str) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await??;
        anyhow::ensure!(n > 0, "client closed before sending {needle}");
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

/// Runs `script` as the server for one connection; returns a plaintext config pointing at it.
async fn serve<F, Fut>(script: F) -> anyhow::Result<ClientConfig>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Ok((s, _)) = listener.accept().await {
            let _ = script(s).await;
        }
    });
    let mut cfg = ClientConfig::new("alice@localhost", "pw", addr, None);
    cfg.mechanisms = vec![Mechanism::Plain];
    cfg.step_timeout = Duration::from_millis(1500);
    cfg.stream_management = false;
    cfg.initial_presence = false;
    Ok(cfg)
}

/// Logs the client in over plaintext PLAIN, then runs `after`.
async fn login_then<F, Fut>(after: F) -> anyhow::Result<ClientConfig>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    serve(|mut s| async move {
        read_until(&mut s, "<stream:stream").await?;
        s.write_all(format!("{HEADER}{PLAIN_FEATURES}").as_bytes()).await?;
        read_until(&mut s, "</auth>").await?;
        s.write_all(b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>").await?;
        read_until(&mut s, "<stream:stream").await?;
        s.write_all(format!("{HEADER}{BIND_FEATURES}").as_bytes()).await?;
        read_until(&mut s, "</iq>").await?;
        s.write_all(b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/r</jid></bind></iq>").await?;
        after(s).await
    })
    .await
}

async fn connect_err(cfg: ClientConfig) -> Error {
    let t = Timeline::new();
    match tokio::time::timeout(
        Duration::from_secs(20),
        Client::connect(cfg, t.recorder("alice", Protocol::Xmpp)),
    )
    .await
    {
        Ok(Ok(_)) => panic!("connected to a broken server"),
        Ok(Err(e)) => e,
        Err(_) => panic!("hung"),
    }
}

#[tokio::test]
async fn malformed_features_show_the_bytes() -> anyhow::Result<()> {
    let cfg = serve(|mut s| async move {
        read_until(&mut s, "<stream:stream").await?;
        s.write_all(format!("{HEADER}<stream:features><bogus></stream:features>").as_bytes())
            .await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let err = connect_err(cfg).await;
    assert!(matches!(err, Error::Malformed(_)), "{err}");
    assert!(
        err.to_string()
            .contains("<stream:features><bogus></stream:features>"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn non_xmpp_peer_is_an_error() -> anyhow::Result<()> {
    let cfg = serve(|mut s| async move {
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let err = connect_err(cfg).await;
    assert!(err.to_string().contains("HTTP/1.1 400"), "{err}");
    Ok(())
}

#[tokio::test]
async fn silent_server_times_out_and_closing_server_is_closed() -> anyhow::Result<()> {
    let cfg = serve(|mut s| async move { read_until(&mut s, "never").await }).await?;
    let err = connect_err(cfg).await;
    assert!(
        matches!(&err, Error::Timeout { waiting_for, .. } if waiting_for == "stream header"),
        "{err}"
    );
    let cfg = serve(|mut s| async move {
        read_until(&mut s, "<stream:stream").await?;
        s.write_all(HEADER.as_bytes()).await?;
        Ok(())
    })
    .await?;
    let err = connect_err(cfg).await;
    assert!(matches!(err, Error::Closed { .. }), "{err}");
    Ok(())
}

#[tokio::test]
async fn unexpected_sasl_reply_is_shown() -> anyhow::Result<()> {
    let cfg = serve(|mut s| async move {
        read_until(&mut s, "<stream:stream").await?;
        s.write_all(format!("{HEADER}{PLAIN_FEATURES}").as_bytes())
            .await?;
        read_until(&mut s, "</auth>").await?;
        s.write_all(b"<message><body>surprise</body></message>")
            .await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let err = connect_err(cfg).await;
    assert!(
        matches!(&err, Error::Unexpected { raw, .. } if raw.contains("surprise")),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_stanza_after_login_fails_the_wait_with_its_bytes() -> anyhow::Result<()> {
    let cfg = login_then(|mut s| async move {
        s.write_all(b"<message from='bob@localhost/x'><body>x</bogus></message>")
            .await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let t = Timeline::new();
    let phone = PhoneAccount::connect(cfg, t.recorder("alice", Protocol::Xmpp)).await?;
    let err = phone
        .next_message(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Closed { reason, .. } if reason.contains("<body>x</bogus>")),
        "{err}"
    );
    assert!(
        t.events()
            .iter()
            .any(|e| e.summary.starts_with("malformed input")),
        "{}",
        t.ladder()
    );
    Ok(())
}

#[tokio::test]
async fn invalid_jmi_is_an_error_showing_the_stanza() -> anyhow::Result<()> {
    let cfg = login_then(|mut s| async move {
        s.write_all(b"<message from='bob@localhost/x' type='chat'><propose xmlns='urn:xmpp:jingle-message:0' id='c1'/></message>").await?;
        s.write_all(b"<message from='bob@localhost/x' type='chat'><propose xmlns='urn:xmpp:jingle-message:0' id='c2'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>").await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let t = Timeline::new();
    let phone = PhoneAccount::connect(cfg, t.recorder("alice", Protocol::Xmpp)).await?;
    let err = phone
        .next_call_propose(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("propose without <description>")
            && err.to_string().contains("id='c1'"),
        "{err}"
    );
    let ok = phone.next_call_propose(Duration::from_secs(10)).await?;
    assert_eq!(ok.jmi.unwrap().id, "c2");
    Ok(())
}

#[tokio::test]
async fn stream_error_is_reported_with_its_bytes() -> anyhow::Result<()> {
    let cfg = login_then(|mut s| async move {
        s.write_all(b"<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>").await?;
        read_until(&mut s, "never").await
    })
    .await?;
    let t = Timeline::new();
    let c = Client::connect(cfg, t.recorder("alice", Protocol::Xmpp)).await?;
    let err = c
        .wait_for(Duration::from_secs(10), "anything", |_| true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("conflict"), "{err}");
    Ok(())
}
