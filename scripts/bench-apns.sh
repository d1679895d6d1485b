#!/usr/bin/env bash
# Benchmark (not a test): h2load against mock-apns (`perf` profile: release with fat LTO; valid
# provider token, validation and recording on) and against nghttpd answering the same POSTs, in
# the same run, on this machine.
# Prints req/s for both and the ratio mock-apns / nghttpd per configuration.
#
#   scripts/bench-apns.sh              # 100000 requests per configuration
#   BENCH_REQUESTS=20000 BENCH_ROUNDS=1 scripts/bench-apns.sh
#   BENCH_MOCK_ARGS="--threads 0" scripts/bench-apns.sh   # extra `mock-apns serve` arguments
#   BENCH_MOCK_BIN=/tmp/old/mock-apns scripts/bench-apns.sh # another build (e.g. to compare commits)
#
# Next to req/s it prints each server's CPU time per request (user + system, from /proc, over all
# rounds): it moves less with the machine's load than req/s does.
#
# Each configuration runs BENCH_ROUNDS times (default 3), alternating mock-apns and nghttpd, and
# the best req/s of each is reported: the machine is shared, so the best round is the one least
# disturbed by other work.
#
# Configurations: payload 248 B and 5120 B (a VoIP push at Apple's VoIP limit), `-c 1` and `-c 4`,
# each with `-m 100`. Both servers use the same certificate (mock-apns's generated server.pem).
# nghttpd runs with one worker (its default); mock-apns runs as shipped (one runtime thread, its
# default; BENCH_MOCK_ARGS="--threads 0" for one per CPU).
# mock-apns runs with --streams-before-auth equal to h2load's -m: h2load opens its -m streams before
# it reads the server's SETTINGS and does not retry a REFUSED_STREAM (real APNs clients, like the
# reference gateway and Pushy, do), so Apple's limit of 1 before the first valid token would fail
# all but one request of each connection's first burst. The token is still validated.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${BENCH_REQUESTS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
STREAMS=100
for p in h2load nghttpd curl python3; do
  command -v "$p" >/dev/null || { echo "bench-apns: $p is required (scripts/install-deps.sh)" >&2; exit 1; }
done

. scripts/lib/mock-apns.sh
MOCK=$(mock_binary "${BENCH_MOCK_BIN:-}" perf)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# mock-apns: fresh credentials, addresses from its one-line JSON report.
# shellcheck disable=SC2086 # BENCH_MOCK_ARGS is a list of arguments
start_mock "$MOCK" --streams-before-auth "$STREAMS" ${BENCH_MOCK_ARGS:-}
DEVICE=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
curl -fsS -X POST "http://$CONTROL/devices" -H 'content-type: application/json' \
  -d "{\"token\":\"$DEVICE\",\"topics\":[\"$BUNDLE\",\"$TOPIC\"],\"environment\":\"production\",\"state\":\"online\"}" >/dev/null
JWT=$("$MOCK" token --credentials "$CREDS")

# nghttpd: same certificate, a static empty file at the same path.
NG_PORT=$(free_port)
mkdir -p "$WORK/htdocs/3/device"
: >"$WORK/htdocs/3/device/$DEVICE"
nghttpd -d "$WORK/htdocs" "$NG_PORT" "$CREDS/server-key.pem" "$CREDS/server.pem" >"$WORK/nghttpd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -sk --http2 -o /dev/null "https://127.0.0.1:$NG_PORT/" 2>/dev/null && break
  sleep 0.1
done

payload() { # a JSON object of exactly $1 bytes
  python3 -c '
import json, sys
n = int(sys.argv[1]); base = {"aps": {"alert": "pushbench"}, "pad": ""}
empty = len(json.dumps(base, separators=(",", ":")))
base["pad"] = "x" * (n - empty); s = json.dumps(base, separators=(",", ":"))
assert len(s) == n; sys.stdout.write(s)' "$1" >"$2"
}
payload 248 "$WORK/p248.json"
payload 5120 "$WORK/p5120.json"

# CPU time (user + system, in clock ticks) a process has used so far.
cpu_ticks() { # pid
  awk '{print $14 + $15}' "/proc/$1/stat"
}
TICK_US=$(python3 -c 'import os; print(1e6 / os.sysconf("SC_CLK_TCK"))')
NG_PID=${PIDS[1]}

# Runs h2load; prints req/s, or fails if any request did not get a 2xx.
run_h2load() { # url clients payload-file
  local out
  out=$(h2load -n "$REQUESTS" -c "$2" -m "$STREAMS" -d "$3" \
    -H "apns-topic: $TOPIC" -H 'apns-push-type: voip' -H 'apns-priority: 10' \
    -H 'apns-expiration: 0' -H "authorization: bearer $JWT" "$1" 2>&1)
  local ok
  ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<<"$out")
  if [ "$ok" != "$REQUESTS" ]; then
    echo "bench-apns: not every request got 2xx from $1:" >&2
    echo "$out" >&2
    exit 1
  fi
  sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<<"$out"
}

printf '%-22s %14s %14s %8s %12s %12s\n' "configuration" "mock-apns r/s" "nghttpd r/s" "ratio" "mock µs/req" "nghttpd µs/req"
for size in 248 5120; do
  for clients in 1 4; do
    mock=0 ng=0 mock_ticks=0 ng_ticks=0
    for _ in $(seq 1 "$ROUNDS"); do
      curl -fsS -X DELETE "http://$CONTROL/pushes" >/dev/null
      t0=$(cpu_ticks "$MOCK_PID")
      m=$(run_h2load "https://$MOCK_ADDR/3/device/$DEVICE" "$clients" "$WORK/p$size.json")
      t1=$(cpu_ticks "$MOCK_PID")
      u0=$(cpu_ticks "$NG_PID")
      n=$(run_h2load "https://127.0.0.1:$NG_PORT/3/device/$DEVICE" "$clients" "$WORK/p$size.json")
      u1=$(cpu_ticks "$NG_PID")
      mock_ticks=$((mock_ticks + t1 - t0))
      ng_ticks=$((ng_ticks + u1 - u0))
      mock=$(python3 -c "print(max($mock, $m))")
      ng=$(python3 -c "print(max($ng, $n))")
    done
    ratio=$(python3 -c "print(f'{float(\"$mock\")/float(\"$ng\"):.2f}')")
    per() { python3 -c "print(f'{$1 * $TICK_US / ($ROUNDS * $REQUESTS):.2f}')"; }
    printf '%-22s %14s %14s %8s %12s %12s\n' "${size}B -c $clients -m $STREAMS" "$mock" "$ng" "$ratio" "$(per "$mock_ticks")" "$(per "$ng_ticks")"
  done
done
recorded=$(curl -fsS "http://$CONTROL/pushes" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d) if isinstance(d, list) else len(d.get("pushes", [])))')
echo "(best of $ROUNDS rounds of n=$REQUESTS requests, every request answered 2xx; the mock's push log holds $recorded records of the last run,"
echo " bounded by --push-log-capacity; $(nproc) cores shared by h2load and the server; load average: $(cut -d' ' -f1-3 /proc/loadavg);"
echo " mock-apns serve extra arguments: ${BENCH_MOCK_ARGS:-none})"
