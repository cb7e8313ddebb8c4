'use strict'
// Argument parsing of the JS wrapper (index.js): every option object a call
// takes is checked here, once, against the call's table of options, before anything
// crosses into the native layer. An unknown option (`{ tiemoutMs: 5 }`) and a
// value of the wrong type are `INVALID_ARGUMENT` errors naming the option and
// what was expected, in JavaScript's terms. Values are only checked for their
// JS type here; what they mean (a negative timeout, an unknown `onTimeout`,
// a regex that does not compile) is checked by the core, once.

/** Error of every failed call; `code` is stable (`TASK_NOT_FOUND`, …). */
class AgentTasksError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.name = 'AgentTasksError'
    this.code = code
  }
}

/** An `INVALID_ARGUMENT` error naming the argument, worded like the core's. */
function invalid(name, message) {
  return new AgentTasksError('INVALID_ARGUMENT', `invalid argument \`${name}\`: ${message}`)
}

/** How a value is shown in an error: its JS type, and the value when short. */
function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value
      return `a string (${JSON.stringify(shown)})`
    }
    case 'number':
      return `the number ${value}`
    case 'bigint':
      return `the bigint ${value}n`
    case 'boolean':
      return `${value}`
    case 'undefined':
      return 'undefined'
    case 'function':
      return 'a function'
    case 'symbol':
      return 'a symbol'
    default:
      return value.constructor && value.constructor.name !== 'Object'
        ? `a ${value.constructor.name}`
        : 'an object'
  }
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
const isStrings = (v) => Array.isArray(v) && v.every((s) => typeof s === 'string')

// The kinds of values an option takes: a test, what an error says was
// expected, and how a value is handed to the native layer when it is not as
// given. `undefined` and `null` always pass: "not given" (for a timeout, null
// is "none", which the native layer reads as Infinity, since a JS null is
// "not given" there too).
const kinds = {
  string: { test: (v) => typeof v === 'string', expected: 'a string' },
  boolean: { test: (v) => typeof v === 'boolean', expected: 'a boolean' },
  number: { test: (v) => typeof v === 'number', expected: 'a number' },
  timeout: {
    test: (v) => v === null || typeof v === 'number',
    expected: 'a number of milliseconds or null',
    convert: (v) => v ?? Infinity,
  },
  count: { test: (v) => Number.isSafeInteger(v) && v >= 0, expected: 'a non-negative integer' },
  strings: { test: isStrings, expected: 'an array of strings' },
  command: { test: (v) => typeof v === 'string' || isStrings(v), expected: 'a string or an array of strings' },
  // Like process.env: undefined values are skipped, the rest made strings.
  env: {
    test: isPlainObject,
    expected: 'an object of strings',
    convert: (env) => Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)])),
  },
  caps: {
    test: (v) => isPlainObject(v) && Object.values(v).every((n) => Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32),
    expected: 'an object of non-negative integers by kind',
  },
  textOrBytes: {
    test: (v) => typeof v === 'string' || v instanceof Uint8Array,
    expected: 'a string, a Buffer or a Uint8Array',
    convert: (v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v),
  },
  signal: { test: (v) => v instanceof AbortSignal, expected: 'an AbortSignal' },
  object: { test: isPlainObject, expected: 'an object' },
  size: {
    test: (v) => isPlainObject(v) && typeof v.cols === 'number' && typeof v.rows === 'number',
    expected: 'an object { cols, rows } of numbers',
  },
  func: { test: (v) => typeof v === 'function', expected: 'a function' },
  permissions: {
    test: (v) => typeof v === 'string' || typeof v === 'function',
    expected: "'allow', 'deny' or a function",
  },
  // An object whose keys are checked in turn against the `limits` spec
  // (`limits.memory`, …).
  limits: { nested: 'limits' },
}

// The options of each call and their kinds: options.js, generated with the
// native option objects (src/options.rs) from one table
// (scripts/gen_node_options.py).
const { specs, taskOptions, processOptions } = require('./options.js')

function unknownOption(call, key, spec, prefix = '') {
  const names = Object.keys(spec)
  // The core's "did you mean" rule.
  const close = require('./binding.js').closestName(key, names)
  const hint = close ? `; did you mean \`${close}\`?` : ''
  return invalid(prefix + key, `not an option of ${call}${hint} (its options: ${names.join(', ')})`)
}

/**
 * The options of `call` (`run`, `collect`, …), checked: every key must be
 * in the call's table and every value given of the expected type. Returns a
 * copy of what was given (`{}` for undefined or null) as the native layer
 * takes it, without the keys set to undefined or null (but a timeout's
 * null). `name` is what an error calls the object itself; `prefix` is put
 * before the names of its keys in errors (`limits.` for the keys of a
 * `limits` option).
 */
function options(call, value, name = 'options', prefix = '') {
  if (value === undefined || value === null) return {}
  if (!isPlainObject(value)) throw invalid(name, `expected an object, got ${describe(value)}`)
  const spec = specs[call]
  const checked = {}
  for (const key of Object.keys(value)) {
    const kind = spec[key]
    if (kind === undefined) throw unknownOption(call, key, spec, prefix)
    const v = value[key]
    if (v === undefined || (v === null && kind !== 'timeout')) continue
    const nested = kinds[kind].nested
    checked[key] = nested ? options(nested, v, prefix + key, `${prefix}${key}.`) : argument(prefix + key, kind, v)
  }
  return checked
}

/** Checks one argument against a kind (`string`, `func`, …); returns it as the native layer takes it. */
function argument(name, kind, value) {
  const { test, expected, convert } = kinds[kind]
  if (!test(value)) throw invalid(name, `expected ${expected}, got ${describe(value)}`)
  return convert ? convert(value) : value
}

/** The subset of `opts` whose keys are in `spec` (the native option group). */
function pick(opts, spec) {
  const out = {}
  for (const key of Object.keys(spec)) if (opts[key] !== undefined) out[key] = opts[key]
  return out
}

/** A task id from an id or anything with an `id`. */
function idOf(task, name = 'task') {
  if (typeof task === 'string') return task
  if (task !== null && typeof task === 'object' && typeof task.id === 'string') return task.id
  throw invalid(name, `expected a task id or an object with an \`id\`, got ${describe(task)}`)
}

module.exports = {
  AgentTasksError,
  invalid,
  describe,
  options,
  argument,
  pick,
  idOf,
  specs,
  taskOptions,
  processOptions,
}
