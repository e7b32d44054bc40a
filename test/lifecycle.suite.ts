// Moves, expiry, freezing, actors and entries by idempotency key, on every engine: run from
// ledger.test.ts (LevelDB backends) and ledger-postgres.test.ts (PostgreSQL).
import { describe, expect, test } from 'vitest'
import { encodeEntry, historyKeyOf } from '../src/ledger/codec.js'
import { tablesOf } from '../src/ledger/level/store.js'
import { verifyStore } from '../src/ledger/verify.js'
import { credentialKeyOf, openLedger, type Ledger, type LedgerOptions, type LedgerStore } from '../src/ledger/index.js'
import { codeOf, exportedLines, importLines, type Backend } from './ledger.suite.js'

const alice = credentialKeyOf('YWxpY2UtbGlmZWN5Y2xl')
const bob = credentialKeyOf('Ym9iLWxpZmVjeWNsZQ==')
const carol = credentialKeyOf('Y2Fyb2wtbGlmZWN5Y2xl')

/** Waits for `condition`, polling; fails the test past `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export function lifecycleSuite(name: string, backend: Backend): void {
  const open = async (options: Partial<LedgerOptions> = {}, store?: LedgerStore): Promise<{ ledger: Ledger; store: LedgerStore }> => {
    const opened = store ?? (await backend.makeStore())
    const ledger = await openLedger(opened, { writerBatchMax: 500, writerQueueMax: 100_000, ...options })
    return { ledger, store: opened }
  }

  const verifyClean = async (store: LedgerStore) => {
    const report = await verifyStore(store)
    expect(report.faults).toEqual([])
    return report
  }

  describe(`account lifecycle on ${name}`, () => {
    test('a move changes both accounts in one write, with one id on both entries', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 500n })
      await ledger.mod(bob, { by: 100n })
      const result = await ledger.move(alice, { by: 200n, toCredentialKey: bob, note: 'to bob', actor: 'support' })
      expect(result).toMatchObject({ tot: 300n, seq: 2, replayed: false })
      expect(result.move).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(await ledger.tot(bob)).toEqual({ tot: 300n, seq: 2 })
      const [out] = (await ledger.past(alice, { limit: 10, order: 'desc' })).entries
      const [into] = (await ledger.past(bob, { limit: 10, order: 'desc' })).entries
      expect(out).toMatchObject({ seq: 2, by: -200n, tot: 300n, kind: 'move', move: result.move, note: 'to bob', actor: 'support' })
      expect(into).toMatchObject({ seq: 2, by: 200n, tot: 300n, kind: 'move', move: result.move, note: 'to bob', actor: 'support' })
      await verifyClean(store)
      await ledger.close()
    })

    test('move refusals write nothing: unknown from or to, short, overflow', async () => {
      const { ledger } = await open()
      await ledger.mod(alice, { by: 10n })
      expect(await codeOf(ledger.move(carol, { by: 1n, toCredentialKey: alice }))).toBe('ACCMAN_NO_ACCOUNT')
      await expect(ledger.move(alice, { by: 1n, toCredentialKey: carol })).rejects.toThrow(/\bto\b/)
      await ledger.mod(bob, { by: 2n ** 127n - 5n })
      const short = await ledger.move(alice, { by: 11n, toCredentialKey: bob }).catch((error: unknown) => error)
      expect(short).toMatchObject({ code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: 10n })
      expect(await codeOf(ledger.move(alice, { by: 10n, toCredentialKey: bob }))).toBe('ACCMAN_OVERFLOW')
      expect(await ledger.tot(alice)).toEqual({ tot: 10n, seq: 1 })
      expect(await ledger.tot(bob)).toEqual({ tot: 2n ** 127n - 5n, seq: 1 })
      await ledger.close()
    })

    test('a keyed move replays its first answer; the key is FROM’s and cannot be reused for a mod', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 100n })
      await ledger.mod(bob, { by: 1n })
      const first = await ledger.move(alice, { by: 30n, toCredentialKey: bob, idempotencyKey: 'move-1' })
      const again = await ledger.move(alice, { by: 30n, toCredentialKey: bob, idempotencyKey: 'move-1' })
      expect(again).toEqual({ ...first, replayed: true })
      expect(await codeOf(ledger.move(alice, { by: 31n, toCredentialKey: bob, idempotencyKey: 'move-1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      expect(await codeOf(ledger.mod(alice, { by: -30n, idempotencyKey: 'move-1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      // Bob's key space is his own: the same key is new there.
      expect(await ledger.mod(bob, { by: 5n, idempotencyKey: 'move-1' })).toMatchObject({ tot: 36n, replayed: false })
      expect(await ledger.tot(alice)).toEqual({ tot: 70n, seq: 2 })
      const byKey = await ledger.pastByKey(alice, 'move-1')
      expect(byKey.entries.map((entry) => [entry.seq, entry.kind, entry.move])).toEqual([[2, 'move', first.move]])
      await verifyClean(store)
      await ledger.close()
    })

    test('a frozen account refuses debits and moves out, accepts credits and moves in', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 100n })
      await ledger.mod(bob, { by: 100n })
      expect(await ledger.freeze(alice, { frozen: true, actor: 'ops' })).toMatchObject({ tot: 100n, seq: 2, frozen: true, changed: true })
      expect(await ledger.freeze(alice, { frozen: true })).toMatchObject({ seq: 2, changed: false })
      expect(await codeOf(ledger.mod(alice, { by: -1n }))).toBe('ACCMAN_FROZEN')
      expect(await codeOf(ledger.move(alice, { by: 1n, toCredentialKey: bob }))).toBe('ACCMAN_FROZEN')
      // Frozen comes before short: the account's state, not the amount, is the reason.
      expect(await codeOf(ledger.mod(alice, { by: -1000n }))).toBe('ACCMAN_FROZEN')
      expect(await ledger.mod(alice, { by: 5n })).toMatchObject({ tot: 105n })
      expect(await ledger.move(bob, { by: 5n, toCredentialKey: alice })).toMatchObject({ tot: 95n })
      expect((await ledger.account(alice))?.frozen).toBe(true)
      expect(await ledger.freeze(alice, { frozen: false })).toMatchObject({ frozen: false, changed: true, seq: 5 })
      expect(await ledger.mod(alice, { by: -10n })).toMatchObject({ tot: 100n, seq: 6 })
      expect(await codeOf(ledger.freeze(carol, { frozen: true }))).toBe('ACCMAN_NO_ACCOUNT')
      const entries = (await ledger.past(alice, { limit: 10, order: 'asc' })).entries
      expect(entries.map((entry) => [entry.kind ?? 'mod', entry.by])).toEqual([
        ['mod', 100n],
        ['freeze', 0n],
        ['mod', 5n],
        ['move', 5n],
        ['unfreeze', 0n],
        ['mod', -10n],
      ])
      expect(entries[1]?.actor).toBe('ops')
      await verifyClean(store)
      await ledger.close()
    })

    test('holds keep what the account carries; a frozen or expired account takes no new hold, but settles and voids', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 100n, ttlSeconds: 3600 })
      await ledger.updateAccount(alice, { alertBelow: 7n, ref: 'holds-keep-this' })
      const before = await ledger.account(alice)
      expect(before).toMatchObject({ expiresMs: expect.any(Number) as number, createdMs: expect.any(Number) as number, alertBelow: 7n })
      const first = await ledger.hold(alice, { by: 10n, ttlMs: 60_000, actor: 'checkout' })
      const second = await ledger.hold(alice, { by: 5n, ttlMs: 60_000 })
      await ledger.freeze(alice, { frozen: true })
      expect(await codeOf(ledger.hold(alice, { by: 1n, ttlMs: 60_000 }))).toBe('ACCMAN_FROZEN')
      // Frozen comes before short, as for debits.
      expect(await codeOf(ledger.hold(alice, { by: 1000n, ttlMs: 60_000 }))).toBe('ACCMAN_FROZEN')
      expect(await ledger.settle(alice, { holdId: first.hold, by: 4n, actor: 'checkout' })).toMatchObject({ tot: 96n, held: 5n })
      expect(await ledger.void(alice, { holdId: second.hold })).toMatchObject({ tot: 96n, held: 0n })
      const after = await ledger.account(alice)
      expect(after).toMatchObject({ tot: 96n, seq: 6, frozen: true, expiresMs: before?.expiresMs, createdMs: before?.createdMs, alertBelow: 7n, ref: 'holds-keep-this' })
      expect(after?.held).toBeUndefined()
      const entries = (await ledger.past(alice, { limit: 10, order: 'asc' })).entries
      expect(entries.map((entry) => [entry.kind ?? 'mod', entry.actor])).toEqual([
        ['mod', undefined],
        ['hold', 'checkout'],
        ['hold', undefined],
        ['freeze', undefined],
        ['settle', 'checkout'],
        ['void', undefined],
      ])

      // Expired: a new hold is refused (402 while the balance is short, 410 once the expiry passes).
      await ledger.mod(bob, { by: 50n })
      const open_ = await ledger.hold(bob, { by: 5n, ttlMs: 60_000 })
      await ledger.mod(bob, { by: 1n, ttlSeconds: 1 })
      await waitFor(async () => (await codeOf(ledger.hold(bob, { by: 1000n, ttlMs: 60_000 }))) === 'ACCMAN_EXPIRED')
      expect(await codeOf(ledger.hold(bob, { by: 1n, ttlMs: 60_000 }))).toBe('ACCMAN_EXPIRED')
      expect(await ledger.void(bob, { holdId: open_.hold })).toMatchObject({ tot: 51n, held: 0n })
      expect((await ledger.account(bob))?.expiresMs).toBeDefined()
      await verifyClean(store)
      await ledger.close()
    })

    test('expiry: an expired account refuses debits and moves out, keeps its balance, and a credit with ttl reopens it', async () => {
      const { ledger, store } = await open()
      await ledger.mod(bob, { by: 50n })
      const credited = await ledger.mod(alice, { by: 100n, ttlSeconds: 1 })
      expect(credited.expiresMs).toBeGreaterThan(Date.now() - 60_000)
      // A debit larger than the balance answers 402 until the expiry passes, then 410: it never applies.
      await waitFor(async () => (await codeOf(ledger.mod(alice, { by: -1000n }))) === 'ACCMAN_EXPIRED')
      expect(await codeOf(ledger.mod(alice, { by: -1n }))).toBe('ACCMAN_EXPIRED')
      expect(await codeOf(ledger.move(alice, { by: 1n, toCredentialKey: bob }))).toBe('ACCMAN_EXPIRED')
      expect(await ledger.tot(alice)).toEqual({ tot: 100n, seq: 1, expiresMs: expect.any(Number) as number })
      // A credit without ttl, and a move in, are accepted and do not reopen it.
      expect(await ledger.mod(alice, { by: 1n })).toMatchObject({ tot: 101n, expiresMs: credited.expiresMs })
      await ledger.move(bob, { by: 1n, toCredentialKey: alice })
      expect(await codeOf(ledger.mod(alice, { by: -1n }))).toBe('ACCMAN_EXPIRED')
      const reopenedCredit = await ledger.mod(alice, { by: 1n, ttlSeconds: 3600 })
      expect(reopenedCredit.expiresMs).toBeGreaterThan(Date.now() + 3_500_000)
      expect(await ledger.mod(alice, { by: -3n })).toMatchObject({ tot: 100n })
      // The later of the current expiry and now + ttl: a shorter ttl does not shorten it.
      expect((await ledger.mod(alice, { by: 1n, ttlSeconds: 1 })).expiresMs).toBe(reopenedCredit.expiresMs)
      await verifyClean(store)
      await ledger.close()
    })

    test('/past?key finds the entries of a key after its idempotency record is pruned', async () => {
      const { ledger } = await open({ idempotencyTtlMs: 1000 })
      await ledger.mod(alice, { by: 10n, idempotencyKey: 'order-1' })
      await ledger.mod(alice, { by: -1n, idempotencyKey: 'charge-1' })
      await ledger.mod(alice, { by: -1n })
      expect((await ledger.pastByKey(alice, 'charge-1')).entries.map((entry) => entry.seq)).toEqual([2])
      let pruned = 0
      await waitFor(async () => (pruned += await ledger.pruneExpiredIdempotency(100)) >= 2)
      const page = await ledger.pastByKey(alice, 'charge-1')
      expect(page).toMatchObject({ tot: 8n, seq: 3 })
      expect(page.entries.map((entry) => [entry.seq, entry.by, entry.idempotencyKey])).toEqual([[2, -1n, 'charge-1']])
      expect((await ledger.pastByKey(alice, 'nothing')).entries).toEqual([])
      expect(await codeOf(ledger.pastByKey(carol, 'charge-1'))).toBe('ACCMAN_NO_ACCOUNT')
      await ledger.close()
    })

    test('1,000 concurrent opposite moves keep the sum and both histories chained', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 500n })
      await ledger.mod(bob, { by: 500n })
      const moves = Array.from({ length: 1000 }, (_, index) =>
        index % 2 === 0 ? ledger.move(alice, { by: 1n, toCredentialKey: bob }) : ledger.move(bob, { by: 1n, toCredentialKey: alice }),
      )
      const outcomes = await Promise.allSettled(moves)
      expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toEqual([])
      const a = await ledger.tot(alice)
      const b = await ledger.tot(bob)
      expect((a?.tot ?? 0n) + (b?.tot ?? 0n)).toBe(1000n)
      expect((a?.seq ?? 0) + (b?.seq ?? 0)).toBe(2002)
      const report = await verifyClean(store)
      expect(report.entries).toBe(2002)
      await ledger.close()
    })

    // LevelDB only: the test writes behind the ledger's back into the database under the store.
    if (backend.dbOf !== undefined) test('verify finds a move whose two sides disagree', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 10n })
      await ledger.mod(bob, { by: 10n })
      const moved = await ledger.move(alice, { by: 3n, toCredentialKey: bob })
      const [into] = (await ledger.past(bob, { limit: 1, order: 'desc' })).entries
      expect(into?.move).toBe(moved.move)
      // Behind the ledger's back: the receiving side now names another move (its chain still holds).
      const db = backend.dbOf?.(store)
      if (db === undefined || into === undefined) throw new Error('a LevelDB backend')
      const bobAccount = await ledger.resolve(bob)
      if (bobAccount === undefined) throw new Error('bob has an account')
      await tablesOf(db).history.put(historyKeyOf(bobAccount, into.seq), encodeEntry({ ...into, move: 'another-move-id' }))
      const report = await verifyStore(store)
      expect(report.faults.some((fault) => fault.includes('not the same move'))).toBe(true)
      await ledger.close()
    })

    test('export and import carry kinds, moves, actors, expiry and freezing', async () => {
      const { ledger, store } = await open()
      await ledger.mod(alice, { by: 100n, ttlSeconds: 3600, actor: 'billing' })
      await ledger.mod(bob, { by: 1n })
      const moved = await ledger.move(alice, { by: 40n, toCredentialKey: bob, idempotencyKey: 'k-move' })
      await ledger.freeze(bob, { frozen: true })
      const lines = await exportedLines(store)
      await ledger.close()
      const target = await backend.makeStore()
      await importLines(target, lines)
      await verifyClean(target)
      const { ledger: copy } = await open({}, target)
      expect((await copy.account(alice))?.expiresMs).toBeGreaterThan(Date.now())
      expect((await copy.account(bob))?.frozen).toBe(true)
      const entries = (await copy.past(alice, { limit: 10, order: 'asc' })).entries
      expect(entries[0]?.actor).toBe('billing')
      expect(entries[1]).toMatchObject({ kind: 'move', move: moved.move, by: -40n, idempotencyKey: 'k-move' })
      // The rebuilt idempotency record replays the move.
      expect(await copy.move(alice, { by: 40n, toCredentialKey: bob, idempotencyKey: 'k-move' })).toMatchObject({ move: moved.move, replayed: true })
      expect(await codeOf(copy.mod(bob, { by: -1n }))).toBe('ACCMAN_FROZEN')
      await copy.close()
    })
  })
}

