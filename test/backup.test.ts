// Online backup: GET /backup and `accman backup` under 64-wide mod load through a real listening
// server, restored with import and checked against the acknowledgements made before it was asked.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { accountKeyOf, credentialKeyOf, openLedger, type AccountKey } from '../src/ledger/index.js'
import { backupChunks } from '../src/ledger/backup.js'
import { archiveHeader, importStore } from '../src/ledger/archive.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { verifyStore } from '../src/ledger/verify.js'
import { Client, listenOnLoopback, query, runCli, temporaryDirectories, testApp } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-backup-')

const writeToken = 'w'.repeat(40)
const readToken = 'r'.repeat(40)
const workers = 64
const accountCount = 48
const modsPerWorkerMax = 400

interface Sent {
  cred: string
  key: string
  by: bigint
  outcome: 'pending' | 'applied' | 'refused'
  seq?: number
  tot?: bigint
  /** Answered while no backup had been asked for yet. */
  ackedBeforeBackup: boolean
}

interface BackupAccount {
  tot: bigint
  seq: number
  entries: { seq: number; by: bigint; tot: bigint; key: string | undefined }[]
}

function parseBackup(text: string): Map<string, BackupAccount> {
  const lines = text.split('\n')
  expect(lines[0]).toBe(archiveHeader)
  expect(lines.at(-1)).toBe('')
  const accounts = new Map<string, BackupAccount>()
  let current: BackupAccount | undefined
  const accountOfCredential = new Map<string, string>()
  for (const line of lines.slice(1, -1)) {
    const record = JSON.parse(line) as { credential?: string; account?: string; tot: string; seq: number; by?: string; key?: string }
    if (record.credential !== undefined && record.account !== undefined) {
      accountOfCredential.set(record.credential, record.account)
    } else if (record.account !== undefined) {
      current = { tot: BigInt(record.tot), seq: record.seq, entries: [] }
      accounts.set(record.account, current)
    } else {
      expect(current).toBeDefined()
      current?.entries.push({ seq: record.seq, by: BigInt(record.by ?? '0'), tot: BigInt(record.tot), key: record.key })
    }
  }
  // By credential key (accountKeyOf of the credential), as the tests know their accounts.
  const byCredential = new Map<string, BackupAccount>()
  for (const [credential, account] of accountOfCredential) {
    const found = accounts.get(account)
    if (found !== undefined) byCredential.set(credential, found)
  }
  return byCredential
}

/** Waits for a condition, failing the test if it does not hold within the bound. */
async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/** 64 submitters, each looping keyed credits and debits over shared accounts until told to stop. */
class Load {
  readonly sent: Sent[] = []
  readonly creds: string[]
  readonly #name: string
  backupAsked = false
  stopped = false
  acknowledged = 0
  readonly #client: Client
  readonly #done: Promise<void[]>
  failures: string[] = []

  /** `name` keeps each load's accounts and keys apart from another load's on the same server. */
  constructor(name: string, base: string, token: string | undefined) {
    this.#name = name
    this.creds = Array.from({ length: accountCount }, (_, index) =>
      Buffer.from(`${name}-account-${index}`).toString('base64').replaceAll('+', '-').replaceAll('/', '_'),
    )
    this.#client = new Client(base, workers)
    const headers = (key: string): Record<string, string> => ({
      accept: 'application/json',
      'idempotency-key': key,
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    })
    this.#done = Promise.all(
      Array.from({ length: workers }, async (_, worker) => {
        for (let index = 0; index < modsPerWorkerMax && !this.stopped; index++) {
          const cred = this.creds[(worker * 7 + index * 13) % accountCount] ?? ''
          const by = index % 3 === 2 ? -BigInt(1 + ((worker + index) % 40)) : BigInt(10 + ((worker * index) % 50))
          const sent: Sent = { cred, key: `${this.#name}-w${worker}-${index}`, by, outcome: 'pending', ackedBeforeBackup: false }
          this.sent.push(sent)
          const reply = await this.#client.send('PATCH', `/mod?${query({ cred, by: by.toString() })}`, headers(sent.key))
          if (reply.status === 200) {
            const body = JSON.parse(reply.body) as { tot: string; seq: number }
            sent.outcome = 'applied'
            sent.seq = body.seq
            sent.tot = BigInt(body.tot)
            sent.ackedBeforeBackup = !this.backupAsked
            this.acknowledged++
          } else if (reply.status === 402 || reply.status === 404 || reply.status === 503) {
            // Refused before anything was decided (503: queue full or overloaded): never applied.
            sent.outcome = 'refused'
          } else {
            this.failures.push(`${reply.status} ${reply.body}`)
            return
          }
        }
      }),
    )
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.#done
    this.#client.close()
  }
}

/** Checks a backup against the load: what was acknowledged before it was asked is in it, exactly. */
function checkAgainstLoad(backup: Map<string, BackupAccount>, load: Load): { entries: number; ackedBefore: number } {
  const byKey = new Map(load.sent.map((sent) => [`${accountKeyOf(sent.cred)}|${sent.key}`, sent]))
  const ownAccounts = new Set(load.creds.map((cred) => accountKeyOf(cred)))
  let entries = 0
  for (const [accountKey, account] of backup) {
    // Another load's accounts on the same server are checked by its own test.
    if (!ownAccounts.has(accountKey as AccountKey)) continue
    expect(account.entries.length).toBe(account.seq)
    expect(account.entries.at(-1)?.tot).toBe(account.tot)
    let tot = 0n
    for (const [index, entry] of account.entries.entries()) {
      expect(entry.seq).toBe(index + 1)
      tot += entry.by
      expect(entry.tot).toBe(tot)
      expect(entry.tot >= 0n).toBe(true)
      // Nothing in the backup that was not sent and applied.
      const sent = byKey.get(`${accountKey}|${entry.key}`)
      expect(sent, `entry ${entry.seq} of ${accountKey.slice(0, 8)} matches no mod sent`).toBeDefined()
      expect(sent?.by).toBe(entry.by)
      expect(sent?.outcome).not.toBe('refused')
      if (sent?.outcome === 'applied') {
        expect(sent.seq).toBe(entry.seq)
        expect(sent.tot).toBe(entry.tot)
      }
      entries++
    }
  }
  let ackedBefore = 0
  for (const sent of load.sent) {
    if (!sent.ackedBeforeBackup) continue
    ackedBefore++
    const account = backup.get(accountKeyOf(sent.cred))
    const entry = account?.entries[(sent.seq ?? 0) - 1]
    expect(entry, `acknowledged mod ${sent.key} is missing from the backup`).toBeDefined()
    expect(entry?.key).toBe(sent.key)
    expect(entry?.tot).toBe(sent.tot)
  }
  return { entries, ackedBefore }
}

/** Restores a backup into a fresh directory: import checks every chain, verify finds no fault. */
async function restore(file: string): Promise<Map<string, bigint>> {
  const db = new ClassicLevel<string, string>(join(temporaryDirectory(), 'restored'))
  try {
    const store = await openLevelStore(db, { sync: true })
    await importStore(store, async function* () {
      yield* readFileSync(file, 'utf8').split('\n').slice(0, -1)
    })
    const report = await verifyStore(store)
    expect(report.faults).toEqual([])
    expect(report.faultCount).toBe(0)
    const byAccount = new Map<string, bigint>()
    for await (const [key, value] of db.sublevel<string, string>('acct', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).iterator()) {
      byAccount.set(key, BigInt((JSON.parse(value) as { tot: string }).tot))
    }
    // By credential key, as parseBackup gives them.
    const balances = new Map<string, bigint>()
    for await (const [key, value] of db.sublevel<string, string>('cred', { keyEncoding: 'utf8', valueEncoding: 'utf8' }).iterator()) {
      const tot = byAccount.get((JSON.parse(value) as { account: string }).account)
      if (tot !== undefined) balances.set(key, tot)
    }
    return balances
  } finally {
    await db.close()
  }
}

describe('GET /backup under 64-wide mod load through a real listening server', () => {
  let app: FastifyInstance
  let base: string

  beforeAll(async () => {
    const db = new ClassicLevel<string, string>(temporaryDirectory())
    app = await testApp({ db, config: { tokens: [writeToken], readTokens: [readToken] } })
    base = await listenOnLoopback(app)
  })
  afterAll(async () => {
    await app.close()
  })

  test('holds exactly the acknowledged mods as of its snapshot; restored balances are those at the snapshot', async () => {
    const load = new Load('snapshot', base, writeToken)
    await until(() => load.acknowledged >= 2000 || load.failures.length > 0, '2,000 acknowledged mods')
    load.backupAsked = true
    const reply = await fetch(`${base}/backup`, { headers: { authorization: `Bearer ${writeToken}` } })
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8')
    const text = await reply.text()
    const acknowledgedAtBackupEnd = load.acknowledged
    // Mods were still being acknowledged after the backup: the server was not paused.
    await until(() => load.acknowledged >= acknowledgedAtBackupEnd + 500 || load.stopped, 'mods after the backup')
    await load.stop()
    expect(load.failures).toEqual([])

    const backup = parseBackup(text)
    const { entries, ackedBefore } = checkAgainstLoad(backup, load)
    expect(ackedBefore).toBeGreaterThanOrEqual(2000)
    const applied = load.sent.filter((sent) => sent.outcome === 'applied').length
    expect(entries).toBeLessThan(applied)

    // Each account's backed-up history is exactly the first entries of its history now.
    const client = new Client(base, 8)
    try {
      for (const cred of load.creds) {
        const account = backup.get(accountKeyOf(cred))
        const history = await readHistoryWithToken(client, cred)
        expect(history.length).toBeGreaterThanOrEqual(account?.seq ?? 0)
        for (const entry of account?.entries ?? []) {
          expect(history[entry.seq - 1]).toEqual({ seq: entry.seq, by: entry.by.toString(), tot: entry.tot.toString() })
        }
      }
    } finally {
      client.close()
    }

    const file = join(temporaryDirectory(), 'backup.jsonl')
    writeFileSync(file, text)
    const restored = await restore(file)
    expect(restored.size).toBe(backup.size)
    for (const [accountKey, account] of backup) expect(restored.get(accountKey)).toBe(account.tot)
  })

  test('needs a write token when tokens are configured, and takes no parameters', async () => {
    expect((await fetch(`${base}/backup`)).status).toBe(401)
    const forbidden = await fetch(`${base}/backup`, { headers: { authorization: `Bearer ${readToken}` } })
    expect(forbidden.status).toBe(403)
    expect(((await forbidden.json()) as { code: string }).code).toBe('ACCMAN_FORBIDDEN')
    const withQuery = await fetch(`${base}/backup?cred=abcd`, { headers: { authorization: `Bearer ${writeToken}` } })
    expect(withQuery.status).toBe(400)
    expect(((await withQuery.json()) as { code: string }).code).toBe('ACCMAN_INVALID_QUERY')
    expect((await fetch(`${base}/backup`, { method: 'PATCH' })).status).toBe(405)
  })

  test('accman backup writes the file atomically under load, prints no token, and restores', async () => {
    const load = new Load('cli', base, writeToken)
    await until(() => load.acknowledged >= 500 || load.failures.length > 0, '500 acknowledged mods')
    // Acknowledged before the CLI starts, so before it sends its request.
    load.backupAsked = true
    const directory = temporaryDirectory()
    const file = join(directory, 'cli-backup.jsonl')
    const run = await runCli(['backup', file], { ACCMAN_URL: base, ACCMAN_TOKEN: writeToken })
    await load.stop()
    expect(load.failures).toEqual([])
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(/^backed up \d+ accounts, \d+ entries to .*cli-backup\.jsonl\n$/)
    expect(run.stderr + run.stdout).not.toContain(writeToken)
    expect(run.code).toBe(0)
    const backup = parseBackup(readFileSync(file, 'utf8'))
    checkAgainstLoad(backup, load)
    const restored = await restore(file)
    for (const [accountKey, account] of backup) expect(restored.get(accountKey)).toBe(account.tot)

    const refused = await runCli(['backup', join(directory, 'refused.jsonl')], { ACCMAN_URL: base, ACCMAN_TOKEN: readToken })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^accman: backup refused: .*\(ACCMAN_FORBIDDEN\)\n$/)
    expect(refused.stderr).not.toContain(readToken)
    expect(() => readFileSync(join(directory, 'refused.jsonl'))).toThrow()
  })
})

async function readHistoryWithToken(client: Client, cred: string) {
  const entries: { seq: number; by: string; tot: string }[] = []
  for (;;) {
    const reply = await client.send('GET', `/past?${query({ cred, limit: '1000', after: String(entries.length) })}`, {
      authorization: `Bearer ${readToken}`,
    })
    if (reply.status === 404) return entries
    expect(reply.status, reply.body).toBe(200)
    const page = JSON.parse(reply.body) as { entries: { seq: number; by: string; tot: string }[] }
    if (page.entries.length === 0) return entries
    entries.push(...page.entries.map(({ seq, by, tot }) => ({ seq, by, tot })))
  }
}

describe.each([
  ['memory-level', () => new MemoryLevel<string, string>()],
  ['classic-level', () => new ClassicLevel<string, string>(temporaryDirectory())],
])('backupChunks on %s', (_name, makeDb) => {
  test('reads the store as of the call, not what is written while it streams', async () => {
    const db = makeDb()
    const store = await openLevelStore(db, { sync: false })
    const ledger = await openLedger(store, { writerBatchMax: 64, writerQueueMax: 1024, now: () => 1_000 })
    try {
      const early = credentialKeyOf('ZWFybHk=')
      const late = credentialKeyOf('bGF0ZQ==')
      for (let index = 0; index < 3000; index++) await ledger.mod(early, { by: 7n, idempotencyKey: `k${index}` })
      const chunks = await backupChunks(store)
      await ledger.mod(early, { by: 1n })
      await ledger.mod(late, { by: 9n })
      let text = ''
      let chunkCount = 0
      for await (const chunk of chunks) {
        text += chunk
        chunkCount++
        // Written while the backup streams: not in it either.
        await ledger.mod(early, { by: -1n })
      }
      expect(chunkCount).toBeGreaterThan(1)
      const backup = parseBackup(text)
      expect([...backup.keys()]).toEqual([early])
      expect(backup.get(early)?.seq).toBe(3000)
      expect(backup.get(early)?.tot).toBe(21_000n)
      expect((await ledger.tot(early))?.seq).toBe(3001 + chunkCount)
    } finally {
      await ledger.close()
    }
  })
})
