//! The runner: loads the target, its expected failures and the features, decides which scenarios
//! run and which are not-applicable, runs them on cucumber (concurrently, each with a fresh
//! [`BenchWorld`]), gates the verdicts on the baseline and writes the reports.
//!
//! Both `pushbench run` and the cucumber test harness (`tests/features.rs`) call [`run_blocking`].
//!
//! Exit codes ([`exit_code`]): 0 every selected scenario passed, xfailed or is not applicable; 1 a
//! scenario failed unexpectedly, xpassed (stale baseline) or was inconclusive; 2 the run could not
//! start (bad target or baseline, Gherkin error, a scenario without `@req:`, a filter that selects
//! nothing, every selected scenario not applicable, a failed start/reset command).

use crate::catalog::{parse_tags, Catalog, LoadError, ScenarioInfo, ScenarioKey};
use crate::collector::{self, Attempt, Collector, Shared};
use crate::expected::{Expectation, ExpectedError, ExpectedFailures, Outcome};
use crate::report::{self, RunReport, ScenarioResult, StepRun, StepStatus};
use crate::target::{CancelPolicy, CommandRun, Target, TargetError, TargetKind};
use crate::verdict::Verdict;
use crate::world::{BenchWorld, ScenarioContext};
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
    /// Feature files or directories.
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
            features: vec![PathBuf::from("features")],
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
    /// The tag expression does not parse.
    #[error("{0}")]
    Tags(String),
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// The selection is empty: never a pass.
    #[error("no scenario selected (features {features}, tags {tags}): nothing would be tested")]
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

/// The exit code for a run's result (see the module doc).
pub fn exit_code(result: &Result<RunReport, RunError>) -> ExitCode {
    match result {
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

/// The scenarios of `features` selected by `tags`, each with the reason it is not applicable to
/// `target` (`None` when it runs).
pub fn plan<'a>(
    catalog: &'a Catalog,
    tags: Option<&str>,
    target: &Target,
) -> Result<Vec<(&'a ScenarioInfo, Option<String>)>, RunError> {
    let expr = tags.map(parse_tags).transpose().map_err(RunError::Tags)?;
    let declared = target.profile_names();
    Ok(catalog
        .select(expr.as_ref())
        .into_iter()
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

/// Runs the bench (see the module doc) and writes the reports `opts` asks for.
pub async fn run(opts: &RunOptions) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let (target, dir) = load_target(opts)?;
    let expected = match &target.expected_failures {
        Some(p) => ExpectedFailures::load(p)?,
        None => ExpectedFailures::default(),
    };
    let catalog = Catalog::load(&opts.features)?;
    let planned = plan(&catalog, opts.tags.as_deref(), &target)?;
    if planned.is_empty() {
        return Err(RunError::NothingSelected {
            features: opts
                .features
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            tags: opts.tags.clone().unwrap_or_else(|| "(none)".into()),
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
    let mut warnings: Vec<String> = expected
        .unmatched(&catalog.scenarios)
        .into_iter()
        .map(|e| format!("expected-failures entry {e} matches no scenario"))
        .collect();

    // The gateway's configuration points at these files, so they exist before it starts; the mock
    // APNs loads the same directory when the first scenario starts it.
    if target.kind == TargetKind::External && !target.apns.credentials_dir.as_os_str().is_empty() {
        mock_apns::Credentials::generate_or_load(
            &target.apns.credentials_dir,
            &target.apns.bundle_id,
            None,
            &[],
        )?;
    }
    let mut commands = Vec::new();
    let mut gateway = crate::container::Managed::start_for(&target, opts.manage_container).await?;
    commands.extend(gateway.as_ref().map(|g| g.start_record()));
    for (which, c) in [
        ("start", &target.commands.start),
        ("reset", &target.commands.reset),
    ] {
        if let Some(c) = c {
            let r = c
                .execute(which, &dir)
                .await
                .map_err(|source| RunError::Io {
                    path: PathBuf::from(&c.run),
                    source,
                })?;
            let ok = r.succeeded();
            commands.push(r.clone());
            if !ok {
                stop(&target, &dir, &mut commands, gateway.take()).await;
                return Err(RunError::Command(Box::new(r)));
            }
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
    let features = catalog.features_with(&to_run);
    let deadline_hit = tokio::time::timeout(
        opts.timeout,
        execute(features, &target, &dir, &infos, &shared, opts),
    )
    .await
    .is_err();
    stop(&target, &dir, &mut commands, gateway.take()).await;

    let mut c = collector::lock(&shared);
    warnings.append(&mut c.warnings);
    if deadline_hit {
        warnings.push(format!(
            "the run hit its deadline of {:?}; unfinished scenarios are inconclusive",
            opts.timeout
        ));
    }
    let scenarios = planned
        .iter()
        .map(|(info, na)| {
            let expectation = expected.lookup(info).cloned();
            match na {
                Some(why) => not_applicable(info, why, expectation),
                None => ran(
                    info,
                    c.attempts.get(&info.key),
                    c.timelines.get(&info.key),
                    expectation,
                    opts.timeout,
                ),
            }
        })
        .collect();
    drop(c);
    let report = RunReport {
        target: target.name.clone(),
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

async fn stop(
    target: &Target,
    dir: &Path,
    commands: &mut Vec<CommandRun>,
    gateway: Option<crate::container::Managed>,
) {
    if let Some(c) = &target.commands.stop {
        match c.execute("stop", dir).await {
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
    if let Some(g) = gateway {
        commands.push(g.stop().await);
    }
}

/// Runs the target's `before_scenario` command; a failure is the scenario's precondition failing
/// (inconclusive). Not noted on the timeline, which holds the parties' events only.
async fn run_before_scenario(c: &crate::target::Command, dir: &Path) -> Result<(), String> {
    let r = c
        .execute("before_scenario", dir)
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
) {
    let total = infos.len();
    let (before_target, before_infos, before_shared) =
        (target.clone(), infos.clone(), shared.clone());
    let after_shared = shared.clone();
    let teardown_timeout = opts.teardown_timeout;
    let before_scenario = target.commands.before_scenario.clone().map(Arc::new);
    let command_dir = Arc::new(dir.to_path_buf());
    let mut cucumber = BenchWorld::cucumber::<&Path>()
        .with_parser(Preloaded(features))
        .with_writer(Collector::new(
            shared.clone(),
            infos.clone(),
            total,
            opts.print,
        ))
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
                .insert(key, world.timeline.clone());
            let (command, command_dir) = (before_scenario.clone(), command_dir.clone());
            async move {
                if let Some(c) = command {
                    if let Err(e) = run_before_scenario(&c, &command_dir).await {
                        panic!("{e}");
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
