// Runs the test suite (`node --test` with the given arguments) with TMPDIR
// set to a folder of its own, then fails if a temporary root
// (`agent-tasks-*`) is left in it: every exit path of every test's Node
// process must remove the temporary roots it made. The folder is removed
// however the run ends.
'use strict'

const { spawnSync } = require('node:child_process')
const { mkdtempSync, readdirSync, rmSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')

const tmp = mkdtempSync(join(tmpdir(), 'agent-tasks-node-tests-'))
let status = 1
try {
  const run = spawnSync(process.execPath, ['--test', ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, TMPDIR: tmp },
  })
  status = run.status ?? 1
  const left = readdirSync(tmp).filter((name) => name.startsWith('agent-tasks-'))
  if (left.length > 0) {
    console.error(`error: the tests left temporary roots behind: ${left.join(', ')}`)
    status = 1
  }
} finally {
  rmSync(tmp, { recursive: true, force: true })
}
process.exit(status)
