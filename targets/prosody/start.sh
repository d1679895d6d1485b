#!/bin/bash
# Starts the pushbench XMPP target "Prosody 0.12 + mod_cloud_notify + smacks + mam" on loopback
# (c2s 127.0.0.1:15222, component 127.0.0.1:15347) from prosody.cfg.lua.in, in $PUSHBENCH_PROSODY_DIR
# (default /tmp/pushbench-prosody-target): fresh data, a self-signed CA + localhost certificate
# (ca.pem, for the bench's TLS trust), accounts alice and bob. The app server is the bench's own
# (ref_gateway::app_server), connecting as the component push.localhost.
# Needs the Debian packages prosody, prosody-modules and openssl (scripts/install-deps.sh).
# The container image (containers/prosody) runs this same script with its ports from the
# environment: PUSHBENCH_PROSODY_C2S_PORT and PUSHBENCH_PROSODY_COMPONENT_PORT.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${PUSHBENCH_PROSODY_DIR:-/tmp/pushbench-prosody-target}
c2s=${PUSHBENCH_PROSODY_C2S_PORT:-15222} component=${PUSHBENCH_PROSODY_COMPONENT_PORT:-15347}
command -v prosody >/dev/null || { echo "prosody is not installed (scripts/install-deps.sh)" >&2; exit 1; }
[ -d /usr/lib/prosody/modules/mod_cloud_notify ] || { echo "prosody-modules (mod_cloud_notify) is not installed" >&2; exit 1; }
if [ -f "$dir/prosody.pid" ]; then kill "$(cat "$dir/prosody.pid")" 2>/dev/null || true; fi
rm -rf "$dir"
mkdir -p "$dir/data" "$dir/modules"
cp "$here/mod_cloud_notify_jmi.lua" "$dir/modules/"
"$here/../loopback-tls.sh" "$dir" "pushbench Prosody CA"
sed -e "s|@@DIR@@|$dir|g" -e "s|@@C2S_PORT@@|$c2s|" -e "s|@@COMPONENT_PORT@@|$component|" \
    -e "s|@@PASSWORD_HASH@@|SHA-1|" -e "s|@@HIBERNATION@@|60|g" -e "s|@@COMPONENT_SECRET@@|pushbench-component|" \
    "$here/prosody.cfg.lua.in" > "$dir/prosody.cfg.lua"
if grep -q '@@' "$dir/prosody.cfg.lua"; then echo "unsubstituted placeholder" >&2; exit 1; fi
prosodyctl --config "$dir/prosody.cfg.lua" register alice localhost alice-secret
prosodyctl --config "$dir/prosody.cfg.lua" register bob localhost bob-secret
nohup prosody --config "$dir/prosody.cfg.lua" -F >"$dir/stdout.log" 2>"$dir/stderr.log" &
echo $! > "$dir/prosody.pid"
# Wait (20 s at most) for both ports.
i=0
while ! (exec 3<>"/dev/tcp/127.0.0.1/$c2s") 2>/dev/null || ! (exec 3<>"/dev/tcp/127.0.0.1/$component") 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 200 ]; then echo "prosody did not listen within 20 s" >&2; tail -20 "$dir/prosody.log" >&2; exit 1; fi
  kill -0 "$(cat "$dir/prosody.pid")" 2>/dev/null || { echo "prosody exited" >&2; cat "$dir/stderr.log" >&2; exit 1; }
  sleep 0.1
done
echo "prosody target up in $dir (pid $(cat "$dir/prosody.pid"))"
