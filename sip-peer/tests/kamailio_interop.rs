//! sip-peer against Kamailio 5.6 as registrar and proxy, with the config kept in
//! `tests/kamailio/proxy.cfg`, started on loopback by each test in its own temp dir:
//! - the config itself, validated with SIPp (UDP, TCP, digest REGISTER), so a failure below is ours;
//! - our phone REGISTERs with RFC 8599 `pn-*` params, our caller calls it through Kamailio, the
//!   call is set up and torn down: over UDP, with digest auth (401 REGISTER, 407 INVITE), over
//!   TCP, and over TLS (the phone and the caller trust the test's CA).

use sip_peer::{
    Caller, CallerConfig, Credentials, EndpointConfig, IncomingPolicy, PhoneAccount, PhoneConfig,
    PushParams, SipUri, TlsConfig,
};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use testkit::free_port;
use testkit::kamailio::{Kamailio, KamailioConfig, KAMAILIO_PASSWORD};
use testkit::sipp::{Sipp, SippConfig};
use timeline::{Protocol, Timeline};

const STEP: Duration = Duration::from_secs(5);
const SIPP_EXIT: Duration = Duration::from_secs(15);
const TOKEN: &str = "00fc13adff78512cafe0000000000000000000000000000000000000000beef";

async fn with_ladder<F, T>(timeline: &Timeline, kamailio: &Kamailio, body: F) -> T
where
    F: Future<Output = anyhow::Result<T>>,
{
    match tokio::time::timeout(Duration::from_secs(30), body).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => panic!(
            "{e:#}\n{}\n--- kamailio log\n{}",
            timeline.ladder(),
            kamailio.log()
        ),
        Err(_) => panic!(
            "test body did not finish within 30 s\n{}\n--- kamailio log\n{}",
            timeline.ladder(),
            kamailio.log()
        ),
    }
}

// ---- the config, validated with SIPp -------------------------------------------------------------

/// SIPp registers a Contact pointing at a SIPp UAS, then a SIPp UAC calls the AoR through Kamailio.
fn sipp_call_through(kamailio: &Kamailio, transport: &str) {
    let uas_port = free_port();
    let uas = Sipp::start(SippConfig::new("uas_answer.xml", transport, uas_port));
    let proxy = format!("127.0.0.1:{}", kamailio.port);
    let mut reg = SippConfig::new("uac_register.xml", transport, free_port());
    reg.remote = Some(proxy.clone());
    reg.extra = vec![
        "-ap".into(),
        KAMAILIO_PASSWORD.into(),
        "-set".into(),
        "contact_hostport".into(),
        format!("127.0.0.1:{uas_port}"),
    ];
    Sipp::start(reg).expect_success(SIPP_EXIT);
    let mut call = SippConfig::new("uac_call.xml", transport, free_port());
    call.remote = Some(proxy);
    Sipp::start(call).expect_success(SIPP_EXIT);
    uas.expect_success(SIPP_EXIT);
}

#[test]
fn kamailio_config_routes_a_sipp_call_over_udp() {
    let k = Kamailio::start(KamailioConfig {
        udp: true,
        ..Default::default()
    });
    sipp_call_through(&k, "u1");
}

#[test]
fn kamailio_config_routes_a_sipp_call_over_tcp() {
    let k = Kamailio::start(KamailioConfig {
        tcp: true,
        ..Default::default()
    });
    sipp_call_through(&k, "t1");
}

#[test]
fn kamailio_config_challenges_and_accepts_a_sipp_register() {
    let k = Kamailio::start(KamailioConfig {
        udp: true,
        register_auth: true,
        ..Default::default()
    });
    sipp_call_through(&k, "u1");
    // a wrong password must fail: the challenge is real
    let mut reg = SippConfig::new("uac_register.xml", "u1", free_port());
    reg.remote = Some(format!("127.0.0.1:{}", k.port));
    reg.timeout = Duration::from_secs(3);
    reg.extra = vec![
        "-ap".into(),
        "wrong".into(),
        "-set".into(),
        "contact_hostport".into(),
        "127.0.0.1:9".into(),
    ];
    let sipp = Sipp::start(reg);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sipp.expect_success(SIPP_EXIT)
    }));
    assert!(
        result.is_err(),
        "Kamailio accepted a REGISTER with a wrong password"
    );
}

// ---- our phone and our caller through Kamailio ---------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Udp,
    Tcp,
    Tls,
}

struct Case {
    via: Via,
    auth: bool,
    /// After the first call, wake the phone on a new connection and call it again.
    wake: bool,
}

fn endpoint(via: Via, kamailio: &Kamailio) -> EndpointConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let cfg = match via {
        Via::Udp => EndpointConfig::udp(any),
        Via::Tcp => EndpointConfig::tcp(any),
        Via::Tls => EndpointConfig::tls(
            any,
            TlsConfig::client_trusting(kamailio.ca_pem.as_bytes(), "localhost")
                .expect("client TLS config"),
        ),
    };
    cfg.with_t1(Duration::from_millis(100))
}

async fn call_through_kamailio(case: Case) {
    let kamailio = Kamailio::start(KamailioConfig {
        udp: case.via == Via::Udp,
        tcp: case.via == Via::Tcp,
        tls: case.via == Via::Tls,
        register_auth: case.auth,
        invite_auth: case.auth,
        // over TLS the phone is reached on its own connection, as an iPhone is (it has no listener
        // anyone could connect to)
        received_routing: case.via == Via::Tls,
    });
    let proxy: SocketAddr = format!(
        "127.0.0.1:{}",
        if case.via == Via::Tls {
            kamailio.tls_port
        } else {
            kamailio.port
        }
    )
    .parse()
    .unwrap();
    let timeline = Timeline::new();
    with_ladder(&timeline, &kamailio, async {
        let aor = SipUri::parse("sip:bob@127.0.0.1")?;
        let mut cfg = PhoneConfig::new(aor, proxy);
        cfg.push = Some(PushParams::apns(TOKEN, "ABCD123456", "org.pushbench.phone"));
        cfg.instance = Some("<urn:uuid:00000000-0000-1000-8000-00fcc0ffee01>".into());
        cfg.reg_id = Some(1);
        cfg.expires = 600;
        cfg.policy = IncomingPolicy::RingThenAnswer(Duration::from_millis(50));
        if case.auth {
            cfg.credentials = Some(Credentials {
                username: "bob".into(),
                password: KAMAILIO_PASSWORD.into(),
            });
        }
        let phone = PhoneAccount::start(
            endpoint(case.via, &kamailio),
            cfg,
            timeline.recorder("phone", Protocol::Sip),
            "kamailio",
        )
        .await?;
        let reg = phone.register(STEP).await?;
        anyhow::ensure!(
            reg.expires == Some(600),
            "granted expires {:?}",
            reg.expires
        );
        // Kamailio lists the binding it stored: pn-* came through untouched
        let bound = reg.response.contacts()?;
        let pn = bound
            .iter()
            .filter_map(|c| c.addr())
            .find_map(|a| PushParams::from_uri(&a.uri))
            .ok_or_else(|| anyhow::anyhow!("no pn-* in the 2xx Contact"))?;
        anyhow::ensure!(pn.prid == TOKEN && pn.provider == "apns", "stored {pn:?}");
        if case.auth {
            let challenged = timeline
                .events()
                .iter()
                .any(|e| e.party == "phone" && e.summary.starts_with("401"));
            anyhow::ensure!(challenged, "the REGISTER was not challenged");
        }

        let mut caller_cfg = CallerConfig::new(SipUri::parse("sip:alice@127.0.0.1")?, proxy);
        if case.auth {
            caller_cfg.credentials = Some(Credentials {
                username: "alice".into(),
                password: KAMAILIO_PASSWORD.into(),
            });
        }
        let caller = Caller::new(
            endpoint(case.via, &kamailio),
            caller_cfg,
            timeline.recorder("caller", Protocol::Sip),
            "kamailio",
        )
        .await?;
        let target = format!("sip:bob@127.0.0.1:{}", proxy.port());
        one_call(&caller, &phone, &target).await?;
        if case.wake {
            // the iPhone wakes on a push: new connection, new REGISTER; the next call must come
            // down that new connection (the phone has no listener Kamailio could connect to)
            phone.wake(true, STEP).await?;
            anyhow::ensure!(
                phone.endpoint().connection_count() == 1,
                "not exactly one connection after the wake"
            );
            one_call(&caller, &phone, &target).await?;
        }
        if case.auth {
            let challenged = timeline
                .events()
                .iter()
                .any(|e| e.party == "caller" && e.summary.starts_with("407"));
            anyhow::ensure!(challenged, "the INVITE was not challenged");
        }
        // the phone unregisters cleanly
        phone.unregister(STEP).await?;
        Ok(())
    })
    .await;
}

/// One call from `caller` to `target` through Kamailio, answered by `phone`, torn down by BYE.
async fn one_call(caller: &Caller, phone: &PhoneAccount, target: &str) -> anyhow::Result<()> {
    let mut call = caller.invite(target)?;
    // the caller answers a 407 while its script awaits a step, so await the 180 first
    call.await_status(180, STEP).await?;
    let mut incoming = phone.next_call(STEP).await?;
    // Kamailio rewrote the Request-URI to the registered Contact, pn-* included
    let ruri = SipUri::parse(incoming.request().request_uri().unwrap_or(""))?;
    let pushed = PushParams::from_uri(&ruri)
        .ok_or_else(|| anyhow::anyhow!("INVITE R-URI without pn-*: {ruri}"))?;
    anyhow::ensure!(
        pushed.apns_voip()?.token == TOKEN,
        "wrong token in the R-URI"
    );
    anyhow::ensure!(
        !incoming.request().record_routes()?.is_empty(),
        "Kamailio did not Record-Route the INVITE"
    );
    call.await_answered(STEP).await?;
    incoming.await_ack(STEP).await?;
    let bye = call.bye(STEP).await?;
    anyhow::ensure!(bye.status() == Some(200), "BYE answered {}", bye.summary());
    incoming.await_bye(STEP).await?;
    Ok(())
}

#[tokio::test]
async fn phone_registers_with_pn_params_and_caller_calls_it_through_kamailio_udp() {
    call_through_kamailio(Case {
        via: Via::Udp,
        auth: false,
        wake: false,
    })
    .await;
}

#[tokio::test]
async fn digest_auth_register_401_and_invite_407_through_kamailio() {
    call_through_kamailio(Case {
        via: Via::Udp,
        auth: true,
        wake: false,
    })
    .await;
}

#[tokio::test]
async fn phone_and_caller_through_kamailio_over_tcp() {
    call_through_kamailio(Case {
        via: Via::Tcp,
        auth: false,
        wake: false,
    })
    .await;
}

#[tokio::test]
async fn phone_and_caller_through_kamailio_over_tls() {
    call_through_kamailio(Case {
        via: Via::Tls,
        auth: false,
        wake: false,
    })
    .await;
}

#[tokio::test]
async fn phone_woken_on_a_new_tls_connection_gets_the_next_call_through_kamailio() {
    call_through_kamailio(Case {
        via: Via::Tls,
        auth: false,
        wake: true,
    })
    .await;
}
