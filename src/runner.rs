//! The runner: loads the target, its expected failures and the features, decides which scenarios
//! run and which are not-applicable, runs them on cucumber (concurrently, each with a fresh
//! [`BenchWorld`](crate::world::BenchWorld)), gates the verdicts on the baseline and writes the reports.
//!
//! Both `pushbench run` and the cucumber test harness (`tests/features.rs`) call [`run_blocking`].
//!
//! The order of a run:
//! 1. load the target (host names resolved), its baseline and the features; the static check of
//!    [`crate::check`] (an unknown step or capability stops the run here);
//! 2. create and check the report paths, write the APNs credentials, start the mock APNs (its
//!    listen address must bind);
//! 3. the target's `start` and `reset` commands, then the pre-flight probes of
//!    [`crate::preflight`]: a gateway that does not answer stops the run with one message;
//! 4. the scenarios; before each one the gateway is probed again (and every 2 s in the
//!    background), so a gateway that stops answering mid-run is reported as such;
//! 5. the `stop` command, then every process group a command left running is stopped;
//! 6. the reports.
//!
//! SIGINT or SIGTERM at any point stops the scenarios, runs steps 5 and 6 with what finished (the
//! rest are "not run") and exits 130 or 143.
//!
//! Exit codes ([`exit_code`]): 0 every selected scenario passed, xfailed or is not applicable; 1 a
//! scenario failed unexpectedly, xpassed (stale baseline) or was inconclusive; 2 the run could not
//! start (bad target or baseline, a finding of the static check, a filter that selects nothing,
//! every selected scenario not applicable, a gateway that does not answer, an APNs address that
//! cannot be bound, a failed start/reset command, a report path that cannot be written); 130 or
//! 143 interrupted by SIGINT or SIGTERM.

mod control;
mod results;
mod scenarios;
mod selection;

pub use selection::{plan, split_positions, Position, Selection};

use crate::catalog::{Catalog, LoadError, ScenarioInfo, ScenarioKey};
use crate::check::CheckReport;
use crate::collector::{self, Shared};
use crate::draws::RunSeed;
use crate::expected::{ExpectedError, ExpectedFailures};
use crate::preflight::{Liveness, ProbeFailure, Probes};
use crate::report::{self, Interruption, RunReport};
use crate::scenario::GatewayFaults;
use crate::target::{
    CancelPolicy, CommandRun, PayloadContract, ProcessGroups, Target, TargetError, TargetKind,
};
use crate::verdict::Verdict;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use control::*;
use results::*;
use scenarios::*;

/// What to run and where to write.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The target file; `None` runs against [`Target::embedded_reference`].
    pub target: Option<PathBuf>,
    /// The cancel policy of the embedded reference gateway (only without `target`): runs the
    /// suite against the reference gateway in another profile.
    pub embedded_cancel: Option<CancelPolicy>,
    /// The payload contract the embedded reference gateway's target declares instead of its own
    /// (only without `target`): how a target file's `[apns.payload]` is tested against a gateway
    /// whose payload is known.
    pub embedded_payload: Option<PayloadContract>,
    /// A cucumber tag expression (`@req:SIP-C2 or @apns`).
    pub tags: Option<String>,
    /// Only scenarios whose name (`Feature: scenario`) matches this regular expression.
    pub name: Option<String>,
    /// Only scenarios with a requirement id starting with one of these (`SIP-B`).
    pub req: Vec<String>,
    /// Start no scenario after the first one that fails the run; the rest are "not run".
    pub fail_fast: bool,
    /// Feature files or directories; empty for the suite embedded in the binary.
    pub features: Vec<PathBuf>,
    /// JUnit XML output.
    pub junit: Option<PathBuf>,
    /// Cucumber JSON output.
    pub json: Option<PathBuf>,
    /// HTML output.
    pub html: Option<PathBuf>,
    /// Scenarios run at once (cucumber's default, 64, when `None`).
    pub concurrency: Option<usize>,
    /// Deadline of the whole run; scenarios still running then are inconclusive.
    pub timeout: Duration,
    /// Deadline of each teardown a World registered.
    pub teardown_timeout: Duration,
    /// Print a line per finished scenario, the failures and the table.
    pub print: bool,
    /// Faults switched on in the bench's own gateways (the fault matrices); none by default.
    pub faults: GatewayFaults,
    /// Start and stop the target's `[container]` (default true); false when Compose or
    /// testcontainers runs the gateway container (`pushbench run --no-container`).
    pub manage_container: bool,
    /// The run's seed (`pushbench run --seed N`): every draw the bench makes (wake delays) comes
    /// from it ([`crate::draws`]). `None` draws a fresh one; the reports say which.
    pub seed: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            target: None,
            embedded_cancel: None,
            embedded_payload: None,
            tags: None,
            name: None,
            req: Vec::new(),
            fail_fast: false,
            features: Vec::new(),
            junit: None,
            json: None,
            html: None,
            concurrency: None,
            timeout: Duration::from_secs(600),
            teardown_timeout: Duration::from_secs(5),
            print: true,
            faults: GatewayFaults::default(),
            manage_container: true,
            seed: None,
        }
    }
}

/// Why a run could not produce verdicts.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The target file is invalid.
    #[error("target: {0}")]
    Target(#[from] TargetError),
    /// The expected-failures file is invalid.
    #[error("expected failures: {0}")]
    Expected(#[from] ExpectedError),
    /// The features could not be loaded.
    #[error("features: {0}")]
    Load(#[from] LoadError),
    /// The tag expression or the name pattern does not parse.
    #[error("{0}")]
    Tags(String),
    /// The static check found problems (see [`crate::check`]).
    #[error("{0}")]
    Check(CheckReport),
    /// The gateway does not answer on an address the target declares.
    #[error("the gateway does not answer: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Unreachable(Vec<ProbeFailure>),
    /// The mock APNs cannot listen where the target says the gateway sends its pushes.
    #[error("apns.listen {address}: the mock APNs cannot listen there: {reason}")]
    ApnsListen {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// A report file cannot be written.
    #[error("report {path}: cannot be written: {source}")]
    ReportPath {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// The selection is empty: never a pass.
    #[error("no scenario selected (features {features}, filter {tags}): nothing would be tested")]
    NothingSelected {
        /// The feature paths.
        features: String,
        /// The tag expression.
        tags: String,
    },
    /// Every selected scenario is excluded by the target's profile.
    #[error("all {count} selected scenarios are not applicable to target {target:?}: nothing would be tested")]
    NothingApplicable {
        /// How many were selected.
        count: usize,
        /// The target.
        target: String,
    },
    /// The APNs credentials an external target's configuration points at could not be written.
    #[error("apns.credentials_dir: {0}")]
    Credentials(#[from] mock_apns::CredentialsError),
    /// The target's gateway container could not be started.
    #[error("container: {0}")]
    Container(#[from] crate::container::ContainerError),
    /// A start or reset command failed.
    #[error("target command {} failed ({}): {}", .0.which, .0.run, command_failure(.0))]
    Command(Box<CommandRun>),
    /// A command could not be spawned, or a report could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file or command.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn command_failure(c: &CommandRun) -> String {
    if c.timed_out {
        format!("timed out after {:?}", c.took)
    } else {
        format!(
            "exit {:?}; stdout: {}; stderr: {}",
            c.exit_code,
            c.stdout.trim(),
            c.stderr.trim()
        )
    }
}

/// The feature paths as a message names them (`the embedded suite` for none).
pub fn describe_features(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "the embedded suite".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The exit code for a run's result (see the module doc).
pub fn exit_code(result: &Result<RunReport, RunError>) -> ExitCode {
    match result {
        Ok(r) if r.interrupted.is_some() => {
            ExitCode::from(r.interrupted.map(Interruption::exit_code).unwrap_or(1))
        }
        Ok(r) if r.passed() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(_) => ExitCode::from(2),
    }
}

/// Runs on a fresh multi-threaded tokio runtime (cucumber's scenarios are `!Send` futures, driven
/// on this thread; the parties' tasks run on the runtime's workers).
pub fn run_blocking(opts: &RunOptions) -> Result<RunReport, RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    rt.block_on(run(opts))
}

/// Loads the target named in `opts` (or the embedded one) and the directory its commands run in.
pub fn load_target(opts: &RunOptions) -> Result<(Target, PathBuf), RunError> {
    if opts.target.is_some() && opts.embedded_payload.is_some() {
        return Err(RunError::Usage(
            "an embedded payload contract applies to the embedded reference gateway; a target file declares its own [apns.payload]".into(),
        ));
    }
    if opts.target.is_some() && opts.embedded_cancel.is_some() {
        return Err(RunError::Usage(
            "--embedded-cancel applies to the embedded reference gateway; a target file declares its own [profile] cancel".into(),
        ));
    }
    match &opts.target {
        Some(p) => {
            let t = Target::load(p)?;
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            Ok((t, dir))
        }
        None => {
            let mut t = Target::embedded_reference();
            if let Some(c) = opts.embedded_cancel {
                t.profile.cancel = c;
            }
            if let Some(p) = &opts.embedded_payload {
                t.apns.payload = Some(p.clone());
            }
            Ok((t, PathBuf::from(".")))
        }
    }
}

/// Runs the bench (see the module doc) and writes the reports `opts` asks for.
pub async fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let started_wall = SystemTime::now();
    // One seed for the whole run, fixed before anything draws from it.
    let seed = RunSeed::or_fresh(opts.seed);
    let opts = &RunOptions {
        seed: Some(seed.0),
        ..opts.clone()
    };
    if opts.print {
        report::say(&format!(
            "seed {seed} (pushbench run --seed {seed} draws the same wake delays)\n"
        ));
    }
    let (mut target, dir) = load_target(opts)?;
    target.resolve_addresses()?;
    let expected = match &target.expected_failures {
        Some(p) => ExpectedFailures::load(p)?,
        None => ExpectedFailures::default(),
    };
    let (paths, positions) = split_positions(&opts.features)?;
    let checked = crate::check::check(&paths, &target)?;
    if !checked.findings.is_empty() {
        return Err(RunError::Check(checked));
    }
    let catalog = Catalog::load(&paths)?;
    let selection = Selection::new(
        opts.tags.as_deref(),
        opts.name.as_deref(),
        &opts.req,
        positions,
    )?;
    let planned = plan(&catalog, &selection, &target)?;
    if planned.is_empty() {
        return Err(RunError::NothingSelected {
            features: describe_features(&opts.features),
            tags: selection.describe(opts.tags.as_deref()),
        });
    }
    let to_run: BTreeSet<ScenarioKey> = planned
        .iter()
        .filter(|(_, na)| na.is_none())
        .map(|(s, _)| s.key.clone())
        .collect();
    if to_run.is_empty() {
        return Err(RunError::NothingApplicable {
            count: planned.len(),
            target: target.name.clone(),
        });
    }
    check_report_paths(opts)?;
    let mut warnings: Vec<String> = expected
        .unmatched(&catalog.scenarios)
        .into_iter()
        .map(|e| format!("expected-failures entry {e} matches no scenario"))
        .collect();

    // The gateway's configuration points at these files, so they exist before it starts; the mock
    // APNs loads the same directory.
    if target.kind == TargetKind::External && !target.apns.credentials_dir.as_os_str().is_empty() {
        let differences = crate::credentials::differences(
            &target.apns.credentials_dir,
            &target.apns.bundle_id,
            None,
            &[],
        );
        if !differences.is_empty() {
            return Err(RunError::Usage(format!(
                "apns.credentials_dir {} holds credentials made for {}; remove the folder or run `pushbench credentials --force --out {} --bundle-id {}`, then reconfigure the gateway",
                target.apns.credentials_dir.display(),
                differences.join(", "),
                target.apns.credentials_dir.display(),
                target.apns.bundle_id
            )));
        }
        mock_apns::Credentials::generate_or_load(
            &target.apns.credentials_dir,
            &target.apns.bundle_id,
            None,
            &[],
        )?;
    }
    start_mock_apns(&target).await?;

    let mut interrupts = Interrupts::new()?;
    let mut interrupted = None;
    let groups = ProcessGroups::default();
    let mut commands = Vec::new();
    let mut gateway = crate::container::Managed::start_for(&target, opts.manage_container).await?;
    commands.extend(gateway.as_ref().map(|g| g.start_record()));
    for (which, c) in [
        ("start", &target.commands.start),
        ("reset", &target.commands.reset),
    ] {
        let Some(c) = c else { continue };
        let r = tokio::select! {
            r = c.execute(which, &dir, &groups) => r.map_err(|source| RunError::Io {
                path: PathBuf::from(&c.run),
                source,
            }),
            sig = interrupts.recv() => {
                interrupted = Some(sig);
                break;
            }
        };
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                finish_commands(
                    &target,
                    &dir,
                    &groups,
                    &mut commands,
                    &mut warnings,
                    &mut gateway,
                )
                .await;
                return Err(e);
            }
        };
        let ok = r.succeeded();
        commands.push(r.clone());
        if !ok {
            finish_commands(
                &target,
                &dir,
                &groups,
                &mut commands,
                &mut warnings,
                &mut gateway,
            )
            .await;
            return Err(RunError::Command(Box::new(r)));
        }
    }
    let probes = Probes::of(&target);
    if interrupted.is_none() && !probes.is_empty() {
        let checked = tokio::select! {
            r = preflight(&probes) => r,
            sig = interrupts.recv() => {
                interrupted = Some(sig);
                Ok(())
            }
        };
        if let Err(e) = checked {
            finish_commands(
                &target,
                &dir,
                &groups,
                &mut commands,
                &mut warnings,
                &mut gateway,
            )
            .await;
            return Err(e);
        }
    }

    let target = Arc::new(target);
    let infos: Arc<HashMap<ScenarioKey, ScenarioInfo>> = Arc::new(
        planned
            .iter()
            .filter(|(_, na)| na.is_none())
            .map(|(s, _)| (s.key.clone(), (*s).clone()))
            .collect(),
    );
    let shared: Shared = Shared::default();
    let gate = Gate::default();
    let liveness = Liveness::default();
    let mut deadline_hit = false;
    if interrupted.is_none() {
        let features = catalog.features_with(&to_run);
        let watch = (!probes.is_empty()).then(|| {
            tokio::spawn(watch_gateway(
                probes.clone(),
                liveness.clone(),
                gate.clone(),
            ))
        });
        let control = Control {
            gate: gate.clone(),
            liveness: liveness.clone(),
            probes: Arc::new(probes),
            groups: groups.clone(),
            expected: opts.fail_fast.then(|| Arc::new(expected.clone())),
        };
        tokio::select! {
            r = tokio::time::timeout(
                opts.timeout,
                execute(features, &target, &dir, &infos, &shared, opts, control),
            ) => deadline_hit = r.is_err(),
            sig = interrupts.recv() => interrupted = Some(sig),
        }
        if let Some(w) = watch {
            w.abort();
        }
    }
    if let Some(sig) = interrupted {
        interrupts.second_one_exits(sig);
    }
    finish_commands(
        &target,
        &dir,
        &groups,
        &mut commands,
        &mut warnings,
        &mut gateway,
    )
    .await;

    let down = liveness.down();
    let gateway_down = down.as_ref().map(|d| {
        format!(
            "stopped answering at +{:.1} s ({})",
            d.since.saturating_duration_since(started).as_secs_f64(),
            d.describe()
        )
    });
    let mut c = collector::lock(&shared);
    warnings.append(&mut c.warnings);
    if deadline_hit {
        warnings.push(format!(
            "the run hit its deadline of {:?}; unfinished scenarios are inconclusive",
            opts.timeout
        ));
    }
    let skipped = gate
        .skipped
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let scenarios = planned
        .iter()
        .map(|(info, na)| {
            let expectation = expected.lookup(info).cloned();
            if let Some(why) = na {
                return not_applicable(info, why, expectation);
            }
            let attempt = c.attempts.get(&info.key);
            let timeline = c.timelines.get(&info.key);
            if let Some(skip) = skipped.get(&info.key) {
                return skipped_result(info, skip.not_run, &skip.why, timeline, expectation);
            }
            let finished = attempt.is_some_and(|a| a.finished.is_some());
            if let (Some(sig), false) = (interrupted, finished) {
                let why = format!("not run: the run was interrupted by {}", sig.name());
                return skipped_result(info, true, &why, timeline, expectation);
            }
            let mut r = ran(info, attempt, timeline, expectation, opts.timeout);
            if let (Some(d), Some(a)) = (&down, attempt) {
                // A scenario that was running when the gateway went quiet failed because of it.
                let overlapped = a.started <= d.since + Duration::from_secs(1)
                    && a.finished.is_none_or(|f| f >= d.since);
                if overlapped && r.verdict != Verdict::Pass {
                    r.reason = Some(format!(
                        "the gateway stopped answering at +{:.1} s: {}",
                        d.since.saturating_duration_since(a.started).as_secs_f64(),
                        r.reason.unwrap_or_default()
                    ));
                }
            }
            r
        })
        .collect();
    drop(c);
    if let Some(d) = &gateway_down {
        let not_run = skipped.values().filter(|s| !s.not_run).count();
        warnings.push(format!(
            "the gateway {d}; {not_run} scenario(s) after that were not run (inconclusive)"
        ));
    }
    let report = RunReport {
        target: target.name.clone(),
        header: header(&target, opts),
        interrupted,
        gateway_down,
        started: started_wall,
        duration: started.elapsed(),
        scenarios,
        commands,
        warnings,
    };
    write_reports(&report, opts)?;
    if opts.print {
        report::say(&format!("\n{}{}", report.failures(), report.table()));
        for (what, path) in [
            ("JUnit", &opts.junit),
            ("JSON", &opts.json),
            ("HTML", &opts.html),
        ] {
            if let Some(p) = path {
                report::say(&format!("{what} report: {}\n", p.display()));
            }
        }
    }
    Ok(report)
}
