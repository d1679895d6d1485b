#!/usr/bin/env bash
# Installs the real peers the tests run against, on a fresh Debian machine of the project's kind.
# Idempotent: it does nothing when everything is already there.
set -euo pipefail

DEBIAN_PACKAGES=(
  curl                      # APNs client: curl --http2
  openssl                   # mock-apns credentials checked with openssl verify/x509
  nghttp2-client            # nghttp, h2load
  nghttp2-server            # nghttpd: the HTTP/2 reference in the benchmark
  sip-tester                # SIPp (built without TLS)
  kamailio kamailio-tls-modules kamailio-extra-modules kamailio-utils-modules
  prosody prosody-modules lua-sec
  ejabberd                  # 23.01: the second XMPP target (targets/ejabberd.toml)
  baresip-core
  debootstrap               # containers/base/build.sh: the base image, with no registry
  docker-compose            # containers/compose.yml (Compose 1.29; Compose v2 works too)
  binutils                  # objcopy: containers/build.sh strips the binaries it puts in images
  stress-ng                 # scripts/stress-bench.sh: half of its runs with the CPU loaded
)
PYTHON_PACKAGES=(aioapns)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts packaged daemons on install where it can; the tests start their own on loopback.
for svc in kamailio prosody; do
  pkill -x "$svc" 2>/dev/null || true
done
# The packaged ejabberd runs as the ejabberd user (beam.smp + its epmd, which holds port 4369);
# without systemd the init script may or may not have started it. Stop both by that user only:
# targets/ejabberd/start.sh runs its own node without epmd.
if id ejabberd >/dev/null 2>&1; then
  service ejabberd stop >/dev/null 2>&1 || true
  pkill -u ejabberd -x beam.smp 2>/dev/null || true
  pkill -u ejabberd -x epmd 2>/dev/null || true
fi

PY=${PYTHON:-python3}
for p in "${PYTHON_PACKAGES[@]}"; do
  "$PY" -c "import $p" 2>/dev/null || "$PY" -m pip install -q "$p"
done
echo "install-deps: ok"
