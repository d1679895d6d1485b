#!/bin/bash
# Starts the pushbench SIP target "Kamailio 5.6 + tsilo + http_client" (kamailio.cfg) on loopback:
# SIP on udp+tcp 127.0.0.1:25060, its park socket on udp 127.0.0.1:25069, pushing to the bench's
# mock APNs at https://127.0.0.1:28443 with the sandbox client certificate of ./credentials (the
# runner writes that directory before this script runs: targets/kamailio.toml apns.credentials_dir).
# Runtime files (pid, control socket, kamailio.log — appended to, kept for evidence) go to
# $PUSHBENCH_KAMAILIO_DIR (default /tmp/pushbench-kamailio-target). A running instance started from
# there is stopped first, so this is also the restart before_scenario.sh does. Needs the Debian packages kamailio and
# kamailio-utils-modules (http_client), see scripts/install-deps.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${PUSHBENCH_KAMAILIO_DIR:-/tmp/pushbench-kamailio-target}
creds="$here/credentials"
bucket_ms=${PUSHBENCH_KAMAILIO_BUCKET_MS:-3000}
command -v kamailio >/dev/null || { echo "kamailio is not installed (scripts/install-deps.sh)" >&2; exit 1; }
for f in manifest.json ca.pem client-sandbox.pem client-sandbox-key.pem; do
  [ -f "$creds/$f" ] || { echo "$creds/$f is missing: the bench writes the credentials before start" >&2; exit 1; }
done
"$here/stop.sh"
mkdir -p "$dir"
rm -f "$dir/ctl.sock"
# A missing module (http_client is in kamailio-utils-modules) or a config error stops here.
kamailio -c -f "$here/kamailio.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
nohup kamailio -f "$here/kamailio.cfg" -DD -E -P "$dir/kamailio.pid" -Y "$dir" -w "$dir" \
  -A "SIP_PORT=25060" -A "PARK_PORT=25069" -A 'SIP_DOMAIN="pushbench.test"' \
  -A 'APNS_URL="https://127.0.0.1:28443"' -A "APNS_CERT=\"$creds/client-sandbox.pem\"" \
  -A "APNS_KEY=\"$creds/client-sandbox-key.pem\"" -A "APNS_CA=\"$creds/ca.pem\"" \
  -A 'APNS_TOPIC="com.example.pushbench.voip"' -A "BUCKET_MS=$bucket_ms" \
  -A "CTL_SOCKET=\"unix:$dir/ctl.sock\"" \
  >>"$dir/kamailio.log" 2>&1 </dev/null &
echo $! >"$dir/main.pid"
# Wait (20 s at most) for the TCP listener and the control socket.
i=0
while ! (exec 3<>/dev/tcp/127.0.0.1/25060) 2>/dev/null || [ ! -S "$dir/ctl.sock" ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "kamailio did not listen within 20 s" >&2; tail -20 "$dir/kamailio.log" >&2; exit 1; fi
  kill -0 "$(cat "$dir/main.pid")" 2>/dev/null || { echo "kamailio exited" >&2; tail -30 "$dir/kamailio.log" >&2; exit 1; }
  sleep 0.1
done
echo "kamailio target up in $dir (pid $(cat "$dir/main.pid"), log $dir/kamailio.log)"
