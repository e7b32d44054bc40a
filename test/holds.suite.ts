// Holds on every engine: called from the shared ledger suite, so each backend runs it. Where the
// backend's clock is the store's (PostgreSQL), expiry is waited for (bounded, failing on timeout)
// instead of an injected clock.
import { describe, expect, test } from 'vitest'
import { verifyStore } from '../src/ledger/verify.js'
import { credentialKeyOf, openLedger, type Ledger, type LedgerOptions, type LedgerStore } from '../src/ledger/index.js'
import { exportedLines, importLines, type Backend } from './ledger.suite.js'

const alice = credentialKeyOf('aG9sZHMtYWxpY2U=')
const bob = credentialKeyOf('aG9sZHMtYm9i')

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string') return code
    throw error
  }
  return 'ok'
}

/** Waits for `check` to hold, polling; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export function holdsSuite(name: string, backend: Backend): void {
  const open = async (options: Partial<LedgerOptions> = {}, store?: LedgerStore): Promise<Ledger> =>
    openLedger(store ?? (await backend.makeStore()), { writerBatchMax: 500, writerQueueMax: 100_000, ...options })

  describe(`holds on ${name}`, () => {
    test('a hold makes avail smaller, not tot; settle posts part and releases the rest; void releases all; the history chains', async () => {
      const ledger = await open({ holdExpiry: false })
      await ledger.mod(alice, { by: 100n })
      const first = await ledger.hold(alice, { by: 30n, ttlMs: 300_000, note: 'request 1' })
      expect(first.hold).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(JSON.parse(first.answer)).toMatchObject({ hold: first.hold, by: '30', tot: '100', held: '30', avail: '70', seq: 2 })
      expect(await ledger.tot(alice)).toEqual({ tot: 100n, seq: 2, held: 30n })
      const second = await ledger.hold(alice, { by: 50n, ttlMs: 300_000 })
      // avail is 20: a debit of 21 or a hold of 21 is refused, with tot and avail.
      const refused = await ledger.mod(alice, { by: -21n }).catch((error: unknown) => error)
      expect(refused).toMatchObject({ code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: 100n, avail: 20n })
      expect(await codeOf(ledger.hold(alice, { by: 21n, ttlMs: 1000 }))).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      expect(await ledger.mod(alice, { by: -20n })).toEqual({ tot: 80n, seq: 4, replayed: false, held: 80n })
      const settled = await ledger.settle(alice, { holdId: first.hold, by: 10n })
      expect(JSON.parse(settled.answer)).toEqual({ hold: first.hold, settled: '10', tot: '70', held: '50', avail: '20', seq: 5 })
      const voided = await ledger.void(alice, { holdId: second.hold, note: 'cancelled' })
      expect(JSON.parse(voided.answer)).toEqual({ hold: second.hold, tot: '70', held: '0', avail: '70', seq: 6 })
      expect(await ledger.tot(alice)).toEqual({ tot: 70n, seq: 6 })
      const page = await ledger.past(alice, { limit: 10, order: 'asc' })
      expect(page.entries.map(({ kind, by, tot, heldBy, held, hold }) => ({ kind, by, tot, heldBy, held, hold }))).toEqual([
        { kind: undefined, by: 100n, tot: 100n, heldBy: undefined, held: undefined, hold: undefined },
        { kind: 'hold', by: 0n, tot: 100n, heldBy: 30n, held: 30n, hold: first.hold },
        { kind: 'hold', by: 0n, tot: 100n, heldBy: 50n, held: 80n, hold: second.hold },
        { kind: undefined, by: -20n, tot: 80n, heldBy: undefined, held: 80n, hold: undefined },
        { kind: 'settle', by: -10n, tot: 70n, heldBy: -30n, held: 50n, hold: first.hold },
        { kind: 'void', by: 0n, tot: 70n, heldBy: -50n, held: undefined, hold: second.hold },
      ])
      expect((await ledger.holds(alice)).holds).toEqual([])
      await ledger.close()
    })

    test('settle and void refuse in the order 404, 409, 410, 422; a refusal writes nothing', async () => {
      const ledger = await open({ holdExpiry: false })
      await ledger.mod(alice, { by: 10n })
      await ledger.mod(bob, { by: 10n })
      const held = await ledger.hold(alice, { by: 5n, ttlMs: 60_000 })
      const bobs = await ledger.hold(bob, { by: 5n, ttlMs: 60_000 })
      expect(await codeOf(ledger.settle(alice, { holdId: 'AAAAAAAAAAAAAAAAAAAAAA' }))).toBe('ACCMAN_NO_HOLD')
      // Another account's hold is not this account's.
      expect(await codeOf(ledger.void(alice, { holdId: bobs.hold }))).toBe('ACCMAN_NO_HOLD')
      expect(await codeOf(ledger.settle(credentialKeyOf('bm9ib2R5'), { holdId: held.hold }))).toBe('ACCMAN_NO_ACCOUNT')
      expect(await codeOf(ledger.settle(alice, { holdId: held.hold, by: 6n }))).toBe('ACCMAN_HOLD_EXCEEDED')
      expect(await ledger.tot(alice)).toEqual({ tot: 10n, seq: 2, held: 5n })
      await ledger.settle(alice, { holdId: held.hold })
      expect(await codeOf(ledger.void(alice, { holdId: held.hold }))).toBe('ACCMAN_HOLD_CLOSED')
      expect(await codeOf(ledger.settle(alice, { holdId: held.hold, by: 6n }))).toBe('ACCMAN_HOLD_CLOSED')
      expect(await ledger.tot(alice)).toEqual({ tot: 5n, seq: 3 })
      await ledger.close()
    })

    test('keys: a retry replays the first answer and hold id; another op or other parameters is a mismatch; a refusal keeps its key free', async () => {
      const ledger = await open({ holdExpiry: false })
      await ledger.mod(alice, { by: 10n })
      expect(await codeOf(ledger.hold(alice, { by: 11n, ttlMs: 1000, idempotencyKey: 'k1' }))).toBe('ACCMAN_INSUFFICIENT_FUNDS')
      const first = await ledger.hold(alice, { by: 4n, ttlMs: 60_000, idempotencyKey: 'k1' })
      await ledger.mod(alice, { by: 1n })
      const again = await ledger.hold(alice, { by: 4n, ttlMs: 60_000, idempotencyKey: 'k1' })
      expect(again).toMatchObject({ replayed: true, hold: first.hold, answer: first.answer })
      expect(await codeOf(ledger.hold(alice, { by: 5n, ttlMs: 60_000, idempotencyKey: 'k1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      expect(await codeOf(ledger.mod(alice, { by: 4n, idempotencyKey: 'k1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      expect(await codeOf(ledger.void(alice, { holdId: first.hold, idempotencyKey: 'k1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      await ledger.mod(alice, { by: 1n, idempotencyKey: 'm1' })
      expect(await codeOf(ledger.settle(alice, { holdId: first.hold, idempotencyKey: 'm1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      const settled = await ledger.settle(alice, { holdId: first.hold, by: 3n, idempotencyKey: 's1' })
      expect(await ledger.settle(alice, { holdId: first.hold, by: 3n, idempotencyKey: 's1' })).toMatchObject({ replayed: true, answer: settled.answer })
      expect(await codeOf(ledger.settle(alice, { holdId: first.hold, idempotencyKey: 's1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      expect(await ledger.tot(alice)).toEqual({ tot: 9n, seq: 5 })
      await ledger.close()
    })

    test('an account has at most 1,000 active holds', async () => {
      const ledger = await open({ holdExpiry: false })
      await ledger.mod(alice, { by: 2000n })
      const holds = await Promise.all(Array.from({ length: 1000 }, () => ledger.hold(alice, { by: 1n, ttlMs: 600_000 })))
      expect(new Set(holds.map((hold) => hold.hold)).size).toBe(1000)
      expect(await codeOf(ledger.hold(alice, { by: 1n, ttlMs: 600_000 }))).toBe('ACCMAN_TOO_MANY_HOLDS')
      await ledger.void(alice, { holdId: holds[0]?.hold ?? '' })
      expect(await codeOf(ledger.hold(alice, { by: 1n, ttlMs: 600_000 }))).toBe('ok')
      expect((await ledger.holds(alice)).held).toBe(1000n)
      await ledger.close()
    })

    test('expiry: a hold counts until its instant, not after; its expire entry comes before any later entry; a settle after it is 410', async () => {
      let clockMs = Date.parse('2026-11-30T12:00:00.000Z')
      const injected = backend.storeClock !== true
      const ledger = await open({ holdExpiry: false, ...(injected ? { now: () => clockMs } : {}) })
      await ledger.mod(alice, { by: 10n })
      const held = await ledger.hold(alice, { by: 4n, ttlMs: 1000 })
      const expires = Date.parse((JSON.parse(held.answer) as { expires: string }).expires)
      const kept = await ledger.hold(alice, { by: 1n, ttlMs: 600_000 })
      if (injected) {
        clockMs = expires - 1
        expect((await ledger.tot(alice))?.held).toBe(5n)
        clockMs = expires
        expect(await ledger.tot(alice)).toEqual({ tot: 10n, seq: 3, held: 1n })
      } else {
        await until(async () => (await ledger.tot(alice))?.held === 1n, 5000, 'the hold to expire')
      }
      // Read as of now, before anything is written.
      expect((await ledger.holds(alice)).holds.map((hold) => hold.id)).toEqual([kept.hold])
      expect(await codeOf(ledger.settle(alice, { holdId: held.hold }))).toBe('ACCMAN_HOLD_EXPIRED')
      expect(await codeOf(ledger.void(alice, { holdId: held.hold }))).toBe('ACCMAN_HOLD_EXPIRED')
      const page = await ledger.past(alice, { limit: 10, order: 'asc' })
      expect(page.entries.map((entry) => entry.kind ?? 'mod')).toEqual(['mod', 'hold', 'hold', 'expire'])
      expect(page.entries[3]).toMatchObject({ by: 0n, tot: 10n, heldBy: -4n, held: 1n, hold: held.hold })
      expect(page.entries[3]?.atMs).toBeGreaterThanOrEqual(expires)
      await ledger.close()
    })

    test('export and import carry holds, their entries and the answers their keys replay', async () => {
      const store = await backend.makeStore()
      const ledger = await open({ holdExpiry: false }, store)
      await ledger.mod(alice, { by: 100n })
      const open1 = await ledger.hold(alice, { by: 30n, ttlMs: 600_000, note: 'job', idempotencyKey: 'h1' })
      const settled = await ledger.settle(alice, { holdId: open1.hold, idempotencyKey: 's1' })
      const open2 = await ledger.hold(alice, { by: 20n, ttlMs: 600_000 })
      await ledger.mod(alice, { by: -1n, idempotencyKey: 'm1' })
      const lines = await exportedLines(store)
      await ledger.close()
      const copy = await backend.makeStore()
      await importLines(copy, lines)
      expect(await verifyStore(copy)).toMatchObject({ faultCount: 0, accounts: 1, entries: 5 })
      const imported = await open({ holdExpiry: false }, copy)
      expect(await imported.tot(alice)).toEqual({ tot: 69n, seq: 5, held: 20n })
      expect((await imported.holds(alice)).holds.map((hold) => hold.id)).toEqual([open2.hold])
      expect((await imported.hold(alice, { by: 30n, ttlMs: 600_000, idempotencyKey: 'h1' })).answer).toBe(open1.answer)
      expect((await imported.settle(alice, { holdId: open1.hold, idempotencyKey: 's1' })).answer).toBe(settled.answer)
      expect(await imported.mod(alice, { by: -1n, idempotencyKey: 'm1' })).toEqual({ tot: 69n, seq: 5, replayed: true, held: 20n })
      expect(await codeOf(imported.void(alice, { holdId: open1.hold }))).toBe('ACCMAN_HOLD_CLOSED')
      await imported.void(alice, { holdId: open2.hold })
      await imported.close()
    })

    test('the expiry pass writes due expiries by itself, once, and verify finds the store whole', async () => {
      let clockMs = Date.parse('2026-11-30T12:00:00.000Z')
      const injected = backend.storeClock !== true
      const store = await backend.makeStore()
      const ledger = await open({ holdExpiry: false, ...(injected ? { now: () => clockMs } : {}) }, store)
      await ledger.mod(alice, { by: 10n })
      await ledger.mod(bob, { by: 10n })
      await ledger.hold(alice, { by: 2n, ttlMs: 1000 })
      await ledger.hold(bob, { by: 3n, ttlMs: 1000 })
      await ledger.hold(bob, { by: 1n, ttlMs: 600_000 })
      if (injected) clockMs += 1000
      await until(async () => (await ledger.expireDueHolds(100)) === 0 && (await ledger.past(bob, { limit: 10, order: 'asc' })).seq === 4, 5000, 'the expiries')
      expect(await ledger.expireDueHolds(100)).toBe(0)
      expect((await ledger.past(alice, { limit: 10, order: 'asc' })).entries.map((entry) => entry.kind ?? 'mod')).toEqual(['mod', 'hold', 'expire'])
      expect((await ledger.past(bob, { limit: 10, order: 'asc' })).entries.map((entry) => entry.kind ?? 'mod')).toEqual(['mod', 'hold', 'hold', 'expire'])
      expect(await ledger.tot(bob)).toEqual({ tot: 10n, seq: 4, held: 1n })
      const report = await verifyStore(store, { nowMs: clockMs })
      expect(report).toMatchObject({ faultCount: 0, accounts: 2, entries: 7 })
      await ledger.close()
    })
  })
}
