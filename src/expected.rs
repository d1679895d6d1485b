//! Expected failures: the per-target baseline that gates CI (rustls BoGo's reasons, osmocom's
//! `expected-results.xml`).
//!
//! The file is TOML; each entry is keyed by a requirement id or a scenario name and carries the
//! reason and the evidence:
//!
//! ```toml
//! [requirement."SIP-C2"]
//! reason = "tsilo drops the INVITE but never tells the phone"
//! evidence = "timeline: no CANCEL or push reached alice-iphone after 487 (run of 2026-11-22)"
//!
//! [scenario."Fast answer: the user taps Answer before the INVITE arrives"]
//! reason = "…"
//! evidence = "…"
//! step = "Alice's iPhone rings for the call"
//! ```
//!
//! Gating: an expected failure that fails is `xfail` (the run still passes); one that passes is
//! `xpass` (the baseline is stale: the run fails); a failure nobody expected fails the run.
//! Inconclusive and not-applicable verdicts are not changed by the baseline.
//!
//! `step` (optional) pins the failure to the step it was seen at: a part of that step's text. A
//! failure at another step is then a new failure, not the known one, and fails the run; without
//! `step` any failing step of the covered scenarios counts.

use crate::catalog::ScenarioInfo;
use crate::verdict::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why an expected-failures file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// Could not read it.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid TOML or not the expected shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An entry without a reason.
    #[error("{path}: {key}: an expected failure needs a reason")]
    NoReason {
        /// The file.
        path: PathBuf,
        /// `requirement."ID"` or `scenario."name"`.
        key: String,
    },
    /// An entry whose `step` is empty (it would match every step).
    #[error(
        "{path}: {key}: `step` is empty; give a part of the failing step's text or leave it out"
    )]
    EmptyStep {
        /// The file.
        path: PathBuf,
        /// `requirement."ID"` or `scenario."name"`.
        key: String,
    },
}

/// One expected failure.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Why it fails (the finding, in one sentence).
    pub reason: String,
    /// What shows it (the timeline excerpt, the run, the vendor bug).
    #[serde(default)]
    pub evidence: String,
    /// A part of the text of the step the failure was seen at; a failure at any other step is
    /// not this one. `None`: any failing step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}

impl Expectation {
    /// Whether a failure at `failed_step` (`Keyword text`, as the report gives it) is the failure
    /// this entry expects.
    pub fn covers(&self, failed_step: Option<&str>) -> bool {
        match (&self.step, failed_step) {
            (None, _) => true,
            (Some(want), Some(got)) => got.contains(want.as_str()),
            (Some(_), None) => false,
        }
    }

    /// Applies this (optional) expectation to a scenario's verdict and failing step: a failure
    /// at another step than the expected one is a plain failure.
    pub fn gate(
        expectation: Option<&Expectation>,
        verdict: Verdict,
        failed_step: Option<&str>,
    ) -> Outcome {
        let expected =
            expectation.is_some_and(|e| verdict != Verdict::Fail || e.covers(failed_step));
        Outcome::gate(verdict, expected)
    }
}

/// The baseline of one target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailures {
    /// By requirement id: every scenario checking it is expected to fail.
    #[serde(default)]
    pub requirement: BTreeMap<String, Expectation>,
    /// By scenario name (the name alone, or `Feature: scenario`).
    #[serde(default)]
    pub scenario: BTreeMap<String, Expectation>,
}

/// A scenario's verdict after the baseline is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Passed, and nobody expected otherwise.
    Pass,
    /// Failed, as the baseline expects.
    Xfail,
    /// Not run: the target's profile excludes it.
    NotApplicable,
    /// Not run because the run stopped first (interrupted, or `--fail-fast` after a failure).
    NotRun,
    /// The bench could not establish the precondition.
    Inconclusive,
    /// Passed although the baseline expects a failure: the baseline is stale.
    Xpass,
    /// Failed, and nobody expected it.
    Fail,
}

impl Outcome {
    /// Applies the baseline to a verdict.
    pub fn gate(verdict: Verdict, expected: bool) -> Outcome {
        match (verdict, expected) {
            (Verdict::Pass, false) => Outcome::Pass,
            (Verdict::Pass, true) => Outcome::Xpass,
            (Verdict::Fail, false) => Outcome::Fail,
            (Verdict::Fail, true) => Outcome::Xfail,
            (Verdict::Inconclusive, _) => Outcome::Inconclusive,
            (Verdict::NotApplicable, _) => Outcome::NotApplicable,
        }
    }

    /// True when this outcome makes the run fail: an unexpected failure, a stale expectation, or
    /// an inconclusive scenario (the bench could not judge, so the run proves nothing).
    pub fn fails_run(self) -> bool {
        matches!(self, Outcome::Fail | Outcome::Xpass | Outcome::Inconclusive)
    }

    /// `pass`, `xfail`, `not-applicable`, `not-run`, `inconclusive`, `xpass`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Xfail => "xfail",
            Outcome::NotApplicable => "not-applicable",
            Outcome::NotRun => "not-run",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Xpass => "xpass",
            Outcome::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ExpectedFailures {
    /// Parses a baseline; `path` is only used in errors.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<ExpectedFailures, ExpectedError> {
        let parsed: ExpectedFailures = toml::from_str(text).map_err(|e| ExpectedError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        for (kind, map) in [
            ("requirement", &parsed.requirement),
            ("scenario", &parsed.scenario),
        ] {
            for (k, v) in map {
                if v.reason.trim().is_empty() {
                    return Err(ExpectedError::NoReason {
                        path: path.to_owned(),
                        key: format!("{kind}.{k:?}"),
                    });
                }
                if v.step.as_deref().is_some_and(|s| s.trim().is_empty()) {
                    return Err(ExpectedError::EmptyStep {
                        path: path.to_owned(),
                        key: format!("{kind}.{k:?}"),
                    });
                }
            }
        }
        Ok(parsed)
    }

    /// Reads a baseline file.
    pub fn load(path: &Path) -> Result<ExpectedFailures, ExpectedError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExpectedError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// The expectation that covers this scenario, if any (a scenario entry wins over a requirement
    /// entry).
    pub fn lookup(&self, s: &ScenarioInfo) -> Option<&Expectation> {
        self.scenario
            .get(&s.name)
            .or_else(|| self.scenario.get(&s.full_name()))
            .or_else(|| s.requirements.iter().find_map(|r| self.requirement.get(r)))
    }

    /// The requirement ids this baseline expects to fail among `scenarios`: every requirement
    /// entry, and the ids of the scenarios a scenario entry names (for a requirement only some of
    /// whose scenarios fail).
    pub fn listed_requirements<'a>(
        &self,
        scenarios: impl IntoIterator<Item = &'a ScenarioInfo>,
    ) -> BTreeSet<String> {
        let by_scenario: Vec<String> = scenarios
            .into_iter()
            .filter(|s| {
                self.scenario.contains_key(&s.name) || self.scenario.contains_key(&s.full_name())
            })
            .flat_map(|s| s.requirements.iter().cloned())
            .collect();
        self.requirement
            .keys()
            .cloned()
            .chain(by_scenario)
            .collect()
    }

    /// Entries that match no scenario of the catalogue, and `step`s that match no step of the
    /// scenarios their entry covers (typos, removed scenarios, reworded steps).
    pub fn unmatched(&self, all: &[ScenarioInfo]) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |key: String, e: &Expectation, covered: Vec<&ScenarioInfo>| {
            if covered.is_empty() {
                out.push(key);
            } else if let Some(step) = &e.step {
                let found = covered.iter().any(|s| {
                    s.steps
                        .iter()
                        .any(|(kw, text)| format!("{kw} {text}").contains(step.as_str()))
                });
                if !found {
                    out.push(format!("{key}.step {step:?}"));
                }
            }
        };
        for (id, e) in &self.requirement {
            let covered = all.iter().filter(|s| s.requirements.contains(id)).collect();
            check(format!("requirement.{id:?}"), e, covered);
        }
        for (name, e) in &self.scenario {
            let covered = all
                .iter()
                .filter(|s| &s.name == name || &s.full_name() == name)
                .collect();
            check(format!("scenario.{name:?}"), e, covered);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::ScenarioKey;

    fn scenario(name: &str, reqs: &[&str]) -> ScenarioInfo {
        ScenarioInfo {
            key: ScenarioKey {
                path: "x.feature".into(),
                line: 1,
                col: 1,
            },
            feature: "F".into(),
            rule: None,
            name: name.into(),
            tags: vec![],
            requirements: reqs.iter().map(|s| s.to_string()).collect(),
            profiles: vec![],
            steps: vec![],
        }
    }

    const FILE: &str = r#"
[requirement."SIP-C2"]
reason = "drops the INVITE silently"
evidence = "no push after 487"

[scenario."fast answer"]
reason = "answers too early"
"#;

    #[test]
    fn gating_xfail_xpass_and_new_failures() {
        let e = ExpectedFailures::from_toml_str(FILE, Path::new("x.toml")).unwrap();
        let c2 = scenario("ghost call", &["SIP-C2"]);
        let fast = scenario("fast answer", &["SIP-B1"]);
        let other = scenario("other", &["SIP-A1"]);
        assert_eq!(e.lookup(&c2).unwrap().reason, "drops the INVITE silently");
        assert_eq!(e.lookup(&fast).unwrap().reason, "answers too early");
        assert!(e.lookup(&other).is_none());

        let gate = |s: &ScenarioInfo, v| Outcome::gate(v, e.lookup(s).is_some());
        assert_eq!(gate(&c2, Verdict::Fail), Outcome::Xfail);
        assert!(!Outcome::Xfail.fails_run());
        assert_eq!(gate(&c2, Verdict::Pass), Outcome::Xpass);
        assert!(Outcome::Xpass.fails_run());
        assert_eq!(gate(&other, Verdict::Fail), Outcome::Fail);
        assert!(Outcome::Fail.fails_run());
        assert_eq!(gate(&other, Verdict::Pass), Outcome::Pass);
        assert!(!Outcome::Pass.fails_run());
        assert_eq!(gate(&c2, Verdict::Inconclusive), Outcome::Inconclusive);
        assert!(Outcome::Inconclusive.fails_run());
        assert_eq!(gate(&c2, Verdict::NotApplicable), Outcome::NotApplicable);
        assert!(!Outcome::NotApplicable.fails_run());

        let all = [c2, fast, other];
        assert_eq!(
            e.listed_requirements(&all),
            BTreeSet::from(["SIP-B1".to_owned(), "SIP-C2".to_owned()]),
            "a requirement entry, and the ids of a scenario entry's scenario"
        );
        assert!(e.unmatched(&all).is_empty());
        assert_eq!(
            e.unmatched(&all[2..]),
            ["requirement.\"SIP-C2\"", "scenario.\"fast answer\""]
        );
    }

    #[test]
    fn a_pinned_step_covers_only_a_failure_at_that_step() {
        let file = r#"
[requirement."SIP-A8"]
reason = "a second binding"
step = "pushes to Alice's token exactly once"
"#;
        let e = ExpectedFailures::from_toml_str(file, Path::new("x.toml")).unwrap();
        let mut a8 = scenario("moved", &["SIP-A8"]);
        a8.steps = vec![
            ("Given".into(), "Alice's iPhone is registered".into()),
            (
                "Then".into(),
                "the gateway pushes to Alice's token exactly once within 3 s".into(),
            ),
        ];
        let x = e.lookup(&a8);
        let gate = |v, step: Option<&str>| Expectation::gate(x, v, step);
        let at = "Then the gateway pushes to Alice's token exactly once within 3 s";
        assert_eq!(gate(Verdict::Fail, Some(at)), Outcome::Xfail);
        assert_eq!(
            gate(Verdict::Fail, Some("Given Alice's iPhone is registered")),
            Outcome::Fail,
            "a failure at another step is a new failure"
        );
        assert_eq!(gate(Verdict::Fail, None), Outcome::Fail);
        assert_eq!(gate(Verdict::Pass, None), Outcome::Xpass);
        assert_eq!(gate(Verdict::Inconclusive, None), Outcome::Inconclusive);
        assert!(e.unmatched(std::slice::from_ref(&a8)).is_empty());

        // A step no covered scenario has is reported, like an entry that matches nothing.
        a8.steps.pop();
        assert_eq!(
            e.unmatched(&[a8]),
            ["requirement.\"SIP-A8\".step \"pushes to Alice's token exactly once\""]
        );
        let empty = "[requirement.\"A\"]\nreason = \"r\"\nstep = \" \"\n";
        assert!(matches!(
            ExpectedFailures::from_toml_str(empty, Path::new("x.toml")),
            Err(ExpectedError::EmptyStep { .. })
        ));
    }

    #[test]
    fn bad_files_are_rejected() {
        let p = Path::new("x.toml");
        let no_reason = "[requirement.\"A\"]\nreason = \" \"\n";
        assert!(matches!(
            ExpectedFailures::from_toml_str(no_reason, p),
            Err(ExpectedError::NoReason { .. })
        ));
        let typo = "[requirement.\"A\"]\nreason = \"r\"\nevidnce = \"e\"\n";
        assert!(matches!(
            ExpectedFailures::from_toml_str(typo, p),
            Err(ExpectedError::Syntax { .. })
        ));
        assert!(matches!(
            ExpectedFailures::load(Path::new("/nonexistent/x.toml")),
            Err(ExpectedError::Read { .. })
        ));
    }
}
