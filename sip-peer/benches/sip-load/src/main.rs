//! sip-load: load driver for sip-peer, run by `scripts/bench-sip.sh` (release build).
//!
//! `sip-load calls --rate R --seconds S`: one PhoneAccount (policy: 180 then 200 at once) and one
//! Caller on loopback UDP, in this process; calls start at R per second for S seconds, each
//! INVITE → 100/180/200 → ACK → BYE → 200. Prints one line of `key=value`: target rate,
//! calls started, completed, failed, achieved calls/s, setup latency p50/p99.
//!
//! `sip-load idle-accounts --count N --registrar HOST:PORT`: starts N PhoneAccounts, each on its
//! own UDP socket, registers each at the registrar (a SIPp UAS answering 200), waits until all
//! are registered, then prints the resident memory before and after and the difference per account.

use anyhow::{bail, Context, Result};
use sip_peer::{
    Caller, CallerConfig, EndpointConfig, IncomingPolicy, PhoneAccount, PhoneConfig, PushParams,
    SipUri,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timeline::{Protocol, Recorder};

const CALL_DEADLINE: Duration = Duration::from_secs(10);

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|_| anyhow::anyhow!("bad value for {name}")),
        None => default.with_context(|| format!("missing {name}")),
    }
}

fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

fn udp_any() -> EndpointConfig {
    EndpointConfig::udp("127.0.0.1:0".parse().expect("addr"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("calls") => calls(arg(&args, "--rate", None)?, arg(&args, "--seconds", Some(5))?).await,
        Some("idle-accounts") => {
            idle_accounts(arg(&args, "--count", Some(10_000))?, arg(&args, "--registrar", None)?).await
        }
        _ => bail!("usage: sip-load calls --rate R [--seconds S] | idle-accounts [--count N] --registrar HOST:PORT"),
    }
}

async fn calls(rate: u64, seconds: u64) -> Result<()> {
    let unused_registrar: SocketAddr = "127.0.0.1:9".parse()?;
    let mut phone_cfg = PhoneConfig::new(SipUri::parse("sip:bob@127.0.0.1")?, unused_registrar);
    phone_cfg.policy = IncomingPolicy::RingThenAnswer(Duration::ZERO);
    phone_cfg.call_queue = 100_000;
    let phone = PhoneAccount::start(
        udp_any(),
        phone_cfg,
        Recorder::off("phone", Protocol::Sip),
        "caller",
    )
    .await?;
    let phone_addr = phone.endpoint().local_addr();
    let caller = Caller::new(
        udp_any(),
        CallerConfig::new(SipUri::parse("sip:alice@127.0.0.1")?, phone_addr),
        Recorder::off("caller", Protocol::Sip),
        "phone",
    )
    .await?;
    let target = format!("sip:bob@{phone_addr}");

    // the phone side: every incoming call waits for its ACK and BYE, as a handset would
    let phone = Arc::new(phone);
    let callee_failures = Arc::new(AtomicU64::new(0));
    {
        let phone = phone.clone();
        let failures = callee_failures.clone();
        tokio::spawn(async move {
            while let Ok(mut call) = phone.next_call(Duration::from_secs(3600)).await {
                let failures = failures.clone();
                tokio::spawn(async move {
                    let result = match call.await_ack(CALL_DEADLINE).await {
                        Ok(_) => call.await_bye(CALL_DEADLINE).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        if failures.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first callee failure: {e}");
                        }
                    }
                });
            }
        });
    }

    let total = rate * seconds;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    for i in 0..total {
        // open-loop arrivals: call i starts at i/rate, whatever happened to the earlier ones
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let caller = caller.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut call = caller.invite(&target)?;
            call.await_answered(CALL_DEADLINE).await?;
            let setup = t0.elapsed();
            let bye = call.bye(CALL_DEADLINE).await?;
            anyhow::ensure!(bye.status() == Some(200), "BYE answered {}", bye.summary());
            Ok::<Duration, anyhow::Error>(setup)
        }));
    }
    let launched_in = started.elapsed();
    let mut setups = Vec::with_capacity(tasks.len());
    let mut failed = 0u64;
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(d) => setups.push(d),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let elapsed = started.elapsed();
    // let the callee tasks see their BYEs
    tokio::time::sleep(Duration::from_millis(200)).await;
    setups.sort();
    let pct = |p: f64| -> f64 {
        if setups.is_empty() {
            return f64::NAN;
        }
        let i = ((setups.len() - 1) as f64 * p).round() as usize;
        setups[i].as_secs_f64() * 1000.0
    };
    let completed = setups.len() as u64;
    // completed calls per second of wall time, first INVITE to last BYE's 200: a side that falls
    // behind stretches it (scripts/bench-sip.sh measures SIPp the same way)
    println!(
        "impl=sip-peer rate={rate} started={total} completed={completed} failed={failed} callee_failed={} achieved_cps={:.0} launch_s={:.2} total_s={:.2} setup_p50_ms={:.2} setup_p99_ms={:.2}{}",
        callee_failures.load(Ordering::Relaxed),
        completed as f64 / elapsed.as_secs_f64(),
        launched_in.as_secs_f64(),
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        first_error.map(|e| format!(" first_error={e:?}")).unwrap_or_default(),
    );
    Ok(())
}

async fn idle_accounts(count: usize, registrar: SocketAddr) -> Result<()> {
    // warm the runtime and allocator with one account first, so the baseline is not the
    // runtime's own start-up
    let before = {
        let warm = start_account(0, registrar).await?;
        warm.register(Duration::from_secs(10)).await?;
        drop(warm);
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss_kib()?
    };
    let t0 = Instant::now();
    let mut accounts = Vec::with_capacity(count);
    for i in 1..=count {
        accounts.push(start_account(i, registrar).await?);
    }
    // register in waves: the registrar is a single SIPp process
    let registered = Arc::new(AtomicU64::new(0));
    for wave in accounts.chunks(500) {
        let results =
            futures::future::join_all(wave.iter().map(|a| a.register(Duration::from_secs(30))))
                .await;
        for r in results {
            r?;
            registered.fetch_add(1, Ordering::Relaxed);
        }
    }
    let setup_s = t0.elapsed().as_secs_f64();
    // idle: nothing to do but keep the bindings; give background tasks time to settle
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib()?;
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
    println!(
        "impl=sip-peer accounts={count} registered={} rss_before_kib={before} rss_after_kib={after} bytes_per_account={per:.0} setup_s={setup_s:.1}",
        registered.load(Ordering::Relaxed)
    );
    drop(accounts);
    Ok(())
}

async fn start_account(i: usize, registrar: SocketAddr) -> Result<PhoneAccount> {
    let mut cfg = PhoneConfig::new(SipUri::parse(&format!("sip:user{i}@127.0.0.1"))?, registrar);
    cfg.push = Some(PushParams::apns(
        &format!("{i:064x}"),
        "ABCD123456",
        "org.pushbench.phone",
    ));
    cfg.instance = Some(format!("<urn:uuid:00000000-0000-1000-8000-{i:012x}>"));
    cfg.reg_id = Some(1);
    cfg.expires = 3600;
    Ok(PhoneAccount::start(
        udp_any(),
        cfg,
        Recorder::off("phone", Protocol::Sip),
        "registrar",
    )
    .await?)
}
