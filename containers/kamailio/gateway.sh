# pushbench/kamailio: the gateway part of pushbench-gateway (containers/gateway/entrypoint.sh).
# Runs targets/kamailio/start.sh and stop.sh (installed under /opt/pushbench/targets) with the
# image's environment: SIP_PORT (udp+tcp), TLS_PORT, PARK_PORT (loopback only), APNS_URL (the
# bench's mock APNs), LISTEN_IP; the APNs client certificate from $SHARED/credentials, the SIP TLS
# CA it makes in $SHARED/gateway/tls (the target file's sip.tls_ca_file), its log and runtime files
# in $SHARED/gateway.
GATEWAY=kamailio
NEEDS_CREDENTIALS=1
export PUSHBENCH_KAMAILIO_DIR=$SHARED/gateway
export PUSHBENCH_KAMAILIO_CREDENTIALS=$SHARED/credentials
export PUSHBENCH_KAMAILIO_TLS=$SHARED/gateway/tls
export PUSHBENCH_KAMAILIO_LISTEN_IP=$LISTEN_IP
export PUSHBENCH_KAMAILIO_SIP_PORT=${SIP_PORT:?SIP_PORT is not set}
export PUSHBENCH_KAMAILIO_TLS_PORT=${TLS_PORT:?TLS_PORT is not set}
export PUSHBENCH_KAMAILIO_PARK_PORT=${PARK_PORT:?PARK_PORT is not set}
export PUSHBENCH_KAMAILIO_APNS_URL=${APNS_URL:?APNS_URL is not set}

gateway_start() { /opt/pushbench/targets/kamailio/start.sh; }
gateway_stop() { /opt/pushbench/targets/kamailio/stop.sh; }
gateway_healthy() {
  [ -S "$PUSHBENCH_KAMAILIO_DIR/ctl.sock" ] && (exec 3<>"/dev/tcp/$LISTEN_IP/$SIP_PORT") 2>/dev/null
}
gateway_log() { echo "$PUSHBENCH_KAMAILIO_DIR/kamailio.log"; }
