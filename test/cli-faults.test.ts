// The accman CLI when the network or the server fails: retries with one idempotency key, the key
// shown for the operator's own retry, exit codes, and no secret in anything it prints.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { newCredential } from '../src/cli/credential.js'
import { closedPort, FaultProxy } from './fault-proxy.js'
import { Client, query, runCli, ServerProcess, temporaryDirectories, type CliRun } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-cli-faults-')
const token = 'tok-s3cret-0123456789abcdef'
let server: ServerProcess
let url: string
let proxy: FaultProxy

beforeAll(async () => {
  server = new ServerProcess({ ACCMAN_DB: temporaryDirectory(), ACCMAN_SYNC: 'false', ACCMAN_TOKENS: token })
  url = await server.url()
  proxy = await FaultProxy.start(url)
})

afterAll(async () => {
  await proxy.close()
  await server.kill('SIGTERM')
})

const direct = () => ({ ACCMAN_URL: url, ACCMAN_TOKEN: token })
const viaProxy = () => ({ ACCMAN_URL: proxy.url, ACCMAN_TOKEN: token })

async function account(balance: string): Promise<string> {
  const created = await runCli(['new', balance], direct())
  expect(created.code).toBe(0)
  return created.stdout.trim()
}

async function amounts(cred: string): Promise<string[]> {
  const authorized = new Client(url, 1)
  try {
    const reply = await authorized.send('GET', `/past?${query({ cred, limit: '1000' })}`, { authorization: `Bearer ${token}` })
    expect(reply.status).toBe(200)
    return (JSON.parse(reply.body) as { entries: { by: string }[] }).entries.map((entry) => entry.by)
  } finally {
    authorized.close()
  }
}

function oneLine(run: CliRun): string {
  const lines = run.stderr.split('\n').filter(Boolean)
  expect(lines).toHaveLength(1)
  expect(run.stderr).not.toMatch(/\n\s+at /)
  return lines[0] ?? ''
}

describe('retries with one idempotency key', () => {
  test('mod without --key: a lost answer is retried with its generated key and applied once', async () => {
    const cred = await account('100')
    proxy.plans.push('drop-answer')
    const run = await runCli(['mod', cred, '-5'], viaProxy())
    expect([run.code, run.stdout, run.stderr]).toEqual([0, '95\n', ''])
    expect(await amounts(cred)).toEqual(['100', '-5'])
  })

  test('mod: a 503 is retried no sooner than its Retry-After asks', async () => {
    const cred = await account('100')
    proxy.plans.push('answer-503')
    proxy.retryAfter = '1'
    const started = performance.now()
    const run = await runCli(['mod', cred, '7'], viaProxy())
    // A lower bound only: the wait the server asked for.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000)
    expect([run.code, run.stdout]).toEqual([0, '107\n'])
    expect(await amounts(cred)).toEqual(['100', '7'])
  })

  test('new: a lost answer of the opening credit is retried, credited once', async () => {
    proxy.plans.push('drop-answer')
    const run = await runCli(['new', '40'], viaProxy())
    expect(run.code).toBe(0)
    const cred = run.stdout.trim()
    expect(await amounts(cred)).toEqual(['40'])
  })

  test('a mod that never gets an answer: exit 5, one line with the key; running it again with that key applies it once', async () => {
    const cred = await account('100')
    proxy.plans.push('drop-answer', 'drop-answer', 'drop-answer', 'drop-answer')
    const run = await runCli(['mod', cred, '-30'], viaProxy())
    expect(run.code).toBe(5)
    expect(run.stdout).toBe('')
    const line = oneLine(run)
    expect(line).toMatch(/^accman: cannot reach AccMan at http:\/\/127\.0\.0\.1:\d+ \(UND_ERR_SOCKET\) after 4 attempts; /)
    const key = /--key (cli-[0-9a-f-]{36}) /.exec(line)?.[1]
    expect(key).toBeDefined()
    // Every attempt was applied at most once: the first landed, the others were replays.
    expect(await amounts(cred)).toEqual(['100', '-30'])
    const again = await runCli(['mod', cred, '-30', '--key', key ?? ''], direct())
    expect([again.code, again.stdout]).toEqual([0, '70\n'])
    expect(await amounts(cred)).toEqual(['100', '-30'])
  })

  test('503 on every attempt: exit 1 with the key, nothing applied', async () => {
    const cred = await account('100')
    proxy.plans.push('answer-503', 'answer-503', 'answer-503', 'answer-503')
    proxy.retryAfter = '0'
    const run = await runCli(['mod', cred, '-1'], viaProxy())
    expect(run.code).toBe(1)
    expect(oneLine(run)).toMatch(/ACCMAN_QUEUE_FULL\); the mod may have been applied: run it again with --key cli-/)
    expect(await amounts(cred)).toEqual(['100'])
  })

  test('a key reused with another amount: exit 8', async () => {
    const cred = await account('100')
    expect((await runCli(['mod', cred, '-1', '--key', 'reused-key'], direct())).code).toBe(0)
    const run = await runCli(['mod', cred, '-2', '--key', 'reused-key'], direct())
    expect(run.code).toBe(8)
    expect(oneLine(run)).toContain('ACCMAN_IDEMPOTENCY_MISMATCH')
    expect(await amounts(cred)).toEqual(['100', '-1'])
  })
})

test('--version prints the version of package.json', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  for (const flag of ['--version', '-V']) {
    const run = await runCli([flag])
    expect([run.code, run.stdout, run.stderr]).toEqual([0, `${version}\n`, ''])
  }
})

describe('no secret in anything the CLI prints, in any failure', () => {
  const password = 'pw-s3cret-0123'
  let cred: string
  let secrets: string[]

  beforeAll(async () => {
    cred = await account('10')
    secrets = [cred, encodeURIComponent(cred), token, password, 'tok-nl-s3cret']
  })

  const cases: [string, () => Promise<{ args: string[]; env: Record<string, string> }>, number][] = [
    ['a url with user:password, server down', async () => ({ args: ['tot', cred], env: { ACCMAN_URL: `http://user:${password}@127.0.0.1:${await closedPort()}` } }), 2],
    ['a url with user:password, server up', async () => ({ args: ['mod', cred, '-1'], env: { ACCMAN_URL: url.replace('//', `//admin:${password}@`), ACCMAN_TOKEN: token } }), 2],
    ['a token with a line break', async () => ({ args: ['mod', cred, '-1'], env: { ACCMAN_URL: url, ACCMAN_TOKEN: 'tok-nl-s3cret\nX-Injected: 1' } }), 2],
    ['a token with a line break, server down', async () => ({ args: ['tot', cred], env: { ACCMAN_URL: `http://127.0.0.1:${await closedPort()}`, ACCMAN_TOKEN: 'tok-nl-s3cret\r\n' } }), 2],
    ['an unreachable server', async () => ({ args: ['mod', cred, '-1'], env: { ACCMAN_URL: `http://127.0.0.1:${await closedPort()}`, ACCMAN_TOKEN: token } }), 5],
    ['a wrong token (401)', async () => ({ args: ['tot', cred], env: { ACCMAN_URL: url, ACCMAN_TOKEN: 'wrong-token-0123456789' } }), 1],
    ['no token (401)', async () => ({ args: ['past', cred], env: { ACCMAN_URL: url } }), 1],
    ['insufficient funds (402)', async () => ({ args: ['mod', cred, '-1000'], env: direct() }), 4],
    ['an unknown account (404)', async () => ({ args: ['tot', newCredential()], env: direct() }), 3],
    ['a bad note (400)', async () => ({ args: ['mod', cred, '1', '--note', 'x'.repeat(300)], env: direct() }), 2],
    ['a credential as an unknown command', async () => ({ args: [cred], env: direct() }), 2],
  ]

  test.each(cases)('%s', async (_name, make, code) => {
    const { args, env } = await make()
    const run = await runCli(args, env)
    expect(run.code).toBe(code)
    oneLine(run)
    for (const secret of secrets) {
      expect(run.stdout).not.toContain(secret)
      expect(run.stderr).not.toContain(secret)
    }
  })

  test('a url with user info is named as ACCMAN_URL, a bad token as ACCMAN_TOKEN', async () => {
    const withUserInfo = await runCli(['tot', cred], { ACCMAN_URL: url.replace('//', `//admin:${password}@`), ACCMAN_TOKEN: token })
    expect(oneLine(withUserInfo)).toContain('invalid configuration: ACCMAN_URL:')
    const badToken = await runCli(['tot', cred], { ACCMAN_URL: url, ACCMAN_TOKEN: 'tok-nl-s3cret\nX' })
    expect(oneLine(badToken)).toContain('invalid configuration: ACCMAN_TOKEN:')
  })

  test('timeouts on every attempt', async () => {
    proxy.plans.push('hang', 'hang', 'hang', 'hang', 'hang', 'hang')
    const run = await runCli(['mod', cred, '-1', '--key', 'timeout-key'], { ...viaProxy(), ACCMAN_CLI_TIMEOUT_MS: '200' })
    expect(run.code).toBe(5)
    expect(oneLine(run)).toContain('(timeout) after 4 attempts')
    for (const secret of secrets) expect(run.stdout + run.stderr).not.toContain(secret)
    proxy.plans.splice(0)
  })
})
