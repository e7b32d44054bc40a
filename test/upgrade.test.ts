// Stores written by the previous version (format 1: accounts keyed by their credential's SHA-256,
// no credentials table) are upgraded in place at start: every balance, entry and idempotency key
// is kept, each account gets its credential back and a public id, and a crash in the middle of
// the upgrade is finished by the next start. On PostgreSQL a database at schema version 1 with
// rows is brought to version 3 by its migration, in one transaction.
import { ClassicLevel } from 'classic-level'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryLevel } from 'memory-level'
import pg from 'pg'
import { afterAll, describe, expect, test } from 'vitest'
import { publicAccountId } from '../src/ledger/account-id.js'
import { accountKeyOf, encodeAccount, encodeEntry, encodeIdempotency, historyKeyOf, idempotencyKeyOf } from '../src/ledger/codec.js'
import { credentialKeyOf, openLedger, type Ledger, type LedgerStore, type RootDb } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { migrations } from '../src/ledger/postgres/migrations.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { storeFormatOf, upgradeStore } from '../src/ledger/upgrade.js'
import { verifyStore } from '../src/ledger/verify.js'
import { freshDatabase } from './postgres-support.js'

const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

/** The fixture's accounts: credential i has i + 1 entries (a credit, then debits, some keyed). */
const accountCount = 25
const credentialOf = (index: number) => Buffer.from(`previous-version-account-${index}`).toString('base64url').padEnd(36, '=').slice(0, 36)

interface FixtureEntry {
  by: bigint
  tot: bigint
  atMs: number
  note?: string
  idempotencyKey?: string
}

/** An hour ago: the fixture's keys are within their retention window (a day). */
const baseMs = Date.now() - 3_600_000

function fixtureEntries(index: number): FixtureEntry[] {
  const entries: FixtureEntry[] = [{ by: 1000n + BigInt(index), tot: 1000n + BigInt(index), atMs: baseMs + index, note: 'opening' }]
  for (let seq = 2; seq <= index + 1; seq++) {
    const previous = entries.at(-1)?.tot ?? 0n
    const entry: FixtureEntry = { by: -1n, tot: previous - 1n, atMs: baseMs + index + seq }
    if (seq % 3 === 0) entry.idempotencyKey = `req-${seq}`
    entries.push(entry)
  }
  return entries
}

/** Writes the fixture as the previous version wrote LevelDB: the three tables, records as they were. */
async function writeLevelFixture(db: RootDb): Promise<void> {
  await db.open()
  const table = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  for (let index = 0; index < accountCount; index++) {
    const accountKey = accountKeyOf(credentialOf(index))
    const entries = fixtureEntries(index)
    for (const [position, entry] of entries.entries()) {
      const seq = position + 1
      await table('past').put(historyKeyOf(accountKey, seq), encodeEntry(entry))
      if (entry.idempotencyKey !== undefined) {
        await table('idem').put(idempotencyKeyOf(accountKey, entry.idempotencyKey), encodeIdempotency({ by: entry.by, tot: entry.tot, seq, atMs: entry.atMs }))
      }
    }
    const last = entries.at(-1)
    await table('acct').put(accountKey, encodeAccount({ tot: last?.tot ?? 0n, seq: entries.length, atMs: last?.atMs ?? 0 }))
  }
}

/** Every account answers by its credential as before, with its history and its keys. */
async function expectFixtureKept(ledger: Ledger): Promise<void> {
  for (let index = 0; index < accountCount; index++) {
    const credentialKey = credentialKeyOf(credentialOf(index))
    const entries = fixtureEntries(index)
    const last = entries.at(-1)
    expect(await ledger.tot(credentialKey)).toEqual({ tot: last?.tot, seq: entries.length })
    const page = await ledger.past(credentialKey, { limit: 1000, order: 'asc' })
    expect(page.entries.map((entry) => [entry.by, entry.tot, entry.atMs, entry.note, entry.idempotencyKey])).toEqual(
      entries.map((entry) => [entry.by, entry.tot, entry.atMs, entry.note, entry.idempotencyKey]),
    )
    // The account keeps its key as its internal id: its public id is derived from it.
    const accountKey = accountKeyOf(credentialOf(index))
    expect(await ledger.resolve(credentialKey)).toBe(accountKey)
    expect(await ledger.accountOfPublicId(publicAccountId(accountKey))).toBe(accountKey)
    expect((await ledger.acctOf(accountKey))?.createdMs).toBe(entries[0]?.atMs)
  }
}

const levelBackends: Array<[string, () => RootDb]> = [
  ['memory-level', () => new MemoryLevel<string, string>()],
  [
    'classic-level',
    () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-upgrade-'))
      directories.push(directory)
      return new ClassicLevel<string, string>(directory)
    },
  ],
]

describe.each(levelBackends)('upgrade of a LevelDB store of the previous version on %s', (_name, makeDb) => {
  test('start-up upgrades it: every balance, entry and key is kept, and each account gets its credential and public id', async () => {
    const db = makeDb()
    await writeLevelFixture(db)
    const store = await openLevelStore(db, { sync: true })
    expect(await storeFormatOf(store)).toBe(1)
    const ledger = await openLedger(store, { writerBatchMax: 100, writerQueueMax: 1000, upgradeBatchMax: 7 })
    expect(await storeFormatOf(store)).toBe(2)
    await expectFixtureKept(ledger)
    // A keyed debit of the previous version is still a replay.
    const credentialKey = credentialKeyOf(credentialOf(5))
    expect(await ledger.mod(credentialKey, { by: -1n, idempotencyKey: 'req-3' })).toMatchObject({ seq: 3, replayed: true })
    expect(await ledger.mod(credentialKey, { by: -1n })).toMatchObject({ seq: 7, replayed: false })
    expect(await verifyStore(store, { nowMs: Date.now() })).toMatchObject({ accounts: accountCount, credentials: accountCount, faultCount: 0 })
    await ledger.close()
  })

  test('a crash in the middle of the upgrade leaves a store the next start finishes', async () => {
    const db = makeDb()
    await writeLevelFixture(db)
    const store = await openLevelStore(db, { sync: true })
    // Two batches of 7 accounts, then the process "dies".
    expect(await upgradeStore(store, { batchMax: 7, stopAfterBatches: 2 })).toBe(14)
    expect(await storeFormatOf(store)).toBe(1)
    expect(await store.readMeta('upgrade-cursor')).toBeDefined()
    const credentials = db.sublevel<string, string>('cred', { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    expect(await credentials.keys().all()).toHaveLength(14)
    const ledger = await openLedger(store, { writerBatchMax: 100, writerQueueMax: 1000, upgradeBatchMax: 7 })
    expect(await storeFormatOf(store)).toBe(2)
    expect(await store.readMeta('upgrade-cursor')).toBeUndefined()
    expect(await credentials.keys().all()).toHaveLength(accountCount)
    await expectFixtureKept(ledger)
    await ledger.close()
  })

  test('a store of a later format is refused with one line', async () => {
    const db = makeDb()
    const store = await openLevelStore(db, { sync: true })
    await store.writeMeta([['store-format', '3']])
    await expect(openLedger(store, { writerBatchMax: 100, writerQueueMax: 1000 })).rejects.toThrow(
      'the store has format 3, written by a newer AccMan; this one reads format 2 at most',
    )
  })
})

describe('upgrade of a PostgreSQL database of schema version 1', () => {
  /** A database as the previous version left it: migration 1 applied, rows in its tables. */
  async function previousVersionDatabase(): Promise<string> {
    const url = await freshDatabase()
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(
        'CREATE TABLE schema_version (version integer NOT NULL, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (version))',
      )
      const first = migrations.find((migration) => migration.version === 1)
      for (const statement of first?.statements ?? []) await client.query(statement)
      await client.query('INSERT INTO schema_version (version, name) VALUES (1, $1)', [first?.name])
      for (let index = 0; index < accountCount; index++) {
        const accountKey = accountKeyOf(credentialOf(index))
        const entries = fixtureEntries(index)
        for (const [position, entry] of entries.entries()) {
          await client.query(
            'INSERT INTO entries (account_key, seq, by, tot, at, note, idempotency_key, round_id) VALUES ($1, $2, $3, $4, $5, $6, $7, gen_random_uuid())',
            [accountKey, position + 1, entry.by.toString(), entry.tot.toString(), entry.atMs, entry.note ?? null, entry.idempotencyKey ?? null],
          )
          if (entry.idempotencyKey !== undefined) {
            await client.query('INSERT INTO idempotency (account_key, key, by, tot, seq, at) VALUES ($1, $2, $3, $4, $5, $6)', [
              accountKey,
              entry.idempotencyKey,
              entry.by.toString(),
              entry.tot.toString(),
              position + 1,
              entry.atMs,
            ])
          }
        }
        const last = entries.at(-1)
        await client.query('INSERT INTO accounts (account_key, tot, seq, at) VALUES ($1, $2, $3, $4)', [accountKey, last?.tot.toString(), entries.length, last?.atMs])
      }
    } finally {
      await client.end()
    }
    return url
  }

  test('opening it migrates it: every balance, entry and key is kept, public ids match the ones computed in code', async () => {
    const url = await previousVersionDatabase()
    const store: LedgerStore = await openPostgresStore(url, { sync: true, poolMax: 4, timeoutMs: 30_000 })
    expect(await storeFormatOf(store)).toBe(2)
    const ledger = await openLedger(store, { writerBatchMax: 100, writerQueueMax: 1000 })
    await expectFixtureKept(ledger)
    const credentialKey = credentialKeyOf(credentialOf(5))
    expect(await ledger.mod(credentialKey, { by: -1n, idempotencyKey: 'req-3' })).toMatchObject({ seq: 3, replayed: true })
    const report = await verifyStore(store, { nowMs: Date.now() })
    expect(report).toMatchObject({ accounts: accountCount, credentials: accountCount, faultCount: 0 })
    await ledger.close()
  })
})
