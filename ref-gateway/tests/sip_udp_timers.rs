//! UDP reliability of the gateway, seen from raw sockets that drop on purpose: a forwarded
//! INVITE is retransmitted until the phone answers anything (Timer A), and a non-2xx final
//! response is retransmitted until the caller's ACK (Timer G).

use sip_peer::build_response;
use sip_peer::Transport;
use testkit::gateway::*;
use tokio::net::UdpSocket;

#[tokio::test]
async fn a_non_2xx_final_is_retransmitted_until_the_ack() {
    let b = Bench::start().await;
    let gw = b.gw.addr(Transport::Udp).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = sock.local_addr().unwrap();
    let ruri = format!("sip:nobody@{DOMAIN}");
    let invite = request("INVITE", &ruri, local, "g1", "");
    sock.send_to(invite.as_bytes(), gw).await.unwrap();
    let mut finals = 0;
    let mut final_resp = None;
    while let Some(m) = recv(&sock, T1 * 4).await {
        if m.status() == Some(404) {
            finals += 1;
            final_resp = Some(m);
            if finals == 3 {
                break;
            }
        }
    }
    assert_eq!(finals, 3, "404 sent and retransmitted without an ACK");
    let to = final_resp.unwrap().header("To").unwrap().to_owned();
    let ack = request("ACK", &ruri, local, "g1", "")
        .replace(&format!("To: <{ruri}>"), &format!("To: {to}"));
    sock.send_to(ack.as_bytes(), gw).await.unwrap();
    // At most one retransmission already in flight, then silence.
    let _ = recv(&sock, T1).await;
    assert!(recv(&sock, T1 * 6).await.is_none(), "no 404 after the ACK");
}

#[tokio::test]
async fn a_forwarded_invite_is_retransmitted_until_the_phone_answers() {
    let b = Bench::start().await;
    let gw = b.gw.addr(Transport::Udp).unwrap();
    let phone = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = phone.local_addr().unwrap();
    let aor = format!("sip:alice@{DOMAIN}");
    let register = request(
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        local,
        "r1",
        &format!("Contact: <sip:alice@{local}>\r\nExpires: 600\r\n"),
    )
    .replace(&format!("To: <sip:{DOMAIN}>"), &format!("To: <{aor}>"));
    phone.send_to(register.as_bytes(), gw).await.unwrap();
    let ok = recv(&phone, WAIT).await.unwrap();
    assert_eq!(ok.status(), Some(200));

    let bob = b.caller(Transport::Udp).await;
    let _call = bob.invite(&aor).unwrap();
    let first = recv(&phone, WAIT).await.expect("the INVITE");
    assert_eq!(first.method(), Some("INVITE"));
    let again = recv(&phone, T1 * 3).await.expect("a retransmission");
    assert_eq!(again.method(), Some("INVITE"));
    assert_eq!(
        again.top_via().unwrap().branch(),
        first.top_via().unwrap().branch(),
        "same transaction"
    );
    let mut trying = build_response(&again, 100, "Trying", None);
    trying.push_header("Content-Length", "0");
    phone.send_to(&trying.to_bytes(), gw).await.unwrap();
    let _ = recv(&phone, T1).await; // one may already be in flight
    assert!(
        recv(&phone, T1 * 6).await.is_none(),
        "no retransmission after the 100"
    );
}
