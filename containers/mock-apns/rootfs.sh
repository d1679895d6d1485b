#!/bin/sh
# Lays out a root filesystem for a FROM scratch image of one dynamically linked binary:
#   rootfs.sh BINARY ROOTFS NAME
# copies BINARY (without debug information) to ROOTFS/usr/local/bin/NAME, and every shared library
# `ldd` names for it plus the dynamic loader at the paths the binary looks for them; makes /tmp and
# /credentials. Used by build.sh (host-built binary) and by Dockerfile (built in the image).
set -eu
binary=$1 rootfs=$2 name=$3
mkdir -p "$rootfs/usr/local/bin" "$rootfs/credentials" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
# Debug information is not needed at run time and would only make the image larger.
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$binary" "$rootfs/usr/local/bin/$name"
else
  cp "$binary" "$rootfs/usr/local/bin/$name"
fi
chmod 755 "$rootfs/usr/local/bin/$name"
if ldd "$binary" 2>&1 | grep -q "not found"; then
  echo "rootfs.sh: a shared library of $binary is missing:" >&2
  ldd "$binary" >&2
  exit 1
fi
# `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", the loader as
# "/lib64/ld-linux-x86-64.so.2 (0x…)", and linux-vdso (no file). A statically linked binary has
# none ("not a dynamic executable"), and then nothing is copied.
libs=$(ldd "$binary" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' || true)
for lib in $libs; do
  # Copy the file itself (not a symlink) to the path the binary asks for.
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
