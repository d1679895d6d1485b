#!/bin/bash
# Starts the pushbench XMPP target "ejabberd 23.01 + mod_push + stream management + mam" on
# loopback (c2s 127.0.0.1:15223 with STARTTLS, component 127.0.0.1:15348, Erlang distribution
# 127.0.0.1:15349, no epmd) from ejabberd.yml.in, in $PUSHBENCH_EJABBERD_DIR (default
# /tmp/pushbench-ejabberd-target): fresh mnesia, the loopback CA + localhost certificate
# (../loopback-tls.sh; ca.pem for the bench's TLS trust), accounts alice and bob. The app server is
# the bench's own (ref_gateway::app_server), connecting as the component push.localhost.
# erl runs directly (not through ejabberdctl, whose node, cookie and epmd are the system's), in its
# own process group (stop.sh kills the group); it registers the accounts itself once ejabberd has
# started, then writes accounts.ok. Needs the Debian packages ejabberd and openssl
# (scripts/install-deps.sh, which also stops the packaged ejabberd).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${PUSHBENCH_EJABBERD_DIR:-/tmp/pushbench-ejabberd-target}
# The container image (containers/ejabberd) sets the ports from its environment.
c2s=${PUSHBENCH_EJABBERD_C2S_PORT:-15223} component=${PUSHBENCH_EJABBERD_COMPONENT_PORT:-15348}
dist=${PUSHBENCH_EJABBERD_DIST_PORT:-15349}
# ejabberd starts in ~4 s on an idle machine, up to ~27 s on a loaded 2-core one.
timeout_s=90
libs=/usr/lib/x86_64-linux-gnu
command -v erl >/dev/null && [ -d "$libs/ejabberd-23.01" ] || { echo "ejabberd 23.01 is not installed (scripts/install-deps.sh)" >&2; exit 1; }
"$here/stop.sh"
# Who listens on a loopback port: the pid in ss's users:(("beam.smp",pid=N,fd=M)), or nothing.
owner() { ss -ltnpH "sport = :$1" | sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | head -1; }
for p in $c2s $component $dist; do
  o=$(owner $p)
  [ -z "$o" ] || { echo "port $p is already held by pid $o ($(ps -o args= -p "$o" | cut -c1-80))" >&2; exit 1; }
done
rm -rf "$dir"
mkdir -p "$dir/database"
"$here/../loopback-tls.sh" "$dir" "pushbench ejabberd CA"
sed -e "s|@@DIR@@|$dir|g" -e "s|@@C2S_PORT@@|$c2s|" -e "s|@@COMPONENT_PORT@@|$component|" \
    -e "s|@@HIBERNATION@@|60|g" -e "s|@@COMPONENT_SECRET@@|pushbench-component|" \
    "$here/ejabberd.yml.in" > "$dir/ejabberd.yml"
if grep -q '@@' "$dir/ejabberd.yml"; then echo "unsubstituted placeholder" >&2; exit 1; fi
register='{ok, _} = ejabberd:start(),
  ok = ejabberd_auth:try_register(<<"alice">>, <<"localhost">>, <<"alice-secret">>),
  ok = ejabberd_auth:try_register(<<"bob">>, <<"localhost">>, <<"bob-secret">>),
  ok = file:write_file("'"$dir"'/accounts.ok", <<>>).'
cd "$dir"
# setsid: its own session and process group, whose id is erl's pid (erl execs beam.smp).
HOME=$dir ERL_LIBS=$libs EJABBERD_CONFIG_PATH=$dir/ejabberd.yml EJABBERD_LOG_PATH=$dir/ejabberd.log \
  ERL_CRASH_DUMP=$dir/erl_crash.dump \
  setsid erl -sname pushbench-ejabberd@localhost -setcookie "pushbench-$RANDOM$RANDOM" \
    -start_epmd false -erl_epmd_port $dist \
    -kernel inet_dist_use_interface '{127,0,0,1}' inet_dist_listen_min $dist inet_dist_listen_max $dist \
    -mnesia dir "\"$dir/database\"" -noinput -eval "$register" \
    </dev/null >"$dir/stdout.log" 2>"$dir/stderr.log" &
pid=$!
echo $pid > "$dir/ejabberd.pid"
# Wait for the accounts and for the three ports, each held by this erl.
start=$SECONDS
while :; do
  if [ -f "$dir/accounts.ok" ] && [ "$(owner $c2s)" = "$pid" ] && [ "$(owner $component)" = "$pid" ] \
     && [ "$(owner $dist)" = "$pid" ]; then
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "ejabberd exited" >&2; tail -20 "$dir/stdout.log" "$dir/stderr.log" "$dir/ejabberd.log" >&2 2>/dev/null; exit 1
  fi
  if [ $((SECONDS - start)) -ge $timeout_s ]; then
    echo "ejabberd was not up within $timeout_s s" >&2
    ss -ltnp | grep -E ":($c2s|$component|$dist) " >&2 || true
    tail -20 "$dir/stdout.log" "$dir/ejabberd.log" >&2 2>/dev/null
    "$here/stop.sh"; exit 1
  fi
  sleep 0.2
done
echo "ejabberd target up in $dir (pid $pid, $((SECONDS - start)) s)"
