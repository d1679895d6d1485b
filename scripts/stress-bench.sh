#!/usr/bin/env bash
# The bench's own stress protocol (issue 21): can a correct gateway be trusted to get only green?
#
#   scripts/stress-bench.sh N
#
# runs the whole suite N times back to back against the embedded reference gateway in each of its
# three cancel profiles (rfc8599-drop, flexisip-replay, cancel-push), every other round with the
# CPU loaded (stress-ng, or niced busy loops without it: every core busy but for what the bench's
# higher priority takes back), then N times against the Kamailio target (targets/kamailio.toml,
# features/sip and features/apns, as tests/kamailio_target.rs runs it; its expected failures are
# xfail). Every run has a fresh seed, printed with its verdicts: `pushbench run --seed S` draws the
# same wake delays again.
#
# It prints every failure, inconclusive scenario and xpass with its scenario, its run and its seed,
# then the counts, and exits 1 if there was any (2 if a run produced no report at all).
#
# Environment: STRESS_KAMAILIO_RUNS (default N; 0 skips Kamailio), STRESS_OUT (reports, default
# target/stress-bench), STRESS_BIN (a pushbench binary; default: built here, debug).
set -uo pipefail
cd "$(dirname "$0")/.."

n=${1:-}
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/stress-bench.sh N   (N runs of the suite per profile and per target)" >&2
  exit 2
fi
kamailio_runs=${STRESS_KAMAILIO_RUNS:-$n}
out=${STRESS_OUT:-target/stress-bench}
bin=${STRESS_BIN:-}
if [ -z "$bin" ]; then
  cargo build --locked --bin pushbench >/dev/null || exit 2
  bin=target/debug/pushbench
fi
rm -rf "$out"
mkdir -p "$out"
profiles=(rfc8599-drop flexisip-replay cancel-push)
findings="$out/findings.txt"
: >"$findings"
runs=0
broken=0
started=$SECONDS

load_pids=()
load_on() {
  local cores
  cores=$(nproc)
  if command -v stress-ng >/dev/null; then
    nice -n 10 stress-ng --cpu "$cores" --cpu-load 90 --quiet &
    load_pids+=($!)
  else
    for _ in $(seq "$cores"); do
      nice -n 10 bash -c 'while :; do :; done' &
      load_pids+=($!)
    done
  fi
}
load_off() {
  local p
  for p in "${load_pids[@]}"; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  load_pids=()
}
trap load_off EXIT

# Appends the run's fails, inconclusive scenarios and xpasses to $findings; prints its counts.
judge() {
  local json=$1 label=$2
  python3 - "$json" "$label" "$findings" <<'PY'
import json, sys
path, label, findings = sys.argv[1:4]
try:
    features = json.load(open(path))
except Exception as e:
    print(f"{label}: no report ({e})")
    sys.exit(3)
counts, seed, bad = {}, None, []
for f in features:
    for s in f.get("elements", []):
        o = s.get("pushbench_outcome", "?")
        counts[o] = counts.get(o, 0) + 1
        seed = s.get("pushbench_seed", seed)
        if o in ("fail", "inconclusive", "xpass"):
            ids = ",".join(s.get("pushbench_requirements", []))
            why = (s.get("pushbench_reason") or "").splitlines()[0:1]
            bad.append(f"{label} seed {seed}: {o.upper()} [{ids}] {s['name']} ({f['uri']}:{s['line']}) {' '.join(why)}")
with open(findings, "a") as out:
    for b in bad:
        out.write(b + "\n")
summary = " ".join(f"{k} {v}" for k, v in sorted(counts.items()))
print(f"{label} seed {seed}: {summary}")
for b in bad:
    print("  " + b)
PY
}

run_one() {
  local label=$1
  shift
  local json="$out/$(echo "$label" | tr ' /' '__').json"
  runs=$((runs + 1))
  "$bin" run --json "$json" "$@" >"${json%.json}.log" 2>&1
  judge "$json" "$label" || broken=$((broken + 1))
}

for i in $(seq "$n"); do
  load=idle
  if [ $((i % 2)) -eq 0 ]; then
    load=loaded
    load_on
  fi
  for p in "${profiles[@]}"; do
    run_one "embedded $p run $i/$n $load" --embedded-cancel "$p"
  done
  load_off
done

for i in $(seq "$kamailio_runs"); do
  load=idle
  if [ $((i % 2)) -eq 0 ]; then
    load=loaded
    load_on
  fi
  run_one "kamailio run $i/$kamailio_runs $load" --target targets/kamailio.toml features/sip features/apns
  load_off
done

fails=$(grep -c ': FAIL ' "$findings")
inconclusive=$(grep -c ': INCONCLUSIVE ' "$findings")
xpass=$(grep -c ': XPASS ' "$findings")
echo
echo "stress-bench: $runs runs in $((SECONDS - started)) s; fail $fails, inconclusive $inconclusive, xpass $xpass, runs without a report $broken"
if [ "$broken" -gt 0 ]; then
  exit 2
fi
if [ $((fails + inconclusive + xpass)) -gt 0 ]; then
  exit 1
fi
