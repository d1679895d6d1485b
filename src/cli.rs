//! The `pushbench` command line (clap): `run` the scenarios against a target, `list` them, write
//! the APNs `credentials` a gateway under test needs, and print the conformance map's `coverage`.

use crate::catalog::Catalog;
use crate::coverage::{CoverageMap, Status};
use crate::report::{say, say_err};
use crate::runner::{self, RunError, RunOptions};
use crate::target::CancelPolicy;
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Conformance and interop bench for push gateways (SIP RFC 8599, XMPP XEP-0357) with a fake APNs.
#[derive(Debug, Parser)]
#[command(name = "pushbench", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against a target; exit 0 when everything passed (or failed as expected),
    /// 1 on an unexpected failure, an xpass or an inconclusive scenario, 2 when nothing could run.
    Run(RunArgs),
    /// List the scenarios with their requirement ids, and whether the target runs them.
    List(ListArgs),
    /// Check features and a target without running anything: Gherkin errors, unknown steps,
    /// scenarios without a Then, requirement ids and capabilities nobody defines. Exit 2 on any
    /// finding (`run` performs the same check first).
    Check(CheckArgs),
    /// Write what a gateway's APNs client needs to talk to the bench's mock APNs: the CA to trust,
    /// a `.p8` signing key (token auth) and client certificates (certificate auth). A directory
    /// that already holds credentials is reused, so a configured gateway keeps working.
    Credentials(CredentialsArgs),
    /// The scenario suite embedded in the binary.
    Features(FeaturesArgs),
    /// Print the conformance map's totals (features/COVERAGE.md): per document, its normative
    /// statements and how many MUST and SHOULD statements binding the gateway are covered,
    /// partly covered or planned. Exit 2 when the map cannot be read.
    Coverage(CoverageArgs),
    /// Load mode: N sleeping phones, calls at a rate, each followed end to end (push, wake,
    /// REGISTER, relayed INVITE, answer); percentiles, outcomes, throughput, `--find-knee`.
    /// Exit 0 when every call ended as it should (with --find-knee: a clean rate was found),
    /// 1 otherwise, 2 when nothing could run.
    Load(crate::load::plan::LoadOptions),
}

/// `pushbench coverage`.
#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Read this map instead of the one embedded in the binary.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Print the totals as the markdown table COVERAGE.md carries.
    #[arg(long)]
    pub markdown: bool,
    /// Also list the statements with this status (covered, partly, planned, not testable,
    /// not applicable, other PNS, optional).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Also list the statements a requirement id checks (repeatable).
    #[arg(long = "req", value_name = "ID")]
    pub reqs: Vec<String>,
}

/// Why `pushbench coverage` printed nothing.
#[derive(Debug, thiserror::Error)]
pub enum CoverageCommandError {
    /// The file could not be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The map has malformed rows.
    #[error("{origin} is not a valid coverage map:\n{source}")]
    Parse {
        /// Where it came from.
        origin: String,
        /// Every problem.
        source: crate::coverage::ParseError,
    },
    /// This binary was built without features/COVERAGE.md.
    #[error("this pushbench carries no features/COVERAGE.md; give one with --file")]
    NotEmbedded,
}

/// `pushbench credentials`.
#[derive(Debug, Args)]
pub struct CredentialsArgs {
    /// The directory to write (point the target's `apns.credentials_dir` at it).
    #[arg(long)]
    pub out: PathBuf,
    /// The app's bundle id (VoIP topic `<bundle id>.voip`).
    #[arg(long, default_value = mock_apns::credentials::DEFAULT_BUNDLE_ID)]
    pub bundle_id: String,
    /// The team id (10 characters); random when not given.
    #[arg(long)]
    pub team_id: Option<String>,
    /// Extra DNS name or IP address for the mock's server certificate (repeatable), when the
    /// gateway reaches the bench under another name.
    #[arg(long = "server-name")]
    pub server_names: Vec<String>,
    /// Replace credentials the folder holds for another bundle id, team id or server name
    /// (gateways configured with the old ones must then be given the new ones).
    #[arg(long)]
    pub force: bool,
}

/// Why `pushbench credentials` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsCommandError {
    /// Generating or loading failed.
    #[error(transparent)]
    Credentials(#[from] mock_apns::CredentialsError),
    /// The folder holds credentials made for something else.
    #[error("{dir} holds credentials made for {}; nothing was changed (--force replaces them, and every gateway configured with the old ones must then be given the new ones)", .differences.join(", "))]
    Mismatch {
        /// The folder.
        dir: PathBuf,
        /// What differs (`bundle id com.a (asked: com.b)`).
        differences: Vec<String>,
    },
}

/// `pushbench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The target file (TOML); without it, the embedded reference gateway.
    #[arg(long, env = "PUSHBENCH_TARGET")]
    pub target: Option<PathBuf>,
    /// Without --target: run the embedded reference gateway in this cancel profile
    /// (rfc8599-drop, flexisip-replay or cancel-push; default rfc8599-drop).
    #[arg(long, value_parser = parse_cancel)]
    pub embedded_cancel: Option<CancelPolicy>,
    /// Tag expression selecting scenarios, e.g. '@req:SIP-C2 or @apns'.
    #[arg(long)]
    pub tags: Option<String>,
    /// Only scenarios whose name ("Feature: scenario") matches this regular expression.
    #[arg(long)]
    pub name: Option<String>,
    /// Only scenarios with a requirement id starting with PREFIX (repeatable), e.g. SIP-B.
    #[arg(long, value_name = "PREFIX")]
    pub req: Vec<String>,
    /// Start no further scenario once one has failed the run (the rest are reported "not run").
    #[arg(long)]
    pub fail_fast: bool,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write Cucumber JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// How many scenarios run at once (default 64; 1 when the target has a before_scenario command).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Deadline of the whole run, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Do not start the target's `[container]`: it is already running (Compose, testcontainers).
    #[arg(long)]
    pub no_container: bool,
    /// The run's seed: draws the same wake delays as the run that printed it (default: a fresh
    /// one, printed at the start and written in the reports).
    #[arg(long, env = "PUSHBENCH_SEED")]
    pub seed: Option<u64>,
    /// Feature files or directories, or FILE:LINE for one scenario (default: the suite embedded
    /// in the binary; a path not on disk may name a part of it, e.g. `features/xmpp`).
    pub features: Vec<PathBuf>,
}

/// `pushbench check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The target file, whose capabilities are checked too; without it, the embedded gateway.
    #[arg(long, env = "PUSHBENCH_TARGET")]
    pub target: Option<PathBuf>,
    /// Feature files or directories (default: the embedded suite).
    pub features: Vec<PathBuf>,
}

/// `pushbench list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The target file, to show which scenarios are not applicable to it.
    #[arg(long, env = "PUSHBENCH_TARGET")]
    pub target: Option<PathBuf>,
    /// Without --target: the embedded reference gateway's cancel profile.
    #[arg(long, value_parser = parse_cancel)]
    pub embedded_cancel: Option<CancelPolicy>,
    /// Tag expression selecting scenarios.
    #[arg(long)]
    pub tags: Option<String>,
    /// Only scenarios whose name matches this regular expression.
    #[arg(long)]
    pub name: Option<String>,
    /// Only scenarios with a requirement id starting with PREFIX (repeatable).
    #[arg(long, value_name = "PREFIX")]
    pub req: Vec<String>,
    /// Feature files or directories, or FILE:LINE (default: the embedded suite).
    pub features: Vec<PathBuf>,
}

/// `pushbench features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// What to do with the embedded suite.
    #[command(subcommand)]
    pub action: FeaturesAction,
}

/// `pushbench features …`.
#[derive(Debug, Subcommand)]
pub enum FeaturesAction {
    /// Write the embedded feature files, REQUIREMENTS.md and COVERAGE.md under DIR, for editing;
    /// run them with `pushbench run DIR`.
    Export {
        /// The folder to write (created if missing).
        dir: PathBuf,
        /// Overwrite files that already exist (they are kept otherwise).
        #[arg(long)]
        force: bool,
    },
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> Self {
        RunOptions {
            target: a.target,
            embedded_cancel: a.embedded_cancel,
            tags: a.tags,
            name: a.name,
            req: a.req,
            fail_fast: a.fail_fast,
            features: a.features,
            junit: a.junit,
            json: a.json,
            html: a.html,
            concurrency: a.concurrency,
            timeout: Duration::from_secs(a.timeout.max(1)),
            manage_container: !a.no_container,
            seed: a.seed,
            ..RunOptions::default()
        }
    }
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("{s:?}: expected covered, partly, planned, not testable, not applicable, other PNS or optional")
    })
}

fn parse_cancel(s: &str) -> Result<CancelPolicy, String> {
    toml::Value::String(s.to_owned())
        .try_into()
        .map_err(|_| format!("{s:?}: expected rfc8599-drop, flexisip-replay or cancel-push"))
}

/// Parses the process's arguments and runs.
pub fn main() -> ExitCode {
    main_from(std::env::args_os())
}

/// Parses `args` (the first is the program name) and runs.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Run(a) => {
            let result = runner::run_blocking(&a.into());
            if let Err(e) = &result {
                say_err(&format!("pushbench: {e}\n"));
            }
            runner::exit_code(&result)
        }
        Command::Credentials(a) => print_or_fail(credentials(&a), "credentials: "),
        Command::Features(FeaturesArgs {
            action: FeaturesAction::Export { dir, force },
        }) => match crate::bundle::export(&dir, force) {
            Ok((written, kept)) => {
                say(&format!(
                    "wrote {} files under {}{}\n",
                    written.len(),
                    dir.display(),
                    if kept.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; kept {} that already exist (--force overwrites them)",
                            kept.len()
                        )
                    }
                ));
                ExitCode::SUCCESS
            }
            Err(e) => {
                say_err(&format!(
                    "pushbench: features export {}: {e}\n",
                    dir.display()
                ));
                ExitCode::from(2)
            }
        },
        Command::Check(a) => match check(&a) {
            Ok(report) if report.findings.is_empty() => {
                say(&format!("{report}\n"));
                ExitCode::SUCCESS
            }
            Ok(report) => {
                say_err(&format!("{report}\n"));
                ExitCode::from(2)
            }
            Err(e) => {
                say_err(&format!("pushbench: {e}\n"));
                ExitCode::from(2)
            }
        },
        Command::Coverage(a) => print_or_fail(coverage(&a), "coverage: "),
        Command::List(a) => print_or_fail(list(&a), ""),
        Command::Load(a) => {
            let result = crate::load::run_blocking(&a);
            if let Err(e) = &result {
                say_err(&format!("pushbench: load: {e}\n"));
            }
            ExitCode::from(crate::load::exit_code(&a, &result))
        }
    }
}

/// Prints a command's text (exit 0) or its error after `pushbench: {what}` (exit 2).
fn print_or_fail(result: Result<String, impl std::fmt::Display>, what: &str) -> ExitCode {
    match result {
        Ok(text) => {
            say(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            say_err(&format!("pushbench: {what}{e}\n"));
            ExitCode::from(2)
        }
    }
}

/// The text `pushbench list` prints: one line per selected scenario (`file:line  ids  name`,
/// with the reason when the target's profile excludes it), then a count.
pub fn list(a: &ListArgs) -> Result<String, RunError> {
    let opts = RunOptions {
        target: a.target.clone(),
        embedded_cancel: a.embedded_cancel,
        ..RunOptions::default()
    };
    let (target, _) = runner::load_target(&opts)?;
    let (paths, positions) = runner::split_positions(&a.features)?;
    let catalog = Catalog::load(&paths)?;
    let selection =
        runner::Selection::new(a.tags.as_deref(), a.name.as_deref(), &a.req, positions)?;
    let planned = runner::plan(&catalog, &selection, &target)?;
    if planned.is_empty() {
        return Err(RunError::NothingSelected {
            features: runner::describe_features(&a.features),
            tags: selection.describe(a.tags.as_deref()),
        });
    }
    let mut out = String::new();
    let mut ids = std::collections::BTreeSet::new();
    for (s, na) in &planned {
        ids.extend(s.requirements.iter().cloned());
        out.push_str(&format!(
            "{}  {}  {}{}\n",
            s.key,
            s.requirements.join(","),
            s.full_name(),
            na.as_ref()
                .map(|w| format!("  [not applicable: {w}]"))
                .unwrap_or_default()
        ));
    }
    let runnable = planned.iter().filter(|(_, na)| na.is_none()).count();
    out.push_str(&format!(
        "{} scenarios ({} applicable to {}), {} requirement ids\n",
        planned.len(),
        runnable,
        target.name,
        ids.len()
    ));
    Ok(out)
}

/// The text `pushbench coverage` prints: the totals (plain or markdown), then the statements
/// `--status` and `--req` ask for.
pub fn coverage(a: &CoverageArgs) -> Result<String, CoverageCommandError> {
    let (origin, text) = match &a.file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|source| CoverageCommandError::Io {
                path: path.clone(),
                source,
            })?,
        ),
        None => (
            "features/COVERAGE.md (embedded)".to_owned(),
            crate::bundle::coverage()
                .ok_or(CoverageCommandError::NotEmbedded)?
                .to_owned(),
        ),
    };
    let map = crate::coverage::parse(&text).map_err(|source| CoverageCommandError::Parse {
        origin: origin.clone(),
        source,
    })?;
    if a.markdown {
        return Ok(map.totals_markdown());
    }
    let mut out = format!(
        "{origin}: {} normative statements, {} requirement ids named\n\n",
        map.statements.len(),
        map.named_requirements().len()
    );
    out.push_str(&map.totals_text());
    if let Some(status) = a.status {
        let rows: Vec<_> = map
            .statements
            .iter()
            .filter(|s| s.status == status)
            .collect();
        out.push_str(&format!("\n{status} ({}):\n", rows.len()));
        for s in rows {
            out.push_str(&statement_line(s));
        }
    }
    for id in &a.reqs {
        out.push_str(&requirement_lines(&map, id));
    }
    Ok(out)
}

fn statement_line(s: &crate::coverage::Statement) -> String {
    let mut out = format!(
        "  {}  §{}  {}  {}\n",
        s.id,
        s.section,
        s.keyword.as_str(),
        s.text
    );
    if !s.note.is_empty() {
        out.push_str(&format!("      {}\n", s.note));
    }
    out
}

fn requirement_lines(map: &CoverageMap, id: &str) -> String {
    let checked = map.statements_checked_by(id);
    let mut out = String::new();
    if !checked.is_empty() {
        out.push_str(&format!("\n{id} checks {} statements:\n", checked.len()));
        for s in checked {
            out.push_str(&format!("  ({}) ", s.status));
            out.push_str(statement_line(s).trim_start());
        }
    }
    match map.unmapped_reason(id) {
        Some(why) => out.push_str(&format!("\n{id} checks no standard statement: {why}\n")),
        None if out.is_empty() => {
            out.push_str(&format!("\n{id} is not in the coverage map\n"));
        }
        None => {}
    }
    out
}

/// The static check `pushbench check` prints (see [`crate::check`]).
pub fn check(a: &CheckArgs) -> Result<crate::check::CheckReport, RunError> {
    let opts = RunOptions {
        target: a.target.clone(),
        ..RunOptions::default()
    };
    let (target, _) = runner::load_target(&opts)?;
    let (paths, _) = runner::split_positions(&a.features)?;
    Ok(crate::check::check(&paths, &target)?)
}

/// Writes (or reuses) the credentials through mock-apns and says which file is for what. A
/// folder made for another bundle id, team id or server name is refused unless `--force`.
pub fn credentials(a: &CredentialsArgs) -> Result<String, CredentialsCommandError> {
    let differences = crate::credentials::differences(
        &a.out,
        &a.bundle_id,
        a.team_id.as_deref(),
        &a.server_names,
    );
    if !differences.is_empty() {
        if !a.force {
            return Err(CredentialsCommandError::Mismatch {
                dir: a.out.clone(),
                differences,
            });
        }
        crate::credentials::remove(&a.out).map_err(|source| mock_apns::CredentialsError::Io {
            path: a.out.clone(),
            source,
        })?;
    }
    let c = mock_apns::Credentials::generate_or_load(
        &a.out,
        &a.bundle_id,
        a.team_id.as_deref(),
        &a.server_names,
    )?;
    let m = c.manifest();
    let mut out = format!(
        "credentials in {} (team id {}, bundle id {})\n  trust this CA (the mock's server certificate chains to it): {}\n  token auth: key {} (kid {}, iss {})\n",
        c.dir().display(),
        c.team_id(),
        c.bundle_id(),
        c.ca_path().display(),
        c.key_path().display(),
        c.key_id(),
        c.team_id()
    );
    for cert in &m.client_certs {
        out.push_str(&format!(
            "  certificate auth ({}): cert {}, key {}\n",
            cert.environment,
            c.dir().join(&cert.cert_file).display(),
            c.dir().join(&cert.key_file).display()
        ));
    }
    out.push_str(&format!("  topics: {}\n", m.topics.join(", ")));
    Ok(out)
}
