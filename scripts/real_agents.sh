#!/usr/bin/env bash
# Installs the real ACP agents that tests/acp_real.rs drives, at pinned
# versions, from the npm registry, once, under target/real-agents/<name>/
# (each 100-350 MB; a later run with the same pin does nothing). Called by
# scripts/test.sh before cargo test, and by the test itself when an agent is
# missing. Fails (never skips) when npm or the registry cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

# name, then the package at its pinned version. Keep in step with
# tests/acp_real.rs and docs/agents.md.
AGENTS=(
  "opencode opencode-ai@1.18.33"
  "claude-code @zed-industries/claude-code-acp@0.16.2"
)

command -v npm >/dev/null || { echo "error: npm is needed to install the real agents" >&2; exit 1; }
ROOT=target/real-agents
mkdir -p "$ROOT"
# One installer at a time (cargo's test threads may call this together).
exec 9>"$ROOT/.lock"
flock 9
for entry in "${AGENTS[@]}"; do
  read -r name spec <<<"$entry"
  dir="$ROOT/$name"
  if [ -f "$dir/installed" ] && [ "$(cat "$dir/installed")" = "$spec" ]; then
    continue
  fi
  echo "== installing $spec into $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo '{"private": true}' > "$dir/package.json"
  # The agents' own install scripts stay off: nothing downloads at install
  # time; the platform binaries come as npm packages.
  (cd "$dir" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error "$spec")
  echo "$spec" > "$dir/installed"
done
