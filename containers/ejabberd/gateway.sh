# pushbench/ejabberd: the gateway part of pushbench-gateway (containers/gateway/entrypoint.sh).
# Runs targets/ejabberd/start.sh and stop.sh (installed under /opt/pushbench/targets) with the
# image's environment: C2S_PORT, COMPONENT_PORT, DIST_PORT (the Erlang distribution; all on
# 127.0.0.1: ejabberd.yml.in binds loopback). Its mnesia, its TLS CA (ca.pem, the target file's
# xmpp.tls_ca_file) and its log (ejabberd.log, xmpp.log_file) go to $SHARED/gateway. No APNs
# credentials: the XEP-0357 app server is the bench's, connecting to COMPONENT_PORT.
GATEWAY=ejabberd
NEEDS_CREDENTIALS=0
export PUSHBENCH_EJABBERD_DIR=$SHARED/gateway
export PUSHBENCH_EJABBERD_C2S_PORT=${C2S_PORT:?C2S_PORT is not set}
export PUSHBENCH_EJABBERD_COMPONENT_PORT=${COMPONENT_PORT:?COMPONENT_PORT is not set}
export PUSHBENCH_EJABBERD_DIST_PORT=${DIST_PORT:?DIST_PORT is not set}

gateway_start() { /opt/pushbench/targets/ejabberd/start.sh; }
gateway_stop() { /opt/pushbench/targets/ejabberd/stop.sh; }
gateway_healthy() {
  [ -f "$PUSHBENCH_EJABBERD_DIR/accounts.ok" ] \
    && (exec 3<>"/dev/tcp/127.0.0.1/$C2S_PORT") 2>/dev/null \
    && (exec 3<>"/dev/tcp/127.0.0.1/$COMPONENT_PORT") 2>/dev/null
}
gateway_log() { echo "$PUSHBENCH_EJABBERD_DIR/ejabberd.log"; }
