#!/usr/bin/env bash
# Runs every test suite of the project: formatting, lints, the Rust tests
# (unit, integration, doc; the `agent-tasks` command's included; ACP agents
# against a scripted agent on the official ACP Python SDK, and real agents
# from npm offline in network namespaces, tests/acp_real.rs), the MCP
# server's end-to-end test with the official MCP Python SDK, the Python
# binding's (pytest through the installed wheel, mypy --strict on the
# examples and the READMEs' Python snippets), and the Node binding's build, tests and type check. Used by
# CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== no two files of a crate use each other"
python3 scripts/module_cycles.py agent-tasks/src cli/src bindings-python/src bindings-node/src

echo "== ACP test peer: the official ACP Python SDK (agent-client-protocol on PyPI)"
# tests/acp.rs and the bindings' ACP tests (test_acp.py, acp.test.mjs) drive a
# scripted agent built on it (tests/acp/), so the protocol's framing and schema
# on the agent's side are not this project's. Its own venv under target/; the
# variable is exported for every step below; the tests fail (never skip)
# without it.
PYTHON="${PYTHON:-python3}"
ACP_VENV=target/acp-venv
if [ ! -x "$ACP_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$ACP_VENV"
fi
"$ACP_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "agent-client-protocol>=0.12,<0.13"
export AGENT_TASKS_ACP_PYTHON="$PWD/$ACP_VENV/bin/python"

echo "== real ACP agents: opencode and Claude Code at pinned versions from npm, under target/real-agents"
# tests/acp_real.rs drives them in network namespaces with a scripted model
# server (root needed); installed once here, before cargo test's threads
# start (the test runs the same script, which then does nothing). Fails,
# never skips, without npm or the registry.
bash scripts/real_agents.sh

echo "== cargo test"
cargo test --workspace --locked

echo "== examples (the scripted agents print the transcripts a model would see)"
cargo run --locked -q --example subagents > /dev/null

echo "== the README's Rust quickstart is examples/quickstart.rs, and it detaches, polls and collects"
python3 scripts/quickstart.py rust | diff - <(tail -n +5 examples/quickstart.rs)
QUICKSTART_OUT="$(cargo run --locked -q --example quickstart)"
grep -qx 'detached; the conversation goes on' <<<"$QUICKSTART_OUT"
grep -qx 'step 5' <<<"$QUICKSTART_OUT"
grep -qx 'Some(Completed)' <<<"$QUICKSTART_OUT"

echo "== agent-tasks mcp, end to end with the official MCP Python SDK (mcp on PyPI)"
# A venv of its own under target/ (the SDK's dependencies stay apart from the
# binding's), the binary built as the tests above built it, then pytest.
PYTHON="${PYTHON:-python3}"
MCP_VENV=target/mcp-venv
if [ ! -x "$MCP_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$MCP_VENV"
fi
"$MCP_VENV/bin/python" -m pip install --quiet --disable-pip-version-check mcp jsonschema pytest
cargo build -p agent-tasks-cli --locked
# pytest exits 5 when it collects no test: that fails this script too.
(cd cli/tests/mcp && AGENT_TASKS_BIN="$PWD/../../../target/debug/agent-tasks" \
    "../../../$MCP_VENV/bin/python" -m pytest -q -p no:cacheprovider)

echo "== python binding: one wheel (maturin build --release), installed without Rust; pytest, mypy --strict"
# A private venv under target/ for the tests and the build tool (maturin from
# PyPI); nothing but python3 (with venv and pip) and the Rust toolchain is
# needed. The wheel is built once, into target/wheels, then installed with no
# cargo on PATH: in a fresh venv (the install a user does), and in the test
# venv, where pytest and mypy run against it.
PYTHON="${PYTHON:-python3}"
VENV=target/python-venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check maturin pytest mypy
# The value types (agent_tasks/_types.py) are generated from schema/: they
# must be what the generator makes of the schemas now.
"$VENV/bin/python" scripts/gen_python_types.py --check
rm -rf target/wheels
"$VENV/bin/maturin" build --release --locked -m bindings-python/Cargo.toml --out target/wheels
WHEEL="$(ls target/wheels/agent_tasks-*.whl)"
PY_NO_RUST_PATH="/usr/bin:/bin"
if env PATH="$PY_NO_RUST_PATH" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
    echo "error: cannot make a PATH without the Rust toolchain for the wheel check" >&2
    exit 1
fi
rm -rf target/wheel-venv
"$PYTHON" -m venv target/wheel-venv
env PATH="$PY_NO_RUST_PATH" target/wheel-venv/bin/python -m pip install --quiet --disable-pip-version-check \
    --no-index "$WHEEL"
(cd target && env PATH="$PY_NO_RUST_PATH" wheel-venv/bin/python -c '
import agent_tasks
m = agent_tasks.TaskManager()
task = m.run("echo hi")
assert task.wait_foreground_blocking().status == "completed"
assert m.poll(task).text == "hi\n", m.poll(task).text
m.shutdown_blocking()
print("ran echo hi through", agent_tasks.__file__)
import tempfile
with tempfile.TemporaryDirectory() as root:
    m = agent_tasks.TaskManager(root=root)
    task = m.run("echo kept", background=True, on_host_exit="keep_running")
    assert m.collect_blocking(task).result.status == "completed"
    assert m.poll(task).text == "kept\n", m.poll(task).text
    m.shutdown_blocking()
print("ran a supervised task (on_host_exit=keep_running) with no Rust toolchain")
')
env PATH="$PY_NO_RUST_PATH" "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-index --force-reinstall --no-deps "$WHEEL"
# pytest exits 5 when it collects no test: that fails this script too.
(cd bindings-python/tests && "../../$VENV/bin/python" -m pytest -q -p no:cacheprovider)
# The examples and every Python snippet of the READMEs are checked against
# the installed wheel (its stubs and py.typed), the package's own Python
# layer against its sources.
"$VENV/bin/python" -m mypy --strict --cache-dir target/mypy-cache examples/python/
"$VENV/bin/python" scripts/readme_snippets.py README.md bindings-python/README.md
# The README's Python quickstart, run as pasted in a fresh folder.
PY_QUICKSTART="$(mktemp -d)"
python3 scripts/quickstart.py python > "$PY_QUICKSTART/quickstart.py"
PY_QUICKSTART_OUT="$(cd "$PY_QUICKSTART" && "$OLDPWD/$VENV/bin/python" quickstart.py)"
rm -rf "$PY_QUICKSTART"
grep -qx 'detached; the conversation goes on' <<<"$PY_QUICKSTART_OUT"
grep -qx 'step 5' <<<"$PY_QUICKSTART_OUT"
grep -qx 'completed' <<<"$PY_QUICKSTART_OUT"
"$VENV/bin/python" -m mypy --strict --cache-dir target/mypy-cache bindings-python/python/agent_tasks/
"$VENV/bin/python" examples/python/agent_loop.py > /dev/null
"$VENV/bin/python" examples/python/delegation.py > /dev/null

echo "== tasks placed on a Ray cluster: a real two-node cluster in network namespaces (ray[default] from PyPI)"
# bindings-python/tests-ray/cluster.py makes two network namespaces joined by
# a veth pair (10.201.0.1 head, 10.201.0.2 worker; nothing else reachable),
# runs `ray start` in each with usage reporting off, runs pytest inside the
# head namespace, and tears everything down however it ends (root needed).
# Its own venv under target/: Ray at a pinned version, and the wheel built
# above with its `ray` extra.
RAY_VENV=target/ray-venv
if [ ! -x "$RAY_VENV/bin/python" ]; then
    "$PYTHON" -m venv "$RAY_VENV"
fi
"$RAY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "ray[default]==2.60.0" pytest
"$RAY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEEL"
"$RAY_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$WHEEL[ray]"
# pytest exits 5 when it collects no test: that fails this script too.
RAY_USAGE_STATS_ENABLED=0 "$RAY_VENV/bin/python" bindings-python/tests-ray/cluster.py -- \
    "$PWD/$RAY_VENV/bin/python" -m pytest -q -p no:cacheprovider bindings-python/tests-ray

echo "== node binding (bindings-node)"
# Node 20 is the minimum: no snippet may use `await using` (a syntax error there).
if grep -n 'await using' README.md bindings-python/README.md bindings-node/README.md; then
  echo "error: the README shows \`await using\`, a syntax error on Node 20" >&2
  exit 1
fi
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
  # types.d.ts (the values' types) and src/shapes.rs (their factories) are
  # generated from schema/ by scripts/gen_node_types.py; --check fails when
  # they drifted.
  python3 ../scripts/gen_node_types.py --check
  # options.js and options.d.ts (the options of the calls) come from one
  # table, scripts/gen_node_options.py, checked against schema/options.
  python3 ../scripts/gen_node_options.py --check
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git diff --exit-code -- index.d.ts binding.js types.d.ts options.js options.d.ts src/shapes.rs
  fi
  echo "== npm test (node --test: the binding's tests, and the examples in examples/node run as a user would)"
  npm test
  echo "== npm run typecheck (tsc --strict --noEmit on a typed consumer and on every js/ts block of the README)"
  npm run typecheck
)

echo "== node binding installed by another project: packed tarball without Rust, and by path"
# Fresh projects in temporary folders; nothing is written into the clone. A
# warning from npm (EBADENGINE, an install script to approve, …) fails it.
REPO_ROOT="$PWD"
NODE_TMP="$(mktemp -d)"
trap 'rm -rf "$NODE_TMP"' EXIT
NODE_CHECK='const { TaskManager } = require("agent-tasks")
const m = new TaskManager()
m.run("echo hi").waitForeground().then(async (o) => {
  const text = m.poll(o.result.id).text
  await m.close()
  if (o.result.status !== "completed" || text !== "hi\n") throw new Error(`unexpected: ${o.result.status} ${text}`)
  console.log("ran echo hi through", require.resolve("agent-tasks"))
})'
# What the clone holds (ignored files too), to check that nothing is added.
clone_state() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git status --porcelain --ignored=traditional -- bindings-node
  fi
}
CLONE_BEFORE="$(clone_state)"
npm_quiet_install() {
  # npm install "$@" in the current folder; fails on any npm warning.
  local log
  log="$(npm install --no-audit --no-fund "$@" 2>&1)" || { echo "$log" >&2; return 1; }
  if grep -qi 'warn' <<<"$log"; then
    echo "$log" >&2
    echo "error: npm warned while installing $*" >&2
    return 1
  fi
}
(
  cd bindings-node
  npm pack --silent --pack-destination "$NODE_TMP" >/dev/null
)
TARBALL="$(ls "$NODE_TMP"/agent-tasks-*.tgz)"
# (grep reads it all: with -q, tar could die of SIGPIPE under pipefail)
tar -tzf "$TARBALL" | grep '^package/agent-tasks\..*\.node$' >/dev/null || { echo "error: $TARBALL carries no addon" >&2; exit 1; }
tar -tzf "$TARBALL" | grep '^package/agent-tasks-supervisor$' >/dev/null || { echo "error: $TARBALL carries no supervisor" >&2; exit 1; }
# A task that outlives its host, run by the supervisor the tarball carries.
NODE_SUPERVISED_CHECK='const { TaskManager } = require("agent-tasks")
const fs = require("node:fs"), os = require("node:os"), path = require("node:path")
const root = fs.mkdtempSync(path.join(os.tmpdir(), "agent-tasks-kept-"))
const m = new TaskManager({ root })
const t = m.run("echo kept", { background: true, onHostExit: "keepRunning" })
t.collect().then(async (o) => {
  const text = m.poll(t).text
  await m.close()
  fs.rmSync(root, { recursive: true, force: true })
  if (o.result.status !== "completed" || text !== "kept\n") throw new Error(`unexpected: ${o.result.status} ${text}`)
  console.log("ran a supervised task (onHostExit: keepRunning) with no Rust toolchain")
})'
# A PATH with node and npm but without cargo (nor rustc).
NO_RUST_PATH="$(dirname "$(command -v node)"):$(dirname "$(command -v npm)"):/usr/bin:/bin"
if env PATH="$NO_RUST_PATH" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
  echo "error: cannot make a PATH without the Rust toolchain for the tarball check" >&2
  exit 1
fi
mkdir "$NODE_TMP/from-tarball"
(
  cd "$NODE_TMP/from-tarball"
  export PATH="$NO_RUST_PATH"
  npm init -y >/dev/null
  npm_quiet_install "$TARBALL"
  node -e "$NODE_CHECK"
  node -e "$NODE_SUPERVISED_CHECK"
)
mkdir "$NODE_TMP/by-path"
(
  cd "$NODE_TMP/by-path"
  npm init -y >/dev/null
  npm_quiet_install "$REPO_ROOT/bindings-node"
  node -e "$NODE_CHECK"
  # The README's Node quickstart, run as pasted in this fresh project.
  (cd "$REPO_ROOT" && python3 scripts/quickstart.py js) > quickstart.js
  out="$(node quickstart.js)"
  grep -qx 'detached; the conversation goes on' <<<"$out"
  grep -qx 'step 5' <<<"$out"
  grep -qx 'completed' <<<"$out"
)
if [ "$(clone_state)" != "$CLONE_BEFORE" ]; then
  diff <(echo "$CLONE_BEFORE") <(clone_state) >&2 || true
  echo "error: installing from another project wrote into the clone" >&2
  exit 1
fi
