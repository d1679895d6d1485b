#!/usr/bin/env bash
# Load benchmark of push gateways (not a test): `pushbench load --find-knee` against
#   - the embedded reference gateway (in the bench's own process: its CPU counts in the bench's);
#   - real Kamailio 5.6 + tsilo + http_client (targets/kamailio.toml, on ports of its own here:
#     SIP 35060/35061, park 35069, mock APNs 38443, runtime files in a temporary folder, so a
#     Kamailio test running at the same time on 25060/28443 is not disturbed);
# then SIPp's knee for plain calls (uac -> uas, no gateway, no push) measured in the same sitting
# by scripts/bench-sip.sh, and each gateway's knee as a share of it.
#
#   scripts/bench-load.sh                                   # defaults below
#   PHONES=2000 START_RATE=50 SECONDS_PER_RATE=10 scripts/bench-load.sh
#   SKIP_SIPP=1 scripts/bench-load.sh                       # the two gateways only
#
# A knee is the highest rate whose step was clean (failures <= 0.1 %, every call placed, push p99
# <= KNEE_P99_MS) with every lower step clean too; the rate grows x1.5 a step. Whatever knee a
# gateway shows is the finding. Machine shared with other work: compare within one sitting only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PHONES=${PHONES:-1000}
START_RATE=${START_RATE:-20}
SECONDS_PER_RATE=${SECONDS_PER_RATE:-5}
KNEE_P99_MS=${KNEE_P99_MS:-1000}
SKIP_SIPP=${SKIP_SIPP:-}
command -v kamailio >/dev/null || { echo "bench-load: kamailio is not installed (scripts/install-deps.sh)" >&2; exit 1; }

echo "bench-load: building pushbench (release)..." >&2
cargo build --release --quiet --locked
PB=${CARGO_TARGET_DIR:-$ROOT/target}/release/pushbench

WORK=$(mktemp -d)
cleanup() {
  PUSHBENCH_KAMAILIO_DIR=$WORK/kamailio "$ROOT/targets/kamailio/stop.sh" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

knee() { # knee <name> <pushbench load arguments...>
  local name=$1
  shift
  echo
  echo "== $name: pushbench load --phones $PHONES --rate $START_RATE --duration $SECONDS_PER_RATE --find-knee $*"
  "$PB" load --phones "$PHONES" --rate "$START_RATE" --duration "$SECONDS_PER_RATE" --find-knee \
    --knee-p99-ms "$KNEE_P99_MS" --quiet --json "$WORK/$name.json" "$@" || true
}

# ---- the embedded reference gateway
knee embedded

# ---- Kamailio, on ports of its own
mkdir -p "$WORK/kamailio" "$WORK/credentials"
sed -e "s#25060#35060#g; s#25061#35061#g; s#28443#38443#g" \
    -e "s#^expected_failures = .*#expected_failures = \"$ROOT/targets/kamailio-expected.toml\"#" \
    -e "s#^tls_ca_file = \"kamailio/#tls_ca_file = \"$ROOT/targets/kamailio/#" \
    -e "s#^credentials_dir = .*#credentials_dir = \"$WORK/credentials\"#" \
    -e "s#^run = \"kamailio/#run = \"$ROOT/targets/kamailio/#" \
    -e '/^\[commands.before_scenario\]/,$d' \
    "$ROOT/targets/kamailio.toml" >"$WORK/kamailio.toml"
PUSHBENCH_KAMAILIO_DIR=$WORK/kamailio PUSHBENCH_KAMAILIO_SIP_PORT=35060 PUSHBENCH_KAMAILIO_TLS_PORT=35061 \
PUSHBENCH_KAMAILIO_PARK_PORT=35069 PUSHBENCH_KAMAILIO_APNS_URL=https://127.0.0.1:38443 \
PUSHBENCH_KAMAILIO_CREDENTIALS=$WORK/credentials \
  knee kamailio --target "$WORK/kamailio.toml"

# ---- SIPp, plain calls, same sitting
sipp_knee=0
if [ -z "$SKIP_SIPP" ]; then
  echo
  echo "== SIPp uac -> uas, plain calls (scripts/bench-sip.sh)"
  RATES=${SIPP_RATES:-"500 1000 2000 3000 4000 5000 6000"} SECONDS_PER_RATE=5 ACCOUNTS=100 \
    "$ROOT/scripts/bench-sip.sh" | tee "$WORK/sip.out" | grep -E '^(rate|[0-9]|knee)' || true
  sipp_knee=$(sed -n 's/^knee .*SIPp \([0-9]*\) calls\/s.*/\1/p' "$WORK/sip.out")
  sipp_knee=${sipp_knee:-0}
fi

echo
echo "== knees (failures <= 0.1 %, push p99 <= $KNEE_P99_MS ms, $PHONES sleeping phones, ${SECONDS_PER_RATE} s per rate)"
for name in embedded kamailio; do
  python3 - "$WORK/$name.json" "$name" "$sipp_knee" <<'PY'
import json, sys
path, name, sipp = sys.argv[1], sys.argv[2], float(sys.argv[3])
try:
    r = json.load(open(path))
except Exception as e:
    print(f"{name:9} no result ({e})"); sys.exit(0)
k = (r.get("knee") or {}).get("rate")
line = f"{name:9} knee {k:.1f} calls/s" if k else f"{name:9} knee: no clean rate"
if k and sipp:
    line += f"  ({k / sipp:.3f} of SIPp's {sipp:.0f} calls/s for plain calls)"
print(line)
for s in r["steps"]:
    lat = s["latency_ms"]
    f = lambda n: f"{lat[n]['p50_ms']:.1f}/{lat[n]['p99_ms']:.1f}" if n in lat else "-"
    print(f"   rate {s['rate']:7.1f}  failed {s['failures']:5}/{s['finished']:<6} push p50/p99 {f('push'):>15} ms"
          f"  relay {f('relay'):>15} ms  setup {f('setup'):>15} ms  bench CPU {s['cpu_cores']:.2f} cores"
          f"  {'clean' if s['clean'] else 'NOT clean'}")
PY
done
