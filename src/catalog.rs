//! The scenario catalogue: Gherkin files loaded, outlines expanded (exactly as cucumber does), each
//! scenario with its requirement ids, its profile tags, and whether a target and a tag filter select
//! it.
//!
//! Tags the bench reads:
//! - `@req:ID` names the requirement a scenario checks. Every scenario needs one (inherited from
//!   its feature or rule counts); a scenario without one is a load error.
//! - `@profile:NAME` limits a scenario to targets that declare NAME (their cancel policy, one of
//!   their capabilities, or `sip`/`xmpp`). `@profile:A|B` accepts either; several `@profile:` tags
//!   must all hold. A scenario whose profile tags the target does not meet is not-applicable: it is
//!   reported, never run.

use crate::bundle::{self, FeatureText};
use cucumber::feature::Ext as _;
use cucumber::gherkin;
use cucumber::tag::Ext as _;
use gherkin::tagexpr::TagOperation;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Why features could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path given on the command line does not exist or cannot be listed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A path holds no `.feature` file.
    #[error("{0}: no .feature file here")]
    NoFeatureFiles(PathBuf),
    /// A path is neither on disk nor a part of the embedded suite.
    #[error("{path}: no such file or directory, and not a part of the embedded suite ({known})")]
    NotFound {
        /// The path.
        path: PathBuf,
        /// The embedded folders, for the message.
        known: String,
    },
    /// Gherkin syntax error, at a line and column (0 when the parser did not say).
    #[error("{}: {message}", at(path, *line, *col))]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: usize,
        /// The column (1-based).
        col: usize,
        /// What went wrong.
        message: String,
    },
    /// A scenario without a `@req:` tag.
    #[error("{path}:{line}: scenario {scenario:?} has no @req:ID tag")]
    MissingRequirement {
        /// The file.
        path: PathBuf,
        /// The scenario's line.
        line: usize,
        /// Its name.
        scenario: String,
    },
    /// A `@req:` or `@profile:` tag with nothing after the colon.
    #[error("{path}:{line}: empty tag @{tag}")]
    EmptyTag {
        /// The file.
        path: PathBuf,
        /// The scenario's line.
        line: usize,
        /// The tag.
        tag: String,
    },
    /// Two scenarios with the same name in one feature: reports could not tell them apart.
    #[error("{path}:{line}: scenario name {scenario:?} is used twice in this feature")]
    DuplicateScenario {
        /// The file.
        path: PathBuf,
        /// The second one's line.
        line: usize,
        /// The name.
        scenario: String,
    },
}

/// Identifies one (expanded) scenario: its file and position. Outline rows have their row's line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScenarioKey {
    /// The feature file.
    pub path: PathBuf,
    /// Line of the scenario (of the Examples row for an outline).
    pub line: usize,
    /// Column.
    pub col: usize,
}

impl ScenarioKey {
    /// The key of a cucumber scenario inside `feature`.
    pub fn of(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> ScenarioKey {
        ScenarioKey {
            path: feature.path.clone().unwrap_or_default(),
            line: scenario.position.line,
            col: scenario.position.col,
        }
    }
}

impl ScenarioKey {
    /// What the scenario's seed is derived from: the feature file's name (not its folder, so a
    /// suite exported elsewhere draws the same), the line and the scenario's name.
    pub fn seed_name(&self, scenario: &str) -> String {
        let file = self
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{file}:{}: {scenario}", self.line)
    }
}

impl std::fmt::Display for ScenarioKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// One scenario as the catalogue knows it.
#[derive(Clone, Debug)]
pub struct ScenarioInfo {
    /// Where it is.
    pub key: ScenarioKey,
    /// The feature's name.
    pub feature: String,
    /// The rule's name, if inside a `Rule:`.
    pub rule: Option<String>,
    /// The scenario's name (outline placeholders filled in).
    pub name: String,
    /// Every tag, inherited ones included, without the `@`.
    pub tags: Vec<String>,
    /// The `@req:` ids.
    pub requirements: Vec<String>,
    /// The `@profile:` conditions, each a set of alternatives.
    pub profiles: Vec<Vec<String>>,
    /// Background steps then the scenario's steps: (keyword, text).
    pub steps: Vec<(String, String)>,
}

impl ScenarioInfo {
    /// `"Feature name: scenario name"`: how reports name it.
    pub fn full_name(&self) -> String {
        format!("{}: {}", self.feature, self.name)
    }

    /// The profile conditions `declared` does not meet, as written in the tag (`a|b`).
    pub fn unmet_profiles(&self, declared: &BTreeSet<String>) -> Vec<String> {
        self.profiles
            .iter()
            .filter(|alternatives| !alternatives.iter().any(|a| declared.contains(a)))
            .map(|alternatives| alternatives.join("|"))
            .collect()
    }
}

/// Every scenario of a set of feature files, plus the parsed features cucumber will run.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Parsed features, outlines expanded.
    pub features: Vec<gherkin::Feature>,
    /// Every scenario, in file order.
    pub scenarios: Vec<ScenarioInfo>,
}

impl Catalog {
    /// Loads every `.feature` file under the given files or directories (recursively, sorted);
    /// a path that is not on disk but names a part of the embedded suite is taken from the
    /// binary ([`crate::bundle`]); no path at all loads the whole embedded suite.
    pub fn load(paths: &[PathBuf]) -> Result<Catalog, LoadError> {
        Catalog::from_texts(resolve(paths)?)
    }

    /// Parses already-read feature texts (see [`resolve`]).
    pub fn from_texts(files: Vec<FeatureText>) -> Result<Catalog, LoadError> {
        let mut catalog = Catalog::default();
        for f in files {
            let feature = parse_feature(&f)?
                .expand_examples()
                .map_err(|e| LoadError::Parse {
                    path: f.path.clone(),
                    line: 0,
                    col: 0,
                    message: e.to_string(),
                })?;
            catalog.add_feature(feature)?;
        }
        Ok(catalog)
    }

    fn add_feature(&mut self, feature: gherkin::Feature) -> Result<(), LoadError> {
        let background: Vec<(String, String)> = feature
            .background
            .iter()
            .flat_map(|b| &b.steps)
            .map(|s| (s.keyword.trim().to_owned(), s.value.clone()))
            .collect();
        let mut names = BTreeSet::new();
        let scenarios = feature.scenarios.iter().map(|s| (None, s)).chain(
            feature
                .rules
                .iter()
                .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s))),
        );
        for (rule, s) in scenarios {
            let key = ScenarioKey::of(&feature, s);
            let tags: Vec<String> = feature
                .tags
                .iter()
                .chain(rule.iter().flat_map(|r| &r.tags))
                .chain(&s.tags)
                .cloned()
                .collect();
            let mut requirements = Vec::new();
            let mut profiles = Vec::new();
            for t in &tags {
                if let Some(id) = t.strip_prefix("req:") {
                    if id.is_empty() {
                        return Err(empty_tag(&key, t));
                    }
                    if !requirements.iter().any(|r| r == id) {
                        requirements.push(id.to_owned());
                    }
                } else if let Some(p) = t.strip_prefix("profile:") {
                    let alternatives: Vec<String> = p
                        .split('|')
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect();
                    if alternatives.is_empty() {
                        return Err(empty_tag(&key, t));
                    }
                    profiles.push(alternatives);
                }
            }
            if requirements.is_empty() {
                return Err(LoadError::MissingRequirement {
                    path: key.path.clone(),
                    line: key.line,
                    scenario: s.name.clone(),
                });
            }
            let mut rule_background: Vec<(String, String)> = background.clone();
            if let Some(b) = rule.and_then(|r| r.background.as_ref()) {
                rule_background.extend(
                    b.steps
                        .iter()
                        .map(|s| (s.keyword.trim().to_owned(), s.value.clone())),
                );
            }
            let steps = rule_background
                .into_iter()
                .chain(
                    s.steps
                        .iter()
                        .map(|st| (st.keyword.trim().to_owned(), st.value.clone())),
                )
                .collect();
            // Outline rows share their name; their line tells them apart.
            let unique = (
                rule.map(|r| r.name.clone()),
                s.name.clone(),
                s.examples.is_empty(),
            );
            if s.examples.is_empty() && !names.insert(unique) {
                return Err(LoadError::DuplicateScenario {
                    path: key.path.clone(),
                    line: key.line,
                    scenario: s.name.clone(),
                });
            }
            self.scenarios.push(ScenarioInfo {
                key,
                feature: feature.name.clone(),
                rule: rule.map(|r| r.name.clone()),
                name: s.name.clone(),
                tags,
                requirements,
                profiles,
                steps,
            });
        }
        self.features.push(feature);
        Ok(())
    }

    /// Every requirement id some scenario checks.
    pub fn requirement_ids(&self) -> BTreeSet<&str> {
        self.scenarios
            .iter()
            .flat_map(|s| s.requirements.iter().map(String::as_str))
            .collect()
    }

    /// The scenarios a tag expression selects (all of them without one).
    pub fn select(&self, tags: Option<&TagOperation>) -> Vec<&ScenarioInfo> {
        self.scenarios
            .iter()
            .filter(|s| tags.is_none_or(|t| t.eval(s.tags.iter())))
            .collect()
    }

    /// The features restricted to the scenarios whose keys are in `keep` (what cucumber runs).
    pub fn features_with(&self, keep: &BTreeSet<ScenarioKey>) -> Vec<gherkin::Feature> {
        self.features
            .iter()
            .filter_map(|f| {
                let mut f = f.clone();
                let path = f.path.clone().unwrap_or_default();
                let kept = |s: &gherkin::Scenario| {
                    keep.contains(&ScenarioKey {
                        path: path.clone(),
                        line: s.position.line,
                        col: s.position.col,
                    })
                };
                f.scenarios.retain(kept);
                for r in &mut f.rules {
                    r.scenarios.retain(kept);
                }
                f.rules.retain(|r| !r.scenarios.is_empty());
                (!f.scenarios.is_empty() || !f.rules.is_empty()).then_some(f)
            })
            .collect()
    }
}

/// Parses a cucumber tag expression (`@a and not @b`).
pub fn parse_tags(expr: &str) -> Result<TagOperation, String> {
    expr.parse::<TagOperation>()
        .map_err(|e| format!("bad tag expression {expr:?}: {e}"))
}

fn empty_tag(key: &ScenarioKey, tag: &str) -> LoadError {
    LoadError::EmptyTag {
        path: key.path.clone(),
        line: key.line,
        tag: tag.to_owned(),
    }
}

/// `path:line:col` (or less, when the position is unknown).
fn at(path: &Path, line: usize, col: usize) -> String {
    match (line, col) {
        (0, _) => path.display().to_string(),
        (l, 0) => format!("{}:{l}", path.display()),
        (l, c) => format!("{}:{l}:{c}", path.display()),
    }
}

/// The feature texts `paths` name (see [`Catalog::load`]), sorted by path, each once.
pub fn resolve(paths: &[PathBuf]) -> Result<Vec<FeatureText>, LoadError> {
    let mut out = Vec::new();
    if paths.is_empty() {
        out = bundle::embedded_features("").unwrap_or_default();
    }
    for p in paths {
        if std::fs::symlink_metadata(p).is_ok() {
            let mut files = Vec::new();
            collect_feature_files(p, &mut files)?;
            if files.is_empty() {
                return Err(LoadError::NoFeatureFiles(p.clone()));
            }
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Io {
                    path: f.clone(),
                    source,
                })?;
                out.push(FeatureText {
                    path: f,
                    text,
                    embedded: false,
                });
            }
        } else {
            match bundle::embedded_features(&p.to_string_lossy()) {
                Some(mut files) => out.append(&mut files),
                None => {
                    return Err(LoadError::NotFound {
                        path: p.clone(),
                        known: bundle::names().join(", "),
                    })
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    Ok(out)
}

/// Parses one feature, naming the line and column of a syntax error.
fn parse_feature(f: &FeatureText) -> Result<gherkin::Feature, LoadError> {
    let mut feature =
        gherkin::Feature::parse(&f.text, gherkin::GherkinEnv::default()).map_err(|e| {
            // gherkin's message is "Error at LINE:COL: {expected tokens}".
            let text = e.to_string();
            let (line, col, rest) = text
                .strip_prefix("Error at ")
                .and_then(|r| {
                    let (pos, rest) = r.split_once(": ")?;
                    let (l, c) = pos.split_once(':')?;
                    Some((l.parse().ok()?, c.parse().ok()?, rest.to_owned()))
                })
                .unwrap_or((0, 0, text.clone()));
            let (line, col, message) = match culprit(&f.text, line) {
                Some(found) => found,
                None => {
                    let source = f.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
                    let expected: Vec<&str> = rest
                        .trim_matches(|c| c == '{' || c == '}')
                        .split(", ")
                        .map(|t| t.trim_matches('"'))
                        .filter(|t| !t.is_empty())
                        .collect();
                    let what = if expected.contains(&"unknown keyword") {
                        "unknown keyword".to_owned()
                    } else {
                        format!("expected {}", expected.join(" or "))
                    };
                    (
                        line,
                        col,
                        format!("Gherkin syntax error: {what} in {:?}", source.trim()),
                    )
                }
            };
            LoadError::Parse {
                path: f.path.clone(),
                line,
                col,
                message,
            }
        })?;
    feature.path = Some(f.path.clone());
    Ok(feature)
}

/// The Gherkin keywords a line inside a scenario may start with.
const KEYWORDS: &[&str] = &[
    "Feature:",
    "Rule:",
    "Background:",
    "Scenario:",
    "Scenario Outline:",
    "Scenario Template:",
    "Example:",
    "Examples:",
    "Scenarios:",
    "Given ",
    "When ",
    "Then ",
    "And ",
    "But ",
    "* ",
];

/// gherkin reports a construct it cannot finish at the end of the file; find the line that
/// started it: an unclosed doc string, or a line after a step that is not Gherkin.
fn culprit(text: &str, reported: usize) -> Option<(usize, usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    if reported <= lines.len() {
        return None;
    }
    let mut open_doc: Option<(usize, &str)> = None;
    let mut after_step = false;
    for (i, raw) in lines.iter().enumerate() {
        let line = raw.trim_start();
        let (n, col) = (i + 1, raw.len() - line.len() + 1);
        if let Some((_, delim)) = open_doc {
            if line.starts_with(delim) {
                open_doc = None;
            }
            continue;
        }
        if let Some(delim) = ["\"\"\"", "```"].into_iter().find(|d| line.starts_with(d)) {
            open_doc = Some((n, delim));
            continue;
        }
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with('@')
            || line.starts_with('|')
        {
            continue;
        }
        let keyword = KEYWORDS.iter().find(|k| line.starts_with(*k));
        match keyword {
            Some(k) => after_step = matches!(*k, "Given " | "When " | "Then " | "And " | "But " | "* "),
            None if after_step => {
                return Some((
                    n,
                    col,
                    format!(
                        "Gherkin syntax error: {line:?} is not a step or a section (lines here start with Given, When, Then, And, But, Scenario:, Examples:, |, \"\"\" or #)"
                    ),
                ))
            }
            None => {}
        }
    }
    open_doc.map(|(n, delim)| {
        (
            n,
            1,
            format!(
                "Gherkin syntax error: the doc string opened here with {delim} is never closed"
            ),
        )
    })
}

fn collect_feature_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        if path.extension().is_some_and(|e| e == "feature") {
            out.push(path.to_owned());
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for e in entries {
        collect_feature_files(&e, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const FEATURE: &str = "\
@req:F-1
Feature: Demo
  Background:
    Given a fresh timeline

  Scenario: plain
    Then it passes

  @req:F-2 @profile:flexisip-replay|cancel-push @profile:fork
  Scenario: profiled
    Then it passes

  Rule: inside a rule
    @req:F-3
    Scenario Outline: row <n>
      Then it passes
      Examples:
        | n |
        | 1 |
        | 2 |
";

    #[test]
    fn loads_expands_and_inherits_tags() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.feature", FEATURE);
        write(dir.path(), "notes.md", "not a feature");
        let c = Catalog::load(&[dir.path().to_owned()]).unwrap();
        let names: Vec<&str> = c.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["plain", "profiled", "row 1", "row 2"]);
        assert_eq!(c.scenarios[0].requirements, ["F-1"]);
        assert_eq!(c.scenarios[1].requirements, ["F-1", "F-2"]);
        assert_eq!(c.scenarios[2].requirements, ["F-1", "F-3"]);
        assert_eq!(c.scenarios[2].rule.as_deref(), Some("inside a rule"));
        assert_ne!(c.scenarios[2].key, c.scenarios[3].key);
        assert_eq!(
            c.scenarios[0].steps,
            [
                ("Given".into(), "a fresh timeline".into()),
                ("Then".into(), "it passes".into())
            ]
        );
        assert_eq!(c.requirement_ids().len(), 3);
    }

    #[test]
    fn profile_tags_decide_applicability() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.feature", FEATURE);
        let c = Catalog::load(&[dir.path().to_owned()]).unwrap();
        let profiled = &c.scenarios[1];
        let declared = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        assert!(profiled
            .unmet_profiles(&declared(&["cancel-push", "fork"]))
            .is_empty());
        assert!(profiled
            .unmet_profiles(&declared(&["flexisip-replay", "fork"]))
            .is_empty());
        assert_eq!(
            profiled.unmet_profiles(&declared(&["rfc8599-drop", "fork"])),
            ["flexisip-replay|cancel-push"]
        );
        assert_eq!(
            profiled.unmet_profiles(&declared(&["cancel-push"])),
            ["fork"]
        );
        assert!(c.scenarios[0].unmet_profiles(&declared(&[])).is_empty());
    }

    #[test]
    fn tag_filters_select_and_trim_features() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.feature", FEATURE);
        let c = Catalog::load(&[dir.path().to_owned()]).unwrap();
        let t = parse_tags("@req:F-3 and not @nothing").unwrap();
        let sel = c.select(Some(&t));
        assert_eq!(sel.len(), 2);
        assert!(c.select(Some(&parse_tags("@nope").unwrap())).is_empty());
        let keep = sel.iter().map(|s| s.key.clone()).collect();
        let f = c.features_with(&keep);
        assert_eq!(f.len(), 1);
        assert!(f[0].scenarios.is_empty());
        assert_eq!(f[0].rules[0].scenarios.len(), 2);
        assert!(parse_tags("@a and and").is_err());
    }

    #[test]
    fn load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "x.feature",
            "Feature: x\n  Scenario: untagged\n    Then it passes\n",
        );
        let e = Catalog::load(&[p]).unwrap_err();
        assert!(
            matches!(e, LoadError::MissingRequirement { line: 2, .. }),
            "{e}"
        );
        let p = write(
            dir.path(),
            "x.feature",
            "@req:A\nFeature: x\n  Scenario: s\n    Then a\n  Scenario: s\n    Then b\n",
        );
        assert!(matches!(
            Catalog::load(&[p]).unwrap_err(),
            LoadError::DuplicateScenario { .. }
        ));
        let p = write(
            dir.path(),
            "x.feature",
            "@req:\nFeature: x\n  Scenario: s\n    Then a\n",
        );
        assert!(matches!(
            Catalog::load(&[p]).unwrap_err(),
            LoadError::EmptyTag { .. }
        ));
        let p = write(
            dir.path(),
            "x.feature",
            "@req:A\nFeature: x\n  Scenario: s\n    Then a\n  Scenari s\n",
        );
        let e = Catalog::load(std::slice::from_ref(&p)).unwrap_err();
        assert!(matches!(e, LoadError::Parse { line: 5, .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!("{}:5:", p.display())),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Catalog::load(&[empty.path().to_owned()]).unwrap_err(),
            LoadError::NoFeatureFiles(_)
        ));
        assert!(matches!(
            Catalog::load(&[dir.path().join("missing")]).unwrap_err(),
            LoadError::NotFound { .. }
        ));
    }

    #[test]
    fn the_embedded_suite_loads_from_anywhere() {
        let all = Catalog::load(&[]).unwrap();
        assert!(all.scenarios.len() > 40);
        assert!(all.requirement_ids().contains("SIP-B1"));
        let xmpp = Catalog::load(&[PathBuf::from("features/xmpp-not-on-disk-but")]);
        assert!(matches!(xmpp, Err(LoadError::NotFound { .. })));
        let sip = Catalog::load(&[PathBuf::from("sip")]).unwrap();
        assert!(sip
            .scenarios
            .iter()
            .all(|s| s.key.path.starts_with("features/sip")));
    }
}
