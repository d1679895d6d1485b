#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: AFL++ through afl.rs.
#   scripts/fuzz.sh TARGET MINUTES      run one target (names: scripts/fuzz.sh --list)
# Builds fuzz/src/bin/afl-target.rs instrumented (cargo afl build, own target dir target/afl),
# runs AFL++ on fuzz/corpus/TARGET/ for MINUTES, prints its figures (execs/s, edges, crashes,
# hangs), then minimises every crash and hang into fuzz/regressions/TARGET/, where
# fuzz/tests/replay.rs replays it on every `cargo test` (so fix the code before committing it).
# AFL's working state stays in target/afl/out/TARGET (a second run resumes from it).
# FUZZ_BINARY=path skips the build and fuzzes that afl-target binary. FUZZ_MINIMISE=N minimises at
# most N crashes and hangs (10); the others stay in target/afl/out/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."

targets() { sed -n 's/^    ("\([a-z0-9_]*\)", .*/\1/p' fuzz/src/lib.rs; }
if [[ ${1:-} == --list ]]; then targets; exit 0; fi
if [[ $# -ne 2 ]] || ! targets | grep -qx "$1" || ! [[ $2 =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh TARGET MINUTES   (targets: $(targets | tr '\n' ' '))" >&2
    exit 2
fi
target=$1 minutes=$2

# afl.rs: the cargo subcommand, then AFL++ itself, built from the source the crate ships.
if ! command -v cargo-afl >/dev/null; then
    cargo install cargo-afl --locked --version '^0.18'
fi
if [[ $(cargo afl fuzz -h 2>&1 || true) != *afl-fuzz* ]]; then
    cargo afl config --build
fi

export CARGO_TARGET_DIR=target/afl
if [[ -n ${FUZZ_BINARY:-} ]]; then
    # A binary built before (e.g. one build for a queue of targets while the tree changes).
    binary=$FUZZ_BINARY
else
    cargo afl build --release --locked -p pushbench-fuzz --features afl --bin afl-target
    binary=$CARGO_TARGET_DIR/release/afl-target
fi
out=$CARGO_TARGET_DIR/out/$target
mkdir -p "$out"

# No UI (the run is logged), resume an earlier run's queue, and do not ask the machine to change
# its core-dump handler or CPU governor (containers and CI machines cannot).
export AFL_NO_UI=1 AFL_AUTORESUME=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_AFFINITY=1
# -t: a run over 2 s is a hang (the engine's own deadlines are 10 s; a fuzz input must not reach
# them). -m none: Rust reserves address space freely.
cargo afl fuzz -V $((minutes * 60)) -t 2000 -m none \
    -i "fuzz/corpus/$target" -o "$out" -- "$binary" "$target" >"$out/afl.log" 2>&1 || {
    tail -30 "$out/afl.log" >&2
    exit 1
}

stats=$out/default/fuzzer_stats
stat() { sed -n "s/^$1 *: *//p" "$stats"; }
echo "target:      $target"
echo "minutes:     $minutes (ran $(($(stat last_update) - $(stat start_time))) s)"
echo "executions:  $(stat execs_done) ($(stat execs_per_sec) per second over the run)"
echo "edges:       $(stat edges_found) of $(stat total_edges) instrumented ($(stat bitmap_cvg) of the map)"
echo "corpus:      $(stat corpus_count) inputs ($(stat corpus_found) found by the fuzzer)"
echo "crashes:     $(stat saved_crashes)"
echo "hangs:       $(stat saved_hangs)"

# The first FUZZ_MINIMISE (10) crashes and hangs, minimised, named by the hash of their content
# (many are one bug reached by different paths: minimising each takes seconds to minutes).
mkdir -p "fuzz/regressions/$target"
found=0
for kind in crashes hangs; do
    for input in "$out/default/$kind"/id:*; do
        [[ -e $input ]] || continue
        found=$((found + 1))
        if [[ $found -gt ${FUZZ_MINIMISE:-10} ]]; then
            echo "left:        $input (over FUZZ_MINIMISE; replay it once the others pass)"
            continue
        fi
        tmp=$(mktemp)
        flags=()
        [[ $kind == hangs ]] && flags=(-H)
        if ! cargo afl tmin "${flags[@]}" -t 4000 -m none -i "$input" -o "$tmp" -- "$binary" "$target" >/dev/null 2>&1; then
            cp "$input" "$tmp"
        fi
        name="${kind%es}-$(sha1sum "$tmp" | cut -c1-12)"
        [[ $kind == hangs ]] && name="hang-$(sha1sum "$tmp" | cut -c1-12)"
        mv "$tmp" "fuzz/regressions/$target/$name"
        echo "saved:       fuzz/regressions/$target/$name (from $kind/$(basename "$input"))"
    done
done
rmdir "fuzz/regressions/$target" 2>/dev/null || true
if [[ $found -gt 0 ]]; then
    echo "replay them: cargo test -p pushbench-fuzz --test replay $target" >&2
    exit 1
fi
