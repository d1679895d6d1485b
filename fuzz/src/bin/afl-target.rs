//! The AFL++ harness (afl.rs, persistent mode): `afl-target NAME` fuzzes the target called NAME
//! (`pushbench_fuzz::TARGETS`). Built by `scripts/fuzz.sh` with `cargo afl build`.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = pushbench_fuzz::target(&name) else {
        let names: Vec<&str> = pushbench_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: afl-target TARGET, one of: {}", names.join(" "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| {
        target(data);
    });
}
