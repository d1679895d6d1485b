#!/usr/bin/env bash
# Builds the mock-apns container image (FROM scratch, see Dockerfile beside this script).
#
#   containers/mock-apns/build.sh [--binary PATH] [--tag TAG] [--debug]
#
# Without --binary it builds the binary first (`cargo build --release`, or the debug profile with
# --debug) into $CARGO_TARGET_DIR (default target/). The binary, every shared library `ldd` names
# for it and the dynamic loader are copied under a temporary build context's rootfs/, at the
# paths the binary looks for them; then `docker build` makes the image (default tag
# pushbench/mock-apns:latest) and the script prints the tag. No image is pulled.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

BINARY="" TAG="pushbench/mock-apns:latest" PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
    --tag) TAG=${2:?--tag needs a value}; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
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
ROOTFS="$CTX/rootfs"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/credentials" "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
# Debug information is not needed at run time and would only make the image larger.
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$BINARY" "$ROOTFS/usr/local/bin/mock-apns"
else
  cp "$BINARY" "$ROOTFS/usr/local/bin/mock-apns"
fi
chmod 755 "$ROOTFS/usr/local/bin/mock-apns"

# `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", the loader as
# "/lib64/ld-linux-x86-64.so.2 (0x…)", and linux-vdso (no file). A statically linked binary has
# none ("not a dynamic executable"), and then nothing is copied.
libs=$(ldd "$BINARY" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' || true)
if ldd "$BINARY" 2>&1 | grep -q "not found"; then
  echo "build.sh: a shared library of $BINARY is missing:" >&2
  ldd "$BINARY" >&2
  exit 1
fi
for lib in $libs; do
  # Copy the file itself (not a symlink) to the path the binary asks for.
  mkdir -p "$ROOTFS$(dirname "$lib")"
  cp -L "$lib" "$ROOTFS$lib"
done

cp "$HERE/Dockerfile" "$CTX/Dockerfile"
docker build --quiet --tag "$TAG" "$CTX" >&2
echo "$TAG"
