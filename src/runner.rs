//! The runner: loads the target, its expected failures and the features, decides which scenarios
//! run and which are not-applicable, runs them on cucumber (concurrently, each with a fresh
//! [`BenchWorld`]), gates the verdicts on the baseline and writes the reports.
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

use crate::catalog::{parse_tags, Catalog, LoadError, ScenarioInfo, ScenarioKey};
use crate::check::CheckReport;
use crate::collector::{self, Attempt, Collector, Shared};
use crate::expected::{Expectation, ExpectedError, ExpectedFailures, Outcome};
use crate::preflight::{Liveness, ProbeFailure, Probes};
use crate::report::{
    self, Interruption, RunHeader, RunReport, ScenarioResult, StepRun, StepStatus,
};
use crate::target::{CancelPolicy, CommandRun, ProcessGroups, Target, TargetError, TargetKind};
use crate::verdict::Verdict;
use crate::world::{BenchWorld, ScenarioContext};
use cucumber::tag::Ext as _;
use cucumber::{cli, gherkin, World as _};
use futures::FutureExt as _;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What to run and where to write.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The target file; `None` runs against [`Target::embedded_reference`].
    pub target: Option<PathBuf>,
    /// The cancel policy of the embedded reference gateway (only without `target`): runs the
    /// suite against the reference gateway in another profile.
    pub embedded_cancel: Option<CancelPolicy>,
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
    /// Start and stop the target's `[container]` (default true); false when Compose or
    /// testcontainers runs the gateway container (`pushbench run --no-container`).
    pub manage_container: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            target: None,
            embedded_cancel: None,
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
            manage_container: true,
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

/// Which scenarios a run selects, besides its feature paths.
#[derive(Debug, Default)]
pub struct Selection {
    /// A tag expression.
    pub tags: Option<cucumber::gherkin::tagexpr::TagOperation>,
    /// A pattern the full name must match.
    pub name: Option<regex::Regex>,
    /// Requirement id prefixes (any).
    pub req: Vec<String>,
    /// `FILE:LINE` positions: the scenario (or Examples row) at or above LINE in FILE.
    pub positions: Vec<(PathBuf, usize)>,
}

impl Selection {
    /// The selection `opts` asks for; `positions` come from [`split_positions`].
    pub fn new(
        tags: Option<&str>,
        name: Option<&str>,
        req: &[String],
        positions: Vec<(PathBuf, usize)>,
    ) -> Result<Selection, RunError> {
        Ok(Selection {
            tags: tags.map(parse_tags).transpose().map_err(RunError::Tags)?,
            name: name
                .map(|n| {
                    regex::Regex::new(n).map_err(|e| RunError::Tags(format!("--name {n:?}: {e}")))
                })
                .transpose()?,
            req: req.to_vec(),
            positions,
        })
    }

    /// The filters, for messages (`tags @x, name y`).
    pub fn describe(&self, tags: Option<&str>) -> String {
        let mut parts = Vec::new();
        if let Some(t) = tags {
            parts.push(format!("tags {t}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name /{n}/"));
        }
        if !self.req.is_empty() {
            parts.push(format!("req {}", self.req.join("|")));
        }
        for (p, l) in &self.positions {
            parts.push(format!("{}:{l}", p.display()));
        }
        if parts.is_empty() {
            "(none)".into()
        } else {
            parts.join(", ")
        }
    }

    fn selects(&self, s: &ScenarioInfo, all: &[&ScenarioInfo]) -> bool {
        if self.tags.as_ref().is_some_and(|t| !t.eval(s.tags.iter())) {
            return false;
        }
        if self
            .name
            .as_ref()
            .is_some_and(|n| !n.is_match(&s.full_name()))
        {
            return false;
        }
        if !self.req.is_empty()
            && !s
                .requirements
                .iter()
                .any(|id| self.req.iter().any(|p| id.starts_with(p.as_str())))
        {
            return false;
        }
        if self.positions.is_empty() {
            return true;
        }
        self.positions.iter().any(|(path, line)| {
            let at_or_above = all
                .iter()
                .filter(|o| &o.key.path == path && o.key.line <= *line)
                .map(|o| o.key.line)
                .max();
            &s.key.path == path && Some(s.key.line) == at_or_above
        })
    }
}

/// A `FILE:LINE` position: the file as the catalogue names it, and the line.
pub type Position = (PathBuf, usize);

/// Splits `FILE:LINE` arguments off the feature paths: returns the paths to load and the
/// positions to select (their paths as the catalogue will name them).
pub fn split_positions(features: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Position>), RunError> {
    let mut paths = Vec::new();
    let mut positions = Vec::new();
    for f in features {
        let text = f.to_string_lossy();
        let split = text
            .rsplit_once(':')
            .and_then(|(p, l)| Some((p, l.parse::<usize>().ok()?)));
        match split {
            Some((p, line)) if !f.exists() => {
                let file = PathBuf::from(p);
                let resolved = crate::catalog::resolve(std::slice::from_ref(&file))?;
                match resolved.as_slice() {
                    [one] => positions.push((one.path.clone(), line)),
                    _ => {
                        return Err(RunError::Usage(format!(
                            "{text}: FILE:LINE needs one feature file, {p} is not one"
                        )))
                    }
                }
                if !paths.contains(&file) {
                    paths.push(file);
                }
            }
            _ => paths.push(f.clone()),
        }
    }
    Ok((paths, positions))
}

/// The scenarios of `catalog` the selection picks, each with the reason it is not applicable to
/// `target` (`None` when it runs).
pub fn plan<'a>(
    catalog: &'a Catalog,
    selection: &Selection,
    target: &Target,
) -> Result<Vec<(&'a ScenarioInfo, Option<String>)>, RunError> {
    let declared = target.profile_names();
    let all: Vec<&ScenarioInfo> = catalog.scenarios.iter().collect();
    Ok(catalog
        .scenarios
        .iter()
        .filter(|s| selection.selects(s, &all))
        .map(|s| {
            let unmet = s.unmet_profiles(&declared);
            let why = (!unmet.is_empty()).then(|| {
                format!(
                    "target {:?} does not declare profile {}",
                    target.name,
                    unmet.join(", ")
                )
            });
            (s, why)
        })
        .collect())
}

/// Loads the target named in `opts` (or the embedded one) and the directory its commands run in.
pub fn load_target(opts: &RunOptions) -> Result<(Target, PathBuf), RunError> {
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
            Ok((t, PathBuf::from(".")))
        }
    }
}

/// SIGINT and SIGTERM, as a future the run can wait on beside its work. The handlers are
/// installed when the run starts; a second signal while the run cleans up ends the process at
/// once with the same exit code.
struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> Result<Interrupts, RunError> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |source| RunError::Io {
            path: "signal handlers".into(),
            source,
        };
        Ok(Interrupts {
            int: signal(SignalKind::interrupt()).map_err(io)?,
            term: signal(SignalKind::terminate()).map_err(io)?,
        })
    }

    /// The next signal.
    async fn recv(&mut self) -> Interruption {
        tokio::select! {
            _ = self.int.recv() => Interruption::Sigint,
            _ = self.term.recv() => Interruption::Sigterm,
        }
    }

    /// From now on a second signal exits the process at once.
    fn second_one_exits(mut self, first: Interruption) {
        report::say_err(&format!(
            "\npushbench: {} received: stopping the scenarios, running the target's stop command and writing the reports (again to quit at once)\n",
            first.name()
        ));
        tokio::spawn(async move {
            let sig = self.recv().await;
            report::say_err(&format!("pushbench: {}: quitting\n", sig.name()));
            std::process::exit(i32::from(first.exit_code()));
        });
    }
}

/// What the hooks share to decide whether a scenario still starts: `--fail-fast` after a
/// failure, or a gateway that stopped answering.
#[derive(Clone, Default)]
struct Gate {
    /// Why no further scenario starts, once that is so.
    stop: Arc<std::sync::Mutex<Option<String>>>,
    /// Scenarios the before hook did not run, and why.
    skipped: collector::Skips,
    /// Target commands running now (the background probe pauses meanwhile: before_scenario may
    /// restart the gateway).
    commands_running: Arc<std::sync::atomic::AtomicUsize>,
    /// Target commands started so far.
    commands_started: Arc<std::sync::atomic::AtomicUsize>,
}

impl Gate {
    fn stop_reason(&self) -> Option<String> {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn stop_starting(&self, why: String) {
        let mut s = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_none() {
            *s = Some(why);
        }
    }

    fn skip(&self, key: ScenarioKey, not_run: bool, why: String) {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, collector::Skip { not_run, why });
    }
}

/// Creates each report's folder and checks the file can be written, before anything runs (a
/// file created only for the check is removed again).
fn check_report_paths(opts: &RunOptions) -> Result<(), RunError> {
    for p in [&opts.junit, &opts.json, &opts.html].into_iter().flatten() {
        let err = |source| RunError::ReportPath {
            path: p.clone(),
            source,
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let existed = p.exists();
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .map_err(err)?;
        if !existed {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

/// The header every report shows.
fn header(target: &Target, opts: &RunOptions) -> RunHeader {
    let t = &target.timers;
    let ms = |d: Duration| format!("{} ms", d.as_millis());
    let mut timers = vec![
        ("bucket".to_owned(), ms(t.bucket)),
        ("push_latency".to_owned(), ms(t.push_latency)),
        ("grace".to_owned(), ms(t.grace)),
    ];
    if !t.push_delay.is_zero() {
        timers.push(("push_delay".to_owned(), ms(t.push_delay)));
    }
    RunHeader {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        kind: match target.kind {
            TargetKind::EmbeddedReference => "embedded reference gateway".into(),
            TargetKind::External => "external gateway".into(),
        },
        description: target.description.clone(),
        cancel: target.profile.cancel.as_str().to_owned(),
        capabilities: target.profile.capabilities.clone(),
        timers,
        resolved: target
            .resolved
            .iter()
            .map(|r| format!("{} {} → {}", r.key, r.written, r.resolved))
            .collect(),
        features: describe_features(&opts.features),
    }
}

/// The mock APNs must be able to listen where the gateway sends its pushes: it is started now,
/// once, instead of failing in every scenario.
async fn start_mock_apns(target: &Target) -> Result<(), RunError> {
    crate::steps::cast::shared_apns(target)
        .await
        .map(drop)
        .map_err(|e| RunError::ApnsListen {
            address: target.apns.listen.clone(),
            reason: e.to_string(),
        })
}

/// Probes until the gateway answers, for a few seconds at most (a `start` command may return a
/// moment before its gateway listens).
async fn preflight(probes: &Probes) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let failures = probes.run().await;
        if failures.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(RunError::Unreachable(failures));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the bench (see the module doc) and writes the reports `opts` asks for.
pub async fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let started_wall = SystemTime::now();
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

/// Probes the gateway every 2 s while the scenarios run, not while a target command runs
/// (`before_scenario` may restart it): a round that overlapped a command does not count. Once
/// the gateway is found down, no further scenario starts.
async fn watch_gateway(probes: Probes, liveness: Liveness, gate: Gate) {
    use std::sync::atomic::Ordering::SeqCst;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = gate.commands_started.load(SeqCst);
        if gate.commands_running.load(SeqCst) > 0 {
            continue;
        }
        if let Err(d) = Liveness::probe(&probes, Duration::from_secs(4)).await {
            if gate.commands_started.load(SeqCst) != started
                || gate.commands_running.load(SeqCst) > 0
            {
                continue;
            }
            liveness.set_down(d);
            if let Some(d) = liveness.down() {
                gate.stop_starting(format!("the gateway stopped answering ({})", d.describe()));
            }
            return;
        }
    }
}

/// The `stop` command, the target's container, then whatever a command left running.
async fn finish_commands(
    target: &Target,
    dir: &Path,
    groups: &ProcessGroups,
    commands: &mut Vec<CommandRun>,
    warnings: &mut Vec<String>,
    gateway: &mut Option<crate::container::Managed>,
) {
    stop(target, dir, groups, commands).await;
    if let Some(g) = gateway.take() {
        commands.push(g.stop().await);
    }
    warnings.extend(groups.stop_leftovers(Duration::from_secs(2)).await);
}

async fn stop(target: &Target, dir: &Path, groups: &ProcessGroups, commands: &mut Vec<CommandRun>) {
    if let Some(c) = &target.commands.stop {
        match c.execute("stop", dir, groups).await {
            Ok(r) => commands.push(r),
            Err(e) => commands.push(CommandRun {
                which: "stop".into(),
                run: c.run.clone(),
                exit_code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("could not start: {e}"),
                took: Duration::ZERO,
            }),
        }
    }
}

/// Runs the target's `before_scenario` command; a failure is the scenario's precondition failing
/// (inconclusive). Not noted on the timeline, which holds the parties' events only.
async fn run_before_scenario(
    c: &crate::target::Command,
    dir: &Path,
    groups: &ProcessGroups,
) -> Result<(), String> {
    let r = c
        .execute("before_scenario", dir, groups)
        .await
        .map_err(|e| format!("target command before_scenario ({}): {e}", c.run))?;
    if !r.succeeded() {
        return Err(format!(
            "target command before_scenario failed ({}): {}",
            r.run,
            command_failure(&r)
        ));
    }
    Ok(())
}

/// What the hooks need besides the target: whether scenarios may still start, the gateway's
/// liveness, the process groups, and (with `--fail-fast`) the baseline.
#[derive(Clone)]
struct Control {
    gate: Gate,
    liveness: Liveness,
    probes: Arc<Probes>,
    groups: ProcessGroups,
    expected: Option<Arc<ExpectedFailures>>,
}

/// A parser that hands cucumber the features the catalogue already loaded and trimmed.
struct Preloaded(Vec<gherkin::Feature>);

impl cucumber::Parser<()> for Preloaded {
    type Cli = cli::Empty;
    type Output =
        futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, _input: (), _cli: cli::Empty) -> Self::Output {
        futures::stream::iter(self.0.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

async fn execute(
    features: Vec<gherkin::Feature>,
    target: &Arc<Target>,
    dir: &Path,
    infos: &Arc<HashMap<ScenarioKey, ScenarioInfo>>,
    shared: &Shared,
    opts: &RunOptions,
    control: Control,
) {
    let total = infos.len();
    let (before_target, before_infos, before_shared) =
        (target.clone(), infos.clone(), shared.clone());
    let after_shared = shared.clone();
    let teardown_timeout = opts.teardown_timeout;
    let before_scenario = target.commands.before_scenario.clone().map(Arc::new);
    let command_dir = Arc::new(dir.to_path_buf());
    let mut collector = Collector::new(shared.clone(), infos.clone(), total, opts.print)
        .with_skips(control.gate.skipped.clone());
    if let Some(expected) = control.expected.clone() {
        // --fail-fast: the first scenario whose outcome fails the run stops the others starting.
        let (gate, infos) = (control.gate.clone(), infos.clone());
        collector = collector.on_final(Box::new(move |key, verdict, step| {
            let Some(info) = infos.get(key) else { return };
            let outcome = Expectation::gate(expected.lookup(info), verdict, step);
            if outcome.fails_run() {
                gate.stop_starting(format!(
                    "--fail-fast: \"{}\" ({key}) ended {outcome}",
                    info.full_name()
                ));
            }
        }));
    }
    let hook_control = control.clone();
    let mut cucumber = BenchWorld::cucumber::<&Path>()
        .with_parser(Preloaded(features))
        .with_writer(collector)
        .before(move |feature, _rule, scenario, world| {
            let key = ScenarioKey::of(feature, scenario);
            let info = before_infos.get(&key);
            world.set_context(ScenarioContext {
                target: before_target.clone(),
                key: key.clone(),
                name: scenario.name.clone(),
                requirements: info.map(|i| i.requirements.clone()).unwrap_or_default(),
            });
            collector::lock(&before_shared)
                .timelines
                .insert(key.clone(), world.timeline.clone());
            let (command, command_dir) = (before_scenario.clone(), command_dir.clone());
            let control = hook_control.clone();
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                if let Some(why) = control.gate.stop_reason() {
                    let why = format!("not run: {why}");
                    control
                        .gate
                        .skip(key, control.liveness.down().is_none(), why.clone());
                    panic!("{why}");
                }
                if let Some(c) = command {
                    control.gate.commands_started.fetch_add(1, SeqCst);
                    control.gate.commands_running.fetch_add(1, SeqCst);
                    let r = run_before_scenario(&c, &command_dir, &control.groups).await;
                    control.gate.commands_running.fetch_sub(1, SeqCst);
                    if let Err(e) = r {
                        panic!("{}", crate::verdict::StepError::inconclusive(e));
                    }
                }
                if !control.probes.is_empty() {
                    let down = control
                        .liveness
                        .check(&control.probes, Duration::from_secs(5))
                        .await;
                    if let Some(d) = down {
                        let why =
                            format!("not run: the gateway stopped answering ({})", d.describe());
                        control.gate.stop_starting(why.clone());
                        control.gate.skip(key, false, why.clone());
                        panic!("{why}");
                    }
                }
                if let Err(e) = world.prepare().await {
                    panic!("{e}");
                }
            }
            .boxed_local()
        })
        .after(move |feature, _rule, scenario, _finished, world| {
            let key = ScenarioKey::of(feature, scenario);
            let shared = after_shared.clone();
            async move {
                let Some(world) = world else { return };
                let overran = world.teardown(teardown_timeout).await;
                let mut c = collector::lock(&shared);
                for what in overran {
                    c.warnings.push(format!(
                        "{key}: teardown {what:?} overran {teardown_timeout:?}"
                    ));
                }
                c.recorded.insert(key, world.verdicts().to_vec());
            }
            .boxed_local()
        });
    // Scenarios of a target cleaned before each one share its accounts: one at a time.
    let concurrency = match target.commands.before_scenario {
        Some(_) => {
            if opts.concurrency.is_some_and(|n| n > 1) {
                eprintln!(
                    "pushbench: the target has a before_scenario command, so its scenarios share \
                     its accounts and run one at a time (--concurrency ignored)"
                );
            }
            Some(1)
        }
        None => opts.concurrency,
    };
    if let Some(n) = concurrency {
        cucumber = cucumber.max_concurrent_scenarios(n.max(1));
    }
    cucumber.with_default_cli().run(()).await;
}

fn all_steps_not_run(info: &ScenarioInfo) -> Vec<StepRun> {
    info.steps
        .iter()
        .map(|(k, t)| StepRun {
            keyword: k.clone(),
            text: t.clone(),
            status: StepStatus::NotRun,
            error: None,
            duration: None,
        })
        .collect()
}

fn not_applicable(
    info: &ScenarioInfo,
    why: &str,
    expectation: Option<Expectation>,
) -> ScenarioResult {
    ScenarioResult {
        info: info.clone(),
        verdict: Verdict::NotApplicable,
        outcome: Outcome::NotApplicable,
        reason: Some(why.to_owned()),
        failed_step: None,
        steps: all_steps_not_run(info),
        attempts: 0,
        duration: Duration::ZERO,
        events: Vec::new(),
        verdict_at: None,
        expectation,
    }
}

/// A scenario the run did not start (or stopped): not run, or inconclusive when the gateway
/// was down. What its timeline recorded is kept.
fn skipped_result(
    info: &ScenarioInfo,
    not_run: bool,
    why: &str,
    timeline: Option<&timeline::Timeline>,
    expectation: Option<Expectation>,
) -> ScenarioResult {
    let (verdict, outcome) = if not_run {
        (Verdict::Inconclusive, Outcome::NotRun)
    } else {
        (Verdict::Inconclusive, Outcome::Inconclusive)
    };
    ScenarioResult {
        info: info.clone(),
        verdict,
        outcome,
        reason: Some(why.to_owned()),
        failed_step: None,
        steps: all_steps_not_run(info),
        attempts: 0,
        duration: Duration::ZERO,
        events: timeline.map(|t| t.events()).unwrap_or_default(),
        verdict_at: None,
        expectation,
    }
}

fn ran(
    info: &ScenarioInfo,
    attempt: Option<&Attempt>,
    timeline: Option<&timeline::Timeline>,
    expectation: Option<Expectation>,
    deadline: Duration,
) -> ScenarioResult {
    let events = timeline.map(|t| t.events()).unwrap_or_default();
    let (verdict, reason, failed_step, steps, attempts, duration) = match attempt {
        None => (
            Verdict::Inconclusive,
            Some(format!(
                "not started before the run's deadline of {deadline:?}"
            )),
            None,
            all_steps_not_run(info),
            0,
            Duration::ZERO,
        ),
        Some(a) => {
            let (mut verdict, mut reason, mut step) = a.decide();
            if a.finished.is_none() {
                verdict = Verdict::Inconclusive;
                let running = a.running.as_ref().map(|(k, t, since)| {
                    format!(
                        "{k} {t} (running for {:.1} s)",
                        since.elapsed().as_secs_f64()
                    )
                });
                reason = Some(format!(
                    "still running at the run's deadline of {deadline:?}: {}",
                    running.as_deref().unwrap_or("between steps")
                ));
                step = running;
            }
            let mut steps = a.steps.clone();
            steps.extend(all_steps_not_run(info).into_iter().skip(a.steps.len()));
            (verdict, reason, step, steps, a.number, a.duration())
        }
    };
    let outcome = Expectation::gate(expectation.as_ref(), verdict, failed_step.as_deref());
    let reason = match (&expectation, outcome) {
        (Some(e), Outcome::Fail) => Some(format!(
            "expected to fail at the step {:?}, failed at another one: {}",
            e.step.as_deref().unwrap_or_default(),
            reason.unwrap_or_default()
        )),
        _ => reason,
    };
    let verdict_at = attempt
        .and_then(|a| a.steps_ended)
        .zip(timeline)
        .map(|(t, tl)| tl.offset_of(t));
    ScenarioResult {
        info: info.clone(),
        verdict,
        outcome,
        reason,
        failed_step,
        steps,
        attempts,
        duration,
        events,
        verdict_at,
        expectation,
    }
}

fn write_reports(report: &RunReport, opts: &RunOptions) -> Result<(), RunError> {
    let write = |path: &Option<PathBuf>, text: String| -> Result<(), RunError> {
        let Some(p) = path else { return Ok(()) };
        let io = |source| RunError::Io {
            path: p.clone(),
            source,
        };
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(p, text).map_err(io)
    };
    write(&opts.junit, report::junit::render(report))?;
    write(
        &opts.json,
        serde_json::to_string_pretty(&report::json::render(report)).unwrap_or_default(),
    )?;
    write(&opts.html, report::html::render(report))?;
    Ok(())
}
