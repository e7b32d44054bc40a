// The accman CLI as operators run it: against a real server and a real LevelDB directory.
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runCli, ServerProcess, temporaryDirectories } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-cli-')

const credentialPattern = /^[A-Za-z0-9_-]{43}=$/

/** Exactly one line on stderr, and it must not repeat the secret. */
function expectOneLine(stderr: string, secret?: string): string {
  const lines = stderr.split('\n').filter(Boolean)
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(/^accman: /)
  expect(stderr).not.toMatch(/\n\s+at /)
  if (secret !== undefined) expect(stderr).not.toContain(secret)
  return lines[0] ?? ''
}

test('--help lists every command and the exit codes; each command has its own help with an example', async () => {
  const help = await runCli(['--help'])
  expect(help.code).toBe(0)
  for (const command of ['serve', 'tot', 'mod', 'past', 'new', 'verify', 'export', 'import', 'hold', 'settle', 'void', 'holds']) {
    expect(help.stdout).toContain(command)
    const own = await runCli([command, '--help'])
    expect(own.code).toBe(0)
    expect(own.stdout).toMatch(/Examples?:\n {2}(accman|cred=|ACCMAN_PORT)/)
  }
  expect(help.stdout).toContain('4 insufficient funds')
  expect(help.stdout).toContain('8 idempotency key reused with another amount')
})

describe('online commands against a running server', () => {
  let server: ServerProcess
  let env: Record<string, string>
  const db = temporaryDirectory()

  beforeAll(async () => {
    server = new ServerProcess({ ACCMAN_DB: db })
    env = { ACCMAN_URL: await server.url() }
  })
  afterAll(async () => {
    await server.kill('SIGTERM')
  })

  test('hold, holds, settle and void: the server JSON, and refusals as exit codes', async () => {
    const cred = (await runCli(['new', '100'], env)).stdout.trim()
    const opened = await runCli(['hold', cred, '30', '--ttl', '60', '--note', 'job 1'], env)
    expect(opened.code).toBe(0)
    const answer = JSON.parse(opened.stdout) as { hold: string; held: string; avail: string }
    expect(answer).toMatchObject({ by: '30', tot: '100', held: '30', avail: '70', seq: 2 })
    const listed = JSON.parse((await runCli(['holds', cred], env)).stdout) as { held: string; holds: { hold: string; note: string }[] }
    expect(listed).toMatchObject({ held: '30', holds: [{ hold: answer.hold, by: '30', note: 'job 1' }] })
    expect((await runCli(['hold', cred, '71'], env)).code).toBe(4)
    expect((await runCli(['hold', cred, '0'], env)).code).toBe(2)
    expect(JSON.parse((await runCli(['settle', cred, answer.hold, '--by', '10'], env)).stdout)).toEqual({
      hold: answer.hold,
      settled: '10',
      tot: '90',
      held: '0',
      avail: '90',
      seq: 3,
    })
    const again = await runCli(['void', cred, answer.hold], env)
    expect(again.code).toBe(1)
    expect(expectOneLine(again.stderr, cred)).toContain('ACCMAN_HOLD_CLOSED')
    const second = JSON.parse((await runCli(['hold', cred, '5'], env)).stdout) as { hold: string }
    expect(JSON.parse((await runCli(['void', cred, second.hold], env)).stdout)).toMatchObject({ hold: second.hold, held: '0', avail: '90' })
  })

  test('new, mod, tot and past: the numbers an operator expects', async () => {
    const created = await runCli(['new', '1000'], env)
    expect(created.code).toBe(0)
    const cred = created.stdout.trim()
    expect(cred).toMatch(credentialPattern)
    expect((await runCli(['tot', cred], env)).stdout).toBe('1000\n')
    expect((await runCli(['mod', cred, '-1'], env)).stdout).toBe('999\n')
    const keyed = await runCli(['mod', cred, '-10', '--note', 'GET /v1/search', '--key', 'req-1'], env)
    expect(keyed.stdout).toBe('989\n')
    expect((await runCli(['mod', cred, '-10', '--key', 'req-1', '--json'], env)).stdout).toBe('{"tot":"989","seq":3,"held":"0","avail":"989"}\n')
    expect((await runCli(['tot', cred, '--json'], env)).stdout).toBe('{"tot":"989","seq":3,"held":"0","avail":"989"}\n')

    const table = (await runCli(['past', cred], env)).stdout.split('\n').filter(Boolean)
    expect(table[0]).toMatch(/^seq\s+at\s+by\s+tot\s+note$/)
    expect(table).toHaveLength(4)
    expect(table[1]).toMatch(/^ {2}1 {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}1000 {2}1000$/)
    expect(table[3]).toMatch(/^ {2}3 {2}\S+ {3}-10 {3}989 {2}GET \/v1\/search$/)
    const newest = JSON.parse((await runCli(['past', cred, '--desc', '--limit', '1', '--json'], env)).stdout) as {
      tot: string
      entries: { seq: number; key?: string }[]
    }
    expect(newest.tot).toBe('989')
    expect(newest.entries).toEqual([expect.objectContaining({ seq: 3, key: 'req-1' })])
    const after = (await runCli(['past', cred, '--after', '2'], env)).stdout.split('\n').filter(Boolean)
    expect(after).toHaveLength(2)
  })

  test('new without an amount makes a credential and no account', async () => {
    const created = await runCli(['new'], env)
    expect(created.code).toBe(0)
    const cred = created.stdout.trim()
    expect(cred).toMatch(credentialPattern)
    const read = await runCli(['tot', cred], env)
    expect(read.code).toBe(3)
  })

  test.each([
    ['a malformed credential', ['tot', 'c2VjcmV0LWNyZWQ'], 2, 'cred must be base64url', 'c2VjcmV0LWNyZWQ'],
    ['a credential that starts with a dash', ['tot', '-c2VjcmV0LWNyZWQ='], 2, "put '--'", 'c2VjcmV0LWNyZWQ'],
    ['a malformed amount', ['mod', 'QUJDRA==', '1.5'], 2, 'by must be a nonzero integer', undefined],
    ['an unknown account', ['tot', 'bm9ib2R5LWhlcmU='], 3, 'no account', 'bm9ib2R5LWhlcmU='],
    ['a debit on an unknown account', ['mod', 'bm9ib2R5LWhlcmU=', '-1'], 3, 'ACCMAN_NO_ACCOUNT', 'bm9ib2R5LWhlcmU='],
    ['a missing argument', ['mod', 'QUJDRA=='], 2, 'missing required argument', undefined],
    ['an unknown command', ['balance'], 2, 'unknown command', undefined],
    ['a negative opening credit', ['new', '-5'], 2, 'positive integer', undefined],
    ['a bad limit', ['past', 'QUJDRA==', '--limit', 'ten'], 2, 'limit must be', undefined],
    ['a malformed new credential', ['rotate', 'QUJDRA==', 'c2VjcmV0LW5ldw'], 2, 'new must be base64url', 'c2VjcmV0LW5ldw'],
    ['a malformed to', ['move', 'QUJDRA==', 'c2VjcmV0LXRvbw', '1'], 2, 'to must be base64url', 'c2VjcmV0LXRvbw'],
  ])('%s: one line and its exit code', async (_name, args, code, message, secret) => {
    const run = await runCli(args, env)
    expect(run.code).toBe(code)
    expect(run.stdout).toBe('')
    expect(expectOneLine(run.stderr, secret)).toContain(message)
  })

  test('an overdraft: one line with the balance, exit 4, nothing written', async () => {
    const cred = (await runCli(['new', '5'], env)).stdout.trim()
    const run = await runCli(['mod', cred, '-6'], env)
    expect(run.code).toBe(4)
    expect(expectOneLine(run.stderr, cred)).toContain('the balance is 5')
    expect((await runCli(['tot', cred, '--json'], env)).stdout).toBe('{"tot":"5","seq":1,"held":"0","avail":"5"}\n')
  })

  test('verify while the server holds the database: one line, exit 6', async () => {
    const run = await runCli(['verify', '--db', db], env)
    expect(run.code).toBe(6)
    expect(expectOneLine(run.stderr)).toContain('is in use; stop the server first')
  })

  test('ACCMAN_URL and ACCMAN_DB come from .env; the environment wins', async () => {
    const cwd = temporaryDirectory()
    writeFileSync(join(cwd, '.env'), `ACCMAN_URL=${env.ACCMAN_URL ?? ''}\nACCMAN_DB=${db}\n`)
    expect((await runCli(['tot', 'bm9ib2R5LWhlcmU='], {}, cwd)).code).toBe(3)
    expect((await runCli(['verify'], {}, cwd)).code).toBe(6)
    expect((await runCli(['tot', 'bm9ib2R5LWhlcmU='], { ACCMAN_URL: 'http://127.0.0.1:9' }, cwd)).code).toBe(5)
  })
})

test('ACCMAN_TOKEN is sent as a bearer token; without it a protected server refuses in one line', async () => {
  const token = 'cli-token-0123456789abcdef'
  const server = new ServerProcess({ ACCMAN_DB: temporaryDirectory(), ACCMAN_TOKENS: token })
  const url = await server.url()
  const created = await runCli(['new', '10'], { ACCMAN_URL: url, ACCMAN_TOKEN: token })
  expect(created.code).toBe(0)
  const cred = created.stdout.trim()
  expect((await runCli(['tot', cred], { ACCMAN_URL: url, ACCMAN_TOKEN: token })).stdout).toBe('10\n')
  const refused = await runCli(['tot', cred], { ACCMAN_URL: url })
  expect(refused.code).toBe(1)
  expect(expectOneLine(refused.stderr, cred)).toContain('ACCMAN_UNAUTHORIZED')
  const wrong = await runCli(['mod', cred, '-1'], { ACCMAN_URL: url, ACCMAN_TOKEN: 'wrong-token-0123456789ab' })
  expect(wrong.code).toBe(1)
  expect(expectOneLine(wrong.stderr, 'wrong-token-0123456789ab')).toContain('ACCMAN_UNAUTHORIZED')
  expect(await server.kill('SIGTERM')).toBe(0)
})

test('a server that is down: one line, exit 5', async () => {
  const run = await runCli(['tot', 'QUJDRA=='], { ACCMAN_URL: 'http://127.0.0.1:9' })
  expect(run.code).toBe(5)
  expect(expectOneLine(run.stderr, 'QUJDRA==')).toContain('cannot reach AccMan at http://127.0.0.1:9')
})

describe('offline commands on a stopped server\'s directory', () => {
  test('export, import into a new directory, verify: the same balances and histories, byte for byte', async () => {
    const db = temporaryDirectory()
    const server = new ServerProcess({ ACCMAN_DB: db })
    const env = { ACCMAN_URL: await server.url() }
    const creds: string[] = []
    for (let index = 0; index < 3; index++) creds.push((await runCli(['new', `${1000 * (index + 1)}`], env)).stdout.trim())
    await runCli(['mod', creds[0] ?? '', '-7', '--note', 'with a note ✓', '--key', 'k-1'], env)
    await runCli(['mod', creds[2] ?? '', '170141183460469231731687303715884102727'], env)
    expect(await server.kill('SIGTERM')).toBe(0)

    expect((await runCli(['verify', '--db', db])).stdout).toBe(`verify ${db}: 3 accounts, 5 entries, 5 idempotency keys: ok\n`)
    const file = join(temporaryDirectory(), 'backup.jsonl')
    const exported = await runCli(['export', file, '--db', db])
    expect(exported.code).toBe(0)
    expect(exported.stderr).toBe(`exported 3 accounts, 5 entries to ${file}\n`)
    const backup = readFileSync(file, 'utf8')
    for (const cred of creds) expect(backup).not.toContain(cred)
    expect(backup).toContain('"tot":"170141183460469231731687303715884105727"')

    const restored = join(temporaryDirectory(), 'restored')
    const imported = await runCli(['import', file, '--db', restored])
    expect(imported.code).toBe(0)
    expect(imported.stdout).toBe(`verify ${restored}: 3 accounts, 5 entries, 5 idempotency keys: ok\n`)
    expect((await runCli(['export', '--db', restored])).stdout).toBe(backup)

    const again = await runCli(['import', file, '--db', restored])
    expect(again.code).toBe(2)
    expect(expectOneLine(again.stderr)).toContain('not empty')

    // The restored store serves the same balances.
    const copy = new ServerProcess({ ACCMAN_DB: restored })
    const copyEnv = { ACCMAN_URL: await copy.url() }
    expect((await runCli(['tot', creds[0] ?? '', '--json'], copyEnv)).stdout).toBe('{"tot":"993","seq":2,"held":"0","avail":"993"}\n')
    expect((await runCli(['mod', creds[0] ?? '', '-7', '--key', 'k-1'], copyEnv)).stdout).toBe('993\n')
    expect(await copy.kill('SIGTERM')).toBe(0)
  })

  test('verify reports damage and exits 7; export refuses a damaged store', async () => {
    const db = temporaryDirectory()
    const server = new ServerProcess({ ACCMAN_DB: db })
    const env = { ACCMAN_URL: await server.url() }
    const cred = (await runCli(['new', '100'], env)).stdout.trim()
    await runCli(['mod', cred, '-1'], env)
    await runCli(['mod', cred, '-1'], env)
    expect(await server.kill('SIGTERM')).toBe(0)

    const damaged = temporaryDirectory()
    cpSync(db, damaged, { recursive: true })
    const store = new ClassicLevel<string, string>(damaged)
    const history = store.sublevel<string, string>('past', {})
    const [secondKey] = await history.keys({ gt: '', limit: 2 }).all().then((keys) => keys.slice(1))
    await history.del(secondKey ?? '')
    await store.close()

    const run = await runCli(['verify', '--db', damaged])
    expect(run.code).toBe(7)
    expect(run.stdout).toMatch(/^fault: account [A-Za-z0-9_-]{12}…: entry 3 follows entry 1$/m)
    expect(run.stdout).toMatch(/: 1 accounts, 2 entries, 3 idempotency keys: \d faults\n$/)
    expect(run.stdout).not.toContain(cred)
    const exported = await runCli(['export', join(damaged, 'out.jsonl'), '--db', damaged])
    expect(exported.code).toBe(7)
    expect(expectOneLine(exported.stderr)).toContain('run accman verify')

    const missing = await runCli(['verify', '--db', join(damaged, 'nothing-here')])
    expect(missing.code).toBe(6)
    expect(expectOneLine(missing.stderr)).toContain('no database at')
  })
})
