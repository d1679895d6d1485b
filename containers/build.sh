#!/usr/bin/env bash
# Builds every image of the project, with no registry (nothing is pulled; `docker history` of each
# image ends in pushbench/base:bookworm's single "Imported from -" layer, or is FROM scratch):
#
#   pushbench/base:bookworm   Debian 12 minbase by debootstrap + docker import (containers/base)
#   pushbench/pushbench       the bench (containers/pushbench)
#   pushbench/mock-apns       the fake APNs, FROM scratch (containers/mock-apns)
#   pushbench/kamailio        Kamailio 5.6 as an RFC 8599 gateway (containers/kamailio)
#   pushbench/prosody         Prosody 0.12 + mod_cloud_notify (containers/prosody)
#   pushbench/ejabberd        ejabberd 23.01 + mod_push (containers/ejabberd)
#
#   containers/build.sh [--debug] [--binaries DIR] [IMAGE…]
#
# Each image is tagged :latest and :VERSION (Cargo.toml's version) and carries the OCI labels of
# lib.sh. The bench and mock-apns images take host-built binaries: `cargo build --release` (the
# debug profile with --debug; the binaries in DIR with --binaries DIR, e.g. target/debug after a
# test build). Cached: the base image is made once, and docker's layer cache makes a rebuild whose
# inputs did not change a no-op. IMAGE names limit the build to those (e.g. `kamailio pushbench`;
# the base image is always there). Prints the images and how long each took.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PROFILE=release BINARIES="" ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) PROFILE=debug; shift ;;
    --binaries) BINARIES=${2:?--binaries needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "build.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) ONLY+=("$1"); shift ;;
  esac
done
ALL=(pushbench mock-apns kamailio prosody ejabberd)
[ ${#ONLY[@]} -gt 0 ] || ONLY=("${ALL[@]}")
for i in "${ONLY[@]}"; do
  [[ " ${ALL[*]} " == *" $i "* ]] || { echo "build.sh: unknown image $i (${ALL[*]})" >&2; exit 2; }
done
wanted() { [[ " ${ONLY[*]} " == *" $1 "* ]]; }
command -v docker >/dev/null || { echo "build.sh: docker is required" >&2; exit 1; }

timings=()
timed() {
  local name=$1 started=$SECONDS
  shift
  echo "build.sh: $name" >&2
  "$@"
  timings+=("$name $((SECONDS - started)) s")
}

timed base "$HERE/base/build.sh" >/dev/null

if wanted pushbench || wanted mock-apns; then
  if [ -z "$BINARIES" ]; then
    flags=(--locked -p pushbench --bin pushbench -p mock-apns --bin mock-apns)
    [ "$PROFILE" = release ] && flags+=(--release)
    timed "cargo build ($PROFILE)" bash -c 'cd "$1" && shift && cargo build "$@" >&2' _ "$ROOT" "${flags[@]}"
    BINARIES=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE
  fi
  for b in pushbench mock-apns; do
    [ -x "$BINARIES/$b" ] || { echo "build.sh: $BINARIES/$b is not an executable" >&2; exit 1; }
  done
fi

bench_image() {
  # The build context: the binary, without debug information (the features are in it).
  local ctx
  ctx=$(mktemp -d)
  objcopy --strip-debug "$BINARIES/pushbench" "$ctx/pushbench"
  cp "$HERE/pushbench/Dockerfile" "$ctx/Dockerfile"
  build_image pushbench "$ctx/Dockerfile" "$ctx" --quiet
  rm -rf "$ctx"
}

wanted pushbench && timed pushbench bench_image
wanted mock-apns && timed mock-apns "$HERE/mock-apns/build.sh" --binary "$BINARIES/mock-apns" >/dev/null
for g in kamailio prosody ejabberd; do
  wanted "$g" && timed "$g" build_image "$g" "$HERE/$g/Dockerfile" "$ROOT" --quiet
done

for t in "${timings[@]}"; do echo "build.sh: took $t" >&2; done
docker images --filter reference='pushbench/*' --format 'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}'
