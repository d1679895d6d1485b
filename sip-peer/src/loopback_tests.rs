//! In-process tests: our caller calling our phone account directly over UDP, TCP and TLS on
//! loopback (IPv4 and IPv6), plus scripted raw-socket peers for timers, digest and errors.

use crate::error::{ConnectionError, TransportError};
use crate::*;
use std::net::SocketAddr;
use std::time::Duration;
use timeline::{Protocol, Timeline};
use tokio::net::UdpSocket;

const D: Duration = Duration::from_secs(5);

fn v4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn v6() -> SocketAddr {
    "[::1]:0".parse().unwrap()
}

struct Pair {
    timeline: Timeline,
    caller: Caller,
    phone: PhoneAccount,
}

async fn pair(phone_ep: EndpointConfig, caller_ep: EndpointConfig, policy: IncomingPolicy) -> Pair {
    let timeline = Timeline::new();
    let phone_aor = SipUri::parse("sip:alice@example.com").unwrap();
    let mut pc = PhoneConfig::new(phone_aor, "127.0.0.1:9".parse().unwrap());
    pc.policy = policy;
    let phone = PhoneAccount::start(
        phone_ep,
        pc,
        timeline.recorder("alice", Protocol::Sip),
        "bob",
    )
    .await
    .unwrap();
    let cc = CallerConfig::new(
        SipUri::parse("sip:bob@example.com").unwrap(),
        phone.endpoint().local_addr(),
    );
    let caller = Caller::new(
        caller_ep,
        cc,
        timeline.recorder("bob", Protocol::Sip),
        "alice",
    )
    .await
    .unwrap();
    Pair {
        timeline,
        caller,
        phone,
    }
}

fn target(p: &Pair) -> String {
    p.phone.contact_uri().to_string()
}

/// INVITE → 100/180 → (script answers) 200 → ACK → BYE → 200, checked on both sides.
async fn full_call(p: Pair) {
    let mut call = p.caller.invite(&target(&p)).unwrap();
    let ringing = call.await_status(180, D).await.unwrap();
    assert!(ringing.to().unwrap().tag().is_some());
    let mut incoming = p.phone.next_call(D).await.unwrap();
    assert_eq!(incoming.call_id(), call.call_id());
    assert_eq!(
        incoming.request().header("Content-Type"),
        Some("application/sdp")
    );
    incoming.answer().unwrap();
    let ok = call.await_answered(D).await.unwrap();
    assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
    incoming.await_ack(D).await.unwrap();
    let bye_ok = call.bye(D).await.unwrap();
    assert_eq!(bye_ok.status(), Some(200));
    let bye = incoming.await_bye(D).await.unwrap();
    assert_eq!(bye.cseq().unwrap().seq, 2);
    let ladder = p.timeline.ladder();
    for s in [
        "INVITE sip:alice@",
        "180 Ringing (INVITE)",
        "200 OK (INVITE)",
        "ACK sip:alice@",
        "200 OK (BYE)",
    ] {
        assert!(ladder.contains(s), "{s} missing from\n{ladder}");
    }
}

#[tokio::test]
async fn call_over_udp_v4() {
    full_call(
        pair(
            EndpointConfig::udp(v4()),
            EndpointConfig::udp(v4()),
            IncomingPolicy::Ring,
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn call_over_udp_v6() {
    full_call(
        pair(
            EndpointConfig::udp(v6()),
            EndpointConfig::udp(v6()),
            IncomingPolicy::Ring,
        )
        .await,
    )
    .await;
}

#[tokio::test]
async fn call_over_tcp_reuses_one_connection() {
    let p = pair(
        EndpointConfig::tcp(v4()),
        EndpointConfig::tcp(v4()),
        IncomingPolicy::Ring,
    )
    .await;
    let caller = p.caller.clone();
    full_call(p).await;
    assert_eq!(caller.endpoint().connection_count(), 1);
}

#[tokio::test]
async fn call_over_tls_with_a_generated_ca() {
    let chain = testkit::pki::TlsChain::generate("sip-peer test CA", &["localhost"]);
    let server = TlsConfig::server(chain.cert_pem.as_bytes(), chain.key_pem.as_bytes()).unwrap();
    let client = TlsConfig::client_trusting(chain.ca_pem.as_bytes(), "localhost").unwrap();
    for bind in [v4(), v6()] {
        let p = pair(
            EndpointConfig::tls(bind, server.clone()),
            EndpointConfig::tls(bind, client.clone()),
            IncomingPolicy::Ring,
        )
        .await;
        full_call(p).await;
    }

    // A client that trusts another CA fails the handshake: a transport error, not a hang.
    let other = testkit::pki::TlsChain::unrelated_ca();
    let p = pair(
        EndpointConfig::tls(
            v4(),
            TlsConfig::server(chain.cert_pem.as_bytes(), chain.key_pem.as_bytes()).unwrap(),
        ),
        EndpointConfig::tls(
            v4(),
            TlsConfig::client_trusting(other.as_bytes(), "localhost").unwrap(),
        ),
        IncomingPolicy::Ring,
    )
    .await;
    let mut call = p.caller.invite(&target(&p)).unwrap();
    let err = call.await_status(180, D).await.unwrap_err();
    // The handshake's own error is kept as the source, not flattened into text.
    let SipError::Transport(TransportError::Connection {
        source: ConnectionError::TlsHandshake(io),
        ..
    }) = &err
    else {
        panic!("expected a TLS handshake failure, got {err}");
    };
    assert!(std::error::Error::source(&err).is_some(), "{err}");
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidData, "{io}");
}

#[tokio::test]
async fn cancel_gets_200_and_487_over_udp_and_tcp() {
    for (ep1, ep2) in [
        (EndpointConfig::udp(v4()), EndpointConfig::udp(v4())),
        (EndpointConfig::tcp(v4()), EndpointConfig::tcp(v4())),
    ] {
        let p = pair(ep1, ep2, IncomingPolicy::Ring).await;
        let mut call = p.caller.invite(&target(&p)).unwrap();
        call.await_status(180, D).await.unwrap();
        let mut incoming = p.phone.next_call(D).await.unwrap();
        let cancel_ok = call.cancel(D).await.unwrap();
        assert_eq!(cancel_ok.status(), Some(200));
        let terminated = call.await_status(487, D).await.unwrap();
        assert_eq!(terminated.reason_phrase(), Some("Request Terminated"));
        incoming.await_cancel(D).await.unwrap();
        // The 487 was ACKed hop by hop, and answering now is refused.
        incoming.await_ack(D).await.unwrap();
        assert!(matches!(incoming.answer(), Err(SipError::State(_))));
    }
}

#[tokio::test]
async fn policies_answer_reject_and_callee_hangs_up() {
    let p = pair(
        EndpointConfig::udp(v4()),
        EndpointConfig::udp(v4()),
        IncomingPolicy::AnswerAtOnce,
    )
    .await;
    let mut call = p.caller.invite(&target(&p)).unwrap();
    call.await_answered(D).await.unwrap();
    let mut incoming = p.phone.next_call(D).await.unwrap();
    incoming.await_ack(D).await.unwrap();
    let r = incoming.bye(D).await.unwrap();
    assert_eq!(r.status(), Some(200));
    call.await_request("BYE", D).await.unwrap();

    p.phone.set_policy(IncomingPolicy::Reject(486));
    let mut call = p.caller.invite(&target(&p)).unwrap();
    let err = call.await_status(180, D).await.unwrap_err();
    assert_eq!(err.status(), Some(486), "{err}");
    // The failed step did not eat the 486: the next step still sees it.
    assert_eq!(call.await_final(D).await.unwrap().status(), Some(486));
    let mut incoming = p.phone.next_call(D).await.unwrap();
    incoming.await_ack(D).await.unwrap();

    p.phone
        .set_policy(IncomingPolicy::RingThenAnswer(Duration::from_millis(50)));
    let mut call = p.caller.invite(&target(&p)).unwrap();
    call.await_status(180, D).await.unwrap();
    call.await_answered(D).await.unwrap();
    call.bye(D).await.unwrap();
}

#[tokio::test]
async fn flight_mode_silences_and_times_out_with_what_arrived() {
    let p = pair(
        EndpointConfig::udp(v4()),
        EndpointConfig::udp(v4()),
        IncomingPolicy::Ring,
    )
    .await;
    p.phone.set_offline(Offline::Silent);
    let mut call = p.caller.invite(&target(&p)).unwrap();
    let err = call
        .await_status(180, Duration::from_millis(300))
        .await
        .unwrap_err();
    match err {
        SipError::Timeout {
            received,
            waiting_for,
            ..
        } => {
            assert!(received.is_empty());
            assert_eq!(waiting_for, "180 to INVITE");
        }
        e => panic!("{e}"),
    }
    assert!(p.phone.next_call(Duration::from_millis(10)).await.is_err());
    // Back online: the INVITE retransmission reaches the phone and rings.
    p.phone.set_offline(Offline::Online);
    call.await_status(180, D).await.unwrap();
    assert!(p.timeline.ladder().contains("offline: dropped INVITE"));
}

#[tokio::test]
async fn invite_retransmits_with_doubling_intervals_until_timer_b() {
    let silent = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let t1 = Duration::from_millis(40);
    let cfg = EndpointConfig::udp(v4()).with_t1(t1);
    let caller = Caller::new(
        cfg,
        CallerConfig::new(
            SipUri::parse("sip:bob@x").unwrap(),
            silent.local_addr().unwrap(),
        ),
        t.recorder("bob", Protocol::Sip),
        "void",
    )
    .await
    .unwrap();
    let mut call = caller.invite("sip:alice@127.0.0.1").unwrap();
    let err = call.await_final(D).await.unwrap_err();
    assert!(
        matches!(err, SipError::TransactionTimeout { timer: 'B', .. }),
        "{err}"
    );
    let sends: Vec<_> = t
        .events()
        .into_iter()
        .filter(|e| e.summary.starts_with("INVITE"))
        .map(|e| e.at)
        .collect();
    // Nominally sent at 0, 1, 3, 7, 15, 31 (and maybe 63 ≈ Timer B at 64) × T1. Each gap is
    // at least the doubled interval (a late wake-up only makes it longer, never shorter);
    // a heavily loaded machine may fit one send fewer before Timer B.
    assert!((5..=7).contains(&sends.len()), "{} sends", sends.len());
    for (i, gap) in sends.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let nominal = t1 * 2u32.pow(i as u32);
        assert!(
            gap + Duration::from_millis(2) >= nominal,
            "gap {i} is {gap:?}, expected at least {nominal:?}"
        );
    }
    let mut buf = [0u8; 2048];
    let (n, _) = silent.recv_from(&mut buf).await.unwrap();
    assert!(Message::parse(&buf[..n]).unwrap().method() == Some("INVITE"));
}

/// A caller with fast timers (T1 20 ms, T2 80 ms) sending to a UDP socket that never answers.
async fn fast_caller_to_silence() -> (UdpSocket, Timeline, Caller) {
    let silent = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let mut cfg = EndpointConfig::udp(v4());
    cfg.timers = Timers {
        t1: Duration::from_millis(20),
        t2: Duration::from_millis(80),
        t4: Duration::from_millis(100),
    };
    let caller = Caller::new(
        cfg,
        CallerConfig::new(
            SipUri::parse("sip:bob@x").unwrap(),
            silent.local_addr().unwrap(),
        ),
        t.recorder("bob", Protocol::Sip),
        "void",
    )
    .await
    .unwrap();
    (silent, t, caller)
}

#[tokio::test]
async fn a_dropped_caller_stops_retransmitting_its_invite() {
    let (silent, _t, caller) = fast_caller_to_silence().await;
    let call = caller.invite("sip:alice@127.0.0.1").unwrap();
    let mut buf = [0u8; 4096];
    for _ in 0..2 {
        // The first send and one retransmission: the transaction is running.
        let (n, _) = tokio::time::timeout(D, silent.recv_from(&mut buf))
            .await
            .expect("INVITE sent")
            .unwrap();
        assert_eq!(Message::parse(&buf[..n]).unwrap().method(), Some("INVITE"));
    }
    drop(call);
    drop(caller);
    // Retransmissions would come 80, 160, 320 ms later; Timer B only after 64·T1 = 1.28 s.
    let late = tokio::time::timeout(Duration::from_millis(700), silent.recv_from(&mut buf)).await;
    assert!(
        late.is_err(),
        "a torn-down caller retransmitted: {}",
        String::from_utf8_lossy(&buf[..late.unwrap().unwrap().0])
    );
}

#[tokio::test]
async fn non_invite_retransmissions_cap_at_t2_until_timer_f() {
    let (_silent, t, caller) = fast_caller_to_silence().await;
    let err = caller.options("sip:alice@127.0.0.1", D).await.unwrap_err();
    assert!(
        matches!(err, SipError::TransactionTimeout { timer: 'F', .. }),
        "{err}"
    );
    let sends: Vec<_> = t
        .events()
        .into_iter()
        .filter(|e| e.summary.starts_with("OPTIONS"))
        .map(|e| e.at)
        .collect();
    // 0, 20, 60, 140, then every 80 ms until 1280: about 17 sends. Uncapped doubling would
    // give 7, so more than 10 shows the cap at T2; every gap is at least min(2^i·T1, T2).
    assert!(sends.len() > 10, "{} sends", sends.len());
    for (i, gap) in sends.windows(2).map(|w| w[1] - w[0]).enumerate() {
        let nominal =
            (Duration::from_millis(20) * 2u32.pow(i.min(8) as u32)).min(Duration::from_millis(80));
        assert!(
            gap + Duration::from_millis(2) >= nominal,
            "gap {i} is {gap:?}, expected at least {nominal:?}"
        );
    }
}

/// A scripted registrar on a raw socket: challenges once, checks the digest, answers with
/// Feature-Caps.
#[tokio::test]
async fn register_answers_a_digest_challenge_and_reads_feature_caps() {
    let registrar = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let mut pc = PhoneConfig::new(
        SipUri::parse("sip:alice@example.com").unwrap(),
        registrar.local_addr().unwrap(),
    );
    pc.credentials = Some(Credentials {
        username: "alice".into(),
        password: "secret".into(),
    });
    pc.push = Some(PushParams {
        provider: "apns.dev".into(),
        prid: "tok1:remote&tok2:voip".into(),
        param: Some("TEAM.org.example.app.remote&voip".into()),
    });
    pc.instance = Some("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>".into());
    pc.reg_id = Some(1);
    pc.pnsreg = true;
    let phone = PhoneAccount::start(
        EndpointConfig::udp(v4()),
        pc,
        t.recorder("alice", Protocol::Sip),
        "registrar",
    )
    .await
    .unwrap();
    let script = async {
        let mut buf = vec![0u8; 65536];
        let (n, from) = registrar.recv_from(&mut buf).await.unwrap();
        let first = Message::parse(&buf[..n]).unwrap();
        let mut r = crate::message::build_response(&first, 401, "Unauthorized", Some("srv"));
        r.push_header(
            "WWW-Authenticate",
            "Digest realm=\"example.com\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5",
        );
        r.set_header("Content-Length", "0");
        registrar.send_to(&r.to_bytes(), from).await.unwrap();
        let (n, from) = registrar.recv_from(&mut buf).await.unwrap();
        let second = Message::parse(&buf[..n]).unwrap();
        let auth = second.authorization().unwrap().unwrap();
        let expected = crate::auth::digest_response(
            "alice",
            "example.com",
            "secret",
            "REGISTER",
            auth.field("uri").unwrap(),
            "abc123",
            Some((
                auth.field("nc").unwrap(),
                auth.field("cnonce").unwrap(),
                "auth",
            )),
        );
        assert_eq!(auth.field("response"), Some(expected.as_str()));
        assert_eq!(second.cseq().unwrap().seq, first.cseq().unwrap().seq + 1);
        let mut ok = crate::message::build_response(&second, 200, "OK", Some("srv"));
        let contact = second.header("Contact").unwrap().to_owned();
        ok.push_header("Contact", format!("{contact};expires=600"));
        ok.push_header("Feature-Caps", "*;+sip.pns=\"apns\";+sip.pnsreg=\"121\"");
        ok.set_header("Content-Length", "0");
        registrar.send_to(&ok.to_bytes(), from).await.unwrap();
        second
    };
    let (reg, second) = tokio::join!(phone.register(D), script);
    let reg = reg.unwrap();
    assert_eq!(reg.pns.as_deref(), Some("apns"));
    assert_eq!(reg.expires, Some(600));
    assert_eq!(
        reg.response.feature_cap("+sip.pnsreg").as_deref(),
        Some("121")
    );
    let contacts = second.contacts().unwrap();
    let c = contacts[0].addr().unwrap();
    assert_eq!(
        c.param("+sip.instance"),
        Some("\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\"")
    );
    assert_eq!(c.param("reg-id"), Some("1"));
    assert_eq!(c.param("+sip.pnsreg"), Some(""));
    let voip = PushParams::from_uri(&c.uri).unwrap().apns_voip().unwrap();
    assert_eq!(voip.token, "tok2");
    assert!(voip.sandbox);
}

#[tokio::test]
async fn register_error_and_unregister_without_pn_prid() {
    let registrar = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let mut pc = PhoneConfig::new(
        SipUri::parse("sip:alice@example.com").unwrap(),
        registrar.local_addr().unwrap(),
    );
    pc.push = Some(PushParams::apns(
        "00fc13adff78512",
        "DEF123GHIJ",
        "com.example.app",
    ));
    let phone = PhoneAccount::start(
        EndpointConfig::udp(v4()),
        pc,
        t.recorder("alice", Protocol::Sip),
        "registrar",
    )
    .await
    .unwrap();
    let script = async {
        let mut buf = vec![0u8; 65536];
        let (n, from) = registrar.recv_from(&mut buf).await.unwrap();
        let req = Message::parse(&buf[..n]).unwrap();
        let mut r = crate::message::build_response(
            &req,
            555,
            "Push Notification Service Not Supported",
            Some("x"),
        );
        r.set_header("Content-Length", "0");
        registrar.send_to(&r.to_bytes(), from).await.unwrap();
        let (n, _) = registrar.recv_from(&mut buf).await.unwrap();
        Message::parse(&buf[..n]).unwrap()
    };
    let (first, unreg) = tokio::join!(
        async {
            let e = phone.register(D).await.unwrap_err();
            // Unregister is sent next; nobody answers it, so time out quickly.
            let _ = phone.unregister(Duration::from_millis(50)).await;
            e
        },
        script
    );
    assert_eq!(first.status(), Some(555));
    assert_eq!(unreg.expires().unwrap(), Some(0));
    let c = unreg.contacts().unwrap();
    let uri = &c[0].addr().unwrap().uri;
    assert!(uri.param("pn-prid").is_none());
    assert_eq!(uri.param("pn-provider"), Some("apns"));
}

#[tokio::test]
async fn garbage_on_a_stream_closes_it_and_the_phone_keeps_working() {
    use tokio::io::AsyncWriteExt;
    let p = pair(
        EndpointConfig::tcp(v4()),
        EndpointConfig::tcp(v4()),
        IncomingPolicy::Ring,
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(p.phone.endpoint().local_addr())
        .await
        .unwrap();
    s.write_all(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 999999999\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    use tokio::io::AsyncReadExt;
    let n = tokio::time::timeout(D, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the phone closes the connection");
    assert!(p.timeline.ladder().contains("malformed"));
    full_call(p).await;
}

/// Reads one SIP message from a stream.
async fn read_framed(s: &mut tokio::net::TcpStream) -> Message {
    use tokio::io::AsyncReadExt;
    let mut framer = StreamFramer::new(Limits::default());
    loop {
        if let Some(f) = framer.next().unwrap() {
            return f.message;
        }
        s.read_buf(framer.buffer()).await.unwrap();
    }
}

#[tokio::test]
async fn wake_on_a_new_connection_re_registers_from_a_new_port() {
    // The phone registers at a TCP "registrar" which is our own caller's endpoint acting as a
    // plain server: it answers REGISTER 405 by default, so use a scripted listener instead.
    let listener = tokio::net::TcpListener::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let pc = PhoneConfig::new(
        SipUri::parse("sip:alice@example.com").unwrap(),
        listener.local_addr().unwrap(),
    );
    let phone = PhoneAccount::start(
        EndpointConfig::tcp(v4()),
        pc,
        t.recorder("alice", Protocol::Sip),
        "registrar",
    )
    .await
    .unwrap();
    async fn answer_one(listener: &tokio::net::TcpListener) -> (SocketAddr, tokio::net::TcpStream) {
        use tokio::io::AsyncWriteExt;
        let (mut s, peer) = listener.accept().await.unwrap();
        let req = read_framed(&mut s).await;
        let mut ok = crate::message::build_response(&req, 200, "OK", Some("r"));
        ok.set_header("Content-Length", "0");
        s.write_all(&ok.to_bytes()).await.unwrap();
        (peer, s)
    }
    let (r1, (peer1, _s1)) = tokio::join!(phone.register(D), answer_one(&listener));
    r1.unwrap();
    let (r2, (peer2, _s2)) = tokio::join!(phone.wake(true, D), answer_one(&listener));
    r2.unwrap();
    assert_ne!(
        peer1.port(),
        peer2.port(),
        "a new connection from a new port"
    );
}

#[tokio::test]
async fn an_answer_whose_connection_is_gone_goes_to_the_via_address() {
    // A proxy sends the INVITE on a connection from an ephemeral port; the phone closes it
    // (a wake on a new connection) before answering: RFC 3261 §18.2.2 sends the 200 to the
    // Via's received IP and sent-by port, where the proxy listens, not to the dead port.
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind(v4()).await.unwrap();
    let lport = listener.local_addr().unwrap().port();
    let t = Timeline::new();
    let mut pc = PhoneConfig::new(
        SipUri::parse("sip:alice@example.com").unwrap(),
        listener.local_addr().unwrap(),
    );
    pc.policy = IncomingPolicy::Manual;
    let phone = PhoneAccount::start(
        EndpointConfig::tcp(v4()),
        pc,
        t.recorder("alice", Protocol::Sip),
        "proxy",
    )
    .await
    .unwrap();
    let invite = format!(
        "INVITE {} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:{lport};branch=z9hG4bKvia1822;received=127.0.0.1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\n\
         Call-ID: via-18-2-2@test\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.1:{lport};transport=tcp>\r\n\
         Content-Length: 0\r\n\r\n",
        phone.contact_uri()
    );
    let mut ephemeral = tokio::net::TcpStream::connect(phone.endpoint().local_addr())
        .await
        .unwrap();
    ephemeral.write_all(invite.as_bytes()).await.unwrap();
    let mut call = phone.next_call(D).await.unwrap();
    phone.endpoint().close_connections();
    drop(ephemeral);
    call.answer().unwrap();
    let (mut s, _) = tokio::time::timeout(D, listener.accept())
        .await
        .expect("the 200 comes to the Via address")
        .unwrap();
    let resp = tokio::time::timeout(D, read_framed(&mut s)).await.unwrap();
    assert_eq!(resp.status(), Some(200));
    assert_eq!(resp.call_id().unwrap(), "via-18-2-2@test");
}

#[tokio::test]
async fn message_and_options_reach_the_phone() {
    let p = pair(
        EndpointConfig::udp(v4()),
        EndpointConfig::udp(v4()),
        IncomingPolicy::Ring,
    )
    .await;
    let r = p
        .caller
        .message(&target(&p), "hello alice", D)
        .await
        .unwrap();
    assert_eq!(r.status(), Some(200));
    let m = p.phone.next_message(D).await.unwrap();
    assert_eq!(&m.body[..], b"hello alice");
    assert_eq!(m.header("Content-Type"), Some("text/plain"));
    let r = p.caller.options(&target(&p), D).await.unwrap();
    assert_eq!(r.status(), Some(200));
}

/// A scripted proxy forks the INVITE: two 2xx with different To-tags. Each gets its own ACK
/// (RFC 3261 §13.2.2.4), and a retransmitted 2xx is ACKed again.
#[tokio::test]
async fn forked_2xx_are_each_acked_and_retransmissions_re_acked() {
    let proxy = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let caller = Caller::new(
        EndpointConfig::udp(v4()),
        CallerConfig::new(
            SipUri::parse("sip:bob@x").unwrap(),
            proxy.local_addr().unwrap(),
        ),
        t.recorder("bob", Protocol::Sip),
        "proxy",
    )
    .await
    .unwrap();
    let mut call = caller.invite("sip:alice@example.com").unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = proxy.recv_from(&mut buf).await.unwrap();
    let invite = Message::parse(&buf[..n]).unwrap();
    let ok = |tag: &str| {
        let mut r = crate::message::build_response(&invite, 200, "OK", Some(tag));
        r.push_header(
            "Contact",
            format!("<sip:{tag}@{}>", proxy.local_addr().unwrap()),
        );
        r.set_header("Content-Length", "0");
        r.to_bytes()
    };
    let mut acks = Vec::new();
    for tag in ["fork1", "fork2", "fork1"] {
        proxy.send_to(&ok(tag), from).await.unwrap();
        let (n, _) = tokio::time::timeout(D, proxy.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let ack = Message::parse(&buf[..n]).unwrap();
        assert_eq!(ack.method(), Some("ACK"));
        acks.push(ack.to().unwrap().tag().unwrap().to_owned());
    }
    assert_eq!(acks, vec!["fork1", "fork2", "fork1"]);
    call.await_answered(D).await.unwrap();
    let second = call.await_answered(D).await.unwrap();
    assert_eq!(second.to().unwrap().tag(), Some("fork2"));
}

/// Over UDP the phone's 200 is retransmitted (T1, 2·T1, … capped at T2) until the ACK, and
/// stops once it arrives.
#[tokio::test]
async fn answer_is_retransmitted_until_the_ack() {
    let timeline = Timeline::new();
    let mut pc = PhoneConfig::new(
        SipUri::parse("sip:alice@example.com").unwrap(),
        "127.0.0.1:9".parse().unwrap(),
    );
    pc.policy = IncomingPolicy::AnswerAtOnce;
    let phone = PhoneAccount::start(
        EndpointConfig::udp(v4()).with_t1(Duration::from_millis(20)),
        pc,
        timeline.recorder("alice", Protocol::Sip),
        "bob",
    )
    .await
    .unwrap();
    let mut cc = CallerConfig::new(
        SipUri::parse("sip:bob@example.com").unwrap(),
        phone.endpoint().local_addr(),
    );
    cc.auto_ack = false;
    let caller = Caller::new(
        EndpointConfig::udp(v4()),
        cc,
        timeline.recorder("bob", Protocol::Sip),
        "alice",
    )
    .await
    .unwrap();
    let mut call = caller.invite(&phone.contact_uri().to_string()).unwrap();
    call.await_answered(D).await.unwrap();
    let oks = || {
        timeline
            .events()
            .iter()
            .filter(|e| e.party == "alice" && e.summary == "200 OK (INVITE)")
            .count()
    };
    // Wait (with a deadline) for at least two retransmissions.
    let deadline = tokio::time::Instant::now() + D;
    while oks() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no retransmission of the 200"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call.ack().unwrap();
    let mut incoming = phone.next_call(D).await.unwrap();
    incoming.await_ack(D).await.unwrap();
    let after_ack = oks();
    // T2 is 8·T1 = 160 ms here: 400 ms without a new 200 shows the retransmissions stopped.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        oks() <= after_ack + 1,
        "200 still retransmitted after the ACK"
    );
}

/// A retransmitted INVITE is answered from the server transaction (its last response) and is
/// not a second call.
#[tokio::test]
async fn a_retransmitted_invite_is_not_a_new_call() {
    let p = pair(
        EndpointConfig::udp(v4()),
        EndpointConfig::udp(v4()),
        IncomingPolicy::Ring,
    )
    .await;
    let raw = UdpSocket::bind(v4()).await.unwrap();
    let me = raw.local_addr().unwrap();
    let invite = format!(
        "INVITE {} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKretrans1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: <sip:alice@example.com>\r\nCall-ID: retrans-1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{me}>\r\nContent-Length: 0\r\n\r\n",
        target(&p)
    );
    let dest = p.phone.endpoint().local_addr();
    async fn recv(raw: &UdpSocket) -> u16 {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(D, raw.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        Message::parse(&buf[..n]).unwrap().status().unwrap()
    }
    raw.send_to(invite.as_bytes(), dest).await.unwrap();
    assert_eq!(recv(&raw).await, 100);
    assert_eq!(recv(&raw).await, 180);
    raw.send_to(invite.as_bytes(), dest).await.unwrap();
    assert_eq!(recv(&raw).await, 180);
    p.phone.next_call(D).await.unwrap();
    assert!(matches!(
        p.phone.next_call(Duration::from_millis(100)).await,
        Err(SipError::Timeout { .. })
    ));
}

/// A CANCEL that crosses the 200 is answered 200, no 487 is sent, and the call stays up
/// (RFC 3261 §9.2).
#[tokio::test]
async fn cancel_after_the_answer_changes_nothing() {
    let p = pair(
        EndpointConfig::udp(v4()),
        EndpointConfig::udp(v4()),
        IncomingPolicy::AnswerAtOnce,
    )
    .await;
    let mut call = p.caller.invite(&target(&p)).unwrap();
    call.await_answered(D).await.unwrap();
    let r = call.cancel(D).await.unwrap();
    assert_eq!(r.status(), Some(200));
    assert!(matches!(
        call.await_status(487, Duration::from_millis(200)).await,
        Err(SipError::Timeout { .. })
    ));
    let bye = call.bye(D).await.unwrap();
    assert_eq!(bye.status(), Some(200));
    assert!(!p.timeline.ladder().contains("487"));
}

/// A peer that answers with bytes that are not SIP: the step that waited gets the parse error
/// and the offending bytes, not a bare timeout.
#[tokio::test]
async fn a_malformed_answer_is_reported_with_its_bytes() {
    let peer = UdpSocket::bind(v4()).await.unwrap();
    let t = Timeline::new();
    let caller = Caller::new(
        EndpointConfig::udp(v4()),
        CallerConfig::new(
            SipUri::parse("sip:bob@x").unwrap(),
            peer.local_addr().unwrap(),
        ),
        t.recorder("bob", Protocol::Sip),
        "gateway",
    )
    .await
    .unwrap();
    let mut call = caller.invite("sip:alice@127.0.0.1").unwrap();
    let mut buf = vec![0u8; 65536];
    let (_, from) = peer.recv_from(&mut buf).await.unwrap();
    let garbage = b"SIP/2.0 180 Ringing\r\nContent-Length: 50\r\n\r\nshort";
    peer.send_to(garbage, from).await.unwrap();
    match call.await_status(180, Duration::from_millis(300)).await {
        Err(SipError::Malformed { error, bytes, .. }) => {
            assert_eq!(
                error,
                ParseError::TruncatedBody {
                    declared: 50,
                    available: 5
                }
            );
            assert_eq!(&bytes[..], &garbage[..]);
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert!(t.ladder().contains("malformed: Content-Length 50"));
}
