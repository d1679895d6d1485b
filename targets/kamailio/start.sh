#!/bin/bash
# Starts the pushbench SIP target "Kamailio 5.6 + tsilo + http_client" (kamailio.cfg) on loopback:
# SIP on udp+tcp 127.0.0.1:25060 and tls 127.0.0.1:25061, its park socket on udp 127.0.0.1:25069, pushing to the bench's
# mock APNs at https://127.0.0.1:28443 with the sandbox client certificate of ./credentials (the
# runner writes that directory before this script runs: targets/kamailio.toml apns.credentials_dir).
# Runtime files (pid, control socket, kamailio.log — appended to, kept for evidence) go to
# $PUSHBENCH_KAMAILIO_DIR (default /tmp/pushbench-kamailio-target). A running instance started from
# there is stopped first, so this is also the restart before_scenario.sh does. Needs the Debian packages kamailio and
# kamailio-utils-modules (http_client), see scripts/install-deps.sh.
# The container image (containers/kamailio) runs this same script with other values from the
# environment: PUSHBENCH_KAMAILIO_{LISTEN_IP,SIP_PORT,TLS_PORT,PARK_PORT,APNS_URL,CREDENTIALS,TLS}
# (defaults: 127.0.0.1, 25060, 25061, 25069, https://127.0.0.1:28443, ./credentials, ./tls).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${PUSHBENCH_KAMAILIO_DIR:-/tmp/pushbench-kamailio-target}
creds=${PUSHBENCH_KAMAILIO_CREDENTIALS:-$here/credentials}
listen_ip=${PUSHBENCH_KAMAILIO_LISTEN_IP:-127.0.0.1}
sip_port=${PUSHBENCH_KAMAILIO_SIP_PORT:-25060}
tls_port=${PUSHBENCH_KAMAILIO_TLS_PORT:-25061}
park_port=${PUSHBENCH_KAMAILIO_PARK_PORT:-25069}
apns_url=${PUSHBENCH_KAMAILIO_APNS_URL:-https://127.0.0.1:28443}
# The bucket timer: keep equal to timers.bucket_ms in ../kamailio.toml.
bucket_ms=3000
command -v kamailio >/dev/null || { echo "kamailio is not installed (scripts/install-deps.sh)" >&2; exit 1; }
for f in manifest.json ca.pem client-sandbox.pem client-sandbox-key.pem; do
  [ -f "$creds/$f" ] || { echo "$creds/$f is missing: the bench writes the credentials before start" >&2; exit 1; }
done
# The SIP TLS identity: a CA (tls/ca.pem, the target file's tls_ca_file) and a certificate for
# localhost, made once and kept, like the credentials.
tls=${PUSHBENCH_KAMAILIO_TLS:-$here/tls}
if [ ! -f "$tls/localhost.pem" ] || [ ! -f "$tls/ca.pem" ]; then
  command -v openssl >/dev/null || { echo "openssl is not installed" >&2; exit 1; }
  rm -rf "$tls" && mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=pushbench Kamailio CA" -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$tls/localhost-key.pem" -out "$tls/localhost.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
  openssl x509 -req -in "$tls/localhost.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" \
    -CAcreateserial -days 3650 -extfile "$tls/san.ext" -out "$tls/localhost.pem" 2>/dev/null
fi
"$here/stop.sh"
mkdir -p "$dir"
rm -f "$dir/ctl.sock"
# A missing module (http_client is in kamailio-utils-modules) or a config error stops here.
kamailio -c -f "$here/kamailio.cfg" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
# Its own process group (setsid), so stop.sh can end the main process and all its children.
setsid kamailio -f "$here/kamailio.cfg" -DD -E -P "$dir/kamailio.pid" -Y "$dir" -w "$dir" \
  -A "LISTEN_IP=$listen_ip" -A "SIP_PORT=$sip_port" -A "PARK_PORT=$park_port" -A 'SIP_DOMAIN="pushbench.test"' \
  -A "APNS_URL=\"$apns_url\"" -A "APNS_CERT=\"$creds/client-sandbox.pem\"" \
  -A "APNS_KEY=\"$creds/client-sandbox-key.pem\"" -A "APNS_CA=\"$creds/ca.pem\"" \
  -A 'APNS_TOPIC="com.example.pushbench.voip"' -A "BUCKET_MS=$bucket_ms" \
  -A "CTL_SOCKET=\"unix:$dir/ctl.sock\"" -A WITH_TLS -A "TLS_PORT=$tls_port" \
  -A "TLS_CERT=\"$tls/localhost.pem\"" -A "TLS_KEY=\"$tls/localhost-key.pem\"" \
  >>"$dir/kamailio.log" 2>&1 </dev/null &
echo $! >"$dir/main.pid"
# Wait (20 s at most) for the TCP listener and the control socket.
i=0
while ! (exec 3<>"/dev/tcp/$listen_ip/$sip_port") 2>/dev/null || [ ! -S "$dir/ctl.sock" ]; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "kamailio did not listen within 20 s" >&2; tail -20 "$dir/kamailio.log" >&2; exit 1; fi
  kill -0 "$(cat "$dir/main.pid")" 2>/dev/null || { echo "kamailio exited" >&2; tail -30 "$dir/kamailio.log" >&2; exit 1; }
  sleep 0.1
done
echo "kamailio target up in $dir (pid $(cat "$dir/main.pid"), log $dir/kamailio.log)"
