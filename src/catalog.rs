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
    /// Gherkin syntax error.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
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
    /// Loads every `.feature` file under the given files or directories (recursively, sorted).
    pub fn load(paths: &[PathBuf]) -> Result<Catalog, LoadError> {
        let mut files = Vec::new();
        for p in paths {
            let before = files.len();
            collect_feature_files(p, &mut files)?;
            if files.len() == before {
                return Err(LoadError::NoFeatureFiles(p.clone()));
            }
        }
        files.sort();
        files.dedup();
        let mut catalog = Catalog::default();
        for f in files {
            let feature = gherkin::Feature::parse_path(&f, gherkin::GherkinEnv::default())
                .map_err(|e| LoadError::Parse {
                    path: f.clone(),
                    message: e.to_string(),
                })?
                .expand_examples()
                .map_err(|e| LoadError::Parse {
                    path: f.clone(),
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
            "Feature x without colon\n  Scenario s\n",
        );
        assert!(matches!(
            Catalog::load(&[p]).unwrap_err(),
            LoadError::Parse { .. }
        ));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            Catalog::load(&[empty.path().to_owned()]).unwrap_err(),
            LoadError::NoFeatureFiles(_)
        ));
        assert!(matches!(
            Catalog::load(&[dir.path().join("missing")]).unwrap_err(),
            LoadError::Io { .. }
        ));
    }
}
