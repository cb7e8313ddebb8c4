#!/usr/bin/env bash
# Runs every test suite of the project: formatting, lints, the Rust tests
# (unit, integration, doc). Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked
