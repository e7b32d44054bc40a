// verify, export and import in the core, on memory-level: a round trip reproduces the store, and
// each kind of damage is found.
import { MemoryLevel } from 'memory-level'
import { describe, expect, test } from 'vitest'
import { archiveHeader, exportStore, importStore, type ImportOptions } from '../src/ledger/archive.js'
import { historyKeyOf, idempotencyKeyOf } from '../src/ledger/codec.js'
import { accountKeyOf, credentialKeyOf, openLedger, type CredentialKey, type LedgerOptions, type RootDb } from '../src/ledger/index.js'
import { IncompleteStoreError } from '../src/ledger/ledger.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import type { LedgerStore } from '../src/ledger/store.js'
import { verifyStore, type VerifyOptions } from '../src/ledger/verify.js'

/** The header of exports written before the credentials table. */
const archiveHeaderV1 = '{"format":"accman-export","version":1}'

/** Runs `use` on a LevelDB store over `db` (opened if closed), leaving it open for the test to look into. */
async function withStore<T>(db: RootDb, use: (store: LedgerStore) => Promise<T>): Promise<T> {
  return use(await openLevelStore(db, { sync: false }))
}
const exportOf = (db: RootDb) =>
  withStore(db, async (store) => {
    const snapshot = await store.snapshot()
    try {
      return await collect(exportStore(snapshot))
    } finally {
      await snapshot.close()
    }
  })
const importInto = (db: RootDb, lines: () => AsyncIterable<string>, options?: ImportOptions) =>
  withStore(db, (store) => importStore(store, lines, options))
const verifyDb = (db: RootDb, options?: VerifyOptions) => withStore(db, (store) => verifyStore(store, options))
const ledgerOn = async (db: RootDb, options: Partial<LedgerOptions> = {}) =>
  openLedger(await openLevelStore(db, { sync: false }), { writerBatchMax: 10, writerQueueMax: 100, ...options })

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = []
  for await (const line of lines) out.push(line)
  return out
}

const linesOf = (lines: string[]) =>
  async function* () {
    yield* lines
  }

/** A store with a few accounts, notes, keys and a big balance, closed for offline use. */
async function populatedStore(): Promise<MemoryLevel<string, string>> {
  const db = new MemoryLevel<string, string>()
  const ledger = await ledgerOn(db, { writerBatchMax: 100, writerQueueMax: 10_000 })
  for (let account = 0; account < 20; account++) {
    const key = credentialKeyOf(`YWNjb3VudC0${String(account).padStart(2, '0')}`.padEnd(16, 'A'))
    await ledger.mod(key, { by: 170141183460469231731687303715884105000n + BigInt(account) })
    for (let index = 0; index < account; index++) {
      await ledger.mod(key, { by: -1n, ...(index % 3 === 0 ? { note: `call ${index} ✓` } : {}), ...(index % 4 === 0 ? { idempotencyKey: `k-${index}` } : {}) })
    }
  }
  await ledger.close()
  return db
}

describe('export and import', () => {
  test('export, import, export again: byte for byte, and the copy verifies', async () => {
    const source = await populatedStore()
    const exported = await exportOf(source)
    expect(exported[0]).toBe(archiveHeader)
    // A header, 20 accounts with 210 entries, 20 credentials.
    expect(exported).toHaveLength(1 + 20 + 210 + 20)
    const target = new MemoryLevel<string, string>()
    expect(await importInto(target, linesOf(exported))).toEqual({ accounts: 20, entries: 210, credentials: 20 })
    expect(await exportOf(target)).toEqual(exported)
    const report = await verifyDb(target)
    expect(report).toMatchObject({ accounts: 20, entries: 210, faultCount: 0 })
    expect(report.idempotencyKeys).toBe(55)
    // The copy is a working ledger: a replayed key is still a replay.
    const ledger = await ledgerOn(target)
    const replay = await ledger.mod(credentialKeyOf('YWNjb3VudC019AAA'), { by: -1n, idempotencyKey: 'k-0' })
    expect(replay).toEqual({ tot: 170141183460469231731687303715884105018n, seq: 2, replayed: true })
    await ledger.close()
  })

  test('a store with a rotation exports as version 2 and imports whole: credentials (hashes only), creation times, rotate entries', async () => {
    const source = new MemoryLevel<string, string>()
    const ledger = await ledgerOn(source)
    const old = credentialKeyOf('cm90LW9sZA==')
    const fresh = credentialKeyOf('cm90LW5ldw==')
    await ledger.mod(old, { by: 10n })
    await ledger.rotate(old, { newCredentialKey: fresh, graceMs: 0 })
    await ledger.close()
    const exported = await exportOf(source)
    expect(exported[0]).toBe('{"format":"accman-export","version":2}')
    expect(exported.filter((line) => line.startsWith('{"credential":'))).toHaveLength(2)
    expect(exported.join('\n')).not.toMatch(/cm90LW9sZA|cm90LW5ldw/)
    expect(exported[1]).toMatch(/"createdMs":\d+/)
    const target = new MemoryLevel<string, string>()
    expect(await importInto(target, linesOf(exported))).toEqual({ accounts: 1, entries: 2, credentials: 2 })
    expect(await exportOf(target)).toEqual(exported)
    const copy = await ledgerOn(target)
    expect(await copy.tot(fresh)).toEqual({ tot: 10n, seq: 2 })
    expect(await copy.tot(old)).toBeUndefined()
    expect((await copy.past(fresh, { limit: 10, order: 'asc' })).entries.map((entry) => entry.kind ?? 'mod')).toEqual(['mod', 'rotate'])
    await copy.close()
  })

  test("an account's threshold and ref travel with it; the copy finds the account by its ref", async () => {
    const source = new MemoryLevel<string, string>()
    const ledger = await ledgerOn(source)
    const [named, plain] = [credentialKeyOf('cmVmLW5hbWVk'), credentialKeyOf('cmVmLXBsYWlu')]
    await ledger.mod(named, { by: 10n })
    await ledger.mod(plain, { by: 5n })
    await ledger.updateAccount(named, { alertBelow: 3n, ref: 'customer "7" ✓' })
    await ledger.close()
    const exported = await exportOf(source)
    expect(exported.filter((line) => line.includes('"alertBelow":"3","ref":"customer \\"7\\" ✓"'))).toHaveLength(1)
    const target = new MemoryLevel<string, string>()
    await importInto(target, linesOf(exported))
    expect(await exportOf(target)).toEqual(exported)
    const copy = await ledgerOn(target)
    const accountKey = await copy.resolve(named)
    expect(accountKey).toBeDefined()
    expect(await copy.accountKeyOfRef('customer "7" ✓')).toBe(accountKey)
    expect(await copy.accountOf(accountKey!)).toMatchObject({ tot: 10n, alertBelow: 3n, ref: 'customer "7" ✓' })
    expect((await copy.accountOf((await copy.resolve(plain))!))?.ref).toBeUndefined()
    await copy.close()
  })

  test('an export that names one ref on two accounts is refused', async () => {
    const source = new MemoryLevel<string, string>()
    const ledger = await ledgerOn(source)
    await ledger.mod(credentialKeyOf('cmVmLW9uZQ=='), { by: 1n })
    await ledger.mod(credentialKeyOf('cmVmLXR3bw=='), { by: 1n })
    await ledger.updateAccount(credentialKeyOf('cmVmLW9uZQ=='), { ref: 'shared' })
    await ledger.close()
    const exported = (await exportOf(source)).map((line) => (line.startsWith('{"account":') ? line.replace(/}$/, ',"ref":"shared"}').replace(',"ref":"shared","ref":"shared"}', ',"ref":"shared"}') : line))
    expect(exported.filter((line) => line.includes('"ref":"shared"'))).toHaveLength(2)
    await expect(importInto(new MemoryLevel<string, string>(), linesOf(exported))).rejects.toThrow('names another account too')
  })

  test('an import that stops half way leaves a store no ledger opens and verify reports', async () => {
    const accountKey = accountKeyOf('QUJDRA==')
    const entries = 25_000 // more than one batch, so some of it is written before the stop
    // Version 1: the account is keyed by its credential's hash.
    const lines = [archiveHeaderV1, JSON.stringify({ account: accountKey, tot: String(entries), seq: entries, atMs: 5 })]
    for (let seq = 1; seq <= entries; seq++) lines.push(JSON.stringify({ seq, by: '1', tot: String(seq), atMs: 5 }))
    let opened = 0
    // The first pass (checking) reads it all; the second (writing) stops, as a crash would, after 15,000 lines.
    const crashing = async function* () {
      const pass = ++opened
      for (const [index, line] of lines.entries()) {
        if (pass === 2 && index === 15_000) throw new Error('the process died')
        yield line
      }
    }
    const db = new MemoryLevel<string, string>()
    await expect(importInto(db, crashing)).rejects.toThrow('the process died')
    expect(await db.sublevel('past', {}).keys({ limit: 1 }).all()).toHaveLength(1) // a part was written
    await expect(ledgerOn(db)).rejects.toThrow(IncompleteStoreError)
    const report = await verifyDb(db)
    expect(report.faults).toContain('an import did not finish: the store is incomplete')
    await expect(importInto(db, linesOf(lines))).rejects.toThrow(/unfinished import/)

    // A finished import leaves no marker.
    const whole = new MemoryLevel<string, string>()
    await importInto(whole, linesOf(lines))
    expect(await whole.sublevel('meta', {}).keys().all()).toEqual(['store-format'])
    expect(await verifyDb(whole)).toMatchObject({ faultCount: 0, entries })
    const ledger = await ledgerOn(whole)
    expect(await ledger.tot(accountKey as string as CredentialKey)).toEqual({ tot: BigInt(entries), seq: entries })
    await ledger.close()
  })

  test('a key used again after its window imports, its record answering the later entry; within the window it is refused', async () => {
    const windowMs = 60_000
    const accountKey = accountKeyOf('QUJDRA==')
    const lines = (secondAtMs: number) => [
      archiveHeader,
      JSON.stringify({ account: accountKey, tot: '6', seq: 2, atMs: secondAtMs }),
      JSON.stringify({ seq: 1, by: '5', tot: '5', atMs: 1000, key: 'k' }),
      JSON.stringify({ seq: 2, by: '1', tot: '6', atMs: secondAtMs, key: 'k' }),
    ]
    await expect(importInto(new MemoryLevel<string, string>(), linesOf(lines(1000 + windowMs - 1)), { idempotencyTtlMs: windowMs })).rejects.toThrow(
      /line 4: entry 2 repeats an idempotency key within its retention window/,
    )
    const db = new MemoryLevel<string, string>()
    await importInto(db, linesOf(lines(1000 + windowMs)), { idempotencyTtlMs: windowMs })
    const record = JSON.parse((await db.sublevel('idem', {}).get(idempotencyKeyOf(accountKey, 'k'))) ?? '{}') as unknown
    expect(record).toEqual({ by: '1', tot: '6', seq: 2, atMs: 1000 + windowMs })
    expect(await verifyDb(db, { idempotencyTtlMs: windowMs, nowMs: 1000 + windowMs })).toMatchObject({ faultCount: 0 })
  })

  test('import refuses a non-empty database, writing nothing', async () => {
    const source = await populatedStore()
    const exported = await exportOf(source)
    await expect(importInto(source, linesOf(exported))).rejects.toThrow(/not empty/)
  })

  const account = accountKeyOf('QUJDRA==')
  const otherAccount = accountKeyOf('RUZHSA==')
  const [low, high] = [account, otherAccount].sort()
  const accountLine = (key: string, tot: string, seq: number, atMs = 5) => JSON.stringify({ account: key, tot, seq, atMs })
  const entry = (seq: number, by: string, tot: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ seq, by, tot, atMs: 5, ...extra })

  test.each([
    ['an empty file', [], /empty file/],
    ['a foreign header', ['{"format":"other","version":1}'], /bad header/],
    ['a line that is not JSON', [archiveHeader, '{'], /line 2: not JSON/],
    ['an entry before any account', [archiveHeader, entry(1, '5', '5')], /before any account/],
    ['a gap in seq', [archiveHeader, accountLine(account, '6', 2), entry(1, '5', '5'), entry(3, '1', '6')], /entry 3 follows entry 1/],
    ['a broken chain', [archiveHeader, accountLine(account, '9', 2), entry(1, '5', '5'), entry(2, '3', '9')], /not the previous tot/],
    ['a balance below zero', [archiveHeader, accountLine(account, '5', 2), entry(1, '5', '5'), entry(2, '-6', '-1')], /malformed entry/],
    ['a balance that disagrees', [archiveHeader, accountLine(account, '6', 1), entry(1, '5', '5')], /end at 5/],
    ['missing entries', [archiveHeader, accountLine(account, '5', 2), entry(1, '5', '5')], /has 1 entries/],
    ['accounts out of order', [archiveHeader, accountLine(high ?? '', '5', 1), entry(1, '5', '5'), accountLine(low ?? '', '5', 1), entry(1, '5', '5')], /out of order/],
    ['a repeated idempotency key', [archiveHeader, accountLine(account, '6', 2), entry(1, '5', '5', { key: 'k' }), entry(2, '1', '6', { key: 'k' })], /repeats an idempotency key/],
    ['a credential instead of an account key', [archiveHeader, accountLine('QUJDRA==', '5', 1), entry(1, '5', '5')], /malformed account/],
    ['an unknown field', [archiveHeader, accountLine(account, '5', 1), entry(1, '5', '5', { cred: 'x' })], /malformed entry/],
  ])('import refuses %s and writes nothing', async (_name, lines, message) => {
    const db = new MemoryLevel<string, string>()
    await expect(importInto(db, linesOf(lines))).rejects.toThrow(message)
    expect(await db.keys({ limit: 1 }).all()).toEqual([])
  })
})

describe('verify', () => {
  test('a healthy store has no faults', async () => {
    const report = await verifyDb(await populatedStore())
    expect(report).toEqual({ accounts: 20, entries: 210, idempotencyKeys: 55, credentials: 20, faultCount: 0, faults: [] })
  })

  async function damaged(damage: (db: RootDb, keys: { history: string[]; idempotency: string[]; accounts: string[] }) => Promise<void>) {
    const db = await populatedStore()
    await db.open()
    const keys = {
      accounts: await db.sublevel('acct', {}).keys({ limit: 100 }).all(),
      history: await db.sublevel('past', {}).keys({ limit: 1000 }).all(),
      idempotency: await db.sublevel('idem', {}).keys({ limit: 100 }).all(),
    }
    await damage(db, keys)
    return verifyDb(db)
  }

  test.each([
    ['a missing entry', async (db: RootDb, keys: { history: string[] }) => db.sublevel('past', {}).del(keys.history[5] ?? ''), /follows entry|entries, the balance says/],
    ['a tampered amount', async (db: RootDb, keys: { history: string[] }) => {
      const table = db.sublevel('past', {})
      const key = keys.history[7] ?? ''
      const value = JSON.parse((await table.get(key)) ?? '{}') as Record<string, unknown>
      await table.put(key, JSON.stringify({ ...value, by: '-2' }))
    }, /is not .* \+ -2/],
    ['a corrupt record', async (db: RootDb, keys: { history: string[] }) => db.sublevel('past', {}).put(keys.history[9] ?? '', '{"by":'), /corrupt record/],
    ['a balance that disagrees with its history', async (db: RootDb, keys: { accounts: string[] }) => {
      const table = db.sublevel('acct', {})
      const key = keys.accounts[3] ?? ''
      const value = JSON.parse((await table.get(key)) ?? '{}') as Record<string, unknown>
      await table.put(key, JSON.stringify({ ...value, tot: '1' }))
    }, /history ends at/],
    ['an orphan history entry', async (db: RootDb) => db.sublevel('past', {}).put(`${'f'.repeat(64)}!0000000000000001`, '{"by":"1","tot":"1","atMs":1}'), /belongs to no account/],
    ['an orphan idempotency record', async (db: RootDb) => db.sublevel('idem', {}).put(`${'0'.repeat(64)}!k`, '{"by":"1","tot":"1","seq":1}'), /belongs to no account/],
    ['an idempotency record that does not match its entry', async (db: RootDb, keys: { idempotency: string[] }) => {
      await db.sublevel('idem', {}).put(keys.idempotency[2] ?? '', '{"by":"-1","tot":"1","seq":1}')
    }, /does not match/],
    ['a keyed entry without its record', async (db: RootDb, keys: { idempotency: string[] }) => db.sublevel('idem', {}).del(keys.idempotency[4] ?? ''), /key with no record/],
    ['a key outside the tables', async (db: RootDb) => db.put('stray', 'x'), /outside the ledger's tables/],
    ['an unfinished import', async (db: RootDb) => db.sublevel('meta', {}).put('import-in-progress', '{}'), /an import did not finish/],
  ])('finds %s', async (_name, damage, message) => {
    const report = await damaged(damage as Parameters<typeof damaged>[0])
    expect(report.faultCount).toBeGreaterThan(0)
    expect(report.faults.join('\n')).toMatch(message)
  })
})

describe('verify on stores crafted to show a fault', () => {
  const accountKey = accountKeyOf('QUJDRA==')
  /** One account with the given entries (by 1 each) and the records of their keys, the last use winning. */
  async function store(entries: { atMs: number; key?: string }[]) {
    const db = new MemoryLevel<string, string>()
    await db.open()
    const put = (table: string, key: string, value: unknown) => db.sublevel(table, {}).put(key, JSON.stringify(value))
    for (const [index, entry] of entries.entries()) {
      const seq = index + 1
      await put('past', historyKeyOf(accountKey, seq), { by: '1', tot: String(seq), atMs: entry.atMs, ...(entry.key === undefined ? {} : { key: entry.key }) })
      if (entry.key !== undefined) await put('idem', idempotencyKeyOf(accountKey, entry.key), { by: '1', tot: String(seq), seq, atMs: entry.atMs })
    }
    const last = entries.at(-1)
    await put('acct', accountKey, { tot: String(entries.length), seq: entries.length, atMs: last?.atMs ?? 0 })
    return db
  }

  test('two entries with one key less than a window apart are a fault; a window apart they are not', async () => {
    const windowMs = 60_000
    const near = await verifyDb(await store([{ atMs: 1000, key: 'k' }, { atMs: 2000 }, { atMs: 1000 + windowMs - 1, key: 'k' }]), { idempotencyTtlMs: windowMs, nowMs: 1000 + windowMs })
    expect(near.faults).toEqual([`account ${accountKey.slice(0, 12)}…: entry 3 repeats an idempotency key within its retention window`])
    const apart = await verifyDb(await store([{ atMs: 1000, key: 'k' }, { atMs: 2000 }, { atMs: 1000 + windowMs, key: 'k' }]), { idempotencyTtlMs: windowMs, nowMs: 1000 + windowMs })
    expect(apart).toMatchObject({ faultCount: 0, entries: 3, idempotencyKeys: 1 })
  })

  test('a keyed entry whose record was pruned after its window is no fault; within it, it is', async () => {
    const windowMs = 60_000
    const db = await store([{ atMs: 1000, key: 'k' }])
    await db.sublevel('idem', {}).del(idempotencyKeyOf(accountKey, 'k'))
    expect(await verifyDb(db, { idempotencyTtlMs: windowMs, nowMs: 1000 + windowMs })).toMatchObject({ faultCount: 0 })
    expect((await verifyDb(db, { idempotencyTtlMs: windowMs, nowMs: 1000 + windowMs - 1 })).faults).toEqual([
      `account ${accountKey.slice(0, 12)}…: entry 1 has a key with no record`,
    ])
  })

  test('the entry a record answers is read at its own key: a damaged one is named by its history key', async () => {
    // The key ends like a history key, so reading the entry at the record's key would take seq 2 from it.
    const key = 'x!0000000000000002'
    const db = await store([{ atMs: 1000, key }, { atMs: 2000 }])
    const report = await verifyDb(db, { nowMs: 2000 })
    expect(report).toMatchObject({ faultCount: 0 })
    await db.sublevel('past', {}).put(historyKeyOf(accountKey, 1), '{"by":')
    const damaged = await verifyDb(db, { nowMs: 2000 })
    for (const fault of damaged.faults.filter((text) => text.startsWith('corrupt record'))) {
      expect(fault).toBe(`corrupt record in past at ${historyKeyOf(accountKey, 1)}: not JSON`)
    }
    expect(damaged.faults.some((text) => text.includes(idempotencyKeyOf(accountKey, key)))).toBe(false)
    expect(damaged.faults).toContain(`account ${accountKey.slice(0, 12)}…: an idempotency record does not match entry 1`)
  })
})
