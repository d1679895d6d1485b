# pushbench/prosody: the gateway part of pushbench-gateway (containers/gateway/entrypoint.sh).
# Runs targets/prosody/start.sh and stop.sh (installed under /opt/pushbench/targets) with the
# image's environment: C2S_PORT, COMPONENT_PORT (127.0.0.1 only: prosody.cfg.lua.in binds
# loopback). Its data, its TLS CA (ca.pem, the target file's xmpp.tls_ca_file) and its log
# (prosody.log, the target file's xmpp.log_file) go to $SHARED/gateway. Prosody needs no APNs
# credentials: the XEP-0357 app server is the bench's, connecting to COMPONENT_PORT.
GATEWAY=prosody
NEEDS_CREDENTIALS=0
export PUSHBENCH_PROSODY_DIR=$SHARED/gateway
export PUSHBENCH_PROSODY_C2S_PORT=${C2S_PORT:?C2S_PORT is not set}
export PUSHBENCH_PROSODY_COMPONENT_PORT=${COMPONENT_PORT:?COMPONENT_PORT is not set}

gateway_start() { /opt/pushbench/targets/prosody/start.sh; }
gateway_stop() { /opt/pushbench/targets/prosody/stop.sh; }
gateway_healthy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$C2S_PORT") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$COMPONENT_PORT") 2>/dev/null
}
gateway_log() { echo "$PUSHBENCH_PROSODY_DIR/prosody.log"; }
