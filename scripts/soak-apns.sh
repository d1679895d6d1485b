#!/usr/bin/env bash
# Soak with accounting (a check, not a benchmark): h2load pushes to mock-apns at a fixed rate, then
# the script checks that the server recorded exactly what it answered, and that its memory stayed
# flat once the push log was full. Prints the figures; exits 1 if a check fails.
#
#   scripts/soak-apns.sh                        # 60 s at 5000 pushes/s, 4 connections
#   SOAK_SECONDS=5 SOAK_RATE=2000 scripts/soak-apns.sh
#   SOAK_MOCK_BIN=target/debug/mock-apns scripts/soak-apns.sh   # a built binary (no build)
#
# The pushes: token auth (a provider token signed with the key of freshly generated credentials,
# `mock-apns token`), VoIP pushes of 248 bytes to ten device tokens registered through the
# control API, one of them unregistered (410 Unregistered): a tenth of the pushes (h2load sends
# each connection's requests to the ten URIs in turn). h2load runs with `-n` (seconds × rate) and
# `--rps` (rate / 4 per connection), so every request it sends is waited for: none is cut off
# at the end and the counts can be compared exactly.
#
# The checks:
# - counts: the control API's `GET /stats` (every request answered since start, by status)
#   equals h2load's responses class by class (2xx, 3xx, 4xx, 5xx), and h2load saw no failed or
#   errored request; the 410s went to the unregistered token and nothing else got a 4xx;
# - nothing lost or doubled: the records the log keeps (`GET /pushes`, the latest
#   SOAK_LOG_CAPACITY) have consecutive sequence numbers ending at the request count, and
#   distinct apns-ids;
# - memory (SOAK_CHECK_MEMORY=1, the default): VmRSS of the server (/proc/PID/status, sampled
#   each second) grows by at most 10% (or 4 MiB) from the first half to the second half of the
#   samples taken after the log filled up.
#
# mock-apns runs with --streams-before-auth 8 (h2load's -m): h2load opens its streams before
# reading the server's SETTINGS and does not retry a REFUSED_STREAM (see scripts/bench-apns.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${SOAK_SECONDS:-60}
RATE=${SOAK_RATE:-5000}
CLIENTS=4
STREAMS=8
CAPACITY=${SOAK_LOG_CAPACITY:-10000}
CHECK_MEMORY=${SOAK_CHECK_MEMORY:-1}
REQUESTS=$((DURATION * RATE))
for p in h2load curl python3; do
  command -v "$p" >/dev/null || { echo "soak-apns: $p is required (scripts/install-deps.sh)" >&2; exit 1; }
done

. scripts/lib/mock-apns.sh
MOCK=$(mock_binary "${SOAK_MOCK_BIN:-}" release)
start_mock "$MOCK" --streams-before-auth "$STREAMS" --push-log-capacity "$CAPACITY"
ADDR=$MOCK_ADDR
JWT=$("$MOCK" token --credentials "$CREDS")

# Ten devices; the last one unregistered (410 Unregistered).
: >"$WORK/uris"
for i in $(seq 0 9); do
  token=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  state=online
  if [ "$i" = 9 ]; then state=unregistered; GONE=$token; fi
  curl -fsS -X POST "http://$CONTROL/devices" -H 'content-type: application/json' \
    -d "{\"token\":\"$token\",\"topics\":[\"$TOPIC\"],\"environment\":\"production\",\"state\":\"$state\"}" >/dev/null
  echo "https://$ADDR/3/device/$token" >>"$WORK/uris"
done
python3 -c '
import json, sys
base = {"aps": {"alert": "pushbench soak"}, "pad": ""}
empty = len(json.dumps(base, separators=(",", ":")))
base["pad"] = "x" * (248 - empty)
sys.stdout.write(json.dumps(base, separators=(",", ":")))' >"$WORK/payload.json"

# Resident memory, once a second, while h2load runs.
(
  start=$(date +%s.%N)
  while kill -0 "$MOCK_PID" 2>/dev/null; do
    rss=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MOCK_PID/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(python3 -c "import time; print(round(time.time() - $start, 1))") $rss"
    sleep 1
  done
) >"$WORK/rss" &
SAMPLER=$!
PIDS+=("$SAMPLER")

echo "soak-apns: $REQUESTS pushes at $RATE/s over $CLIENTS connections (h2load -n $REQUESTS --rps $((RATE / CLIENTS)) -m $STREAMS), log capacity $CAPACITY" >&2
h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" --rps $((RATE / CLIENTS)) -i "$WORK/uris" \
  -d "$WORK/payload.json" -H "apns-topic: $TOPIC" -H 'apns-push-type: voip' -H 'apns-priority: 10' \
  -H "authorization: bearer $JWT" >"$WORK/h2load.out" 2>&1 || { cat "$WORK/h2load.out" >&2; exit 1; }
# Memory is judged while the pushes flow: the JSON of the whole log, fetched next, takes its own.
kill "$SAMPLER" 2>/dev/null || true
curl -fsS "http://$CONTROL/stats" >"$WORK/stats.json"
curl -fsS "http://$CONTROL/pushes" >"$WORK/pushes.json"
sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$MOCK_PID/status" >"$WORK/rss-after-log"

python3 - "$WORK" "$GONE" "$RATE" "$CHECK_MEMORY" <<'EOF'
import json, re, sys
work, gone, rate, check_memory = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
h2 = open(f"{work}/h2load.out").read()
stats = json.load(open(f"{work}/stats.json"))
pushes = json.load(open(f"{work}/pushes.json"))
failures = []

def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)

m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", h2)
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", h2)
finished = re.search(r"finished in ([0-9.]+)(m?s), ([0-9.]+) req/s", h2)
if not (m and codes):
    print(h2)
    sys.exit("soak-apns: cannot read h2load's summary")
total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
h2_classes = dict(zip(["2xx", "3xx", "4xx", "5xx"], map(int, codes.groups())))
server_classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
for status, n in stats["statuses"].items():
    server_classes[f"{str(status)[0]}xx"] = server_classes.get(f"{str(status)[0]}xx", 0) + n

print(f"h2load:  {total} requests, {done} done, {failed} failed, {errored} errored, {timeout} timeout; "
      f"{h2_classes['2xx']} 2xx, {h2_classes['3xx']} 3xx, {h2_classes['4xx']} 4xx, {h2_classes['5xx']} 5xx"
      + (f"; {finished.group(3)} req/s over {finished.group(1)} {finished.group(2)}" if finished else ""))
print(f"server:  {stats['requests']} requests answered; by status {stats['statuses']}; "
      f"log keeps {stats['kept']} of capacity {stats['capacity']} (from seq {stats['first_kept_seq']})")
# h2load counts a 4xx or 5xx as failed; errored and timed out are requests without a response.
check(done == total and errored == 0 and timeout == 0
      and failed == h2_classes["4xx"] + h2_classes["5xx"],
      f"h2load: every request answered ({done} of {total} done, {errored} errored, {timeout} timed out)")
check(stats["requests"] == sum(h2_classes.values()),
      f"server's request count = h2load's responses ({stats['requests']} = {sum(h2_classes.values())})")
for c in ["2xx", "3xx", "4xx", "5xx"]:
    check(server_classes[c] == h2_classes[c], f"{c}: server {server_classes[c]} = h2load {h2_classes[c]}")
statuses = {int(k): v for k, v in stats["statuses"].items()}
check(set(statuses) <= {200, 410}, f"only 200 and 410 answered ({sorted(statuses)})")
share = statuses.get(410, 0) / max(1, stats["requests"])
check(abs(share - 0.1) < 0.01, f"a tenth of the pushes answered 410 ({share:.2%})")

seqs = [p["seq"] for p in pushes]
ids = [p["apns_id"] for p in pushes]
kept = min(stats["requests"], stats["capacity"])
check(len(pushes) == kept == stats["kept"], f"log keeps {len(pushes)} records = min(requests, capacity) = {kept}")
check(seqs == list(range(stats["requests"] - len(seqs) + 1, stats["requests"] + 1)),
      f"kept records have consecutive sequence numbers {seqs[:1]}..{seqs[-1:]} ending at the request count (none lost)")
check(len(set(ids)) == len(ids), f"{len(set(ids))} distinct apns-ids in {len(ids)} records (none doubled)")
bad = [p["seq"] for p in pushes if (p["status"] == 410) != (p["token"] == gone)]
check(not bad, f"the 410s are exactly the pushes to the unregistered token ({len(bad)} others)")

samples = [tuple(map(float, line.split())) for line in open(f"{work}/rss") if line.strip()]
full_at = stats["capacity"] / rate + 5  # seconds: the log is full, plus a settling margin
after = [rss for t, rss in samples if t >= full_at]
print("memory:  VmRSS (MiB) every 5 s: " + " ".join(f"{t:.0f}s={rss / 1024:.1f}" for t, rss in samples[::5]))
after_log = open(f"{work}/rss-after-log").read().strip()
if after_log:
    print(f"memory:  VmRSS after GET /pushes ({len(pushes)} records): {int(after_log) / 1024:.1f} MiB")
if len(after) >= 4:
    first, second = after[: len(after) // 2], after[len(after) // 2 :]
    growth = max(second) - max(first)
    print(f"memory:  after the log filled (t >= {full_at:.0f} s, {len(after)} samples): "
          f"first half peak {max(first) / 1024:.1f} MiB, second half peak {max(second) / 1024:.1f} MiB, "
          f"growth {growth / 1024:+.1f} MiB")
    if check_memory:
        check(growth <= max(0.10 * max(first), 4096), "resident memory flat once the log is full (growth <= 10% or 4 MiB)")
elif check_memory:
    check(False, f"too few memory samples after the log filled ({len(after)}): run longer")
if failures:
    sys.exit(f"soak-apns: {len(failures)} check(s) failed")
print("soak-apns: counts equal, nothing lost or doubled" + (", memory flat" if check_memory else ""))
EOF
