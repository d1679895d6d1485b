#!/usr/bin/env bash
# SIP load benchmark (not a test). On loopback UDP, at rising call rates:
#   - our Caller against our PhoneAccount (sip-peer, release build of sip-peer/benches/sip-load),
#     INVITE -> 100 -> 180 -> 200 -> ACK -> BYE -> 200, both in one process;
#   - SIPp's built-in uac against SIPp's built-in uas (INVITE -> 180 -> 200 -> ACK -> BYE -> 200),
#     two processes;
# then the highest rate each sustains with zero failed calls (and at least 90 % of the rate
# achieved), their ratio, and the memory per idle registered PhoneAccount with 10 000
# accounts registered at a SIPp registrar (tests/sipp/uas_register.xml).
#
#   scripts/bench-sip.sh                     # defaults below
#   RATES="1000 2000" SECONDS_PER_RATE=3 ACCOUNTS=2000 scripts/bench-sip.sh
#
# Both sides share the machine's cores with each other (and with anything else running): the
# numbers are for comparing the two on this machine, not absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=${RATES:-"500 1000 2000 3000 4000 5000 6000 8000"}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-10}
ACCOUNTS=${ACCOUNTS:-10000}
command -v sipp >/dev/null || { echo "bench-sip: sipp is not installed (scripts/install-deps.sh)" >&2; exit 1; }

BENCH_DIR=$ROOT/sip-peer/benches/sip-load
[ -f "$BENCH_DIR/Cargo.lock" ] || cp "$ROOT/Cargo.lock" "$BENCH_DIR/Cargo.lock"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/sip-load
echo "bench-sip: building sip-load (release)..." >&2
cargo build --release --quiet --manifest-path "$BENCH_DIR/Cargo.toml"
LOAD=$CARGO_TARGET_DIR/release/sip-load

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# clean <failed> <achieved> <rate>: zero failures and >= 90 % of the rate achieved, counted as
# completed calls per second of wall time (SIPp's start and stop cost ~0.5 s of that wall time,
# hence 90 % and 10 s per rate)
clean() { awk -v f="$1" -v a="$2" -v r="$3" 'BEGIN { exit !(f == 0 && a >= 0.90 * r) }'; }

best_ours=0
best_sipp=0
knee_ours=0
knee_sipp=0
ours_broke=no
sipp_broke=no
misses=0
printf '%-8s | %-52s | %-44s\n' "rate" "sip-peer caller -> sip-peer phone" "SIPp uac -> SIPp uas"
for rate in $RATES; do
  # ---- ours
  line=$("$LOAD" calls --rate "$rate" --seconds "$SECONDS_PER_RATE" 2>"$WORK/ours.err" || true)
  get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  o_f1=$(get failed); o_f2=$(get callee_failed)
  o_failed=$(( ${o_f1:-1} + ${o_f2:-0} ))
  o_ach=$(get achieved_cps); o_ach=${o_ach:-0}
  o_p99=$(get setup_p99_ms)
  if clean "$o_failed" "$o_ach" "$rate"; then
    best_ours=$rate
    [ "$ours_broke" = yes ] || knee_ours=$rate
  else
    ours_broke=yes
  fi

  # ---- SIPp
  port=$(free_port)
  sipp -sn uas -i 127.0.0.1 -p "$port" -nostdin -bind_local >"$WORK/uas.out" 2>&1 &
  uas=$!
  PIDS+=("$uas")
  for _ in $(seq 100); do ss -uln | grep -q ":$port " && break; sleep 0.05; done
  total=$((rate * SECONDS_PER_RATE))
  set +e
  t0=$(date +%s.%N)
  sipp -sn uac "127.0.0.1:$port" -i 127.0.0.1 -p "$(free_port)" -bind_local -nostdin \
    -r "$rate" -m "$total" -l $((rate * 10)) -timeout $((SECONDS_PER_RATE + 30))s -timeout_error \
    >"$WORK/uac.out" 2>&1
  s_rc=$?
  t1=$(date +%s.%N)
  set -e
  kill "$uas" 2>/dev/null || true
  wait "$uas" 2>/dev/null || true
  # (a SIPp that aborted prints no statistics: the greps find nothing)
  s_ok=$(grep -E '^ +Successful call' "$WORK/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}' || true)
  s_failed=$(grep -E '^ +Failed call' "$WORK/uac.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}' || true)
  # completed calls per second of wall time, as sip-load measures its own
  s_rate=$(awk -v n="${s_ok:-0}" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
  s_retr=$(grep -E '^ +INVITE ---------->' "$WORK/uac.out" | tail -1 | awk '{print $4}' || true)
  # SIPp exits 0 when every call succeeded, 1 when some failed, 255 on a fatal error (here: the
  # global -timeout, calls stuck), 134 when it aborts
  case "$s_rc" in 0|1) ;; *) s_retr="${s_retr:-?} (sipp exit $s_rc)" ;; esac
  s_ok=${s_ok:-0}; s_failed=${s_failed:-1}; s_rate=${s_rate:-0}
  [ "$s_rc" -eq 0 ] || s_failed=$(( s_failed > 0 ? s_failed : 1 ))
  if clean "$s_failed" "$s_rate" "$rate"; then
    best_sipp=$rate
    [ "$sipp_broke" = yes ] || knee_sipp=$rate
  else
    sipp_broke=yes
  fi

  printf '%-8s | ok=%-6s failed=%-5s cps=%-6s setup_p99=%-8sms | ok=%-6s failed=%-5s cps=%-7s INVITE-retrans=%s\n' \
    "$rate" "$(get completed)" "$o_failed" "$o_ach" "$o_p99" "$s_ok" "$s_failed" "${s_rate%.*}" "${s_retr:-?}"
  if ! clean "$o_failed" "$o_ach" "$rate" && [ -s "$WORK/ours.err" ]; then
    sed 's/^/          sip-peer: /' "$WORK/ours.err" | head -3
  fi
  # stop once both sides have failed at two rates in a row
  if clean "$o_failed" "$o_ach" "$rate" || clean "$s_failed" "$s_rate" "$rate"; then
    misses=0
  else
    misses=$((misses + 1))
    [ "$misses" -lt 2 ] || break
  fi
done

echo
# knee: clean at this rate and at every lower one; best: the highest clean rate, even above a rate
# that failed (sporadic losses on a busy machine make the two differ)
echo "knee (zero failed calls at this and every lower rate): sip-peer ${knee_ours} calls/s, SIPp ${knee_sipp} calls/s"
echo "highest rate with zero failed calls:                   sip-peer ${best_ours} calls/s, SIPp ${best_sipp} calls/s"
awk -v a="$knee_ours" -v b="$knee_sipp" -v c="$best_ours" -v d="$best_sipp" 'BEGIN {
  if (b > 0) printf "ratio sip-peer / SIPp at the knee: %.2f\n", a / b
  if (d > 0) printf "ratio sip-peer / SIPp, highest clean rate: %.2f\n", c / d
}'

# ---- memory per idle registered PhoneAccount
port=$(free_port)
sipp -sf "$ROOT/sip-peer/tests/sipp/uas_register.xml" -i 127.0.0.1 -p "$port" -bind_local -nostdin \
  >"$WORK/reg.out" 2>&1 &
reg=$!
PIDS+=("$reg")
for _ in $(seq 100); do ss -uln | grep -q ":$port " && break; sleep 0.05; done
echo
echo "memory: ${ACCOUNTS} idle PhoneAccounts registered at a SIPp registrar (one UDP socket each)"
"$LOAD" idle-accounts --count "$ACCOUNTS" --registrar "127.0.0.1:$port"
kill "$reg" 2>/dev/null || true
