//! The soak's short version: `scripts/soak-apns.sh` for 5 s (h2load, 2000 pushes/s over 4
//! connections, token auth, a tenth to an unregistered token) against this build's binary, with a
//! push log of 2000 records so the log fills and evicts. The script's checks must all hold: the
//! control API's counts equal h2load's responses class by class, and the records kept have
//! consecutive sequence numbers and distinct apns-ids. Counts, not speed: the rate is what h2load
//! asks for, not what is asserted, and the memory figures are printed but not judged (a 5 s run
//! of a debug build says nothing about a plateau; the 60 s script does).

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use testkit::apns::server::binary;
use testkit::process::{require_program, run_ok};

#[test]
fn five_seconds_of_h2load_are_recorded_exactly() {
    require_program("h2load");
    require_program("python3");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/soak-apns.sh");
    let out = run_ok(
        Command::new(script)
            .env("SOAK_MOCK_BIN", binary())
            .env("SOAK_SECONDS", "5")
            .env("SOAK_RATE", "2000")
            .env("SOAK_LOG_CAPACITY", "2000")
            .env("SOAK_CHECK_MEMORY", "0"),
        Duration::from_secs(180),
    );
    println!("{}", out.stdout);
    for line in [
        "ok    2xx: server 9000 = h2load 9000",
        "ok    4xx: server 1000 = h2load 1000",
        "ok    log keeps 2000 records",
        "soak-apns: counts equal, nothing lost or doubled",
    ] {
        assert!(
            out.stdout.contains(line),
            "no {line:?} in the soak's report:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}
