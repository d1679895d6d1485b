//! Which scenarios a run selects: tags, `--name`, `--req`, `FILE:LINE`, and which of them the
//! target's profile makes not applicable.

use super::*;
use crate::catalog::{parse_tags, Catalog, ScenarioInfo};
use crate::target::Target;
use cucumber::tag::Ext as _;
use std::path::PathBuf;

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

    pub(super) fn selects(&self, s: &ScenarioInfo, all: &[&ScenarioInfo]) -> bool {
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
