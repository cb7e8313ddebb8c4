// The addon in worker threads: each environment builds its own answer
// objects (the shape factories are cached per environment and forgotten
// when it is torn down), so workers started one after another, and the
// main thread between them, all get whole, correct objects.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const packageDir = new URL('..', import.meta.url).pathname

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { TaskManager } = require(workerData)
const m = new TaskManager()
m.run('echo from-worker').waitForeground().then(async (fg) => {
  const page = m.poll(fg.result.id)
  const info = m.info(fg.result.id)
  await m.close()
  parentPort.postMessage({ status: fg.result.status, text: page.text, eof: page.eof, id: info.id })
})
`

function runWorker() {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { eval: true, workerData: packageDir })
    worker.once('message', resolve)
    worker.once('error', reject)
    worker.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)))
  })
}

test('workers one after another, and the main thread between them, each get whole answers', async () => {
  const { TaskManager } = require(packageDir)
  for (let i = 0; i < 3; i++) {
    const answer = await runWorker()
    assert.deepEqual(
      { status: answer.status, text: answer.text, eof: answer.eof },
      { status: 'completed', text: 'from-worker\n', eof: true },
    )
    assert.match(answer.id, /^process-/)
    const m = new TaskManager()
    const fg = await m.run('echo from-main').waitForeground()
    assert.equal(m.poll(fg.result.id).text, 'from-main\n')
    assert.equal(m.info(fg.result.id).status, 'completed')
    await m.close()
  }
})
