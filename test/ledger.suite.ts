// One ledger suite, run against every backend (memory-level, classic-level, and a sublevel of
// each), so the fast in-memory store earns its place as a stand-in for the real one. A backend is
// a function that makes an empty store: another engine joins with one more ledgerSuite line. The
// tests that reach behind the ledger into LevelDB's key space run where the backend gives `dbOf`.
import assert, { AssertionError } from 'node:assert'
import { hash } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { exportStore, importStore } from '../src/ledger/archive.js'
import { historyKeyOf } from '../src/ledger/codec.js'
import { verifyStore } from '../src/ledger/verify.js'
import {
  credentialKeyOf,
  amountMax,
  LedgerError,
  openLedger,
  type Ledger,
  type LedgerOptions,
  type LedgerStore,
  type ModResult,
  type RootDb,
} from '../src/ledger/index.js'
import type { RoundOutcome, RoundTransaction } from '../src/ledger/store.js'
import { holdsSuite } from './holds.suite.js'
import type { AccountKey } from '../src/ledger/types.js'

export interface Backend {
  /** A fresh, empty store, open, writing durably. */
  makeStore: () => Promise<LedgerStore>
  /** The same storage as `store` opened again, after it is closed; undefined where data does not outlive close. */
  reopen?: (store: LedgerStore) => Promise<LedgerStore>
  /** LevelDB: the database under a store, for the tests that write behind the ledger's back. */
  dbOf?: (store: LedgerStore) => RootDb
  /** PostgreSQL: entry times come from the database's clock, so an injected clock does not apply. */
  storeClock?: boolean
}

const alice = credentialKeyOf('abcdefghijklmnopqrstuvwxyz0123456789-_==')
const bob = credentialKeyOf('Ym9i')

/** A whole store as export lines (from a snapshot, closed after). */
export async function exportedLines(store: LedgerStore): Promise<string[]> {
  const snapshot = await store.snapshot()
  const lines: string[] = []
  try {
    for await (const line of exportStore(snapshot)) lines.push(line)
  } finally {
    await snapshot.close()
  }
  return lines
}

/** Imports export lines into an empty store. */
export async function importLines(store: LedgerStore, lines: string[]): Promise<void> {
  await importStore(store, async function* () {
    yield* lines
  })
}

export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    if (error instanceof LedgerError) return error.code
    throw error
  }
  return 'ok'
}

export function ledgerSuite(name: string, backend: Backend): void {
  const open = async (options: Partial<LedgerOptions> = {}, store?: LedgerStore): Promise<Ledger> =>
    openLedger(store ?? (await backend.makeStore()), { writerBatchMax: 500, writerQueueMax: 100_000, ...options })
  const dbOf = backend.dbOf
  /** Makes a store and, on LevelDB, the database under it. */
  const makeLevel = async (): Promise<{ store: LedgerStore; db: RootDb }> => {
    assert.ok(dbOf !== undefined)
    const store = await backend.makeStore()
    return { store, db: dbOf(store) }
  }

  describe(`ledger on ${name}`, () => {
    test('a credit creates the account; tot and past agree', async () => {
      const ledger = await open()
      expect(await ledger.tot(alice)).toBeUndefined()
      expect(await ledger.mod(alice, { by: 1000n })).toEqual({ tot: 1000n, seq: 1, replayed: false })
      expect(await ledger.mod(alice, { by: -1n, note: 'first call' })).toEqual({ tot: 999n, seq: 2, replayed: false })
      expect(await ledger.tot(alice)).toEqual({ tot: 999n, seq: 2 })
      const page = await ledger.past(alice, { limit: 100, order: 'asc' })
      expect(page.tot).toBe(999n)
      expect(page.seq).toBe(2)
      expect(page.entries.map(({ seq, by, tot, note }) => ({ seq, by, tot, note }))).toEqual([
        { seq: 1, by: 1000n, tot: 1000n, note: undefined },
        { seq: 2, by: -1n, tot: 999n, note: 'first call' },
      ])
      expect(await ledger.tot(bob)).toBeUndefined()
      await ledger.close()
    })

    test('refusals write nothing: unknown account, overdraft, overflow', async () => {
      const ledger = await open()
      expect(await codeOf(ledger.mod(bob, { by: -1n }))).toBe('ACCMAN_NO_ACCOUNT')
      expect(await ledger.tot(bob)).toBeUndefined()
      expect(await codeOf(ledger.past(bob, { limit: 10, order: 'asc' }))).toBe('ACCMAN_NO_ACCOUNT')

      await ledger.mod(alice, { by: 5n })
      const overdraft = await ledger.mod(alice, { by: -6n }).catch((error: unknown) => error)
      expect(overdraft).toBeInstanceOf(LedgerError)
      expect((overdraft as LedgerError).code).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      expect((overdraft as LedgerError).tot).toBe(5n)
      expect((overdraft as LedgerError).message).toContain('5')
      expect((overdraft as LedgerError).message).toContain('-6')

      await ledger.mod(alice, { by: amountMax - 5n })
      expect(await codeOf(ledger.mod(alice, { by: 1n }))).toBe('ACCMAN_OVERFLOW')
      expect(await ledger.tot(alice)).toEqual({ tot: amountMax, seq: 2 })
      const page = await ledger.past(alice, { limit: 10, order: 'asc' })
      expect(page.entries.map((entry) => entry.tot)).toEqual([5n, amountMax])
      await ledger.close()
    })

    test('amounts are exact at every size up to 2^127 - 1', async () => {
      const ledger = await open()
      await ledger.mod(alice, { by: amountMax })
      expect((await ledger.mod(alice, { by: -(amountMax - 1n) })).tot).toBe(1n)
      expect((await ledger.mod(alice, { by: 9007199254740993n })).tot).toBe(9007199254740994n)
      expect((await ledger.mod(alice, { by: -1n })).tot).toBe(9007199254740993n)
      expect((await ledger.mod(alice, { by: -9007199254740993n })).tot).toBe(0n)
      expect(await codeOf(ledger.mod(alice, { by: -1n }))).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      expect(await ledger.tot(alice)).toEqual({ tot: 0n, seq: 5 })
      await ledger.close()
    })

    test('idempotency: a replay returns the first result and writes nothing', async () => {
      const ledger = await open()
      await ledger.mod(alice, { by: 100n })
      const first = await ledger.mod(alice, { by: -10n, idempotencyKey: 'order-1' })
      expect(first).toEqual({ tot: 90n, seq: 2, replayed: false })
      await ledger.mod(alice, { by: -5n })
      expect(await ledger.mod(alice, { by: -10n, idempotencyKey: 'order-1' })).toEqual({
        tot: 90n,
        seq: 2,
        replayed: true,
      })
      expect(await codeOf(ledger.mod(alice, { by: -11n, idempotencyKey: 'order-1' }))).toBe(
        'ACCMAN_IDEMPOTENCY_MISMATCH',
      )
      expect(await ledger.tot(alice)).toEqual({ tot: 85n, seq: 3 })
      const entries = (await ledger.past(alice, { limit: 10, order: 'asc' })).entries
      expect(entries.map((entry) => entry.idempotencyKey)).toEqual([undefined, 'order-1', undefined])
      await ledger.close()
    })

    test('a rejected mod does not use up its key; keys are scoped to the account', async () => {
      const ledger = await open()
      expect(await codeOf(ledger.mod(alice, { by: -10n, idempotencyKey: 'k' }))).toBe('ACCMAN_NO_ACCOUNT')
      await ledger.mod(alice, { by: 5n })
      expect(await codeOf(ledger.mod(alice, { by: -10n, idempotencyKey: 'k' }))).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      await ledger.mod(alice, { by: 5n })
      expect(await ledger.mod(alice, { by: -10n, idempotencyKey: 'k' })).toEqual({ tot: 0n, seq: 3, replayed: false })
      // The same key on another account is another mod.
      expect(await ledger.mod(bob, { by: 7n, idempotencyKey: 'k' })).toEqual({ tot: 7n, seq: 1, replayed: false })
      expect(await ledger.mod(alice, { by: -10n, idempotencyKey: 'k' })).toEqual({ tot: 0n, seq: 3, replayed: true })
      await ledger.close()
    })

    test('no lost update: 2,000 concurrent +1 end at 2,000 with 2,000 contiguous entries', async () => {
      const ledger = await open({ writerBatchMax: 64 })
      const results = await Promise.all(Array.from({ length: 2000 }, () => ledger.mod(alice, { by: 1n })))
      expect(await ledger.tot(alice)).toEqual({ tot: 2000n, seq: 2000 })
      expect(new Set(results.map((result) => result.seq)).size).toBe(2000)
      for (const result of results) expect(result.tot).toBe(BigInt(result.seq))
      await expectHistoryChain(ledger, alice, 2000)
      await ledger.close()
    })

    test('no overdraft under concurrency: 500 concurrent -1 on 100 leave 0 with exactly 100 successes', async () => {
      const ledger = await open({ writerBatchMax: 37 })
      await ledger.mod(alice, { by: 100n })
      const codes = await Promise.all(Array.from({ length: 500 }, () => codeOf(ledger.mod(alice, { by: -1n }))))
      expect(codes.filter((code) => code === 'ok')).toHaveLength(100)
      expect(codes.filter((code) => code === 'ACCMAN_INSUFFICIENT_FUNDS')).toHaveLength(400)
      expect(await ledger.tot(alice)).toEqual({ tot: 0n, seq: 101 })
      await expectHistoryChain(ledger, alice, 101)
      await ledger.close()
    })

    test('concurrent retries of one keyed mod are applied once', async () => {
      const ledger = await open({ writerBatchMax: 7 })
      await ledger.mod(alice, { by: 100n })
      const results = await Promise.all(
        Array.from({ length: 50 }, () => ledger.mod(alice, { by: -30n, idempotencyKey: 'retry' })),
      )
      expect(results.filter((result) => !result.replayed)).toHaveLength(1)
      for (const result of results) expect(result).toMatchObject({ tot: 70n, seq: 2 })
      expect(await ledger.tot(alice)).toEqual({ tot: 70n, seq: 2 })
      await ledger.close()
    })

    test('the writer queue is bounded: 10,000 queued mods are taken, past the bound they are refused', async () => {
      const ledger = await open({ writerQueueMax: 10_000, writerBatchMax: 1000 })
      const results = await Promise.all(Array.from({ length: 10_000 }, () => codeOf(ledger.mod(alice, { by: 1n }))))
      expect(results.every((code) => code === 'ok')).toBe(true)
      // Submitted in one turn, before the writer starts: ten fit, forty are refused, unwritten.
      const small = await open({ writerQueueMax: 10, writerBatchMax: 5 })
      const codes = await Promise.all(Array.from({ length: 50 }, () => codeOf(small.mod(bob, { by: 1n }))))
      expect(codes.filter((code) => code === 'ok')).toHaveLength(10)
      expect(codes.filter((code) => code === 'ACCMAN_QUEUE_FULL')).toHaveLength(40)
      expect(await small.tot(bob)).toEqual({ tot: 10n, seq: 10 })
      expect(await ledger.tot(alice)).toEqual({ tot: 10_000n, seq: 10_000 })
      await Promise.all([ledger.close(), small.close()])
    })

    test('past pages by seq in either order, and a page reads only its entries', async () => {
      const ledger = await open()
      for (let index = 1; index <= 25; index++) await ledger.mod(alice, { by: BigInt(index) })
      const seqs = async (query: Parameters<Ledger['past']>[1]) =>
        (await ledger.past(alice, query)).entries.map((entry) => entry.seq)
      expect(await seqs({ limit: 3, order: 'asc' })).toEqual([1, 2, 3])
      expect(await seqs({ limit: 3, order: 'asc', afterSeq: 3 })).toEqual([4, 5, 6])
      expect(await seqs({ limit: 3, order: 'desc' })).toEqual([25, 24, 23])
      expect(await seqs({ limit: 3, order: 'desc', beforeSeq: 23 })).toEqual([22, 21, 20])
      expect(await seqs({ limit: 100, order: 'asc', afterSeq: 10, beforeSeq: 14 })).toEqual([11, 12, 13])
      expect(await seqs({ limit: 100, order: 'asc', afterSeq: 25 })).toEqual([])
      expect(await seqs({ limit: 100, order: 'asc', beforeSeq: 1 })).toEqual([])
      const page = await ledger.past(alice, { limit: 1000, order: 'asc' })
      expect(page.entries).toHaveLength(25)
      expect(page.entries.at(-1)?.tot).toBe(page.tot)
      expect(page.tot).toBe(325n)
      await ledger.close()
    })

    if (backend.storeClock === true) test('entry times come from the store and never go back; past filters on them, inclusive', async () => {
      const ledger = await open({ now: () => Date.parse('2000-01-01T00:00:00.000Z') })
      for (let index = 0; index < 5; index++) await ledger.mod(alice, { by: 1n })
      const times = (await ledger.past(alice, { limit: 100, order: 'asc' })).entries.map((entry) => entry.atMs)
      expect(times[0]).toBeGreaterThan(Date.parse('2026-01-01T00:00:00.000Z')) // not the injected clock
      for (let index = 1; index < times.length; index++) expect(times[index]).toBeGreaterThanOrEqual(times[index - 1] ?? 0)
      const [first, , third] = times as [number, number, number]
      const seqs = (await ledger.past(alice, { limit: 100, order: 'asc', fromMs: first, toMs: third })).entries.map((entry) => entry.seq)
      expect(seqs[0]).toBe(1)
      expect(seqs).toContain(3)
      await ledger.close()
    })

    if (backend.storeClock !== true) test('past filters on time, inclusive, and entry times never go back', async () => {
      let clockMs = Date.parse('2026-11-21T10:00:00.000Z')
      const ledger = await open({ now: () => clockMs })
      for (let index = 0; index < 10; index++) {
        await ledger.mod(alice, { by: 1n })
        clockMs += 1000
      }
      clockMs -= 60_000 // the clock steps back; the history must not
      await ledger.mod(alice, { by: 1n })
      const page = await ledger.past(alice, { limit: 100, order: 'asc' })
      const times = page.entries.map((entry) => entry.atMs)
      expect(times.at(-1)).toBe(times.at(-2))
      const seqsBetween = async (from: string, to: string) =>
        (await ledger.past(alice, { limit: 100, order: 'asc', fromMs: Date.parse(from), toMs: Date.parse(to) })).entries.map(
          (entry) => entry.seq,
        )
      expect(await seqsBetween('2026-11-21T10:00:02.000Z', '2026-11-21T10:00:04.000Z')).toEqual([3, 4, 5])
      expect(await seqsBetween('2026-11-21T10:00:02.001Z', '2026-11-21T10:00:03.999Z')).toEqual([4])
      expect(await seqsBetween('2026-11-21T10:00:09.000Z', '2026-11-21T11:00:00.000Z')).toEqual([10, 11])
      expect(await seqsBetween('2026-11-20T00:00:00.000Z', '2026-11-21T09:59:59.999Z')).toEqual([])
      const newest = await ledger.past(alice, { limit: 2, order: 'desc', toMs: Date.parse('2026-11-21T10:00:05.000Z') })
      expect(newest.entries.map((entry) => entry.seq)).toEqual([6, 5])
      await ledger.close()
    })

    if (dbOf !== undefined) test('a corrupt record stops a read rather than reach a balance', async () => {
      const { store, db } = await makeLevel()
      // No cache, so the read goes to the store.
      const ledger = await open({ accountCacheMax: 0 }, store)
      await ledger.mod(alice, { by: 10n })
      await db.sublevel('acct').put((await ledger.resolve(alice)) ?? '', '{"tot":"-5","seq":1,"atMs":0}')
      await expect(ledger.tot(alice)).rejects.toBeInstanceOf(AssertionError)
      await ledger.close()
    })

    if (dbOf !== undefined) test('a closed database stops the writer: queued mods are refused, later ones too', async () => {
      const { store, db } = await makeLevel()
      const faults: Error[] = []
      const ledger = await open({ onFatal: (error) => faults.push(error) }, store)
      await ledger.mod(alice, { by: 10n })
      const pending = [codeOf(ledger.mod(alice, { by: 1n })), codeOf(ledger.mod(alice, { by: 2n }))]
      await db.close() // the writer's next batch fails
      expect(await Promise.all(pending)).toEqual(['ACCMAN_CLOSED', 'ACCMAN_CLOSED'])
      expect(faults).toHaveLength(1)
      expect(ledger.writerHealthy).toBe(false)
      expect(await codeOf(ledger.mod(alice, { by: 1n }))).toBe('ACCMAN_CLOSED')
    })

    if (dbOf !== undefined) test('a round with one failing operation writes nothing of the round, and the writer stops', async () => {
      const { store, db } = await makeLevel()
      const carol = credentialKeyOf('Y2Fyb2w=')
      const faults: Error[] = []
      const ledger = await open({ onFatal: (error) => faults.push(error), writerBatchMax: 10 }, store)
      await ledger.mod(alice, { by: 10n })
      const aliceAccount = (await ledger.resolve(alice)) as AccountKey
      // Bob's credential record fails as it is added to the batch: one operation of several in the round.
      const failing = `!cred!${bob}`
      db.hooks.prewrite.add((op: { key: unknown }) => {
        if (String(op.key).endsWith(failing)) throw new Error('injected fault')
      })
      const round = [
        codeOf(ledger.mod(alice, { by: 1n, idempotencyKey: 'a' })),
        codeOf(ledger.mod(bob, { by: 2n })),
        codeOf(ledger.mod(carol, { by: 3n })),
      ]
      expect(await Promise.all(round)).toEqual(['ACCMAN_CLOSED', 'ACCMAN_CLOSED', 'ACCMAN_CLOSED'])
      expect(faults).toHaveLength(1)
      expect(ledger.writerHealthy).toBe(false)
      // Nothing of the round is in the store: not alice's entry, record or balance, not carol's account.
      const table = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
      expect(await table('past').keys().all()).toEqual([historyKeyOf(aliceAccount, 1)])
      expect(await table('acct').keys().all()).toEqual([aliceAccount])
      expect(await table('cred').keys().all()).toEqual([alice])
      expect(await table('idem').keys().all()).toEqual([])
      expect(JSON.parse((await table('acct').get(aliceAccount)) ?? '{}')).toMatchObject({ tot: '10', seq: 1 })
      expect(await codeOf(ledger.mod(alice, { by: 1n }))).toBe('ACCMAN_CLOSED')
      expect(await table('past').keys().all()).toHaveLength(1)
    })

    test('a round stored before a fault after its write is answered with its results, then the writer stops', async () => {
      const faults: Error[] = []
      let rounds = 0
      const ledger = await open({
        onFatal: (error) => faults.push(error),
        // The metrics callback throws after the second round's write.
        onRound: () => {
          if (++rounds === 2) throw new Error('metrics broke')
        },
      })
      await ledger.mod(alice, { by: 10n })
      const results = await Promise.all([ledger.mod(alice, { by: -3n }), ledger.mod(bob, { by: 5n })])
      expect(results).toEqual([
        { tot: 7n, seq: 2, replayed: false },
        { tot: 5n, seq: 1, replayed: false },
      ])
      expect(faults.map((error) => error.message)).toEqual(['metrics broke'])
      expect(ledger.writerHealthy).toBe(false)
      expect(await codeOf(ledger.mod(alice, { by: 1n }))).toBe('ACCMAN_CLOSED')
      expect((await ledger.past(alice, { limit: 10, order: 'asc' })).entries.map((entry) => entry.tot)).toEqual([10n, 7n])
    })

    test('close writes every queued mod before it resolves', async () => {
      const ledger = await open({ writerBatchMax: 10 })
      const mods: Promise<ModResult>[] = Array.from({ length: 100 }, () => ledger.mod(alice, { by: 1n }))
      await ledger.close()
      const results = await Promise.all(mods)
      expect(results.at(-1)?.tot).toBe(100n)
      expect(await codeOf(ledger.mod(alice, { by: 1n }))).toBe('ACCMAN_CLOSED')
    })

    // Declared by the backend, as abstract-level's suite gates tests on `supports.permanence`.
    const reopen = backend.reopen
    if (reopen !== undefined) test('every acknowledged mod is there after close and reopen', async () => {
      const store = await backend.makeStore()
      const ledger = await open({}, store)
      await Promise.all(Array.from({ length: 300 }, (_, index) => ledger.mod(index % 2 === 0 ? alice : bob, { by: 2n })))
      await ledger.mod(alice, { by: -1n, note: 'kept', idempotencyKey: 'once' })
      await ledger.close()
      const again = await open({}, await reopen(store))
      expect(await again.tot(alice)).toEqual({ tot: 299n, seq: 151 })
      expect(await again.tot(bob)).toEqual({ tot: 300n, seq: 150 })
      expect(await again.mod(alice, { by: -1n, idempotencyKey: 'once' })).toEqual({ tot: 299n, seq: 151, replayed: true })
      const last = (await again.past(alice, { limit: 1, order: 'desc' })).entries[0]
      expect(last).toMatchObject({ seq: 151, by: -1n, tot: 299n, note: 'kept', idempotencyKey: 'once' })
      await expectHistoryChain(again, alice, 151)
      await again.close()
    })

    // The filters are kept only where this process is the store's only writer.
    const keepsFilters = reopen !== undefined && dbOf !== undefined
    if (keepsFilters) test('a clean stop keeps the filters for the next start; a crash or a damaged copy means a scan', async () => {
      assert.ok(reopen !== undefined)
      const carol = credentialKeyOf('Y2Fyb2w=')
      const filtersOf = (store: LedgerStore) => store.readMeta('filters')
      const store = await backend.makeStore()
      const first = await open({ accountCacheMax: 0 }, store)
      await first.mod(alice, { by: 5n, idempotencyKey: 'k' })
      await first.mod(bob, { by: 7n })
      await first.close()

      // Loaded from the clean stop, and deleted before anything else is written.
      const second = await reopen(store)
      const ledger = await open({ accountCacheMax: 0 }, second)
      expect(await filtersOf(second)).toBeUndefined()
      expect(await ledger.tot(alice)).toEqual({ tot: 5n, seq: 1 })
      expect(await ledger.tot(bob)).toEqual({ tot: 7n, seq: 1 })
      expect(await ledger.tot(credentialKeyOf('dW5rbm93bg=='))).toBeUndefined()
      expect(await ledger.mod(alice, { by: 5n, idempotencyKey: 'k' })).toEqual({ tot: 5n, seq: 1, replayed: true })
      await ledger.mod(carol, { by: 3n, idempotencyKey: 'c' })
      // A crash: the store closes without the ledger's close, so no filters are kept.
      await second.close()

      const third = await reopen(second)
      const scanned = await open({ accountCacheMax: 0 }, third)
      expect(await scanned.tot(carol)).toEqual({ tot: 3n, seq: 1 })
      expect(await scanned.mod(carol, { by: 3n, idempotencyKey: 'c' })).toEqual({ tot: 3n, seq: 1, replayed: true })
      await scanned.close()

      const fourth = await reopen(third)
      await fourth.writeMeta([['filters', '{"accounts":']])
      const repaired = await open({ accountCacheMax: 0 }, fourth)
      expect(await repaired.tot(carol)).toEqual({ tot: 3n, seq: 1 })
      expect(await repaired.tot(alice)).toEqual({ tot: 5n, seq: 1 })
      await repaired.close()
    })

    type Layers = { layers: { count: number; bits: string }[] }
    type Filters = { epoch: number; digest: string; accounts: Layers; idempotency: { generations: { index: number; filter: Layers }[] } }
    const zeroed = (filter: Layers): Layers => ({
      ...filter,
      layers: filter.layers.map((layer) => ({ ...layer, bits: Buffer.alloc(Buffer.from(layer.bits, 'base64').length).toString('base64') })),
    })
    const recounted = (filter: Layers, count: number): Layers => ({ ...filter, layers: filter.layers.map((layer) => ({ ...layer, count })) })
    // Each filter damaged so that it says "no" to keys the store holds, or holds counts that do not match.
    const bothZeroed = (filters: Filters): Filters => ({
      ...filters,
      accounts: zeroed(filters.accounts),
      idempotency: { ...filters.idempotency, generations: filters.idempotency.generations.map((generation) => ({ ...generation, filter: zeroed(generation.filter) })) },
    })
    const damages: [string, (filters: Filters, stale: Filters) => Filters][] = [
      ['a stale copy from an earlier clean stop', (_filters, stale) => stale],
      ['the two filters swapped', (filters) => ({ ...filters, accounts: filters.idempotency as unknown as Layers, idempotency: filters.accounts as unknown as Filters['idempotency'] })],
      ['bits zeroed that still parse', bothZeroed],
      ['wrong counts', (filters) => ({
        ...filters,
        accounts: recounted(filters.accounts, 0),
        idempotency: { ...filters.idempotency, generations: filters.idempotency.generations.map((generation) => ({ ...generation, filter: recounted(generation.filter, 0) })) },
      })],
      // With a digest that matches, only the store can tell: the first accounts and records are not in the copy.
      ['zeroed bits with a digest recomputed', (filters) => {
        const damaged = bothZeroed(filters)
        return { ...damaged, digest: hash('sha256', JSON.stringify([damaged.epoch, damaged.accounts, damaged.idempotency]), 'hex') }
      }],
    ]
    for (const [damageName, damage] of damages) {
      for (const accountCacheMax of [0, 100]) {
        if (keepsFilters) test(`kept filters with ${damageName} (cache ${accountCacheMax}): no account is overwritten, no key replayed twice`, async () => {
          assert.ok(reopen !== undefined)
          const carol = credentialKeyOf('Y2Fyb2w=')
          let store = await backend.makeStore()
          let ledger = await open({ accountCacheMax }, store)
          await ledger.mod(alice, { by: 5n, idempotencyKey: 'first' })
          await ledger.close()
          store = await reopen(store)
          const stale = JSON.parse((await store.readMeta('filters')) ?? '{}') as Filters
          ledger = await open({ accountCacheMax }, store)
          // Written after the stale copy: a copy that lacks them would call them new.
          await ledger.mod(bob, { by: 7n, idempotencyKey: 'second' })
          await ledger.mod(carol, { by: 3n })
          await ledger.close()
          store = await reopen(store)
          const kept = JSON.parse((await store.readMeta('filters')) ?? '{}') as Filters
          await store.writeMeta([['filters', JSON.stringify(damage(kept, stale))]])

          ledger = await open({ accountCacheMax }, store)
          expect(await ledger.mod(bob, { by: 7n, idempotencyKey: 'second' })).toEqual({ tot: 7n, seq: 1, replayed: true })
          expect(await ledger.mod(alice, { by: 5n, idempotencyKey: 'first' })).toEqual({ tot: 5n, seq: 1, replayed: true })
          expect(await ledger.mod(carol, { by: 1n })).toEqual({ tot: 4n, seq: 2, replayed: false })
          expect(await ledger.mod(bob, { by: 1n })).toEqual({ tot: 8n, seq: 2, replayed: false })
          await expectHistoryChain(ledger, carol, 2)
          await expectHistoryChain(ledger, bob, 2)
          expect((await ledger.past(carol, { limit: 1, order: 'asc' })).entries[0]).toMatchObject({ by: 3n, tot: 3n })
          await ledger.close()
          const reopened = await reopen(store)
          const report = await verifyStore(reopened)
          await reopened.close()
          expect(report).toMatchObject({ accounts: 3, entries: 5, faultCount: 0 })
        })
      }
    }

    test('a store that cannot be reached refuses its rounds with ACCMAN_STORE_UNAVAILABLE; the writer goes on once it answers', async () => {
      const outage = withOutage(await backend.makeStore())
      const faults: Error[] = []
      const ledger = await open({ onFatal: (error) => faults.push(error) }, outage.store)
      await ledger.mod(alice, { by: 10n })
      expect(await ledger.ready()).toBe(true)
      outage.setDown(true)
      expect(await ledger.ready()).toBe(false)
      const refused = await Promise.all([codeOf(ledger.mod(alice, { by: 1n })), codeOf(ledger.mod(bob, { by: 2n }))])
      expect(refused).toEqual(['ACCMAN_STORE_UNAVAILABLE', 'ACCMAN_STORE_UNAVAILABLE'])
      outage.setDown(false)
      expect(ledger.writerHealthy).toBe(true)
      expect(await ledger.ready()).toBe(true)
      expect(await ledger.mod(alice, { by: 1n })).toEqual({ tot: 11n, seq: 2, replayed: false })
      expect(await ledger.tot(bob)).toBeUndefined()
      await expectHistoryChain(ledger, alice, 2)
      expect(faults).toEqual([])
      await ledger.close()
    })

    test('two ledgers on one store shared as a PostgreSQL one is (rounds locked, run twice, on its clock): no lost update, no stale read', async () => {
      let clockMs = Date.parse('2026-11-30T12:00:00.000Z')
      const store = await backend.makeStore()
      const shared = asShared(store, () => clockMs++)
      // Each node's own clock is far behind: a shared store's rounds take the store's time.
      const options = { writerBatchMax: 16, now: () => 0 }
      const [one, two] = [await open(options, shared), await open(options, shared)]
      const results = await Promise.all(Array.from({ length: 400 }, (_, index) => (index % 2 === 0 ? one : two).mod(alice, { by: 1n })))
      expect(new Set(results.map((result) => result.seq)).size).toBe(400)
      expect(await one.tot(alice)).toEqual({ tot: 400n, seq: 400 })
      expect(await two.tot(alice)).toEqual({ tot: 400n, seq: 400 })
      // What one node answered, the other reads at once: nothing is kept in memory.
      expect(await one.mod(bob, { by: 5n, idempotencyKey: 'k' })).toEqual({ tot: 5n, seq: 1, replayed: false })
      expect(await two.tot(bob)).toEqual({ tot: 5n, seq: 1 })
      expect(await two.mod(bob, { by: 5n, idempotencyKey: 'k' })).toEqual({ tot: 5n, seq: 1, replayed: true })
      expect(await codeOf(two.mod(bob, { by: -6n }))).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      await expectHistoryChain(two, alice, 400)
      const entries = (await one.past(alice, { limit: 1000, order: 'asc' })).entries
      expect(entries[0]?.atMs).toBeGreaterThanOrEqual(Date.parse('2026-11-30T12:00:00.000Z'))
      for (const [index, entry] of entries.entries()) expect(entry.atMs).toBeGreaterThanOrEqual(entries[index - 1]?.atMs ?? 0)
      await one.close()
      await two.close()
      await store.close()
    })

    if (dbOf !== undefined) test('a credit to an account the filter does not know reads the store first: the history is never overwritten', async () => {
      // A lying filter: the account exists in the store, written behind the ledger's back.
      const { store, db } = await makeLevel()
      const ledger = await open({ accountCacheMax: 0 }, store)
      await ledger.mod(bob, { by: 1n })
      const table = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
      // As a store of format 1 keyed it, upgraded: the credential's hash is the account's id.
      await table('cred').put(alice, JSON.stringify({ account: alice }))
      await table('acct').put(alice, JSON.stringify({ tot: '9', seq: 1, atMs: 0 }))
      await table('past').put(historyKeyOf(alice as string as AccountKey, 1), JSON.stringify({ by: '9', tot: '9', atMs: 0 }))
      expect(await ledger.mod(alice, { by: 1n })).toEqual({ tot: 10n, seq: 2, replayed: false })
      expect((await ledger.past(alice, { limit: 10, order: 'asc' })).entries.map((entry) => entry.by)).toEqual([9n, 1n])
      await ledger.close()
    })
  })
  holdsSuite(name, backend)
}

/** Reads the whole history a page at a time and checks seq runs 1..n and each tot chains. */
export async function expectHistoryChain(ledger: Ledger, accountKey: ReturnType<typeof credentialKeyOf>, length: number) {
  let previousTot = 0n
  let seen = 0
  for (;;) {
    const page = await ledger.past(accountKey, { limit: 1000, order: 'asc', afterSeq: seen })
    for (const entry of page.entries) {
      expect(entry.seq).toBe(seen + 1)
      expect(entry.tot).toBe(previousTot + entry.by)
      previousTot = entry.tot
      seen = entry.seq
    }
    if (page.entries.length === 0) break
  }
  expect(seen).toBe(length)
  expect((await ledger.tot(accountKey))?.tot).toBe(previousTot)
}

/** The refs and outbox methods of `store`, passed through. */
function outboxOf(store: LedgerStore): Pick<LedgerStore, 'readRef' | 'claimOutbox' | 'updateOutbox' | 'pageOutbox' | 'trimOutbox' | 'countOutbox'> {
  return {
    readRef: (ref) => store.readRef(ref),
    claimOutbox: (nowMs, limit, leaseMs) => store.claimOutbox(nowMs, limit, leaseMs),
    updateOutbox: (saves, deletes) => store.updateOutbox(saves, deletes),
    pageOutbox: (after, limit) => store.pageOutbox(after, limit),
    trimOutbox: (max) => store.trimOutbox(max),
    countOutbox: () => store.countOutbox(),
  }
}

/** `store` with a switch that makes it answer as a shared store does while it cannot be reached. */
export function withOutage(store: LedgerStore): { store: LedgerStore; setDown: (down: boolean) => void } {
  let down = false
  const unavailable = () => new LedgerError('ACCMAN_STORE_UNAVAILABLE', 'the store did not answer in time')
  const wrapped: LedgerStore = {
    sharing: store.sharing,
    readAccount: (accountKey) => (down ? Promise.reject(unavailable()) : store.readAccount(accountKey)),
    readCredential: (credentialKey) => (down ? Promise.reject(unavailable()) : store.readCredential(credentialKey)),
    accountOfPublicId: (publicId) => store.accountOfPublicId(publicId),
    runRound: (body) => (down ? Promise.reject(unavailable()) : store.runRound(body)),
    pageHistory: (accountKey, range) => store.pageHistory(accountKey, range),
    entriesWithKey: (accountKey, key, limit) => store.entriesWithKey(accountKey, key, limit),
    firstSeqAtOrAfter: (accountKey, atMs, seqLow, seqHigh) => store.firstSeqAtOrAfter(accountKey, atMs, seqLow, seqHigh),
    snapshot: () => store.snapshot(),
    readHolding: (accountKey) => store.readHolding(accountKey),
    dueHoldAccounts: (nowMs, limit) => store.dueHoldAccounts(nowMs, limit),
    readMeta: (name) => store.readMeta(name),
    writeMeta: (records) => store.writeMeta(records),
    ...outboxOf(store),
    ping: async () => !down && (await store.ping()),
    close: () => store.close(),
  }
  return { store: wrapped, setDown: (value) => (down = value) }
}

/**
 * `store` as a shared engine behaves, for the writer's shared path: rounds run one at a time (as
 * rows locked in one order serialize the rounds that touch them), each body run twice (as after a
 * serialization failure: the first attempt's writes are thrown away), on the store's clock. Its
 * close leaves `store` open, for the other ledgers on it.
 */
function asShared(store: LedgerStore, clockMs: () => number): LedgerStore {
  let tail: Promise<unknown> = Promise.resolve()
  return {
    sharing: 'shared',
    readAccount: (accountKey) => store.readAccount(accountKey),
    readCredential: async (credentialKey) => ({ state: (await store.readCredential(credentialKey)).state, nowMs: clockMs() }),
    accountOfPublicId: (publicId) => store.accountOfPublicId(publicId),
    runRound<T>(body: (transaction: RoundTransaction) => Promise<RoundOutcome<T>>): Promise<T> {
      const run = tail.then(() =>
        store.runRound(async (transaction) => {
          const shared: RoundTransaction = {
            nowMs: clockMs(),
            readRound: (...keys) => transaction.readRound(...keys),
            readHolds: (...keys) => transaction.readHolds(...keys),
            readRefs: (refs) => transaction.readRefs(refs),
          }
          await body(shared)
          return body(shared)
        }),
      )
      tail = run.catch(() => {})
      return run
    },
    pageHistory: (accountKey, range) => store.pageHistory(accountKey, range),
    entriesWithKey: (accountKey, key, limit) => store.entriesWithKey(accountKey, key, limit),
    firstSeqAtOrAfter: (accountKey, atMs, seqLow, seqHigh) => store.firstSeqAtOrAfter(accountKey, atMs, seqLow, seqHigh),
    snapshot: () => store.snapshot(),
    readHolding: (accountKey) => store.readHolding(accountKey),
    dueHoldAccounts: (nowMs, limit) => store.dueHoldAccounts(nowMs, limit),
    readMeta: (name) => store.readMeta(name),
    writeMeta: (records) => store.writeMeta(records),
    ...outboxOf(store),
    ping: () => store.ping(),
    close: async () => {},
  }
}
