#!/bin/sh
# Makes the private TLS of a loopback XMPP target (used by prosody/start.sh and ejabberd/start.sh):
# a throwaway self-signed CA, $1/ca.pem (the bench trusts it: the target's [xmpp] tls_ca_file),
# and a certificate for localhost and push.localhost signed by it, $1/certs/localhost.{crt,key}.
# Valid 2 days, P-256 keys. Usage: loopback-tls.sh DIR "CA NAME". Needs openssl.
set -eu
dir=$1
name=$2
certs=$dir/certs
mkdir -p "$certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$name" \
  -keyout "$certs/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$certs/localhost.key" -out "$certs/localhost.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,DNS:push.localhost\n' > "$certs/san.ext"
openssl x509 -req -in "$certs/localhost.csr" -CA "$dir/ca.pem" -CAkey "$certs/ca.key" \
  -CAcreateserial -days 2 -extfile "$certs/san.ext" -out "$certs/localhost.crt" 2>/dev/null
