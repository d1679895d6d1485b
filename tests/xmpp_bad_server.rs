//! A misbehaving XMPP server through the runner: a scripted server plays the target's c2s
//! listener and component port. Malformed bytes, or a well-formed stanza the protocol does not
//! allow at that point, must fail the step that met them, with the bytes in the report, within
//! the run's deadline (`tests/xmpp-fixtures/bad-server.feature`). The component side behaves, so
//! the in-process app server connects; each c2s connection gets the script under test.

use pushbench::runner::{run_blocking, RunOptions};
use pushbench::Verdict;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' version='1.0'>";
const PLAIN_FEATURES: &str =
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>\
    <mechanism>PLAIN</mechanism></mechanisms></stream:features>";

/// What the c2s listener does with each connection.
#[derive(Clone, Copy)]
enum Script {
    /// Stream features whose end tag does not match: not XML.
    MalformedFeatures,
    /// A `<message>` where the SASL outcome must come: well-formed, wrong at that point.
    MessageInsteadOfSaslOutcome,
}

/// Reads until `needle` has been seen; false if the peer closed first.
async fn read_until(s: &mut TcpStream, needle: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn c2s(mut s: TcpStream, script: Script) {
    if !read_until(&mut s, "<stream:stream").await {
        return;
    }
    match script {
        Script::MalformedFeatures => {
            let _ = s
                .write_all(format!("{HEADER}<stream:features><bogus></stream:features>").as_bytes())
                .await;
        }
        Script::MessageInsteadOfSaslOutcome => {
            let _ = s
                .write_all(format!("{HEADER}{PLAIN_FEATURES}").as_bytes())
                .await;
            if !read_until(&mut s, "</auth>").await {
                return;
            }
            let _ = s
                .write_all(b"<message><body>surprise-instead-of-success</body></message>")
                .await;
        }
    }
    // Hold the connection until the client gives up.
    read_until(&mut s, "never sent by a client").await;
}

/// XEP-0114: accepts any handshake, then holds the connection.
async fn component(mut s: TcpStream) {
    if !read_until(&mut s, "<stream:stream").await {
        return;
    }
    let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
        xmlns:stream='http://etherx.jabber.org/streams' id='c1' from='push.localhost'>";
    if s.write_all(header.as_bytes()).await.is_err() || !read_until(&mut s, "</handshake>").await {
        return;
    }
    let _ = s.write_all(b"<handshake/>").await;
    read_until(&mut s, "never sent by a component").await;
}

/// Starts the scripted server on its own runtime; returns (c2s, component) addresses.
fn scripted_server(script: Script) -> (String, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let c2s_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind c2s");
            let comp_listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind component");
            tx.send((
                c2s_listener.local_addr().expect("addr").to_string(),
                comp_listener.local_addr().expect("addr").to_string(),
            ))
            .expect("send addresses");
            let comps = tokio::spawn(async move {
                while let Ok((s, _)) = comp_listener.accept().await {
                    tokio::spawn(component(s));
                }
            });
            while let Ok((s, _)) = c2s_listener.accept().await {
                tokio::spawn(c2s(s, script));
            }
            comps.abort();
        });
    });
    rx.recv().expect("the scripted server starts")
}

/// A target file for the scripted server, in a fresh directory.
fn target_for(c2s: &str, component: &str, dir: &Path) -> PathBuf {
    let text = format!(
        r#"name = "scripted-bad-xmpp-server"
[xmpp]
domain = "localhost"
c2s = "{c2s}"

[xmpp.component]
address = "{component}"
domain = "push.localhost"
secret = "scripted"

[[xmpp.accounts]]
name = "alice"
jid = "alice@localhost"
password = "alice-secret"

[[xmpp.accounts]]
name = "bob"
jid = "bob@localhost"
password = "bob-secret"

[apns]
listen = "127.0.0.1:0"
environment = "sandbox"
auth = "token"
credentials_dir = "credentials"
bundle_id = "com.example.pushbench"

[profile]
cancel = "cancel-push"
capabilities = ["xmpp"]
"#
    );
    let path = dir.join("target.toml");
    std::fs::write(&path, text).expect("write the target file");
    path
}

/// Runs the fixture against a server playing `script`; returns (verdict, reason, report text).
fn run(script: Script) -> (Verdict, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (c2s, comp) = scripted_server(script);
    let opts = RunOptions {
        target: Some(target_for(&c2s, &comp, dir.path())),
        features: vec![
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/xmpp-fixtures/bad-server.feature")
        ],
        print: false,
        timeout: Duration::from_secs(120),
        ..RunOptions::default()
    };
    let report = run_blocking(&opts).expect("the run starts");
    assert_eq!(report.scenarios.len(), 1, "{}", report.failures());
    let s = &report.scenarios[0];
    (
        s.verdict,
        s.reason.clone().unwrap_or_default(),
        report.failures(),
    )
}

#[test]
fn malformed_bytes_from_the_server_fail_the_step_and_show_them() {
    let (verdict, reason, report) = run(Script::MalformedFeatures);
    assert_eq!(verdict, Verdict::Fail, "{report}");
    assert!(reason.contains("<bogus></stream:features>"), "{report}");
}

#[test]
fn an_unexpected_stanza_from_the_server_fails_the_step_and_shows_it() {
    let (verdict, reason, report) = run(Script::MessageInsteadOfSaslOutcome);
    assert_eq!(verdict, Verdict::Fail, "{report}");
    assert!(reason.contains("surprise-instead-of-success"), "{report}");
}
