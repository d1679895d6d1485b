//! The `ref-gateway` binary run out of process, as a bench target: it reads a TOML file, prints
//! one JSON ready line with its bound addresses, serves REGISTER and pushes through mock-apns
//! with token auth read from files; a bad file is a clear error and a non-zero exit.

use mock_apns::{Config, MockApns};
use sip_peer::{
    Caller, CallerConfig, EndpointConfig, PhoneAccount, PhoneConfig, PushParams, SipUri,
};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use testkit::gateway::{token, DOMAIN};
use testkit::within;
use timeline::{Protocol, Recorder};
use tokio::io::{AsyncBufReadExt, BufReader};

fn config_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ref-gateway-{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn the_binary_prints_its_addresses_and_serves_register_and_push() {
    let apns = MockApns::start(Config::default()).await.unwrap();
    let creds = apns.credentials();
    let dir = config_dir("ok");
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            r#"
domain = "{DOMAIN}"
cancel = "rfc8599-drop"
[listen]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[timers]
bucket_timer_ms = 800
[apns]
production = "{}"
sandbox = "{}"
ca = "{}"
key_p8 = "{}"
key_id = "{}"
team_id = "{}"
"#,
            apns.production_addr(),
            apns.sandbox_addr(),
            creds.ca_path().display(),
            creds.key_path().display(),
            creds.key_id(),
            creds.team_id()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ref-gateway"))
        .arg("--config")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = within("ready line", lines.next_line())
        .await
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let udp: SocketAddr = v["udp"].as_str().unwrap().parse().unwrap();
    assert!(v["tcp"].as_str().is_some());
    assert!(v["tls"].is_null());

    let tok = token();
    let mut cfg = PhoneConfig::new(SipUri::parse(&format!("sip:alice@{DOMAIN}")).unwrap(), udp);
    cfg.push = Some(PushParams::apns(&tok, creds.team_id(), creds.bundle_id()));
    let off = Recorder::off("alice", Protocol::Sip);
    let alice = PhoneAccount::start(
        EndpointConfig::udp("127.0.0.1:0".parse().unwrap()),
        cfg,
        off.clone(),
        "gateway",
    )
    .await
    .unwrap();
    let reg = alice.register(Duration::from_secs(2)).await.unwrap();
    assert_eq!(reg.pns.as_deref(), Some("apns"));
    alice.set_offline(sip_peer::Offline::Disconnected);
    let bob = Caller::new(
        EndpointConfig::udp("127.0.0.1:0".parse().unwrap()),
        CallerConfig::new(SipUri::parse(&format!("sip:bob@{DOMAIN}")).unwrap(), udp),
        off,
        "gateway",
    )
    .await
    .unwrap();
    let mut call = bob.invite(&format!("sip:alice@{DOMAIN}")).unwrap();
    let push = apns
        .next_push_for(&tok, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(push.status, 200);
    let fin = call.await_final(Duration::from_secs(2)).await.unwrap();
    assert_eq!(fin.status(), Some(480));
    child.start_kill().unwrap();
    within("exit", child.wait()).await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_bad_config_file_is_a_clear_error() {
    let dir = config_dir("bad");
    let file = dir.join("gateway.toml");
    std::fs::write(&file, "domain = \"x\"\nfaults = [\"priority-7\"]\n").unwrap();
    let out = within(
        "exit",
        tokio::process::Command::new(env!("CARGO_BIN_EXE_ref-gateway"))
            .arg("--config")
            .arg(&file)
            .output(),
    )
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no ready line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("priority-7"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
