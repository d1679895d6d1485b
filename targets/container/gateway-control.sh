#!/bin/bash
# The client of the control port of the project's gateway images (containers/gateway/entrypoint.sh):
#
#   gateway-control.sh HOST:PORT ready [SECONDS]     wait (default 120 s) until the gateway is up
#   gateway-control.sh HOST:PORT restart [SECONDS]   restart it and wait until it is up again
#
# It connects, sends the request as one line and expects `ok`. `ready` retries until the deadline
# (the container may still be waiting for the bench's credentials, and its control port not yet
# open); `restart` is asked once. The container target files run it as their start and
# before_scenario commands, from the bench's side (the host, or the pushbench image).
set -u
addr=${1:?usage: gateway-control.sh HOST:PORT ready|restart [SECONDS]}
request=${2:?usage: gateway-control.sh HOST:PORT ready|restart [SECONDS]}
limit=${3:-120}
host=${addr%:*} port=${addr##*:}
ask() {
  local reply=""
  exec 3<>"/dev/tcp/$host/$port" || return 1
  echo "$1" >&3
  read -r -t "$limit" reply <&3 || true
  exec 3>&-
  echo "$reply"
  [ "$reply" = ok ]
}
case "$request" in
  ready)
    start=$SECONDS
    until reply=$(ask ready 2>/dev/null); do
      if [ $((SECONDS - start)) -ge "$limit" ]; then
        echo "gateway at $addr not ready within $limit s (last answer: ${reply:-no connection})" >&2
        exit 1
      fi
      sleep 0.2
    done
    echo "gateway at $addr ready after $((SECONDS - start)) s" ;;
  restart)
    reply=$(ask restart) || { echo "restart of the gateway at $addr failed: ${reply:-no connection}" >&2; exit 1; }
    echo "gateway at $addr restarted" ;;
  *) echo "gateway-control.sh: unknown request $request (ready, restart)" >&2; exit 2 ;;
esac
