# Sourced by scripts/bench-apns.sh and scripts/soak-apns.sh: a work directory and child processes
# cleaned up on exit, the mock-apns binary, and a `mock-apns serve` on free loopback ports with
# fresh credentials.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# mock_binary GIVEN PROFILE: GIVEN if it is set, else mock-apns built with cargo's PROFILE.
mock_binary() {
  if [ -n "$1" ]; then
    echo "$1"
    return
  fi
  echo "building mock-apns (profile $2)" >&2
  cargo build --locked --profile "$2" -p mock-apns --bin mock-apns >&2
  echo "${CARGO_TARGET_DIR:-target}/$2/mock-apns"
}

# start_mock BINARY [serve arguments…]: starts the server, waits for its one-line JSON report of
# addresses, and sets MOCK_PID, MOCK_ADDR (the production listener), CONTROL (the control API),
# CREDS (its credentials directory), BUNDLE and TOPIC (the bundle id and its VoIP topic).
start_mock() {
  local bin=$1
  shift
  CREDS="$WORK/creds"
  mkdir -p "$CREDS"
  "$bin" serve --listen 127.0.0.1:0 --sandbox-listen 127.0.0.1:0 --control 127.0.0.1:0 \
    --credentials "$CREDS" "$@" >"$WORK/mock.out" 2>"$WORK/mock.log" &
  MOCK_PID=$!
  PIDS+=("$MOCK_PID")
  for _ in $(seq 1 300); do
    [ -s "$WORK/mock.out" ] && break
    kill -0 "$MOCK_PID" 2>/dev/null || { cat "$WORK/mock.log" >&2; exit 1; }
    sleep 0.1
  done
  local report field
  report=$(head -n1 "$WORK/mock.out")
  field='import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])'
  MOCK_ADDR=$(python3 -c "$field" "$report" production)
  CONTROL=$(python3 -c "$field" "$report" control)
  BUNDLE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bundle_id"])' "$CREDS/manifest.json")
  TOPIC="$BUNDLE.voip"
}
