//! `pushbench load`: how many sleeping phones a push gateway can wake, how fast, and where it
//! breaks.
//!
//! A run registers N simulated iPhones ([`phones`]), each with its own token, puts them to sleep
//! (a share may stay awake), and places calls at a rate for a duration ([`plan`]: fixed or
//! Poisson arrivals, an optional mix of cancelled calls, dead tokens and phones in flight mode).
//! Each call is followed end to end ([`calls`]) and ends in one outcome; its stage latencies go
//! into HDR histograms ([`stats`]). A status line appears each second ([`status`]); at the end
//! the percentiles, throughput, outcomes and the bench's own CPU time are printed and written as
//! JSON and HTML ([`report`]). `--find-knee` steps the rate up until a step is not clean and
//! reports the highest clean rate.
//!
//! Everything is on loopback: the mock APNs, the embedded gateway (or the target's listeners,
//! which must be loopback addresses), the caller and the phones. Every loop is bounded in count
//! (at most [`plan::MAX_CALLS`] calls a step, `--knee-steps` steps) and in time (each call has
//! its deadline; a step waits at most that deadline after its last call).

pub mod calls;
pub mod gateway;
pub mod phones;
pub mod plan;
pub mod report;
pub mod stats;
pub mod status;

use crate::parties::apns::shared_apns;
use crate::parties::next_scenario_number;
use crate::parties::sip::gateway::{listener, loopback_for, start_embedded, GatewayAddrs};
use crate::runner::{self, RunError, RunOptions};
use crate::scenario::GatewayFaults;
use crate::target::{Environment, Target, TargetKind};
use calls::{run_call, CallContext};
use mock_apns::MockApns;
use phones::{PhonePool, PoolSpec};
use plan::{schedule, CallKind, LoadOptions};
use report::{Knee, LoadReport, StepReport};
use sip_peer::{Caller, CallerConfig, EndpointConfig, SipUri};
use stats::cpu_time;
use status::{status_line, Live, Previous};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timeline::{lock, Protocol, Recorder, Timeline};

/// How much the rate grows from one `--find-knee` step to the next.
const KNEE_FACTOR: f64 = 1.5;

/// Why a load run could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// The target file.
    #[error(transparent)]
    Target(#[from] RunError),
    /// A party did not start (the mock APNs, the embedded gateway, the caller).
    #[error("{what}: {reason}")]
    Party {
        /// Which.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The phones could not be set up.
    #[error(transparent)]
    Phones(Box<phones::PoolError>),
    /// Load traffic goes to loopback only.
    #[error("{0} is not a loopback address: load traffic goes to loopback only")]
    NotLoopback(SocketAddr),
    /// A report could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn party(what: &'static str) -> impl Fn(String) -> LoadError {
    move |reason| LoadError::Party { what, reason }
}

/// Runs `pushbench load` on a runtime of its own; prints as it goes.
pub fn run_blocking(opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| party("the runtime")(e.to_string()))?;
    rt.block_on(run(opts))
}

/// 0 when the run (or, with `--find-knee`, the search) found what it looked for, 1 when a step
/// had failures (or no rate was clean), 2 when nothing could run.
pub fn exit_code(opts: &LoadOptions, r: &Result<LoadReport, LoadError>) -> u8 {
    match r {
        Err(_) => 2,
        Ok(report) if opts.find_knee => {
            u8::from(report.knee.as_ref().and_then(|k| k.rate).is_none())
        }
        Ok(report) => u8::from(
            report
                .steps
                .iter()
                .any(|s| s.failures > 0 || s.finished < s.offered),
        ),
    }
}

/// Runs `pushbench load`.
pub async fn run(opts: &LoadOptions) -> Result<LoadReport, LoadError> {
    if let Some(p) = opts.problem() {
        return Err(LoadError::Usage(p));
    }
    raise_fd_limit();
    let (target, dir) = runner::load_target(&RunOptions {
        target: opts.target.clone(),
        embedded_cancel: opts.embedded_cancel,
        ..RunOptions::default()
    })?;
    if target.sip.is_none() {
        return Err(LoadError::Usage("the target has no [sip] section".into()));
    }
    gateway::credentials(&target).map_err(|e| party("the target's gateway")(e.to_string()))?;
    // the mock APNs first: a busy address stops the run before any gateway starts
    let apns = shared_apns(&target)
        .await
        .map_err(|e| party("the mock APNs")(e.to_string()))?;
    let started = gateway::start(&target, &dir)
        .await
        .map_err(|e| party("the target's gateway")(e.to_string()))?;
    let result = run_on(opts, &target, apns).await;
    started.stop(&target).await;
    result
}

/// The run once the target's gateway is up.
async fn run_on(
    opts: &LoadOptions,
    target: &Target,
    apns: Arc<MockApns>,
) -> Result<LoadReport, LoadError> {
    let sip = target
        .sip
        .clone()
        .ok_or_else(|| LoadError::Usage("the target has no [sip] section".into()))?;
    let embedded = target.kind == TargetKind::EmbeddedReference;
    let (gateway, addrs) = if embedded {
        let (gw, addrs) = start_embedded(target, &GatewayFaults::default(), &apns, &sip.domain)
            .await
            .map_err(|e| party("the reference gateway")(e.to_string()))?;
        (Some(gw), addrs)
    } else {
        let l = |k: &str, v: &Option<String>| {
            listener(k, v).map_err(|e| party("the target's listeners")(e.to_string()))
        };
        let addrs = GatewayAddrs {
            udp: l("sip.udp", &sip.udp)?,
            tcp: l("sip.tcp", &sip.tcp)?,
            tls: None,
            tls_ca: None,
        };
        (None, addrs)
    };
    if let Some(a) = [addrs.udp, addrs.tcp]
        .into_iter()
        .flatten()
        .find(|a| !a.ip().is_loopback())
    {
        return Err(LoadError::NotLoopback(a));
    }
    let creds = apns.credentials();
    let awake = (opts.phones as f64 * opts.awake_share).round() as usize;
    let timeline = Timeline::new();
    let setup = Instant::now();
    say(&format!(
        "pushbench load: registering {} phones ({awake} awake) at {} …\n",
        opts.phones, target.name
    ));
    let pool = PhonePool::start(
        PoolSpec {
            count: opts.phones,
            awake,
            domain: &sip.domain,
            prefix: format!("load{}", next_scenario_number()),
            addrs: &addrs,
            team: creds.team_id(),
            bundle: creds.bundle_id(),
            // the embedded gateway picks the environment from pn-provider (apns: production)
            environment: if embedded {
                Environment::Production
            } else {
                target.apns.environment
            },
            wake_delay: Duration::from_millis(opts.wake_ms),
            payload: target.apns.payload_contract(),
            unrestricted_voip: target.apns.unrestricted_voip(),
        },
        &apns,
        &timeline,
    )
    .await
    .map_err(|e| LoadError::Phones(Box::new(e)))?;
    let ctx = CallContext {
        caller: caller(&addrs, &sip.domain).await?,
        apns: apns.clone(),
        cancel: target.profile.cancel,
        deadline: opts.call_deadline(),
        wake_delay: Duration::from_millis(opts.wake_ms),
    };
    let mut report = LoadReport::new(opts, &target.name, target.profile.cancel.as_str(), awake);
    report.setup_s = setup.elapsed().as_secs_f64();
    let pool = Arc::new(pool);
    let bound = Duration::from_millis(opts.knee_p99_ms);
    let steps = if opts.find_knee {
        opts.knee_steps.max(1)
    } else {
        1
    };
    let mut rate = opts.rate;
    let mut knee: Option<f64> = None;
    let mut stopped = format!("{steps} steps done without a step that was not clean");
    for i in 0..steps {
        let step = run_step(
            opts,
            &ctx,
            &pool,
            rate,
            opts.seed.wrapping_add(u64::from(i)),
            bound,
        )
        .await;
        say(&step.text());
        let clean = step.clean;
        report.steps.push(step);
        if !opts.find_knee {
            break;
        }
        if !clean {
            stopped = format!("the step at {rate:.1} calls/s was not clean");
            break;
        }
        knee = Some(rate);
        rate *= KNEE_FACTOR;
    }
    if opts.find_knee {
        say(&format!(
            "knee: {}\n",
            knee.map(|r| format!(
                "{r:.1} calls/s (failures ≤ 0.1 %, push p99 ≤ {} ms)",
                opts.knee_p99_ms
            ))
            .unwrap_or_else(|| "no clean rate".into())
        ));
        report.knee = Some(Knee {
            rate: knee,
            push_p99_bound_ms: opts.knee_p99_ms as f64,
            stopped,
        });
    }
    drop(ctx);
    drop(pool);
    if let Some(gw) = gateway {
        gw.shutdown().await;
    }
    write_reports(opts, &report)?;
    Ok(report)
}

/// One step at `rate`: places the schedule's calls, prints the status line each second, waits
/// for every call to end (at most its deadline after the last one started).
async fn run_step(
    opts: &LoadOptions,
    ctx: &CallContext,
    pool: &Arc<PhonePool>,
    rate: f64,
    seed: u64,
    bound: Duration,
) -> StepReport {
    let plan = schedule(opts, rate, seed);
    let live = Arc::new(Live::default());
    let t0 = Instant::now();
    let cpu0 = cpu_time();
    let printer = (!opts.quiet).then(|| {
        let live = live.clone();
        tokio::spawn(async move {
            let mut prev = Previous::default();
            let mut tick = tokio::time::interval_at(
                (t0 + Duration::from_secs(1)).into(),
                Duration::from_secs(1),
            );
            loop {
                tick.tick().await;
                let (line, p) = status_line(&live, t0.elapsed(), prev);
                prev = p;
                say(&format!("{line}\n"));
            }
        })
    });
    let mut tasks = Vec::with_capacity(plan.len());
    for call in plan {
        tokio::time::sleep_until((t0 + call.at).into()).await;
        live.offered.fetch_add(1, Ordering::Relaxed);
        let offset = call.at;
        let Some((index, phone)) = pool.take(call.kind != CallKind::Plain) else {
            // every phone is in a call: the bench, not the gateway, is short
            lock(&live.stats).count(stats::Outcome::Other);
            continue;
        };
        let (ctx, live, pool) = (ctx.clone(), live.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            let rec = run_call(&ctx, &phone, call.kind).await;
            rec.record(offset, &mut lock(&live.stats));
            pool.give_back(index);
        }));
    }
    // every call ends by its own deadline; BYE, cancel watch and repair add a few seconds
    let grace = opts.call_deadline() + Duration::from_secs(15);
    let wait_all = futures::future::join_all(tasks.iter_mut());
    if tokio::time::timeout(grace, wait_all).await.is_err() {
        let stuck = tasks.iter().filter(|t| !t.is_finished()).count();
        for t in &tasks {
            t.abort();
        }
        let mut s = lock(&live.stats);
        for _ in 0..stuck {
            s.count(stats::Outcome::Other);
        }
    }
    if let Some(p) = printer {
        p.abort();
    }
    let wall = t0.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    let stats = lock(&live.stats);
    StepReport::new(rate, live.offered(), &stats, wall, cpu, bound)
}

/// The caller: one UDP endpoint (else TCP) sending every call to the gateway.
async fn caller(addrs: &GatewayAddrs, domain: &str) -> Result<Caller, LoadError> {
    let proxy = addrs
        .udp
        .or(addrs.tcp)
        .ok_or_else(|| LoadError::Usage("the target has no UDP or TCP listener".into()))?;
    let ep = if addrs.udp.is_some() {
        EndpointConfig::udp(loopback_for(proxy))
    } else {
        EndpointConfig::tcp(loopback_for(proxy))
    };
    let uri = SipUri::parse(&format!("sip:load-caller@{domain}"))
        .map_err(|e| party("the caller")(e.to_string()))?;
    Caller::new(
        ep,
        CallerConfig::new(uri, proxy),
        Recorder::off("caller", Protocol::Sip),
        "gateway",
    )
    .await
    .map_err(|e| party("the caller")(e.to_string()))
}

fn write_reports(opts: &LoadOptions, report: &LoadReport) -> Result<(), LoadError> {
    for (path, text) in [(&opts.json, report.json()), (&opts.html, report.html())] {
        if let Some(path) = path {
            std::fs::write(path, text).map_err(|source| LoadError::Write {
                path: path.clone(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Every phone holds sockets: lift the soft limit on open files to the hard one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        let mut l: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn say(s: &str) {
    crate::report::say(s);
}
