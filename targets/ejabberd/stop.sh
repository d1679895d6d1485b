#!/bin/sh
# Stops the ejabberd that start.sh started: its whole process group (beam.smp and its port
# programs), by the pid file only, and waits (10 s at most, then SIGKILL) until it is gone.
dir=${PUSHBENCH_EJABBERD_DIR:-/tmp/pushbench-ejabberd-target}
[ -f "$dir/ejabberd.pid" ] || exit 0
pid=$(cat "$dir/ejabberd.pid")
rm -f "$dir/ejabberd.pid"
kill -TERM "-$pid" 2>/dev/null || exit 0
i=0
while kill -0 "-$pid" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 100 ]; then kill -KILL "-$pid" 2>/dev/null; break; fi
  sleep 0.1
done
exit 0
