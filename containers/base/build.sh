#!/usr/bin/env bash
# Builds pushbench/base:bookworm, the Debian 12 (bookworm) image every other Debian-based image of
# this project starts FROM, with no registry: debootstrap makes a minimal root filesystem (variant
# minbase: dpkg, apt, bash, coreutils) from the Debian mirror this machine's apt uses, and
# `docker import` loads it. Its `docker history` is one layer, "Imported from -".
#
#   containers/base/build.sh [--tag TAG] [--force]
#
# Cached: when the image exists the script prints its tag and does nothing (--force rebuilds).
# Needs root (debootstrap), debootstrap (scripts/install-deps.sh installs it) and docker. The
# mirror, the security mirror and any apt proxy are read from apt itself (`apt-get indextargets`,
# `apt-config`), so the image's apt reaches the same mirror as the host's. Tags TAG and
# TAG-<debian_version> (e.g. pushbench/base:bookworm-12.10); prints TAG.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
TAG=pushbench/base:bookworm FORCE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=${2:?--tag needs a value}; shift 2 ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "base/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v docker >/dev/null || { echo "base/build.sh: docker is required" >&2; exit 1; }
if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "base/build.sh: debootstrap is required (scripts/install-deps.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "base/build.sh: debootstrap needs root" >&2; exit 1; }

# The repositories apt uses here: Label "Debian" for bookworm (and bookworm-updates), and
# "Debian-Security" for bookworm-security.
targets=$(apt-get indextargets --format '$(REPO_URI) $(LABEL) $(CODENAME)' 'Identifier: Packages')
mirror=$(awk '$2 == "Debian" && $3 == "bookworm" {print $1; exit}' <<<"$targets")
security=$(awk '$2 == "Debian-Security" && $3 == "bookworm-security" {print $1; exit}' <<<"$targets")
[ -n "$mirror" ] || { echo "base/build.sh: apt on this machine has no Debian bookworm repository (apt-get update first?)" >&2; exit 1; }
security=${security:-$mirror}
# An apt proxy, if apt has one, is handed to debootstrap the same way.
proxy=$(apt-config dump --format '%v' Acquire::http::Proxy 2>/dev/null || true)
if [ -n "$proxy" ]; then export http_proxy=$proxy; fi

work=$(mktemp -d /var/tmp/pushbench-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
echo "base/build.sh: debootstrap bookworm from $mirror" >&2
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2
  exit 1
}

# apt in the image: the same repositories, no recommends, no translations, no package cache kept.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
cat >"$rootfs/etc/apt/apt.conf.d/90pushbench" <<'APT'
// pushbench images: small, non-interactive installs.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT
if [ -n "$proxy" ]; then
  printf 'Acquire::http::Proxy "%s";\n' "$proxy" >"$rootfs/etc/apt/apt.conf.d/80proxy"
fi
# Documentation and manual pages are never read in a container.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90pushbench-nodoc" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
DPKG
# What debootstrap leaves behind: downloaded packages, package lists, logs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*

version=$(cat "$rootfs/etc/debian_version")
tar --numeric-owner -C "$rootfs" -c . | docker import \
  --change "LABEL org.opencontainers.image.title=pushbench-base" \
  --change "LABEL org.opencontainers.image.description=\"Debian $version (bookworm) minbase made by debootstrap from $mirror\"" \
  --change "LABEL org.opencontainers.image.version=$version" \
  --change "LABEL org.opencontainers.image.licenses=\"$LICENSES\"" \
  --change "LABEL org.opencontainers.image.source=\"$SOURCE_URL\"" \
  --change "LABEL org.opencontainers.image.revision=$REVISION" \
  --change "ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive" \
  --change 'CMD ["/bin/bash"]' \
  - "$TAG" >/dev/null
docker tag "$TAG" "$TAG-$version"
echo "$TAG"
