//! Benchmark (not a test): the wake chain through the reference gateway on loopback, timed.
//! `cargo bench -p ref-gateway --bench wake_chain [-- N] [tls]` (N sequential calls, default 200,
//! the phone on TCP or TLS, then N/4 calls to N/4 sleeping phones at once). Prints percentiles; asserts nothing about speed.
//!
//! Per call: Bob's INVITE → the VoIP push at mock-apns → the phone wakes on a new TCP connection
//! and REGISTERs → the INVITE reaches it → 200 → ACK → BYE.

use sip_peer::Transport;
use std::time::{Duration, Instant};
use testkit::gateway::*;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn show(name: &str, v: &mut [Duration]) {
    println!(
        "{name:<28} p50 {:>8.2?}  p95 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        pct(v, 0.50),
        pct(v, 0.95),
        pct(v, 0.99),
        pct(v, 1.0)
    );
}

async fn one_call(
    b: &Bench,
    bob: &sip_peer::Caller,
    alice: &sip_peer::PhoneAccount,
    tok: &str,
) -> (Duration, Duration, Duration) {
    let t0 = Instant::now();
    let mut call = bob.invite(&Bench::aor("alice").to_string()).unwrap();
    b.apns
        .next_push_for(tok, Duration::from_secs(5))
        .await
        .expect("push");
    let to_push = t0.elapsed();
    alice
        .wake(true, Duration::from_secs(5))
        .await
        .expect("REGISTER");
    let t1 = Instant::now();
    let mut incoming = alice
        .next_call(Duration::from_secs(5))
        .await
        .expect("INVITE");
    let reg_to_invite = t1.elapsed();
    incoming.answer().unwrap();
    call.await_answered(Duration::from_secs(5)).await.unwrap();
    call.bye(Duration::from_secs(5)).await.unwrap();
    Bench::sleep(alice);
    (to_push, reg_to_invite, t0.elapsed())
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let transport = if std::env::args().any(|a| a == "tls") {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let b = Bench::start().await;
        let tok = token();
        b.voip_device(&tok);
        let alice = b.phone("alice", transport, Some(&tok)).await;
        alice.register(Duration::from_secs(2)).await.unwrap();
        Bench::sleep(&alice);
        let bob = b.caller(Transport::Udp).await;
        let (mut push, mut reg, mut total) = (Vec::new(), Vec::new(), Vec::new());
        let started = Instant::now();
        for _ in 0..n {
            let (p, r, t) = one_call(&b, &bob, &alice, &tok).await;
            push.push(p);
            reg.push(r);
            total.push(t);
        }
        let wall = started.elapsed();
        println!(
            "{n} sequential wake chains ({} phone on a new connection each time, UDP caller) in {wall:.2?}",
            transport.as_str()
        );
        show("INVITE sent -> push at APNs", &mut push);
        show("REGISTER 2xx -> INVITE", &mut reg);
        show("whole call (to BYE 200)", &mut total);

        let m = (n / 4).max(1);
        let mut phones = Vec::new();
        for i in 0..m {
            let t = token();
            b.voip_device(&t);
            let user = format!("p{i}");
            let p = b.phone(&user, transport, Some(&t)).await;
            p.register(Duration::from_secs(2)).await.unwrap();
            Bench::sleep(&p);
            phones.push((user, p, t));
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        let b = std::sync::Arc::new(b);
        for (user, p, t) in phones {
            let b = b.clone();
            let bob = bob.clone();
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let mut call = bob.invite(&Bench::aor(&user).to_string()).unwrap();
                b.apns
                    .next_push_for(&t, Duration::from_secs(10))
                    .await
                    .expect("push");
                p.wake(true, Duration::from_secs(10))
                    .await
                    .expect("REGISTER");
                let Ok(mut inc) = p.next_call(Duration::from_secs(3)).await else {
                    // The bucket timer (1 s here) fired before this phone's REGISTER.
                    let fin = call.await_final(Duration::from_secs(10)).await;
                    return Err(fin.ok().and_then(|m| m.status()));
                };
                inc.answer().unwrap();
                call.await_answered(Duration::from_secs(10)).await.unwrap();
                call.bye(Duration::from_secs(10)).await.unwrap();
                Ok(t0.elapsed())
            }));
        }
        let mut each = Vec::new();
        let mut missed = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(d) => each.push(d),
                Err(status) => missed.push(status),
            }
        }
        println!(
            "{m} parallel wake chains ({m} sleeping phones called at once) in {:.2?}; {} completed, {} ended by the 1 s bucket timer before the REGISTER ({} of them answered 480)",
            started.elapsed(),
            each.len(),
            missed.len(),
            missed.iter().filter(|s| **s == Some(480)).count()
        );
        if !each.is_empty() {
            show("whole call (to BYE 200)", &mut each);
        }
    });
}
