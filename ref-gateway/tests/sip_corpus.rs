//! sip-peer's corpus of real-world and RFC messages (RFC 3261/3665/4475/8599, Linphone, PJSIP,
//! IPv6, compact forms, escaped pn-prid) and its malformed set, thrown at the gateway over UDP
//! and TCP: every well-formed request gets an answer (ACK excepted), every push REGISTER a 2xx
//! with `+sip.pns`, nothing crashes it, and it still answers OPTIONS afterwards.

use sip_peer::{Message, PushError, PushParams, Transport};
use std::path::PathBuf;
use testkit::gateway::*;
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

fn corpus(sub: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sip-peer/tests/corpus")
        .join(sub);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x != "md"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus in {}", dir.display());
    out
}

#[tokio::test]
async fn the_corpus_is_answered_and_the_malformed_set_does_not_hurt() {
    let b = Bench::start().await;
    let gw = b.gw.addr(Transport::Udp).unwrap();
    let mut answered = 0;
    let mut push_registers = 0;
    for (name, bytes) in corpus("") {
        let Ok(msg) = Message::parse(&bytes) else {
            continue;
        };
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        sock.send_to(&bytes, gw).await.unwrap();
        let Some(method) = msg.method().map(str::to_owned) else {
            continue; // responses match no branch: dropped
        };
        if method == "ACK" {
            continue;
        }
        let mut last = None;
        while let Some(m) = recv(&sock, std::time::Duration::from_millis(500)).await {
            let done = m.status().is_some_and(|s| s >= 200);
            last = Some(m);
            if done {
                break;
            }
        }
        let resp = last.unwrap_or_else(|| panic!("{name}: no answer"));
        answered += 1;
        if method == "REGISTER" && msg.authorization().ok().flatten().is_none() {
            // What sip-peer's reading of the push parameters says the answer must be.
            let verdicts: Vec<_> = msg
                .contacts()
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.addr().and_then(|a| PushParams::from_uri(&a.uri)))
                .map(|p| p.apns_voip())
                .collect();
            let want = if verdicts.is_empty() {
                None
            } else if verdicts
                .iter()
                .any(|v| matches!(v, Err(PushError::NotApns(_))))
            {
                Some(555)
            } else if verdicts.iter().any(|v| {
                matches!(
                    v,
                    Err(PushError::CountMismatch { .. } | PushError::BadParam(_))
                )
            }) {
                Some(400)
            } else {
                Some(200)
            };
            if let Some(want) = want {
                assert_eq!(resp.status(), Some(want), "{name}: {}", resp.summary());
                if want == 200 {
                    assert_eq!(
                        resp.feature_cap("+sip.pns").as_deref(),
                        Some("apns"),
                        "{name}"
                    );
                    push_registers += 1;
                }
            }
        }
    }
    assert!(
        push_registers >= 3,
        "only {push_registers} push REGISTERs accepted"
    );
    assert!(answered >= 10, "only {answered} requests answered");
    for (_name, bytes) in corpus("malformed") {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let _ = sock.send_to(&bytes, gw).await; // too long for a datagram: TCP only
        let mut tcp = tokio::net::TcpStream::connect(b.gw.addr(Transport::Tcp).unwrap())
            .await
            .unwrap();
        let _ = tcp.write_all(&bytes).await;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let options = request(
        "OPTIONS",
        &format!("sip:alice@{DOMAIN}"),
        local,
        "after",
        "",
    );
    sock.send_to(options.as_bytes(), gw).await.unwrap();
    let ok = recv(&sock, WAIT).await.expect("still serving");
    assert_eq!(ok.status(), Some(200));
}
