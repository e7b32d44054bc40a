// The idempotency retention window, on a clock the test moves: a key is replayed within its
// window and counts as new after it, expired records are pruned in bounded passes, and the
// filters follow the traffic of one window however many windows go by.
import { MemoryLevel } from 'memory-level'
import { describe, expect, test } from 'vitest'
import { ConfigError, limits, parseConfig } from '../src/config.js'
import { generationsPerWindow } from '../src/ledger/cache.js'
import { historyKeyOf, idempotencyKeyOf } from '../src/ledger/codec.js'
import { credentialKeyOf, idempotencyTtlSecondsMax, openLedger, type AccountKey, type LedgerOptions } from '../src/ledger/index.js'
import { LevelStore, openLevelStore } from '../src/ledger/level/store.js'
import { verifyStore as verifyLedgerStore, type VerifyOptions } from '../src/ledger/verify.js'
import { ServerProcess, testApp } from './support.js'

const alice = credentialKeyOf('YWxpY2U=')
const startMs = Date.parse('2026-11-30T00:00:00.000Z')
const table = (db: MemoryLevel<string, string>, name: string) =>
  db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })

function clock() {
  const state = { nowMs: startMs }
  return { state, now: () => state.nowMs }
}

const open = async (db: MemoryLevel<string, string>, now: () => number, options: Partial<LedgerOptions> = {}) =>
  openLedger(await openLevelStore(db, { sync: false }), { writerBatchMax: 500, writerQueueMax: 100_000, now, idempotencyTtlMs: 60_000, ...options })
/** Verifies the database a ledger is serving, through a second engine on it (left open: the ledger closes it). */
const verifyStore = (db: MemoryLevel<string, string>, options: VerifyOptions) => verifyLedgerStore(new LevelStore(db, { sync: false }), options)

describe('idempotency retention window', () => {
  test('a retry within the window replays; from the window on the key is new; the old entry keeps it; the record is pruned', async () => {
    const { state, now } = clock()
    const db = new MemoryLevel<string, string>()
    const ledger = await open(db, now)
    expect(await ledger.mod(alice, { by: 100n, idempotencyKey: 'k' })).toEqual({ tot: 100n, seq: 1, replayed: false })
    state.nowMs += 59_999
    expect(await ledger.mod(alice, { by: 100n, idempotencyKey: 'k' })).toEqual({ tot: 100n, seq: 1, replayed: true })
    expect(await ledger.pruneExpiredIdempotency(100)).toBe(0) // still within its window
    state.nowMs += 1
    expect(await ledger.mod(alice, { by: 100n, idempotencyKey: 'k' })).toEqual({ tot: 200n, seq: 2, replayed: false })
    expect(await ledger.mod(alice, { by: 100n, idempotencyKey: 'k' })).toEqual({ tot: 200n, seq: 2, replayed: true })
    const entries = (await ledger.past(alice, { limit: 10, order: 'asc' })).entries
    expect(entries.map((entry) => [entry.seq, entry.idempotencyKey, entry.atMs])).toEqual([
      [1, 'k', startMs],
      [2, 'k', startMs + 60_000],
    ])
    expect(await verifyStore(db, { idempotencyTtlMs: 60_000, nowMs: state.nowMs })).toMatchObject({ faultCount: 0, idempotencyKeys: 1 })

    // A window after the second use, its record goes; the key is new again.
    state.nowMs += 60_000
    expect(await table(db, 'idem').keys().all()).toEqual([idempotencyKeyOf((await ledger.resolve(alice)) as AccountKey, 'k')])
    expect(await ledger.pruneExpiredIdempotency(100)).toBe(1)
    expect(await table(db, 'idem').keys().all()).toEqual([])
    expect(await verifyStore(db, { idempotencyTtlMs: 60_000, nowMs: state.nowMs })).toMatchObject({ faultCount: 0, idempotencyKeys: 0 })
    expect(await ledger.mod(alice, { by: 100n, idempotencyKey: 'k' })).toEqual({ tot: 300n, seq: 3, replayed: false })
    expect(await ledger.tot(alice)).toEqual({ tot: 300n, seq: 3 })
    await ledger.close()
  })

  test('a key reused after its window while its record is being pruned keeps its new record', async () => {
    const { state, now } = clock()
    const db = new MemoryLevel<string, string>()
    const ledger = await open(db, now)
    for (let round = 0; round < 6; round++) {
      await ledger.mod(alice, { by: 1n, idempotencyKey: 'k' })
      state.nowMs += 60_000
      // Both orders, and both in the same turn: the pruning must not delete the new record.
      const mod = () => ledger.mod(alice, { by: 1n, idempotencyKey: 'k' })
      const prune = () => ledger.pruneExpiredIdempotency(100)
      const [first, second] = round % 2 === 0 ? await Promise.all([mod(), prune()]) : await Promise.all([prune(), mod()]).then(([p, m]) => [m, p])
      expect(first).toMatchObject({ replayed: false })
      expect(second).toBeLessThanOrEqual(1)
      expect(await ledger.mod(alice, { by: 1n, idempotencyKey: 'k' })).toMatchObject({ replayed: true })
      const record = await table(db, 'idem').get(idempotencyKeyOf((await ledger.resolve(alice)) as AccountKey, 'k'))
      expect(JSON.parse(record ?? '{}')).toMatchObject({ atMs: state.nowMs })
      state.nowMs += 60_000
    }
    expect(await verifyStore(db, { idempotencyTtlMs: 60_000, nowMs: state.nowMs })).toMatchObject({ faultCount: 0 })
    await ledger.close()
  })

  test('pruning is bounded per pass and sweeps the table in passes', async () => {
    const { state, now } = clock()
    const db = new MemoryLevel<string, string>()
    const ledger = await open(db, now)
    for (let index = 0; index < 7; index++) await ledger.mod(alice, { by: 1n, idempotencyKey: `old-${index}` })
    state.nowMs += 60_000
    await ledger.mod(alice, { by: 1n, idempotencyKey: 'fresh' })
    const deleted: number[] = []
    for (let pass = 0; pass < 4; pass++) deleted.push(await ledger.pruneExpiredIdempotency(3))
    expect(deleted.every((count) => count <= 3)).toBe(true)
    expect(deleted.reduce((sum, count) => sum + count, 0)).toBe(7)
    expect(await table(db, 'idem').keys().all()).toEqual([idempotencyKeyOf((await ledger.resolve(alice)) as AccountKey, 'fresh')])
    await ledger.close()
  })

  test('over 20 windows of keyed traffic the filters, the kept snapshot and the records stay one window large', async () => {
    const { state, now } = clock()
    const db = new MemoryLevel<string, string>()
    const windowMs = 1000
    const ledger = await open(db, now, { idempotencyTtlMs: windowMs })
    const modsPerStep = 200
    const stepMs = 100
    const sizes: number[] = []
    let key = 0
    for (let window = 0; window < 20; window++) {
      for (let step = 0; step < windowMs / stepMs; step++) {
        await Promise.all(Array.from({ length: modsPerStep }, () => ledger.mod(alice, { by: 1n, idempotencyKey: `key-${key++}` })))
        state.nowMs += stepMs
        while ((await ledger.pruneExpiredIdempotency(10_000)) > 0);
      }
      const stats = ledger.idempotencyFilterStats
      expect(stats.generations).toBeLessThanOrEqual(generationsPerWindow + 2)
      // Keys within the window, plus at most one generation more.
      expect(stats.keys).toBeLessThanOrEqual((modsPerStep * windowMs * 1.25) / stepMs + modsPerStep)
      expect(await table(db, 'idem').keys().all().then((keys) => keys.length)).toBeLessThanOrEqual((modsPerStep * windowMs) / stepMs + modsPerStep)
      sizes.push(stats.sizeBytes)
    }
    // Flat once the window is full: the last windows take no more than the third.
    for (const size of sizes.slice(3)) expect(size).toBeLessThanOrEqual(sizes[2] ?? 0)
    expect(key).toBe(40_000)
    const accountFilterBytes = 1 << 20
    await ledger.close()
    await db.open()
    const kept = (await table(db, 'meta').get('filters')) ?? ''
    expect(kept.length).toBeLessThan(((accountFilterBytes + (sizes.at(-1) ?? 0)) * 4) / 3 + 10_000)
  })

  test('records from before the window carry no time: taken as written at start, they expire one window later', async () => {
    const { state, now } = clock()
    const db = new MemoryLevel<string, string>()
    await db.open()
    // A store written by an earlier version, years before.
    await table(db, 'acct').put(alice as string as AccountKey, JSON.stringify({ tot: '10', seq: 1, atMs: 1000 }))
    await table(db, 'past').put(historyKeyOf(alice as string as AccountKey, 1), JSON.stringify({ by: '10', tot: '10', atMs: 1000, key: 'legacy' }))
    await table(db, 'idem').put(idempotencyKeyOf(alice as string as AccountKey, 'legacy'), JSON.stringify({ by: '10', tot: '10', seq: 1 }))
    expect(await verifyStore(db, { idempotencyTtlMs: 60_000, nowMs: startMs })).toMatchObject({ faultCount: 0 })
    const ledger = await open(db, now)
    state.nowMs += 59_999
    expect(await ledger.mod(alice, { by: 10n, idempotencyKey: 'legacy' })).toEqual({ tot: 10n, seq: 1, replayed: true })
    expect(await ledger.pruneExpiredIdempotency(100)).toBe(0)
    state.nowMs += 1
    expect(await ledger.pruneExpiredIdempotency(100)).toBe(1)
    expect(await ledger.mod(alice, { by: 10n, idempotencyKey: 'legacy' })).toEqual({ tot: 20n, seq: 2, replayed: false })
    expect(await verifyStore(db, { idempotencyTtlMs: 60_000, nowMs: state.nowMs })).toMatchObject({ faultCount: 0 })
    await ledger.close()
  })
})

describe('ACCMAN_IDEMPOTENCY_TTL', () => {
  test('whole seconds from 1 to 30 days, a day by default, given to the core in ms', () => {
    expect(parseConfig({}).idempotencyTtlMs).toBe(86_400_000)
    expect(parseConfig({ ACCMAN_IDEMPOTENCY_TTL: '1' }).idempotencyTtlMs).toBe(1000)
    expect(parseConfig({ ACCMAN_IDEMPOTENCY_TTL: String(idempotencyTtlSecondsMax) }).idempotencyTtlMs).toBe(2_592_000_000)
  })

  test.each(['0', '2592001', '1.5', '-1', 'a day', '1e3', '99999999999'])('%s stops the start with a message naming the variable', (value) => {
    expect(() => parseConfig({ ACCMAN_IDEMPOTENCY_TTL: value })).toThrow(ConfigError)
    expect(() => parseConfig({ ACCMAN_IDEMPOTENCY_TTL: value })).toThrow(/^ACCMAN_IDEMPOTENCY_TTL must be a whole number of seconds from 1 to 2592000/)
  })

  test('the server refuses to start on a bad value: one line naming the variable', async () => {
    const server = new ServerProcess({ ACCMAN_DB: '/nonexistent-accman-test', ACCMAN_IDEMPOTENCY_TTL: '0' })
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(/^accman: invalid configuration: ACCMAN_IDEMPOTENCY_TTL must be/)
  })

  test.each([
    [undefined, '1 day', 86_400],
    [3_600_000, '1 hour', 3600],
    [90_000, '90 seconds', 90],
  ])('/openapi.json states the window (%s ms)', async (idempotencyTtlMs, text, seconds) => {
    const app = await testApp({ config: { ...limits, ...(idempotencyTtlMs === undefined ? {} : { idempotencyTtlMs }) } })
    const reply = await app.inject({ method: 'GET', url: '/openapi.json' })
    const description = (JSON.parse(reply.body) as { info: { description: string } }).info.description
    expect(description).toContain(`is kept for ${text} (ACCMAN_IDEMPOTENCY_TTL = ${seconds} s)`)
    await app.close()
  })
})
