// The roster of an owner's open background work, from Node: exactly the
// open tasks, newest first, the text within its budget.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { manager, waitFor } from './helpers.mjs'

test('the roster lists the open background work within its budget', async (t) => {
  const m = manager(t)
  assert.deepEqual(m.roster('s'), { text: '', items: [] })
  const open = m.spawn(async (ctx) => {
    ctx.write('opened server.log\n')
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
    return null
  }, { background: true, owner: 's', description: 'read the logs' })
  const other = m.run('sleep 30', { background: true, owner: 't' })
  const ended = m.run('echo done', { background: true, owner: 's' })
  await m.collect(ended.id)
  const roster = await waitFor(() => {
    const r = m.roster('s')
    return r.items[0]?.lastLine === 'opened server.log' ? r : null
  }, { what: 'the last line' })
  assert.deepEqual(roster.items.map((i) => i.id), [open.id])
  assert.equal(roster.items[0].status, 'running')
  assert.equal(roster.items[0].description, 'read the logs')
  assert.match(roster.text, /^Open background work \(1\):/)
  assert.match(roster.text, /read the logs \| last: opened server\.log/)
  const many = []
  for (let i = 0; i < 60; i++) many.push(m.run('sleep 30', { background: true, owner: 's' }))
  const small = m.roster('s', { budget: 400 })
  assert.equal(small.items.length, 61)
  assert.ok(Buffer.byteLength(small.text) <= 400, small.text)
  assert.match(small.text, /more not shown/)
  for (const h of [open, other, ...many]) await m.cancel(h.id)
})
