//! The cucumber harness (`harness = false`): `cargo test --test features [-- RUN-ARGS…]` runs the
//! scenarios through the same runner as `pushbench run`, with the same arguments (`--tags`,
//! `--target`, `--junit`, feature paths…).
//!
//! Until the step library lands, the default feature set is the runner's passing demo
//! (`tests/runner-fixtures/pass`); the integration phase switches [`DEFAULT_FEATURES`] to
//! `features/`.

use std::process::ExitCode;

/// Features run when no path is given.
const DEFAULT_FEATURES: &str = "tests/runner-fixtures/pass";

fn main() -> ExitCode {
    let user: Vec<String> = std::env::args().skip(1).collect();
    let mut args = vec!["pushbench".to_owned(), "run".to_owned()];
    let gives_features = user.iter().enumerate().any(|(i, a)| {
        !a.starts_with('-') && (i == 0 || !TAKES_VALUE.contains(&user[i - 1].as_str()))
    });
    args.extend(user);
    if !gives_features {
        args.push(DEFAULT_FEATURES.to_owned());
    }
    pushbench::cli::main_from(args)
}

/// Options of `pushbench run` that take a value.
const TAKES_VALUE: &[&str] = &[
    "--target",
    "--embedded-cancel",
    "--tags",
    "--junit",
    "--json",
    "--html",
    "--concurrency",
    "--timeout",
];
