// The CLI imported and run in this process: run(argv, io) answers the exit code and writes only
// to the io it is given, the same bytes the bin prints, and keeps nothing from one run to the next.
import { ClassicLevel } from 'classic-level'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest'
import { newCredential } from '../src/cli/credential.js'
import { listenOnLoopback, query, runCli, runHere, temporaryDirectories, testApp } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-cli-run-')

afterEach(() => {
  vi.unstubAllEnvs()
})

test('help, version and usage errors: the same exit code and bytes as the bin', async () => {
  const cases = [['--help'], ['mod', '--help'], ['past', '--help'], ['--version'], ['tot', '-abc'], ['bogus'], ['tot'], ['past', 'QUJDRA==', '--limit', '5000']]
  for (const args of cases) {
    const here = await runHere(args)
    expect(here, args.join(' ')).toEqual(await runCli(args))
    expect(here.stdout + here.stderr, args.join(' ')).not.toBe('')
  }
  expect((await runHere(['--help'])).stdout).toContain('8 idempotency key reused with another amount')
  expect(process.exitCode).toBeUndefined()
})

describe('online commands against a server on loopback', () => {
  let app: FastifyInstance
  let url: string

  beforeAll(async () => {
    app = await testApp()
    url = await listenOnLoopback(app)
  })
  afterAll(async () => {
    await app.close()
  })

  test('new, mod, tot and past print what an operator expects', async () => {
    vi.stubEnv('ACCMAN_URL', url)
    vi.stubEnv('ACCMAN_TOKEN', undefined)
    const created = await runHere(['new', '100', '--note', 'opening'])
    expect([created.code, created.stderr]).toEqual([0, ''])
    const cred = created.stdout.trim()
    expect(cred).toMatch(/^[A-Za-z0-9_-]{43}=$/)
    expect(await runHere(['mod', cred, '-7', '--key', 'k-1'])).toEqual({ code: 0, stdout: '93\n', stderr: '' })
    expect(await runHere(['mod', cred, '-7', '--key', 'k-1', '--json'])).toEqual({ code: 0, stdout: '{"tot":"93","seq":2,"held":"0","avail":"93"}\n', stderr: '' })
    expect(await runHere(['tot', cred])).toEqual({ code: 0, stdout: '93\n', stderr: '' })
    const table = (await runHere(['past', cred])).stdout.split('\n')
    expect(table[0]).toBe('seq  at                         by  tot  note')
    expect(table[1]).toMatch(/^ {2}1 {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z {2}100 {2}100 {2}opening$/)
    expect(table[2]).toMatch(/^ {2}2 {2}\S+ {3}-7 {3}93$/)
    expect(table.slice(3)).toEqual([''])
  })

  test('new --json, acct (by credential and by public id) and rotate print JSON and never a credential but the new one', async () => {
    vi.stubEnv('ACCMAN_URL', url)
    vi.stubEnv('ACCMAN_TOKEN', undefined)
    const created = await runHere(['new', '40', '--json'])
    expect([created.code, created.stderr]).toEqual([0, ''])
    const { cred, account } = JSON.parse(created.stdout) as { cred: string; account: string }
    expect(cred).toMatch(/^[A-Za-z0-9_-]{43}=$/)
    expect(account).toMatch(/^acct_[A-Za-z0-9_-]{22}$/)
    expect(JSON.parse((await runHere(['new', '--json'])).stdout)).toMatchObject({ account: null })
    const byCred = await runHere(['acct', cred])
    expect(JSON.parse(byCred.stdout)).toMatchObject({ account, tot: '40', held: '0', avail: '40', seq: 1 })
    expect(JSON.parse((await runHere(['acct', '--id', account])).stdout)).toEqual(JSON.parse(byCred.stdout))
    const fresh = newCredential()
    const rotated = await runHere(['rotate', cred, fresh, '--grace', '60', '--key', 'rot-1'])
    expect([rotated.code, rotated.stderr]).toEqual([0, ''])
    expect(JSON.parse(rotated.stdout)).toMatchObject({ account, tot: '40', seq: 2 })
    expect(rotated.stdout).not.toContain(cred)
    expect(rotated.stdout).not.toContain(fresh)
    // The same key replays; during the grace both credentials work.
    expect((await runHere(['rotate', cred, fresh, '--grace', '60', '--key', 'rot-1'])).stdout).toBe(rotated.stdout)
    expect(await runHere(['tot', cred])).toMatchObject({ code: 0, stdout: '40\n' })
    expect(await runHere(['tot', fresh])).toMatchObject({ code: 0, stdout: '40\n' })
    const inUse = await runHere(['rotate', fresh, cred])
    expect(inUse.code).toBe(1)
    expect(inUse.stderr).toBe('accman: new already addresses an account (ACCMAN_CRED_IN_USE)\n')
    expect(await runHere(['acct', cred, '--id', account])).toMatchObject({ code: 2 })
  })

  test('a refusal is one line on stderr with its exit code, and never the credential', async () => {
    vi.stubEnv('ACCMAN_URL', url)
    vi.stubEnv('ACCMAN_TOKEN', undefined)
    const cred = newCredential()
    const refused = await runHere(['tot', cred])
    expect(refused).toEqual({ code: 3, stdout: '', stderr: 'accman: no account for this credential (ACCMAN_NO_ACCOUNT)\n' })
  })
})

test('each run has its own exit code: faults found by one run do not fail the next', async () => {
  const db = temporaryDirectory()
  const app = await testApp({ db: new ClassicLevel<string, string>(db) })
  const cred = newCredential()
  for (const by of ['100', '-1', '-1']) {
    const reply = await app.inject({ method: 'PATCH', url: `/mod?${query({ cred, by })}` })
    expect(reply.statusCode).toBe(200)
  }
  await app.close()
  const store = new ClassicLevel<string, string>(db)
  const history = store.sublevel<string, string>('past', {})
  const [secondKey] = await history.keys({ gt: '', limit: 2 }).all().then((keys) => keys.slice(1))
  await history.del(secondKey ?? '')
  await store.close()

  const verified = await runHere(['verify', '--db', db])
  expect(verified.code).toBe(7)
  expect(verified.stdout).toMatch(/^fault: account [A-Za-z0-9_-]{12}…: entry 3 follows entry 1$/m)
  expect(verified.stdout).toMatch(/\nverify .*: 1 accounts, 2 entries, 0 idempotency keys: 2 faults\n$/)
  expect(await runHere(['--version'])).toMatchObject({ code: 0, stderr: '' })
  expect(process.exitCode).toBeUndefined()
})
