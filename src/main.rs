//! The `pushbench` command line: `run`, `list` (see `pushbench --help`).

fn main() -> std::process::ExitCode {
    pushbench::cli::main()
}
