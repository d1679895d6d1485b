#!/usr/bin/env bash
# The test command (README): unit tests, interop tests against real peers, and the Gherkin suite.
# Run scripts/install-deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets --locked "$@"
