//! Every committed fuzz input, replayed on every `cargo test`: the seed corpus of each target
//! (`corpus/TARGET/`) and the crashes and hangs AFL found and `scripts/fuzz.sh` minimised
//! (`regressions/TARGET/`), each fixed in the code since. One test per target; a failure names
//! the file.

use std::path::{Path, PathBuf};
use std::time::Instant;

/// The files of `fuzz/DIR/TARGET/`, sorted (a missing folder has none).
fn files(dir: &str, target: &str) -> Vec<PathBuf> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
    let mut found: Vec<PathBuf> = match std::fs::read_dir(&folder) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README.md"))
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// Replays every corpus and regression file of `target`; the corpus must not be empty.
fn replay(target: &str) {
    let run = pushbench_fuzz::target(target).unwrap_or_else(|| panic!("no target {target}"));
    let corpus = files("corpus", target);
    assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no seed");
    let regressions = files("regressions", target);
    let started = Instant::now();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| run(&data));
        if let Err(panic) = outcome {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{target}: {} fails: {why}", path.display());
        }
    }
    eprintln!(
        "{target}: {} seeds and {} regressions replayed in {:?}",
        corpus.len(),
        regressions.len(),
        started.elapsed()
    );
}

macro_rules! replay {
    ($($target:ident),* $(,)?) => {$(
        #[test]
        fn $target() {
            replay(stringify!($target));
        }
    )*};
}

replay!(
    http2_frames,
    hpack,
    check_request,
    jwt,
    sip_message,
    sip_stream,
    xmpp_stream,
    xml,
    target_toml,
    expected_toml,
);

#[test]
fn every_target_has_a_replay_test() {
    let tested = [
        "http2_frames",
        "hpack",
        "check_request",
        "jwt",
        "sip_message",
        "sip_stream",
        "xmpp_stream",
        "xml",
        "target_toml",
        "expected_toml",
    ];
    for (name, _) in pushbench_fuzz::TARGETS {
        assert!(tested.contains(name), "{name} is not replayed");
    }
}
