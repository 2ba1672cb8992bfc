// Side-by-side report of HTTP caching test suite results (cache-tests.fyi) for several caches.
//
//   node summary.mjs SUITE_DIR RESULTS_DIR trove nginx varnish > report.md
//
// SUITE_DIR is a checkout of github.com/http-tests/cache-tests (its tests/index.mjs holds the test
// definitions: kind and dependencies); RESULTS_DIR holds NAME.json as written by the suite's CLI.
// Results are classified as cache-tests.fyi does: a test whose dependency did not pass is "not run".
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, resultsDir, ...names] = process.argv.slice(2)
if (!suiteDir || !resultsDir || names.length === 0) {
  console.error('usage: node summary.mjs SUITE_DIR RESULTS_DIR NAME... (reads RESULTS_DIR/NAME.json)')
  process.exit(2)
}
const suites = (await import(pathToFileURL(path.join(suiteDir, 'tests', 'index.mjs')).href)).default
const tests = new Map()
for (const suite of suites) for (const test of suite.tests) tests.set(test.id, { ...test, suite })
const results = Object.fromEntries(names.map(name =>
  [name, JSON.parse(fs.readFileSync(path.join(resultsDir, `${name}.json`), 'utf8'))]))

const symbol = { pass: '✅', fail: '⛔', optional: '⚠️', yes: 'Y', no: 'N', setup: '🔹', dependency: '⚪', untested: '-' }

function kindOf (test) {
  if (test.kind) return test.kind
  return test.required === false ? 'optimal' : 'required'
}

function classify (name, id, seen = new Set()) {
  const test = tests.get(id)
  const result = results[name][id]
  if (test === undefined || result === undefined || seen.has(id)) return 'untested'
  seen.add(id)
  for (const dependency of test.depends_on || []) {
    if (!['pass', 'yes'].includes(classify(name, dependency, seen))) return 'dependency'
  }
  if (Array.isArray(result) && result[0] === 'Setup') return 'setup'
  switch (kindOf(test)) {
    case 'check': return result === true ? 'yes' : 'no'
    case 'optimal': return result === true ? 'pass' : 'optional'
    default: return result === true ? 'pass' : 'fail'
  }
}

const grid = new Map([...tests.keys()].map(id => [id, Object.fromEntries(names.map(name => [name, classify(name, id)]))]))
const count = (name, filter) => [...grid.entries()].filter(([id, row]) => filter(tests.get(id), row[name])).length
const cells = (values) => `| ${values.join(' | ')} |`
const env = fs.existsSync(path.join(resultsDir, 'env.txt')) ? fs.readFileSync(path.join(resultsDir, 'env.txt'), 'utf8').trim() : ''

const out = []
out.push(`# HTTP caching test suite: ${names.join(', ')}`, '')
out.push('The public suite behind https://cache-tests.fyi, run by `conformance/cache-tests/run.sh` against each cache in')
out.push('front of the suite\'s own origin (browser-only tests are not run for shared caches).', '')
if (env) out.push('```', env, '```', '')
out.push(cells(['', ...names]), cells(['---', ...names.map(() => '---:')]))
const rows = [
  ['required: passed', (t, r) => kindOf(t) === 'required' && r === 'pass'],
  ['required: failed', (t, r) => kindOf(t) === 'required' && r === 'fail'],
  ['optimal: passed', (t, r) => kindOf(t) === 'optimal' && r === 'pass'],
  ['optimal: not met', (t, r) => kindOf(t) === 'optimal' && r === 'optional'],
  ['checks (informational): yes', (t, r) => r === 'yes'],
  ['checks (informational): no', (t, r) => r === 'no'],
  ['setup failed', (t, r) => r === 'setup'],
  ['not run (a dependency did not pass)', (t, r) => r === 'dependency'],
  ['not run (browser only)', (t, r) => r === 'untested']
]
for (const [label, filter] of rows) out.push(cells([label, ...names.map(name => count(name, filter))]))
out.push('')

out.push('## By suite', '', 'Required and optimal tests passed, of those in the suite that were run.', '')
out.push(cells(['suite', ...names]), cells(['---', ...names.map(() => '---:')]))
for (const suite of suites) {
  const ids = suite.tests.map(t => t.id)
    .filter(id => kindOf(tests.get(id)) !== 'check' && names.some(name => grid.get(id)[name] !== 'untested'))
  if (ids.length === 0) continue
  out.push(cells([suite.name, ...names.map(name => `${ids.filter(id => grid.get(id)[name] === 'pass').length}/${ids.length}`)]))
}
out.push('')

out.push('## Every test where a cache did not pass', '')
out.push(`${symbol.pass} pass, ${symbol.fail} failed (required), ${symbol.optional} optimal behaviour not met, Y/N answer to an`)
out.push(`informational check, ${symbol.setup} setup failed (the cache misbehaved before the behaviour under test),`)
out.push(`${symbol.dependency} not run because a test it depends on did not pass, - not run.`, '')
out.push(cells(['test', 'kind', ...names]), cells(['---', '---', ...names.map(() => ':---:')]))
for (const [id, row] of grid) {
  if (names.every(name => ['pass', 'yes', 'untested'].includes(row[name]))) continue
  const test = tests.get(id)
  const details = names.map(name => {
    const result = results[name][id]
    const mark = symbol[row[name]]
    return Array.isArray(result) && ['fail', 'optional', 'no', 'setup'].includes(row[name]) ? `${mark} ${result[1].replaceAll('|', '\\|')}` : mark
  })
  out.push(cells([`\`${id}\`: ${test.name.replaceAll('|', '\\|')}`, kindOf(test), ...details]))
}
console.log(out.join('\n'))
