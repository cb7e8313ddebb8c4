'use strict'
// Builds the native addon from the sources of a clone with cargo (`cargo
// build --release`, in the workspace's `target/`) and puts it next to
// `binding.js`, under the name `binding.js` loads on this platform (a file
// git ignores). Needs Node and the Rust toolchain, no npm dependency.
//
//   node bindings-node/scripts/build-addon.js
//
// `index.js` runs it by itself the first time the package is loaded from a
// clone that has no addon yet (after `npm install /path/to/clone/bindings-node`,
// which only links the folder). Developers use `npm run build` instead: it
// also regenerates `binding.js` and `index.d.ts` (@napi-rs/cli). A packed
// tarball (`npm pack`) carries the built addon and needs neither.
//
// It also builds the supervisor of tasks that outlive their host
// (`agent-tasks-supervisor`, put beside the addon); with `--supervisor`
// only that (what `npm run build` adds to napi's build).

const { spawnSync } = require('node:child_process')
const { copyFileSync, existsSync, renameSync } = require('node:fs')
const { join } = require('node:path')

const packageDir = join(__dirname, '..')

function fail(message) {
  console.error(`agent-tasks: ${message}`)
  process.exit(1)
}

/** The name `binding.js` looks for on this platform, e.g. `agent-tasks.linux-x64-gnu.node`. */
function addonName() {
  if (process.platform !== 'linux') fail(`Linux only (this is ${process.platform})`)
  const report = process.report?.getReport?.()
  const musl = report ? !report.header.glibcVersionRuntime : false
  const abi = process.arch === 'arm' ? (musl ? 'musleabihf' : 'gnueabihf') : musl ? 'musl' : 'gnu'
  return `agent-tasks.linux-${process.arch}-${abi}.node`
}

const manifest = join(packageDir, 'Cargo.toml')
if (!existsSync(manifest)) fail(`no Rust sources here (${manifest}): build from a clone`)
const cargo = process.env.CARGO || 'cargo'
console.error('agent-tasks: building the native addon with cargo (a few minutes the first time)…')
const supervisorOnly = process.argv.includes('--supervisor')
function cargoBuild(args) {
  const built = spawnSync(cargo, ['build', '--release', '--locked', '--message-format=short', ...args, '--manifest-path', manifest], {
    stdio: ['ignore', 2, 2],
  })
  if (built.error) fail(`cannot run ${cargo} (${built.error.message}): the Rust toolchain is needed to build from source`)
  if (built.status !== 0) fail(`cargo build failed (exit ${built.status})`)
}
if (!supervisorOnly) cargoBuild(['-p', 'agent-tasks-node'])
cargoBuild(['-p', 'agent-tasks', '--bin', 'agent-tasks-supervisor'])

// Where cargo put it: the workspace's target folder, unless redirected.
const metadata = spawnSync(cargo, ['metadata', '--format-version', '1', '--no-deps', '--manifest-path', manifest], {
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
})
if (metadata.status !== 0) fail(`cargo metadata failed: ${metadata.stderr}`)
const release = join(JSON.parse(metadata.stdout).target_directory, 'release')
// Copied, then renamed over: a process that has the old file loaded keeps it intact.
function install(built, name) {
  if (!existsSync(built)) fail(`cargo built no ${built}`)
  const target = join(packageDir, name)
  copyFileSync(built, `${target}.tmp`)
  renameSync(`${target}.tmp`, target)
  console.error(`agent-tasks: built ${target}`)
}
if (!supervisorOnly) install(join(release, 'libagent_tasks_node.so'), addonName())
install(join(release, 'agent-tasks-supervisor'), 'agent-tasks-supervisor')
