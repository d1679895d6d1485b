#!/usr/bin/env bash
# Builds the mock-apns container image from a host-built binary (FROM scratch, Dockerfile.prebuilt
# beside this script; Dockerfile builds the same image from source, with no host toolchain).
#
#   containers/mock-apns/build.sh [--binary PATH] [--tag TAG] [--debug]
#
# Without --binary it builds the binary first (`cargo build --release`, or the debug profile with
# --debug) into $CARGO_TARGET_DIR (default target/). rootfs.sh lays out the binary, every shared
# library `ldd` names for it and the dynamic loader under a temporary build context's rootfs/;
# then `docker build` makes the image (default tags pushbench/mock-apns:latest and :VERSION, with
# the OCI labels of ../lib.sh) and the script prints the tag. No image is pulled.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

BINARY="" TAG="pushbench/mock-apns:latest" PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    --tag) TAG=${2:?--tag needs a value}; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for p in docker ldd; do
  command -v "$p" >/dev/null || { echo "build.sh: $p is required" >&2; exit 1; }
done

if [ -z "$BINARY" ]; then
  flags=(-p mock-apns --bin mock-apns --locked)
  [ "$PROFILE" = release ] && flags+=(--release)
  (cd "$ROOT" && cargo build "${flags[@]}") >&2
  BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/mock-apns"
fi
[ -x "$BINARY" ] || { echo "build.sh: $BINARY is not an executable" >&2; exit 1; }

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
"$HERE/rootfs.sh" "$BINARY" "$CTX/rootfs" mock-apns
cp "$HERE/Dockerfile.prebuilt" "$CTX/Dockerfile"
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
image_labels
tags=(--tag "$TAG")
# The default tag also gets the version tag, like every image of containers/build.sh.
[ "$TAG" = "pushbench/mock-apns:latest" ] && tags+=(--tag "pushbench/mock-apns:$VERSION")
docker build --quiet "${LABEL_ARGS[@]}" "${tags[@]}" "$CTX" >&2
echo "$TAG"
