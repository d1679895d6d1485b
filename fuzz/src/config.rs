//! The bench's own TOML files: the target file (`pushbench::target::Target`) and the
//! expected-failures baseline (`pushbench::expected::ExpectedFailures`).

use pushbench::expected::ExpectedFailures;
use pushbench::target::Target;
use std::path::Path;

/// A target file: parses (and validates) to a target or an error that renders; an accepted
/// target's views and its serialisation (the report's copy of it) never panic. (Not a round
/// trip: the report's copy carries the derived `kind`, which a target file may not set.)
pub fn target_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Target::from_toml_str(text) {
        Ok(target) => {
            let _ = target.profile_names();
            let _ = target.validate();
            let _ = toml::to_string(&target);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// An expected-failures baseline: parses to a baseline or an error that renders.
pub fn expected_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ExpectedFailures::from_toml_str(text, Path::new("fuzz-expected.toml")) {
        Ok(baseline) => {
            let _ = baseline.unmatched(&[]);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
