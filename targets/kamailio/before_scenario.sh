#!/bin/bash
# Gives every scenario a fresh Kamailio: the scenarios share the accounts alice and bob, and a
# scenario may end with a call still ringing (fr_inv_timer 60 s) or bindings left in usrloc, which
# the next one must not see. Restarting (about 0.3 s) is simpler and surer than cleaning usrloc and
# tm through RPC. The log file is appended to, so it keeps every scenario.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
echo "---- before_scenario restart $(date -u +%H:%M:%S.%N)" >>"${PUSHBENCH_KAMAILIO_DIR:-/tmp/pushbench-kamailio-target}/kamailio.log" 2>/dev/null || true
exec "$here/start.sh"
