// The store contract (src/ledger/store.ts), as one function every engine runs: what a round
// writes reads back, all of it or none of it; a body the engine runs again writes once; history
// pages come out in order; a snapshot does not see later rounds; meta records. An engine passes
// these or it is not done.
import { describe, expect, test } from 'vitest'
import { accountKeyOf, idempotencyKeyOf } from '../src/ledger/codec.js'
import type { LedgerStore, RoundWrites } from '../src/ledger/store.js'
import type { AccountKey, Entry } from '../src/ledger/types.js'

const alice = accountKeyOf('QUFBQQ==')
const bob = accountKeyOf('QkJCQg==')
const aliceKey = idempotencyKeyOf(alice, 'order-7')

/** Alice's first `count` entries: +10 each, one ms apart from 1000, the first with a key and a note. */
function history(count: number): Entry[] {
  return Array.from({ length: count }, (_, index) => {
    const entry: Entry = { seq: index + 1, by: 10n, tot: 10n * BigInt(index + 1), atMs: 1000 + index }
    if (index === 0) Object.assign(entry, { note: 'first ☕', idempotencyKey: 'order-7' })
    return entry
  })
}

function roundOf(entries: Entry[], accountKey: AccountKey = alice): RoundWrites {
  const last = entries.at(-1)
  return {
    accounts: last === undefined ? [] : [[accountKey, { tot: last.tot, seq: last.seq, atMs: last.atMs }]],
    entries: entries.map((entry) => [accountKey, entry]),
    idempotency: accountKey === alice ? [[aliceKey, { by: 10n, tot: 10n, seq: 1, atMs: 1000 }]] : [],
    idempotencyDeletes: [],
  }
}

/** Stores `writes` as one round that reads the accounts it writes first, as the writer does. */
function write(store: LedgerStore, writes: RoundWrites): Promise<void> {
  return store.runRound(async (transaction) => {
    await transaction.readRound(
      writes.accounts.map(([accountKey]) => accountKey),
      [],
    )
    return { writes, value: undefined }
  })
}

/** Reads through a round that writes nothing. */
function read(store: LedgerStore, accountKeys: AccountKey[], idempotencyKeys: string[]) {
  return store.runRound(async (transaction) => ({ writes: undefined, value: await transaction.readRound(accountKeys, idempotencyKeys) }))
}

/** Every row of a snapshot: accounts, each account's entries, idempotency records. */
async function contentOf(store: LedgerStore) {
  const snapshot = await store.snapshot()
  try {
    const accounts = await snapshot.accounts(undefined, 100)
    const entries = await Promise.all(accounts.map(([accountKey]) => snapshot.history(accountKey, 1, 100)))
    return { accounts, entries, idempotency: await snapshot.idempotency(undefined, 100) }
  } finally {
    await snapshot.close()
  }
}

/**
 * The contract, run on stores `makeStore` makes: each empty, open, and writing durably. The
 * caller closes nothing: each test closes its store.
 */
export function storeContract(name: string, makeStore: () => Promise<LedgerStore>): void {
  async function withStore(run: (store: LedgerStore) => Promise<void>): Promise<void> {
    const store = await makeStore()
    try {
      await run(store)
    } finally {
      await store.close()
    }
  }

  describe(`the store contract on ${name}`, () => {
    test('a round reads back as written, in the order asked; what was never written reads as undefined', () =>
      withStore(async (store) => {
        expect(await read(store, [alice, bob], [aliceKey])).toEqual({ accounts: [undefined, undefined], idempotency: [undefined], credentials: [] })
        await write(store, roundOf(history(3)))
        expect(await store.readAccount(alice)).toEqual({ tot: 30n, seq: 3, atMs: 1002 })
        expect(await store.readAccount(bob)).toBeUndefined()
        expect(await read(store, [bob, alice], [aliceKey, idempotencyKeyOf(bob, 'order-7')])).toEqual({
          accounts: [undefined, { tot: 30n, seq: 3, atMs: 1002 }],
          idempotency: [{ by: 10n, tot: 10n, seq: 1, atMs: 1000 }, undefined],
          credentials: [],
        })
        await write(store, { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [aliceKey] })
        expect((await read(store, [], [aliceKey])).idempotency).toEqual([undefined])
      }))

    test("a round's time: the writer's on an exclusive engine, the store's clock on a shared one", () =>
      withStore(async (store) => {
        const nowMs = await store.runRound(async (transaction) => ({ writes: undefined, value: transaction.nowMs }))
        if (store.sharing === 'exclusive') expect(nowMs).toBeUndefined()
        else expect(Math.abs((nowMs ?? 0) - Date.now())).toBeLessThan(60_000)
      }))

    test('history pages come in order from either end, bounded by their limit', () =>
      withStore(async (store) => {
        const entries = history(12)
        await write(store, roundOf(entries))
        expect(await store.pageHistory(alice, { seqLow: 1, seqHigh: 12, limit: 5, order: 'asc' })).toEqual(entries.slice(0, 5))
        expect(await store.pageHistory(alice, { seqLow: 3, seqHigh: 10, limit: 100, order: 'desc' })).toEqual(entries.slice(2, 10).reverse())
        expect(await store.firstSeqAtOrAfter(alice, 1004, 1, 12)).toBe(5)
        expect(await store.firstSeqAtOrAfter(alice, 0, 3, 12)).toBe(3)
        expect(await store.firstSeqAtOrAfter(alice, 5000, 1, 12)).toBe(13)
      }))

    test('a round is atomic: one record that cannot be stored, and nothing of the round is', () =>
      withStore(async (store) => {
        await write(store, roundOf(history(1), bob))
        const before = await contentOf(store)
        const round = roundOf(history(2))
        // A balance below zero is refused by every engine: the round fails before it is stored.
        round.entries.push([bob, { seq: 2, by: -11n, tot: -1n, atMs: 1000 }])
        round.accounts.push([bob, { tot: -1n, seq: 2, atMs: 1000 }])
        await expect(write(store, round)).rejects.toThrow()
        expect(await contentOf(store)).toEqual(before)
        expect(await store.readAccount(alice)).toBeUndefined()
      }))

    test('a body that throws stores nothing, and its error is the round’s', () =>
      withStore(async (store) => {
        const failure = new Error('decided to fail')
        await expect(
          store.runRound(async (transaction) => {
            await transaction.readRound([alice], [])
            throw failure
          }),
        ).rejects.toBe(failure)
        expect(await contentOf(store)).toEqual({ accounts: [], entries: [], idempotency: [] })
      }))

    test('a body run more than once writes once: the stored round is the one whose value is answered', () =>
      withStore(async (store) => {
        let runs = 0
        for (let round = 1; round <= 5; round++) {
          const answered = await store.runRound(async (transaction) => {
            runs++
            const [state] = (await transaction.readRound([alice], [])).accounts
            const seq = (state?.seq ?? 0) + 1
            const entry: Entry = { seq, by: 1n, tot: BigInt(seq), atMs: 1000 }
            const writes: RoundWrites = {
              accounts: [[alice, { tot: entry.tot, seq, atMs: 1000 }]],
              entries: [[alice, entry]],
              idempotency: [],
              idempotencyDeletes: [],
            }
            return { writes, value: seq }
          })
          expect(answered).toBe(round)
        }
        expect(runs).toBeGreaterThanOrEqual(5)
        if (store.sharing === 'exclusive') expect(runs).toBe(5)
        expect(await store.readAccount(alice)).toEqual({ tot: 5n, seq: 5, atMs: 1000 })
        expect((await store.pageHistory(alice, { seqLow: 1, seqHigh: 5, limit: 10, order: 'asc' })).map((entry) => entry.tot)).toEqual([1n, 2n, 3n, 4n, 5n])
      }))

    test('a snapshot sees the store as it was when taken, not the rounds after; pages follow key order', () =>
      withStore(async (store) => {
        await write(store, roundOf(history(2)))
        const snapshot = await store.snapshot()
        try {
          await write(store, { ...roundOf(history(4).slice(2)), idempotency: [], idempotencyDeletes: [aliceKey] })
          await write(store, roundOf(history(1), bob))
          expect(await snapshot.accounts(undefined, 10)).toEqual([[alice, { tot: 20n, seq: 2, atMs: 1001 }]])
          expect(await snapshot.history(alice, 1, 10)).toEqual(history(2))
          expect(await snapshot.history(alice, 2, 1)).toEqual(history(2).slice(1))
          expect(await snapshot.idempotency(undefined, 10)).toEqual([[aliceKey, { by: 10n, tot: 10n, seq: 1, atMs: 1000 }]])
        } finally {
          await snapshot.close()
        }
        const now = await contentOf(store)
        const keys = [alice, bob].sort()
        expect(now.accounts.map(([accountKey]) => accountKey)).toEqual(keys)
        expect(now.idempotency).toEqual([])
        const later = await store.snapshot()
        try {
          expect(await later.accounts(undefined, 1)).toEqual([[keys[0], await store.readAccount(keys[0] as AccountKey)]])
          expect((await later.accounts(keys[0], 10)).map(([accountKey]) => accountKey)).toEqual([keys[1]])
          expect(await later.history(alice, 3, 10)).toEqual(history(4).slice(2))
        } finally {
          await later.close()
        }
      }))

    test('meta records: written and deleted together, read back by name', () =>
      withStore(async (store) => {
        expect(await store.readMeta('epoch')).toBeUndefined()
        await store.writeMeta([
          ['epoch', '1'],
          ['filters', '{"a":1}'],
        ])
        expect(await store.readMeta('epoch')).toBe('1')
        expect(await store.readMeta('filters')).toBe('{"a":1}')
        await store.writeMeta([
          ['filters', undefined],
          ['epoch', '2'],
        ])
        expect(await store.readMeta('filters')).toBeUndefined()
        expect(await store.readMeta('epoch')).toBe('2')
        // Meta records are not ledger records.
        expect(await contentOf(store)).toEqual({ accounts: [], entries: [], idempotency: [] })
      }))

    test('ping answers while the store is open, and not once it is closed', async () => {
      const store = await makeStore()
      expect(await store.ping()).toBe(true)
      await store.close()
      expect(await store.ping()).toBe(false)
    })
  })
}
