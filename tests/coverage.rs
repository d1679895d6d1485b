//! The conformance map `features/COVERAGE.md` agrees with the features: every requirement id it
//! names is a `@req:` tag of some scenario, every `@req:` tag of `features/` is named in it (as
//! checking statements, or among the requirements that check no standard statement), the binary
//! carries the same map, and its totals table is what `pushbench coverage --markdown` prints.

use pushbench::catalog::Catalog;
use pushbench::coverage::{self, CoverageMap};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn map_text() -> String {
    std::fs::read_to_string(root().join("features/COVERAGE.md")).expect("features/COVERAGE.md")
}

/// The requirement ids of the scenarios under `features/` (the suite, not the test fixtures).
fn feature_ids() -> Vec<String> {
    let catalog = Catalog::load(&[root().join("features")]).expect("the features load");
    let ids: Vec<String> = catalog
        .requirement_ids()
        .into_iter()
        .map(String::from)
        .collect();
    assert!(ids.len() >= 40, "expected the whole suite, got {ids:?}");
    ids
}

fn parse(text: &str) -> CoverageMap {
    coverage::parse(text).unwrap_or_else(|e| panic!("COVERAGE.md does not parse:\n{e}"))
}

#[test]
fn every_named_id_exists_and_every_feature_id_is_named() {
    let map = parse(&map_text());
    let ids = feature_ids();
    let findings = map.cross_check(ids.iter().map(String::as_str));
    assert!(
        findings.is_empty(),
        "COVERAGE.md and the features disagree:\n{}",
        findings.join("\n")
    );
}

#[test]
fn the_check_fails_when_an_id_goes_missing_or_is_made_up() {
    let text = map_text();
    let ids = feature_ids();
    // SIP-C5 is named in the map only in the rows it covers: drop it from them.
    assert!(text.contains("| SIP-C5, SIP-E3 |"));
    let without = parse(&text.replace("| SIP-C5, SIP-E3 |", "| SIP-E3 |"));
    let findings = without.cross_check(ids.iter().map(String::as_str));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("@req:SIP-C5"), "{findings:?}");
    // A feature id the map does not know (a scenario added without mapping it) …
    let with_new: Vec<&str> = ids.iter().map(String::as_str).chain(["SIP-Z9"]).collect();
    let findings = parse(&text).cross_check(with_new);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("@req:SIP-Z9"));
    // … and an id the map names that no scenario carries.
    let invented = parse(&text.replace("| SIP-C5, SIP-E3 |", "| SIP-C5, SIP-E3, SIP-E9 |"));
    let findings = invented.cross_check(ids.iter().map(String::as_str));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("names SIP-E9"), "{findings:?}");
}

#[test]
fn the_binary_carries_the_same_map() {
    assert_eq!(
        pushbench::bundle::coverage(),
        Some(map_text().as_str()),
        "the embedded COVERAGE.md differs from the file (rebuild)"
    );
    assert!(coverage::embedded().is_some());
}

#[test]
fn the_totals_table_matches_the_rows() {
    let text = map_text();
    let table = parse(&text).totals_markdown();
    assert!(
        text.contains(&table),
        "the totals table in COVERAGE.md is stale; replace it with `pushbench coverage --markdown`:\n{table}"
    );
}

#[test]
fn every_document_is_mapped_with_must_and_should_statements() {
    let map = parse(&map_text());
    let totals = map.totals();
    let docs: Vec<&str> = totals.iter().map(|t| t.document.as_str()).collect();
    assert_eq!(
        docs,
        ["RFC 8599", "XEP-0357", "XEP-0198", "XEP-0353", "all"]
    );
    for t in &totals {
        assert!(t.must + t.should > 0, "{t:?}");
    }
    // The statements the issue names as gaps are in the map, with a reason or a check.
    for id in [
        "8599-5.6.1.2-c",
        "8599-5.5-a",
        "8599-5.6.1.1-l",
        "8599-5.6.1.1-d",
        "8599-5.6.2-c",
        "8599-13-c",
        "8599-4.1-c",
        "0357-6-d",
        "0357-6-e",
        "0357-7-c",
        "0357-7.1-a",
        "0357-9-a",
    ] {
        assert!(
            map.statements.iter().any(|s| s.id == id),
            "{id} is not in the map"
        );
    }
}

fn pushbench(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pushbench"))
        .args(args)
        .output()
        .expect("pushbench runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pushbench_coverage_prints_the_totals_and_refuses_a_bad_map() {
    let (code, out, err) = pushbench(&["coverage", "--status", "planned", "--req", "SIP-B4"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("features/COVERAGE.md (embedded)"), "{out}");
    for needle in [
        "RFC 8599",
        "XEP-0357",
        "relevant",
        "planned (",
        "8599-5.5-a",
        "SIP-B4 checks",
        "8599-5.6.2-e",
    ] {
        assert!(out.contains(needle), "{needle:?} missing:\n{out}");
    }
    let (code, md, _) = pushbench(&["coverage", "--markdown"]);
    assert_eq!(code, Some(0));
    assert!(map_text().contains(&md), "{md}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("COVERAGE.md");
    std::fs::write(
        &bad,
        "| id | § | keyword | statement | status | requirements | note |\n|---|---|---|---|---|---|---|\n| 8599-5.5-a | §5.5 | SHOULD | x | sort of | — | y |\n",
    )
    .unwrap();
    let (code, _, err) = pushbench(&["coverage", "--file", path(&bad)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 3") && err.contains("unknown status"),
        "{err}"
    );
    let (code, _, err) = pushbench(&["coverage", "--file", path(&dir.path().join("none.md"))]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("none.md"), "{err}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
