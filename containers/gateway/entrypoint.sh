#!/bin/bash
# The entry point of the project's gateway images (pushbench/kamailio, pushbench/prosody,
# pushbench/ejabberd): runs one real gateway with the start/stop scripts of targets/, from the
# environment, under tini (PID 1, forwards SIGTERM here).
#
#   pushbench-gateway run       start the gateway, serve the control port, stream its log; exit 0
#                               on SIGTERM/SIGINT after stopping it (the image's default command)
#   pushbench-gateway health    exit 0 when the gateway answers (the image's HEALTHCHECK)
#   pushbench-gateway control   one control request on stdin/stdout (socat runs this per connection)
#
# The gateway-specific part is /etc/pushbench/gateway.sh (from containers/<name>/gateway.sh): it sets
# GATEWAY and NEEDS_CREDENTIALS and defines gateway_start, gateway_stop, gateway_healthy and
# gateway_log. Shared environment (each image's Dockerfile sets the defaults):
#   SHARED        the folder shared with the bench (default /pushbench): the bench writes the APNs
#                 credentials to $SHARED/credentials, the gateway writes its files (TLS CA, log) to
#                 $SHARED/gateway
#   LISTEN_IP     the address every listener binds (default 127.0.0.1: host networking, loopback)
#   CONTROL_PORT  the control port on LISTEN_IP: a client sends one line, `ready` (answer `ok` once
#                 the gateway is up) or `restart` (stop and start it again, answer `ok` once it is
#                 up); targets/container/gateway-control.sh is the client
#   CREDENTIALS_TIMEOUT  seconds to wait for $SHARED/credentials/manifest.json (0: forever)
set -euo pipefail
SHARED=${SHARED:-/pushbench}
LISTEN_IP=${LISTEN_IP:-127.0.0.1}
CONTROL_PORT=${CONTROL_PORT:?CONTROL_PORT is not set}
CREDENTIALS_TIMEOUT=${CREDENTIALS_TIMEOUT:-0}
export SHARED LISTEN_IP CONTROL_PORT
# shellcheck source=/dev/null
. /etc/pushbench/gateway.sh
lock=/run/pushbench-gateway.lock

say() { echo "pushbench-gateway[$GATEWAY]: $*" >&2; }

# True when TCP $1:$2 accepts a connection.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for_credentials() {
  local manifest=$SHARED/credentials/manifest.json waited=0
  [ "$NEEDS_CREDENTIALS" = 1 ] || return 0
  until [ -s "$manifest" ]; do
    if [ $((waited % 10)) = 0 ]; then say "waiting for the bench's credentials ($manifest)"; fi
    if [ "$CREDENTIALS_TIMEOUT" != 0 ] && [ "$waited" -ge "$CREDENTIALS_TIMEOUT" ]; then
      say "no credentials after $CREDENTIALS_TIMEOUT s"; exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "credentials found"
}

control() {
  local request reply
  read -r -t 10 request || request=""
  case "$request" in
    ready)
      if gateway_healthy; then reply=ok; else reply="not-ready"; fi ;;
    restart)
      # One restart at a time, and never while `run` is still starting the gateway.
      exec 9>"$lock"
      flock 9
      if { gateway_stop && gateway_start; } >&2; then reply=ok; else reply="error: restart failed"; fi ;;
    *) reply="error: unknown request '$request' (ready, restart)" ;;
  esac
  echo "$reply"
}

run() {
  mkdir -p "$SHARED/gateway"
  wait_for_credentials
  exec 9>"$lock"
  flock 9
  gateway_start
  flock -u 9
  exec 9>&-
  socat "TCP-LISTEN:$CONTROL_PORT,bind=$LISTEN_IP,reuseaddr,fork" \
    "EXEC:/usr/local/bin/pushbench-gateway control" &
  control_pid=$!
  # The gateway's log on the container's output (docker logs), also across restarts.
  tail -n +1 -F "$(gateway_log)" 2>/dev/null &
  tail_pid=$!
  stopping() {
    say "stopping"
    kill "$control_pid" 2>/dev/null || true
    gateway_stop || true
    kill "$tail_pid" 2>/dev/null || true
    exit 0
  }
  trap stopping TERM INT
  say "up: control port $LISTEN_IP:$CONTROL_PORT"
  # wait returns when a trapped signal arrives; the trap exits.
  while :; do wait "$control_pid" || true; kill -0 "$control_pid" 2>/dev/null || { say "control listener exited"; gateway_stop; exit 1; }; done
}

case "${1:-run}" in
  run) run ;;
  health) gateway_healthy && tcp_open "$LISTEN_IP" "$CONTROL_PORT" ;;
  control) control ;;
  *) echo "usage: pushbench-gateway run|health|control" >&2; exit 2 ;;
esac
