#!/bin/sh
# Stops the Prosody that start.sh started (by its pid file only).
dir=${PUSHBENCH_PROSODY_DIR:-/tmp/pushbench-prosody-target}
[ -f "$dir/prosody.pid" ] && kill "$(cat "$dir/prosody.pid")" 2>/dev/null
rm -f "$dir/prosody.pid"
exit 0
