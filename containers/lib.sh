# Shared by the image build scripts (containers/build.sh, containers/base/build.sh,
# containers/mock-apns/build.sh): the project's version and the OCI labels every image carries.
# Source it; it sets ROOT (the repository), VERSION (Cargo.toml's package version: each image is
# tagged :latest and :$VERSION), REVISION (the git commit) and SOURCE_URL, and defines
# image_labels (docker --label arguments) and build_image.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
REVISION=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Where the source is: PUSHBENCH_SOURCE_URL, else the package's `repository` in Cargo.toml, else
# the git remote `origin`.
SOURCE_URL=${PUSHBENCH_SOURCE_URL:-$(sed -n 's/^repository = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)}
SOURCE_URL=${SOURCE_URL:-$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)}
SOURCE_URL=${SOURCE_URL:-unknown (no repository in Cargo.toml, no git remote; set PUSHBENCH_SOURCE_URL)}
LICENSES="MIT OR Apache-2.0"

# The OCI labels, as docker build --label arguments, in the array LABEL_ARGS.
image_labels() {
  LABEL_ARGS=(
    --label "org.opencontainers.image.version=$VERSION"
    --label "org.opencontainers.image.revision=$REVISION"
    --label "org.opencontainers.image.source=$SOURCE_URL"
    --label "org.opencontainers.image.licenses=$LICENSES"
    --label "org.opencontainers.image.vendor=pushbench"
  )
}

# build_image NAME DOCKERFILE CONTEXT [docker build arguments…]: builds pushbench/NAME:$VERSION and
# tags it pushbench/NAME:latest. Host networking: apt inside the build reaches the mirror exactly
# as the host's apt does, and nothing listens on another address. The layer cache makes a build
# whose inputs did not change a no-op. Nothing is pulled: every FROM names a local image.
build_image() {
  local name=$1 dockerfile=$2 context=$3
  shift 3
  image_labels
  docker build --network host --file "$dockerfile" "${LABEL_ARGS[@]}" \
    --tag "pushbench/$name:$VERSION" --tag "pushbench/$name:latest" "$@" "$context" >&2
}
