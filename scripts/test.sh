#!/usr/bin/env bash
# Runs every test suite of the project: formatting, lints, the Rust tests
# (unit, integration, doc; the `agent-tasks` command's included), the MCP
# server's end-to-end test with the official MCP Python SDK, the Python
# binding's (pytest through the installed wheel, mypy --strict on the
# examples), and the Node binding's build, tests and type check. Used by
# CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== examples (the scripted agents print the transcripts a model would see)"
cargo run --locked -q --example subagents > /dev/null

echo "== agent-tasks mcp, end to end with the official MCP Python SDK (mcp on PyPI)"
# A venv of its own under target/ (the SDK's dependencies stay apart from the
# binding's), the binary built as the tests above built it, then pytest.
PYTHON="${PYTHON:-python3}"
MCP_VENV=target/mcp-venv
if [ ! -x "$MCP_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$MCP_VENV"
fi
"$MCP_VENV/bin/python" -m pip install --quiet --disable-pip-version-check mcp pytest
cargo build -p agent-tasks-cli --locked
# pytest exits 5 when it collects no test: that fails this script too.
(cd cli/tests/mcp && AGENT_TASKS_BIN="$PWD/../../../target/debug/agent-tasks" \
    "../../../$MCP_VENV/bin/python" -m pytest -q -p no:cacheprovider)

echo "== python binding (pip install ./bindings-python, pytest, mypy --strict)"
# A private venv under target/: nothing but python3 (with venv and pip) and
# the Rust toolchain is needed; pip builds the wheel through maturin.
PYTHON="${PYTHON:-python3}"
VENV=target/python-venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check ./bindings-python pytest mypy
# pytest exits 5 when it collects no test: that fails this script too.
(cd bindings-python/tests && "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider)
# The examples are checked against the installed wheel (its stubs and
# py.typed), the package's own Python layer against its sources.
"$VENV/bin/python" -m mypy --strict --cache-dir target/mypy-cache examples/python/
"$VENV/bin/python" -m mypy --strict --cache-dir target/mypy-cache bindings-python/python/agent_tasks/
"$VENV/bin/python" examples/python/agent_loop.py > /dev/null

echo "== node binding (bindings-node)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: node and npm are needed for the Node binding's tests (Node 20 or later)" >&2
  exit 1
fi
# In a subshell, so the script's working directory stays the repository root.
(
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
)
