// The store contract (src/ledger/store.ts), run against the LevelDB engine on memory-level,
// classic-level and a sublevel of each: what a round writes reads back, all of it or none of it,
// and history pages come out in order. A second engine runs the same tests.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { afterAll, describe, expect, test } from 'vitest'
import { accountKeyOf, idempotencyKeyOf } from '../src/ledger/codec.js'
import type { RootDb } from '../src/ledger/index.js'
import { LevelStore, tablesOf } from '../src/ledger/level/store.js'
import type { LedgerStore, RoundWrites } from '../src/ledger/store.js'
import type { Entry } from '../src/ledger/types.js'

const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})
function classicLevel(): RootDb {
  const directory = mkdtempSync(join(tmpdir(), 'accman-store-'))
  directories.push(directory)
  return new ClassicLevel<string, string>(directory)
}

const engines: Array<[string, () => RootDb]> = [
  ['memory-level', () => new MemoryLevel<string, string>()],
  ['a memory-level sublevel', () => new MemoryLevel<string, string>().sublevel<string, string>('nested', {})],
  ['classic-level', classicLevel],
  ['a classic-level sublevel', () => classicLevel().sublevel<string, string>('nested', {})],
]

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

function roundOf(entries: Entry[]): RoundWrites {
  const last = entries.at(-1)
  return {
    accounts: last === undefined ? [] : [[alice, { tot: last.tot, seq: last.seq, atMs: last.atMs }]],
    entries: entries.map((entry) => [alice, entry]),
    idempotency: [[aliceKey, { by: 10n, tot: 10n, seq: 1, atMs: 1000 }]],
    idempotencyDeletes: [],
  }
}

describe.each(engines)('the store on %s', (_name, makeDb) => {
  async function openStore(): Promise<{ store: LedgerStore; db: RootDb }> {
    const db = makeDb()
    await db.open()
    return { store: new LevelStore(db, tablesOf(db), { sync: true }), db }
  }

  test('a round reads back as written; what was never written reads as undefined', async () => {
    const { store, db } = await openStore()
    try {
      expect(await store.readRound([alice, bob], [aliceKey])).toEqual({ accounts: [undefined, undefined], idempotency: [undefined] })
      await store.writeRound(roundOf(history(3)))
      expect(await store.readAccount(alice)).toEqual({ tot: 30n, seq: 3, atMs: 1002 })
      expect(await store.readAccount(bob)).toBeUndefined()
      expect(await store.readRound([bob, alice], [aliceKey, idempotencyKeyOf(bob, 'order-7')])).toEqual({
        accounts: [undefined, { tot: 30n, seq: 3, atMs: 1002 }],
        idempotency: [{ by: 10n, tot: 10n, seq: 1, atMs: 1000 }, undefined],
      })
      await store.writeRound({ accounts: [], entries: [], idempotency: [], idempotencyDeletes: [aliceKey] })
      expect((await store.readRound([], [aliceKey])).idempotency).toEqual([undefined])
    } finally {
      await db.close()
    }
  })

  test('history pages come in order from either end, bounded by their limit', async () => {
    const { store, db } = await openStore()
    try {
      const entries = history(12)
      await store.writeRound(roundOf(entries))
      expect(await store.pageHistory(alice, { seqLow: 1, seqHigh: 12, limit: 5, order: 'asc' })).toEqual(entries.slice(0, 5))
      expect(await store.pageHistory(alice, { seqLow: 3, seqHigh: 10, limit: 100, order: 'desc' })).toEqual(entries.slice(2, 10).reverse())
      expect(await store.firstSeqAtOrAfter(alice, 1004, 1, 12)).toBe(5)
      expect(await store.firstSeqAtOrAfter(alice, 0, 3, 12)).toBe(3)
      expect(await store.firstSeqAtOrAfter(alice, 5000, 1, 12)).toBe(13)
    } finally {
      await db.close()
    }
  })

  test('a round with one record that would not read back writes nothing of the round', async () => {
    const { store, db } = await openStore()
    try {
      const round = roundOf(history(2))
      // A balance below zero does not parse back: the round stops before it is written.
      round.entries.push([bob, { seq: 1, by: -1n, tot: -1n, atMs: 1000 }])
      expect(() => store.writeRound(round)).toThrow(/does not round-trip|corrupt record/)
      expect(await store.readRound([alice, bob], [aliceKey])).toEqual({ accounts: [undefined, undefined], idempotency: [undefined] })
      expect(await db.keys().all()).toEqual([])
    } finally {
      await db.close()
    }
  })
})
