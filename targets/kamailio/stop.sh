#!/bin/sh
# Stops the Kamailio that start.sh started: SIGTERM to its main process (which stops its children),
# then, if any of its process group is still there after 5 s, SIGKILL to the group (start.sh runs
# it under setsid, so the group id is the main process's pid). The log stays.
dir=${PUSHBENCH_KAMAILIO_DIR:-/tmp/pushbench-kamailio-target}
if [ -f "$dir/main.pid" ]; then
  pid=$(cat "$dir/main.pid")
  kill -TERM "$pid" 2>/dev/null
  # The ports must be free for the next start: wait for the whole group to go.
  i=0
  while kill -0 "-$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -eq 50 ]; then
      echo "kamailio (group $pid) ignored SIGTERM for 5 s: SIGKILL" >&2
      kill -KILL "-$pid" 2>/dev/null
    fi
    [ "$i" -gt 100 ] && { echo "kamailio (group $pid) still there after SIGKILL" >&2; exit 1; }
    sleep 0.1
  done
fi
rm -f "$dir/main.pid" "$dir/kamailio.pid"
exit 0
