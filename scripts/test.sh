#!/usr/bin/env bash
# The test command (README): unit tests, interop tests against real peers, and the Gherkin suite.
# Run scripts/install-deps.sh first on a fresh machine.
#
# The container tests (mock-apns's image, the testcontainers example against pushbench/kamailio)
# need the project's images: containers/build.sh makes them first, from the debug binaries the
# tests build anyway. It is cached (the base image is made once; an unchanged image is a docker
# layer-cache hit), so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
containers/build.sh --debug >/dev/null
cargo test --workspace --all-targets --locked "$@"
