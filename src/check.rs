//! `pushbench check`: a static check of features and a target that runs nothing. `pushbench
//! run` performs it first, so a misspelled step or capability is found before any gateway is
//! started, not as an inconclusive scenario at the end.
//!
//! Findings (each with `file:line[:column]` where there is one):
//! - a Gherkin syntax error, or a scenario the catalogue rejects (no `@req:`, a duplicate name);
//! - a step no definition matches (with the closest known step), or that several match;
//! - a scenario with no Then step: it checks nothing;
//! - a `@req:` id that `REQUIREMENTS.md` does not define;
//! - a capability the target declares that no scenario and no `REQUIREMENTS.md` knows (a typo
//!   such as `"forking"` would otherwise only show as "nothing applicable").
//!
//! The requirement ids and capabilities are read from the `REQUIREMENTS.md` nearest to the
//! feature files (their folder or one above it), or from the embedded one.

use crate::bundle::{self, FeatureText};
use crate::catalog::{Catalog, LoadError};
use crate::target::Target;
use crate::world::BenchWorld;
use cucumber::gherkin::{self, StepType};
use cucumber::World as _;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `file:line:col`, or the target key, or empty.
    pub at: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

/// Everything the check found, and what it looked at.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// The findings, in file order.
    pub findings: Vec<Finding>,
    /// Scenarios checked.
    pub scenarios: usize,
    /// Steps checked.
    pub steps: usize,
    /// Where the requirement ids were read from.
    pub requirements_from: String,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        write!(
            f,
            "{} finding(s) in {} scenarios and {} steps (requirement ids from {})",
            self.findings.len(),
            self.scenarios,
            self.steps,
            self.requirements_from
        )
    }
}

/// Checks the features `paths` name (the embedded suite for none) against `target`.
pub fn check(paths: &[PathBuf], target: &Target) -> Result<CheckReport, LoadError> {
    let texts = crate::catalog::resolve(paths)?;
    let mut report = CheckReport::default();
    let mut catalog = Catalog::default();
    for text in &texts {
        match Catalog::from_texts(vec![text.clone()]) {
            Ok(c) => {
                catalog.features.extend(c.features);
                catalog.scenarios.extend(c.scenarios);
            }
            Err(e) => report.findings.push(load_finding(&e)),
        }
    }
    let (requirements, from) = requirements_for(&texts);
    report.requirements_from = from;
    report.scenarios = catalog.scenarios.len();
    check_steps(&catalog, &mut report);
    check_requirements(&catalog, &requirements, &mut report);
    check_capabilities(&catalog, &requirements, target, &mut report);
    Ok(report)
}

fn load_finding(e: &LoadError) -> Finding {
    Finding {
        at: String::new(),
        message: e.to_string(),
    }
}

/// The text of the `REQUIREMENTS.md` that goes with these features, and where it came from.
fn requirements_for(texts: &[FeatureText]) -> (String, String) {
    for t in texts.iter().filter(|t| !t.embedded) {
        let mut dir = t.path.parent();
        // The feature's folder and those above it, up to the filesystem root.
        while let Some(d) = dir {
            let candidate = d.join("REQUIREMENTS.md");
            if let Ok(text) = std::fs::read_to_string(&candidate) {
                return (text, candidate.display().to_string());
            }
            dir = d.parent();
        }
    }
    (
        bundle::requirements().to_owned(),
        "the embedded features/REQUIREMENTS.md".into(),
    )
}

fn position(path: &Path, p: gherkin::LineCol) -> String {
    format!("{}:{}:{}", path.display(), p.line, p.col)
}

/// Every scenario's steps (background included) must match exactly one definition; every
/// scenario needs a Then.
fn check_steps(catalog: &Catalog, report: &mut CheckReport) {
    let steps = BenchWorld::collection();
    let known = known_steps();
    for feature in &catalog.features {
        let path = feature.path.clone().unwrap_or_default();
        let mut seen = BTreeSet::new();
        let mut check_step = |step: &gherkin::Step, report: &mut CheckReport| {
            // A background's steps are checked once, not once per scenario.
            if !seen.insert((step.position.line, step.position.col)) {
                return;
            }
            report.steps += 1;
            match steps.find(step) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let hint = closest(&known, step)
                        .map(|s| format!("; the closest known step is \"{s}\""))
                        .unwrap_or_default();
                    report.findings.push(Finding {
                        at: position(&path, step.position),
                        message: format!(
                            "no step definition matches \"{} {}\"{hint}",
                            step.keyword.trim(),
                            step.value
                        ),
                    });
                }
                Err(e) => report.findings.push(Finding {
                    at: position(&path, step.position),
                    message: format!("several step definitions match: {e}"),
                }),
            }
        };
        let scenarios = feature
            .scenarios
            .iter()
            .map(|s| (None, s))
            .chain(
                feature
                    .rules
                    .iter()
                    .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))),
            )
            .collect::<Vec<_>>();
        for (rule, s) in scenarios {
            let background = feature
                .background
                .iter()
                .chain(rule.and_then(|r| r.background.as_ref()))
                .flat_map(|b| &b.steps);
            let mut has_then = false;
            for step in background.chain(&s.steps) {
                has_then |= step.ty == StepType::Then;
                check_step(step, report);
            }
            if !has_then {
                report.findings.push(Finding {
                    at: position(&path, s.position),
                    message: format!(
                        "scenario \"{}\" has no Then step: it would pass without checking anything",
                        s.name
                    ),
                });
            }
        }
    }
}

/// The `@req:` ids some scenario uses that `REQUIREMENTS.md` does not define (as a table row
/// `| ID |` or a heading naming it).
fn check_requirements(catalog: &Catalog, requirements: &str, report: &mut CheckReport) {
    let defined = defined_ids(requirements);
    for s in &catalog.scenarios {
        for id in &s.requirements {
            if !defined.contains(id.as_str()) {
                report.findings.push(Finding {
                    at: s.key.to_string(),
                    message: format!(
                        "@req:{id} (scenario \"{}\") is not in {}",
                        s.name, report.requirements_from
                    ),
                });
            }
        }
    }
}

/// Ids that open a table row (`| SIP-A1 |`) of a requirements file.
fn defined_ids(requirements: &str) -> BTreeSet<&str> {
    requirements
        .lines()
        .filter_map(|l| l.trim().strip_prefix('|'))
        .filter_map(|l| l.split('|').next())
        .map(|cell| cell.trim().trim_matches('`'))
        .filter(|id| {
            !id.is_empty()
                && id.contains('-')
                && id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
        })
        .collect()
}

/// Capabilities the target declares that nothing knows: no `@profile:` tag and no mention in
/// `REQUIREMENTS.md` as `` `name` ``.
fn check_capabilities(
    catalog: &Catalog,
    requirements: &str,
    target: &Target,
    report: &mut CheckReport,
) {
    let mut known: BTreeSet<String> = catalog
        .scenarios
        .iter()
        .flat_map(|s| s.profiles.iter().flatten().cloned())
        .collect();
    known.extend(quoted_words(requirements));
    for c in crate::catalog::Catalog::load(&[])
        .map(|c| {
            c.scenarios
                .into_iter()
                .flat_map(|s| s.profiles.into_iter().flatten())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    {
        known.insert(c);
    }
    for (i, c) in target.profile.capabilities.iter().enumerate() {
        if !known.contains(c) {
            let hint = known
                .iter()
                .min_by_key(|k| edit_distance(k, c))
                .filter(|k| edit_distance(k, c) <= c.len().max(3) / 2)
                .map(|k| format!("; did you mean \"{k}\"?"))
                .unwrap_or_default();
            report.findings.push(Finding {
                at: format!("target {:?}: profile.capabilities[{i}]", target.name),
                message: format!(
                    "capability \"{c}\" is not known to any scenario or to {}{hint}",
                    report.requirements_from
                ),
            });
        }
    }
}

/// Words written as `` `word` `` (letters, digits and `-`).
fn quoted_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split('`').skip(1).step_by(2).filter_map(|w| {
        let ok = !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| w.to_owned())
    })
}

/// The step definitions as people read them: (kind, pattern without regex syntax).
fn known_steps() -> Vec<(StepType, String)> {
    use cucumber::codegen::{StepConstructor as _, WorldInventory};
    let mut out = Vec::new();
    for s in cucumber::codegen::inventory::iter::<<BenchWorld as WorldInventory>::Given> {
        out.push((StepType::Given, readable((s.inner().1)().as_str())));
    }
    for s in cucumber::codegen::inventory::iter::<<BenchWorld as WorldInventory>::When> {
        out.push((StepType::When, readable((s.inner().1)().as_str())));
    }
    for s in cucumber::codegen::inventory::iter::<<BenchWorld as WorldInventory>::Then> {
        out.push((StepType::Then, readable((s.inner().1)().as_str())));
    }
    out
}

/// A step regex as a sentence: anchors and escapes dropped, each group shown as `…`.
fn readable(regex: &str) -> String {
    let r = regex.trim_start_matches('^').trim_end_matches('$');
    let mut out = String::new();
    let mut depth = 0usize;
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth == 0 => {
                if let Some(n) = chars.next() {
                    out.push(match n {
                        'd' => '0',
                        's' => ' ',
                        other => other,
                    });
                }
            }
            '\\' => {
                chars.next();
            }
            '(' => {
                if depth == 0 {
                    out.push('…');
                }
                depth += 1;
            }
            ')' if depth > 0 => depth -= 1,
            '?' | '+' | '*' if depth == 0 => {}
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// The known step of the same kind that shares most words with `step` (none below a third).
fn closest<'a>(known: &'a [(StepType, String)], step: &gherkin::Step) -> Option<&'a str> {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mine = words(&step.value);
    let score = |candidate: &str| -> f64 {
        let theirs = words(candidate);
        let mut pool = theirs.clone();
        let common = mine
            .iter()
            .filter(|w| {
                if let Some(i) = pool
                    .iter()
                    .position(|p| p == *w || (w.len() > 3 && edit_distance(p, w) <= 1))
                {
                    pool.swap_remove(i);
                    true
                } else {
                    false
                }
            })
            .count();
        common as f64 / mine.len().max(theirs.len()).max(1) as f64
    };
    known
        .iter()
        .filter(|(ty, _)| *ty == step.ty)
        .map(|(_, s)| (score(s), s.as_str()))
        .filter(|(sc, _)| *sc >= 0.34)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, s)| s)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_embedded_suite_and_the_shipped_targets_are_clean() {
        let r = check(&[], &Target::embedded_reference()).unwrap();
        assert!(r.findings.is_empty(), "{r}");
        assert!(r.scenarios > 40 && r.steps > 100, "{r}");
        for t in ["kamailio", "prosody", "ejabberd", "example"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("targets/{t}.toml"));
            let target = Target::load(&path).unwrap();
            let r = check(&[], &target).unwrap();
            assert!(r.findings.is_empty(), "{t}: {r}");
        }
    }

    #[test]
    fn an_unknown_step_gets_the_closest_known_one() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "REQUIREMENTS.md", "| SIP-B1 | x |\n");
        let f = write(
            dir.path(),
            "x.feature",
            "@req:SIP-B1\nFeature: x\n  Scenario: s\n    Given Alice's iPhone is registred with a VoIP token\n    Then Bob gets 200 OK from Alice's iPhone within 5 s\n",
        );
        let r = check(std::slice::from_ref(&f), &Target::embedded_reference()).unwrap();
        let unknown: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.message.contains("no step definition"))
            .collect();
        assert_eq!(unknown.len(), 1, "{r}");
        assert_eq!(unknown[0].at, format!("{}:4:5", f.display()));
        assert!(
            unknown[0]
                .message
                .contains("closest known step is \"Alice's iPhone is registered"),
            "{}",
            unknown[0]
        );
        assert!(r.requirements_from.ends_with("REQUIREMENTS.md"), "{r}");
    }

    #[test]
    fn missing_then_unknown_ids_and_unknown_capabilities_are_findings() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "REQUIREMENTS.md", "| DEMO-1 | x |\n");
        let f = write(
            dir.path(),
            "x.feature",
            "@req:DEMO-2\nFeature: x\n  Scenario: only a given\n    Given the demo precondition holds\n",
        );
        let mut target = Target::embedded_reference();
        target.profile.capabilities.push("forking".into());
        let r = check(&[f], &target).unwrap();
        let text = r.to_string();
        assert!(text.contains("has no Then step"), "{text}");
        assert!(text.contains("@req:DEMO-2"), "{text}");
        assert!(text.contains("capability \"forking\""), "{text}");
        assert!(text.contains("did you mean \"fork\""), "{text}");
    }

    #[test]
    fn regexes_read_as_sentences() {
        assert_eq!(
            readable(r"^Bob calls Alice within (\d+ (?:ms|s))$"),
            "Bob calls Alice within …"
        );
        assert_eq!(readable(r"^a\.b \(c\)$"), "a.b (c)");
        assert_eq!(edit_distance("fork", "forking"), 3);
        assert_eq!(
            defined_ids("| SIP-A1 | x |\n| `XMPP-2` | y |\n| id | z |"),
            ["SIP-A1", "XMPP-2"].into_iter().collect()
        );
    }
}
