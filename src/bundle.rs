//! The scenario suite the binary carries: every `features/**/*.feature` file,
//! `features/REQUIREMENTS.md` and the conformance map `features/COVERAGE.md`, embedded at build
//! time (`build.rs`), so `pushbench run` and `pushbench list` work from any folder, and
//! `pushbench features export DIR` writes them out for editing.
//!
//! Feature paths given on the command line are read from disk when they exist there; a path that
//! does not exist on disk but names an embedded file or folder (`features/xmpp`, or just `xmpp`)
//! is taken from the bundle. With no path at all, the whole embedded suite runs.

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// The prefix every embedded path starts with.
const ROOT: &str = "features/";

/// One feature file to load: where it is shown as coming from, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureText {
    /// Its path: on disk, or `features/…` for an embedded one.
    pub path: PathBuf,
    /// The Gherkin text.
    pub text: String,
    /// True when it came from the binary, not from disk.
    pub embedded: bool,
}

/// Every embedded file: (path such as `features/sip/answer.feature`, contents).
pub fn files() -> &'static [(&'static str, &'static str)] {
    FILES
}

/// The embedded feature files under `prefix` (a path relative to the crate root, with or
/// without the leading `features/`; empty for all), or `None` when `prefix` names none of them.
pub fn embedded_features(prefix: &str) -> Option<Vec<FeatureText>> {
    let prefix = normalise(prefix);
    let found: Vec<FeatureText> = FILES
        .iter()
        .filter(|(p, _)| p.ends_with(".feature") && under(p, &prefix))
        .map(|(p, t)| FeatureText {
            path: PathBuf::from(p),
            text: (*t).to_owned(),
            embedded: true,
        })
        .collect();
    (!found.is_empty()).then_some(found)
}

/// The embedded `REQUIREMENTS.md`.
pub fn requirements() -> &'static str {
    FILES
        .iter()
        .find(|(p, _)| *p == "features/REQUIREMENTS.md")
        .map(|(_, t)| *t)
        .unwrap_or_default()
}

/// The embedded `COVERAGE.md` (the conformance map, see [`crate::coverage`]), if the crate was
/// built with one.
pub fn coverage() -> Option<&'static str> {
    FILES
        .iter()
        .find(|(p, _)| *p == "features/COVERAGE.md")
        .map(|(_, t)| *t)
}

/// The embedded folders and files a command line may name (for error messages).
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = FILES
        .iter()
        .filter(|(p, _)| p.ends_with(".feature"))
        .filter_map(|(p, _)| Path::new(p).parent())
        .map(|d| d.display().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Writes every embedded file under `dir` (`dir/sip/answer.feature`, `dir/REQUIREMENTS.md`, …).
/// An existing file is kept unless `overwrite`; returns (written, kept) paths.
pub fn export(dir: &Path, overwrite: bool) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut written, mut kept) = (Vec::new(), Vec::new());
    for (p, text) in FILES {
        let rel = p.strip_prefix(ROOT).unwrap_or(p);
        let dest = dir.join(rel);
        if dest.exists() && !overwrite {
            kept.push(dest);
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&dest, text)?;
        written.push(dest);
    }
    Ok((written, kept))
}

/// `./features/xmpp/` → `features/xmpp`; `xmpp` → `features/xmpp`.
fn normalise(prefix: &str) -> String {
    let p = prefix.trim().replace('\\', "/");
    let p = p.trim_start_matches("./").trim_end_matches('/');
    if p.is_empty() || p == "features" {
        return "features".into();
    }
    if p.starts_with(ROOT) {
        p.to_owned()
    } else {
        format!("{ROOT}{p}")
    }
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_suite_is_embedded() {
        let all = embedded_features("").unwrap();
        assert!(all.len() >= 10, "{all:?}");
        assert!(all
            .iter()
            .all(|f| f.embedded && f.text.contains("Feature:")));
        assert!(requirements().contains("SIP-B1"));
        assert!(coverage().is_some_and(|c| c.contains("8599-5.6.2-h")));
    }

    #[test]
    fn folders_are_named_with_or_without_the_root() {
        let a = embedded_features("features/xmpp").unwrap();
        let b = embedded_features("./xmpp/").unwrap();
        assert_eq!(a, b);
        assert!(a.iter().all(|f| f.path.starts_with("features/xmpp")));
        assert!(embedded_features("features/sip/answer.feature").is_some());
        assert!(
            embedded_features("features/si").is_none(),
            "a prefix must end at a /"
        );
        assert!(embedded_features("nope").is_none());
        assert!(names().contains(&"features/sip".to_string()));
    }

    #[test]
    fn export_writes_everything_and_keeps_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (written, kept) = export(dir.path(), false).unwrap();
        assert_eq!(written.len(), FILES.len());
        assert!(kept.is_empty());
        assert!(dir.path().join("REQUIREMENTS.md").is_file());
        assert!(dir.path().join("sip/answer.feature").is_file());
        std::fs::write(dir.path().join("sip/answer.feature"), "edited").unwrap();
        let (written, kept) = export(dir.path(), false).unwrap();
        assert!(written.is_empty());
        assert_eq!(kept.len(), FILES.len());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sip/answer.feature")).unwrap(),
            "edited"
        );
        export(dir.path(), true).unwrap();
        assert_ne!(
            std::fs::read_to_string(dir.path().join("sip/answer.feature")).unwrap(),
            "edited"
        );
    }
}
