#!/usr/bin/env bash
# Runs every test suite of the project: formatting, lints, the Rust tests
# (unit, integration, doc), and the Node binding's build, tests and type
# check. Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== node binding (bindings-node)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: node and npm are needed for the Node binding's tests (Node 20 or later)" >&2
  exit 1
fi
cd bindings-node
echo "== npm ci"
# --ignore-scripts: the package's own install script would build the addon;
# build it explicitly instead, as a user's CI should.
npm ci --ignore-scripts --no-audit --no-fund
echo "== npm run build (napi build --release)"
npm run build
echo "== generated files are committed and up to date"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git diff --exit-code -- index.d.ts binding.js
fi
echo "== npm test (node --test)"
npm test
echo "== npm run typecheck (tsc --strict --noEmit on a typed consumer)"
npm run typecheck
