//! What a run produced, and how it is shown: the terminal summary (failures with their ladder
//! diagrams, then the table of verdicts by requirement id), JUnit XML, Cucumber JSON and HTML.
//!
//! Every report is written from the same [`RunReport`], built from the final verdicts: one entry
//! per scenario, whatever retries happened, so no report can disagree with the exit code.

pub mod html;
pub mod json;
pub mod junit;

use crate::catalog::ScenarioInfo;
use crate::expected::{Expectation, Outcome};
use crate::target::CommandRun;
use crate::verdict::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

/// How one step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// It passed.
    Passed,
    /// It failed: the target misbehaved.
    Failed,
    /// It could not establish its precondition.
    Inconclusive,
    /// No step definition matches its text (or several do).
    Undefined,
    /// An earlier step ended the scenario, or the scenario was not run.
    NotRun,
}

impl StepStatus {
    /// `passed`, `failed`, …
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Passed => "passed",
            StepStatus::Failed => "failed",
            StepStatus::Inconclusive => "inconclusive",
            StepStatus::Undefined => "undefined",
            StepStatus::NotRun => "not run",
        }
    }
}

/// One step of a scenario's final attempt.
#[derive(Clone, Debug, Serialize)]
pub struct StepRun {
    /// `Given`, `When`, `Then`, `And`, `But`.
    pub keyword: String,
    /// The step's text.
    pub text: String,
    /// How it ended.
    pub status: StepStatus,
    /// The error, for a failed, inconclusive or undefined step.
    pub error: Option<String>,
    /// How long it ran.
    pub duration: Option<Duration>,
}

/// The final result of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// The scenario.
    pub info: ScenarioInfo,
    /// Its verdict.
    pub verdict: Verdict,
    /// The verdict after the expected-failures baseline.
    pub outcome: Outcome,
    /// Why it did not pass (the failing step's error, the unmet profile, a recorded verdict).
    pub reason: Option<String>,
    /// The step that decided the verdict, as `Keyword text`.
    pub failed_step: Option<String>,
    /// Every step, in order (background first).
    pub steps: Vec<StepRun>,
    /// Attempts run (more than 1 with `@retry`).
    pub attempts: usize,
    /// Wall time of the final attempt.
    pub duration: Duration,
    /// The final attempt's timeline.
    pub events: Vec<timeline::Event>,
    /// When, on the timeline, the verdict was known (the last step ended): later events are
    /// teardown.
    pub verdict_at: Option<Duration>,
    /// The baseline entry that covers it.
    pub expectation: Option<Expectation>,
}

impl ScenarioResult {
    /// The timeline as a ladder diagram.
    pub fn ladder(&self) -> String {
        timeline::render_ladder(&self.events)
    }
}

/// Counts of one requirement id (or the whole run).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Failed, unexpectedly.
    pub fail: usize,
    /// Failed, as expected.
    pub xfail: usize,
    /// Passed, unexpectedly.
    pub xpass: usize,
    /// Inconclusive.
    pub inconclusive: usize,
    /// Not applicable.
    pub not_applicable: usize,
    /// Not run (the run was interrupted or stopped by `--fail-fast`).
    pub not_run: usize,
}

impl Counts {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Pass => self.pass += 1,
            Outcome::Fail => self.fail += 1,
            Outcome::Xfail => self.xfail += 1,
            Outcome::Xpass => self.xpass += 1,
            Outcome::Inconclusive => self.inconclusive += 1,
            Outcome::NotApplicable => self.not_applicable += 1,
            Outcome::NotRun => self.not_run += 1,
        }
    }

    /// Scenarios counted.
    pub fn total(&self) -> usize {
        self.pass
            + self.fail
            + self.xfail
            + self.xpass
            + self.inconclusive
            + self.not_applicable
            + self.not_run
    }
}

/// One row of the end-of-run table.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RequirementRow {
    /// The counts.
    pub counts: Counts,
    /// `(scenario name, outcome)`.
    pub scenarios: Vec<(String, Outcome)>,
}

/// The signal that interrupted a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Interruption {
    /// Ctrl-C.
    Sigint,
    /// `kill`, or a CI job being cancelled.
    Sigterm,
}

impl Interruption {
    /// `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Interruption::Sigint => "SIGINT",
            Interruption::Sigterm => "SIGTERM",
        }
    }

    /// The shell's convention: 128 + the signal's number (130, 143).
    pub fn exit_code(self) -> u8 {
        match self {
            Interruption::Sigint => 130,
            Interruption::Sigterm => 143,
        }
    }
}

/// What a report says about the run and the target before any verdict: when, which pushbench,
/// against what.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunHeader {
    /// pushbench's version.
    pub version: String,
    /// `embedded` or `external`.
    pub kind: String,
    /// The target's description.
    pub description: String,
    /// Its cancel profile.
    pub cancel: String,
    /// Its declared capabilities.
    pub capabilities: Vec<String>,
    /// Its timers, as `name = value` lines (`bucket = 30000 ms`).
    pub timers: Vec<(String, String)>,
    /// Addresses it gave as host names, and what they resolved to (`sip.udp kamailio:5060 →
    /// 172.18.0.3:5060`).
    pub resolved: Vec<String>,
    /// The feature files run (`the embedded suite` or paths).
    pub features: String,
    /// The run's seed: `pushbench run --seed N` draws the same wake delays
    /// ([`crate::draws`]).
    pub seed: Option<u64>,
}

/// Everything a run produced.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The target's name.
    pub target: String,
    /// The run's header: version, target profile, timers.
    pub header: RunHeader,
    /// The signal that stopped the run early, if one did.
    pub interrupted: Option<Interruption>,
    /// When and how the gateway stopped answering, if it did.
    pub gateway_down: Option<String>,
    /// When the run began.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// One per selected scenario, in catalogue order.
    pub scenarios: Vec<ScenarioResult>,
    /// The target's start/reset/stop commands that ran.
    pub commands: Vec<CommandRun>,
    /// Things the operator should know (stale baseline entries, …).
    pub warnings: Vec<String>,
}

impl RunReport {
    /// True when no outcome fails the run and the run was not interrupted.
    pub fn passed(&self) -> bool {
        self.interrupted.is_none() && !self.scenarios.iter().any(|s| s.outcome.fails_run())
    }

    /// The scenarios in the order a reader wants them: failures first (fail, xpass,
    /// inconclusive), then not run, xfail, pass and not applicable; file order within each.
    pub fn failures_first(&self) -> Vec<&ScenarioResult> {
        let rank = |o: Outcome| match o {
            Outcome::Fail => 0,
            Outcome::Xpass => 1,
            Outcome::Inconclusive => 2,
            Outcome::NotRun => 3,
            Outcome::Xfail => 4,
            Outcome::Pass => 5,
            Outcome::NotApplicable => 6,
        };
        let mut v: Vec<&ScenarioResult> = self.scenarios.iter().collect();
        v.sort_by_key(|s| rank(s.outcome));
        v
    }

    /// Counts over the whole run.
    pub fn totals(&self) -> Counts {
        let mut c = Counts::default();
        for s in &self.scenarios {
            c.add(s.outcome);
        }
        c
    }

    /// The table's rows: a scenario counts once under each requirement id it checks.
    pub fn by_requirement(&self) -> BTreeMap<String, RequirementRow> {
        let mut rows: BTreeMap<String, RequirementRow> = BTreeMap::new();
        for s in &self.scenarios {
            for r in &s.info.requirements {
                let row = rows.entry(r.clone()).or_default();
                row.counts.add(s.outcome);
                row.scenarios.push((s.info.name.clone(), s.outcome));
            }
        }
        rows
    }

    /// The end-of-run table of verdicts by requirement id, then the totals and the overall
    /// verdict.
    pub fn table(&self) -> String {
        let rows = self.by_requirement();
        let width = rows.keys().map(|k| k.len()).max().unwrap_or(0).max(11);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<width$}  pass  fail  xfail  xpass  inconc  n/a  n/r   scenarios",
            "requirement"
        );
        for (id, row) in &rows {
            let c = &row.counts;
            let names: Vec<String> = row
                .scenarios
                .iter()
                .map(|(n, o)| format!("{n} [{o}]"))
                .collect();
            let _ = writeln!(
                out,
                "{id:<width$}  {:>4}  {:>4}  {:>5}  {:>5}  {:>6}  {:>3}  {:>3}   {}",
                c.pass,
                c.fail,
                c.xfail,
                c.xpass,
                c.inconclusive,
                c.not_applicable,
                c.not_run,
                names.join("; ")
            );
        }
        let t = self.totals();
        let _ = writeln!(
            out,
            "{} scenarios: {} pass, {} fail, {} xfail, {} xpass, {} inconclusive, {} not-applicable{} ({:.2} s, target {})",
            t.total(),
            t.pass,
            t.fail,
            t.xfail,
            t.xpass,
            t.inconclusive,
            t.not_applicable,
            if t.not_run > 0 {
                format!(", {} not run", t.not_run)
            } else {
                String::new()
            },
            self.duration.as_secs_f64(),
            self.target
        );
        if let Some(down) = &self.gateway_down {
            let _ = writeln!(out, "Gateway: {down}");
        }
        if let Some(sig) = self.interrupted {
            let _ = writeln!(
                out,
                "Interrupted by {}: the scenarios that had not finished are not run",
                sig.name()
            );
        }
        let _ = writeln!(
            out,
            "Overall: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        );
        out
    }

    /// The details of every scenario that did not simply pass: the failed step, the error (with
    /// the offending bytes when it carries them) and the ladder diagram.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            match s.outcome {
                Outcome::Pass | Outcome::NotApplicable | Outcome::NotRun => continue,
                Outcome::Xfail => {
                    let why = s
                        .expectation
                        .as_ref()
                        .map(|e| e.reason.as_str())
                        .unwrap_or("");
                    let _ = writeln!(
                        out,
                        "XFAIL {} ({}): expected: {why}\n",
                        s.info.full_name(),
                        s.info.key
                    );
                    continue;
                }
                _ => {}
            }
            let _ = writeln!(
                out,
                "{} {} ({}) [{}]",
                s.outcome.as_str().to_uppercase(),
                s.info.full_name(),
                s.info.key,
                s.info.requirements.join(", ")
            );
            if s.outcome == Outcome::Xpass {
                let why = s
                    .expectation
                    .as_ref()
                    .map(|e| e.reason.as_str())
                    .unwrap_or("");
                let _ = writeln!(
                    out,
                    "  passed, but the expected-failures file says it fails: {why}\n  (remove the entry if the gateway was fixed)"
                );
            }
            if let Some(step) = &s.failed_step {
                let _ = writeln!(out, "  step: {step}");
            }
            if let Some(reason) = &s.reason {
                let _ = writeln!(out, "  error: {}", indent(reason, "         ").trim_start());
            }
            if s.attempts > 1 {
                let _ = writeln!(out, "  attempts: {}", s.attempts);
            }
            if s.events.is_empty() {
                let _ = writeln!(out, "  timeline: (nothing recorded)\n");
            } else {
                let _ = writeln!(out, "  timeline:\n{}", s.ladder());
            }
        }
        for c in &self.commands {
            if !c.succeeded() {
                let _ = writeln!(
                    out,
                    "command {} ({}) {}\nstdout:\n{}\nstderr:\n{}",
                    c.which,
                    c.run,
                    if c.timed_out {
                        "timed out".to_owned()
                    } else {
                        format!("exited with {:?}", c.exit_code)
                    },
                    c.stdout,
                    c.stderr
                );
            }
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

/// `2026-12-07 19:53:36 UTC`: a time as a report shows it.
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days (http://howardhinnant.github.io/date_algorithms.html).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Writes to standard output, ignoring errors: a closed pipe (`pushbench run | head`) must not
/// turn into a panic halfway through a run.
pub fn say(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Writes to standard error, ignoring errors.
pub fn say_err(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Escapes text for XML and HTML attribute and element content; drops characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::ScenarioKey;

    pub(crate) fn result(
        name: &str,
        reqs: &[&str],
        verdict: Verdict,
        expected: bool,
    ) -> ScenarioResult {
        let t = timeline::Timeline::new();
        t.recorder("bob", timeline::Protocol::Sip).sent(
            "gateway",
            "udp",
            "INVITE sip:alice@example.com",
            &b"INVITE \xff"[..],
        );
        ScenarioResult {
            info: ScenarioInfo {
                key: ScenarioKey {
                    path: "features/x.feature".into(),
                    line: name.len(),
                    col: 3,
                },
                feature: "Calls <&>".into(),
                rule: None,
                name: name.into(),
                tags: reqs.iter().map(|r| format!("req:{r}")).collect(),
                requirements: reqs.iter().map(|s| s.to_string()).collect(),
                profiles: vec![],
                steps: vec![("Given".into(), "a thing".into())],
            },
            verdict,
            outcome: Outcome::gate(verdict, expected),
            reason: (verdict != Verdict::Pass).then(|| format!("{verdict} because \"x\" < y")),
            failed_step: (verdict == Verdict::Fail).then(|| "Given a thing".into()),
            steps: vec![StepRun {
                keyword: "Given".into(),
                text: "a thing".into(),
                status: match verdict {
                    Verdict::Pass => StepStatus::Passed,
                    Verdict::Fail => StepStatus::Failed,
                    Verdict::Inconclusive => StepStatus::Inconclusive,
                    Verdict::NotApplicable => StepStatus::NotRun,
                },
                error: None,
                duration: Some(Duration::from_millis(3)),
            }],
            attempts: 1,
            duration: Duration::from_millis(5),
            events: t.events(),
            verdict_at: None,
            expectation: expected.then(|| Expectation {
                reason: "known bug".into(),
                evidence: "seen".into(),
                step: None,
            }),
        }
    }

    pub(crate) fn report(scenarios: Vec<ScenarioResult>) -> RunReport {
        RunReport {
            target: "t".into(),
            header: RunHeader::default(),
            interrupted: None,
            gateway_down: None,
            started: SystemTime::UNIX_EPOCH,
            duration: Duration::from_millis(1234),
            scenarios,
            commands: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn table_groups_by_requirement() {
        let r = report(vec![
            result("a", &["R-1"], Verdict::Pass, false),
            result("bb", &["R-1", "R-2"], Verdict::Fail, true),
            result("ccc", &["R-2"], Verdict::NotApplicable, false),
        ]);
        let rows = r.by_requirement();
        assert_eq!(
            rows["R-1"].counts,
            Counts {
                pass: 1,
                xfail: 1,
                ..Default::default()
            }
        );
        assert_eq!(
            rows["R-2"].counts,
            Counts {
                xfail: 1,
                not_applicable: 1,
                ..Default::default()
            }
        );
        let table = r.table();
        assert!(table.contains("a [pass]; bb [xfail]"), "{table}");
        assert!(table.contains("Overall: PASS"), "{table}");
        assert!(r.passed());
        let r = report(vec![result("a", &["R-1"], Verdict::Inconclusive, false)]);
        assert!(!r.passed() && r.table().contains("Overall: FAIL"));
    }

    #[test]
    fn failures_show_the_step_the_error_and_the_ladder() {
        let r = report(vec![result("a", &["R-1"], Verdict::Fail, false)]);
        let f = r.failures();
        assert!(f.contains("FAIL Calls <&>: a"), "{f}");
        assert!(f.contains("step: Given a thing"), "{f}");
        assert!(f.contains("error: fail because"), "{f}");
        assert!(f.contains("INVITE sip:alice@example.com [udp]"), "{f}");
    }

    #[test]
    fn times_are_shown_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_672_016);
        assert_eq!(utc(t), "2026-12-07 19:33:36 UTC");
        assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc(leap), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn xml_escape_escapes_and_drops_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\\x01"
        );
    }
}
