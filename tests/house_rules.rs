//! The house rules DEVELOPERS.md states, checked on the source tree so a change that breaks one
//! fails CI instead of waiting for a review:
//!
//! - modules import in one direction: no import cycle among the modules of the bench (`src`), of
//!   its step library (`src/steps`, whose step modules never import each other) and of sip-peer
//!   (whose layers import only from below);
//! - every Gherkin step reports its outcome through `verdict::outcome` (a step function returns
//!   nothing), so an inconclusive step is never turned into a failure by its text;
//! - nothing reaches a scenario by a back door (no `thread_local!`, no fault environment variable,
//!   no `dyn Any` registry in `src/`);
//! - tests share helpers through the `testkit` crate only (no `tests/common` or `tests/support`);
//! - no source file outside the tests is longer than 800 lines, except the ones listed in
//!   [`LONG_FILES`] with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files allowed above 800 lines, and why.
const LONG_FILES: &[(&str, &str)] = &[
    (
        "mock-apns/src/http2/conn.rs",
        "one HTTP/2 connection state machine (RFC 9113), read whole; issue 18 reworks it",
    ),
    (
        "mock-apns/src/http2/hpack.rs",
        "the HPACK codec (RFC 7541) and its unit tests; issue 18 reworks it",
    ),
    (
        "mock-apns/src/validate.rs",
        "523 lines of Apple's request rules plus their unit tests",
    ),
    (
        "src/target.rs",
        "786 lines of target-file schema and validation plus its unit tests",
    ),
];

const LIMIT: usize = 800;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, relative to the workspace root.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") {
                out.push(p.strip_prefix(root()).unwrap_or(&p).to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without comment lines and without its inline `mod tests`.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_default();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules of the crate rooted at `src` (`a::b` for `src/a/b.rs` or `src/a/b/mod.rs`) and the
/// modules each imports (`crate::x::y` and `super::x` paths), resolved to the longest module
/// prefix that exists; with `top`, only first-level modules.
fn import_graph(src: &str, top: bool) -> BTreeMap<String, BTreeSet<String>> {
    let src_dir = root().join(src);
    let mut files = BTreeMap::new();
    for f in rust_files(&src_dir) {
        let rel = root().join(&f);
        let rel = rel
            .strip_prefix(&src_dir)
            .unwrap_or(&rel)
            .with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts == ["lib"] || parts == ["main"] || parts.last().is_some_and(|p| p == "tests") {
            continue;
        }
        files.insert(parts.join("::"), code(&f));
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let resolve = |path: &[&str]| -> Option<String> {
        (1..=path.len())
            .rev()
            .map(|k| path[..k].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let mut targets = BTreeSet::new();
        for (prefix, base) in [
            ("crate::", Vec::new()),
            ("super::", {
                let mut p: Vec<&str> = module.split("::").collect();
                p.pop();
                p
            }),
        ] {
            for (i, _) in text.match_indices(prefix) {
                let before = text[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let rest: String = text[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut path = base.clone();
                path.extend(rest.split("::").filter(|s| !s.is_empty()));
                if let Some(t) = resolve(&path) {
                    if t != *module && !module.starts_with(&format!("{t}::")) {
                        targets.insert(t);
                    }
                }
            }
        }
        let (from, targets) = if top {
            let from = module.split("::").next().unwrap_or_default().to_owned();
            let targets = targets
                .into_iter()
                .map(|t| t.split("::").next().unwrap_or_default().to_owned())
                .filter(|t| *t != from)
                .collect();
            (from, targets)
        } else {
            (module.clone(), targets)
        };
        graph.entry(from).or_default().extend(targets);
    }
    graph
}

/// The first import cycle in `graph`, if any (as the path that closes it).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        n: &str,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some(c) = visit(g, m, state, stack) {
                        return Some(c);
                    }
                }
                1 => {
                    let at = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[at..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(graph, n, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn modules_import_in_one_direction() {
    for (src, top) in [
        ("src", false),
        ("src", true),
        ("sip-peer/src", false),
        ("sip-peer/src", true),
    ] {
        let g = import_graph(src, top);
        assert!(g.len() > 5, "{src}: the import graph was not read ({g:?})");
        if let Some(c) = cycle(&g) {
            panic!("{src}: import cycle {}", c.join(" -> "));
        }
    }
    // The step modules share their helpers through steps/mod.rs, the World and the parties only.
    let g = import_graph("src", false);
    for (m, targets) in &g {
        if !m.starts_with("steps::") {
            continue;
        }
        let siblings: Vec<_> = targets
            .iter()
            .filter(|t| t.starts_with("steps::"))
            .collect();
        assert!(siblings.is_empty(), "{m} imports {siblings:?}");
    }
    // sip-peer's parser layers import only from below.
    let g = import_graph("sip-peer/src", true);
    let below: &[(&str, &[&str])] = &[
        ("syntax", &[]),
        ("uri", &["syntax"]),
        ("headers", &["syntax", "uri"]),
        ("message", &["syntax", "uri", "headers"]),
    ];
    for (layer, allowed) in below {
        let extra: Vec<_> = g[*layer]
            .iter()
            .filter(|t| !allowed.contains(&t.as_str()))
            .collect();
        assert!(extra.is_empty(), "sip-peer {layer} imports {extra:?}");
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn every_step_reports_its_outcome_as_data() {
    let mut files = rust_files(&root().join("src/steps"));
    files.push(PathBuf::from("src/demo_steps.rs"));
    for f in files {
        let text = std::fs::read_to_string(root().join(&f)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !(l.starts_with("#[given") || l.starts_with("#[when") || l.starts_with("#[then")) {
                continue;
            }
            let sig: String = lines[i..]
                .iter()
                .skip_while(|l| !l.contains("fn "))
                .take_while(|l| !l.ends_with('{'))
                .chain(
                    lines[i..]
                        .iter()
                        .skip_while(|l| !l.contains("fn "))
                        .find(|l| l.ends_with('{')),
                )
                .copied()
                .collect();
            assert!(
                !sig.contains("->"),
                "{}:{}: a step returns a value; cucumber would turn its error into text: \
                 end the body with verdict::outcome instead\n{sig}",
                f.display(),
                i + 1
            );
        }
    }
}

#[test]
fn nothing_reaches_a_scenario_by_a_back_door() {
    for f in rust_files(&root().join("src")) {
        let text = code(&f);
        for needle in [
            "thread_local!",
            "PUSHBENCH_REF_FAULTS",
            "PUSHBENCH_APP_FAULTS",
            "dyn Any",
        ] {
            assert!(!text.contains(needle), "{}: {needle}", f.display());
        }
    }
}

#[test]
fn tests_share_helpers_through_testkit_only() {
    for krate in [
        ".",
        "timeline",
        "mock-apns",
        "sip-peer",
        "xmpp-peer",
        "phone",
        "ref-gateway",
        "pushbench-testcontainers",
        "fuzz",
    ] {
        for folder in ["common", "support"] {
            let p = root().join(krate).join("tests").join(folder);
            assert!(!p.exists(), "{} exists: use the testkit crate", p.display());
        }
    }
}

#[test]
fn source_files_stay_small() {
    let allowed: BTreeMap<&str, &str> = LONG_FILES.iter().copied().collect();
    let mut long = Vec::new();
    for krate in [
        "src",
        "timeline/src",
        "mock-apns/src",
        "sip-peer/src",
        "xmpp-peer/src",
        "phone/src",
        "ref-gateway/src",
        "testkit/src",
        "pushbench-testcontainers/src",
        "fuzz/src",
    ] {
        for f in rust_files(&root().join(krate)) {
            let name = f.to_string_lossy().into_owned();
            if name.ends_with("tests.rs") {
                continue;
            }
            let n = std::fs::read_to_string(root().join(&f))
                .unwrap_or_default()
                .lines()
                .count();
            if n > LIMIT && !allowed.contains_key(name.as_str()) {
                long.push(format!("{name}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these (or list them in LONG_FILES with the reason):\n{}",
        long.join("\n")
    );
}
