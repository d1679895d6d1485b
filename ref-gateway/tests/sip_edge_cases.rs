//! Requests a proxy must answer cleanly, sent from a raw UDP socket: OPTIONS, unknown methods,
//! BYE and CANCEL outside any transaction, Max-Forwards 0, a malformed wildcard REGISTER,
//! an unsupported push provider (555 with Feature-Caps) and a request without Call-ID.

use sip_peer::Transport;
use testkit::gateway::*;
use tokio::net::UdpSocket;

async fn exchange(b: &Bench, text: &str) -> sip_peer::Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(text.as_bytes(), b.gw.addr(Transport::Udp).unwrap())
        .await
        .unwrap();
    loop {
        let m = recv(&sock, WAIT).await.expect("an answer");
        if m.status() != Some(100) {
            return m;
        }
    }
}

fn local() -> std::net::SocketAddr {
    "127.0.0.1:9".parse().unwrap()
}

#[tokio::test]
async fn every_odd_request_gets_the_right_status() {
    let b = Bench::start().await;
    let ruri = format!("sip:alice@{DOMAIN}");
    let cases: Vec<(String, u16)> = vec![
        (request("OPTIONS", &ruri, local(), "e1", ""), 200),
        (request("SUBSCRIBE", &ruri, local(), "e2", ""), 405),
        (request("BYE", &ruri, local(), "e3", ""), 481),
        (request("CANCEL", &ruri, local(), "e4", ""), 481),
        (
            request("INVITE", &ruri, local(), "e5", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
            483,
        ),
        (
            request(
                "REGISTER",
                &format!("sip:{DOMAIN}"),
                local(),
                "e6",
                "Contact: *\r\nExpires: 60\r\n",
            ),
            400,
        ),
        (
            request(
                "REGISTER",
                &format!("sip:{DOMAIN}"),
                local(),
                "e7",
                "Contact: <sip:alice@127.0.0.1:9;pn-provider=acme;pn-prid=abcd;pn-param=x.y.voip>\r\n",
            ),
            555,
        ),
        (
            request("MESSAGE", &ruri, local(), "e8", "").replace("Call-ID: e8\r\n", ""),
            400,
        ),
    ];
    for (text, want) in cases {
        // The raw requests name port 9 in Via; answers go to the source address (rport-like).
        let got = exchange(&b, &text).await;
        assert_eq!(got.status(), Some(want), "{}", text.lines().next().unwrap());
        if want == 555 {
            assert_eq!(got.feature_cap("+sip.pns").as_deref(), Some("apns"));
        }
    }
}
