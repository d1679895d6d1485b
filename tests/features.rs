//! The cucumber harness (`harness = false`): `cargo test --test features [-- RUN-ARGS…]` runs the
//! scenarios through the same runner as `pushbench run`, with the same arguments (`--tags`,
//! `--target`, `--junit`, feature paths…).
//!
//! It lives among libtest binaries, so it tolerates what `cargo test` passes them: libtest flags
//! (`--nocapture`, `--test-threads N`, `-q`, …) are ignored, `--list` lists nothing, and a
//! positional argument that does not look like a path (exists, contains `/` or ends in `.feature`)
//! is a libtest name filter meant for other test binaries (`cargo test some_unit_test`): the
//! harness then runs nothing, as libtest would.
//!
//! With no feature path it runs the bench's own suite, `features/`, against the embedded reference
//! gateway (the runner's demo fixtures are exercised by `tests/runner.rs`).

use std::path::Path;
use std::process::ExitCode;

/// Features run when no path is given.
const DEFAULT_FEATURES: &str = "features";

/// Options of `pushbench run` that take a value.
const RUN_TAKES_VALUE: &[&str] = &[
    "--target",
    "--embedded-cancel",
    "--tags",
    "--junit",
    "--json",
    "--html",
    "--concurrency",
    "--timeout",
];

/// libtest flags that take a value.
const LIBTEST_TAKES_VALUE: &[&str] = &[
    "--test-threads",
    "--color",
    "--format",
    "--logfile",
    "--skip",
    "-Z",
    "--shuffle-seed",
    "--report-time",
];

/// libtest flags without a value.
const LIBTEST_FLAGS: &[&str] = &[
    "--nocapture",
    "--no-capture",
    "--show-output",
    "-q",
    "--quiet",
    "--exact",
    "--ignored",
    "--include-ignored",
    "--test",
    "--bench",
    "--force-run-in-process",
    "--shuffle",
];

fn main() -> ExitCode {
    let mut run = vec!["pushbench".to_owned(), "run".to_owned()];
    let mut features = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let name = a.split('=').next().unwrap_or("");
        if a == "--list" {
            return ExitCode::SUCCESS;
        } else if LIBTEST_FLAGS.contains(&a.as_str()) {
            continue;
        } else if LIBTEST_TAKES_VALUE.contains(&name) {
            if !a.contains('=') {
                args.next();
            }
        } else if RUN_TAKES_VALUE.contains(&name) {
            run.push(a.clone());
            if !a.contains('=') {
                run.extend(args.next());
            }
        } else if a.starts_with('-') {
            run.push(a);
        } else if Path::new(&a).exists() || a.contains('/') || a.ends_with(".feature") {
            // A path, even a wrong one (the runner then says it does not exist).
            features += 1;
            run.push(a);
        } else {
            println!("features: {a:?} is not a feature path; taken as a libtest name filter, nothing to run here");
            return ExitCode::SUCCESS;
        }
    }
    if features == 0 {
        run.push(DEFAULT_FEATURES.to_owned());
    }
    pushbench::cli::main_from(run)
}
