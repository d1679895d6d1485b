#!/bin/sh
# Stops the Kamailio that start.sh started (by its pid file only); the log stays for evidence.
dir=${PUSHBENCH_KAMAILIO_DIR:-/tmp/pushbench-kamailio-target}
if [ -f "$dir/main.pid" ]; then
  pid=$(cat "$dir/main.pid")
  kill "$pid" 2>/dev/null
  # Wait (5 s at most) for it and its children to go, so the ports are free for the next start.
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do i=$((i + 1)); sleep 0.1; done
fi
rm -f "$dir/main.pid" "$dir/kamailio.pid"
exit 0
