// Model-based property tests: random runs of tot, mod (alone and in concurrent bursts) and past,
// with random credentials, amounts from tiny to near 2^127, notes and idempotency keys, against
// the ledger core on memory-level and classic-level, compared step by step with a plain model.
// The decision function itself (decideMod) is driven directly too, against a model with time.
// Seeded and replayable: a failure prints its seed and path; ACCMAN_FC_SEED=<seed> replays it.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import fc from 'fast-check'
import { MemoryLevel } from 'memory-level'
import { afterAll, describe, expect, test } from 'vitest'
import type { AccountState, IdempotencyState } from '../src/ledger/codec.js'
import { decideMod } from '../src/ledger/decide.js'
import { credentialKeyOf, amountMax, LedgerError, openLedger, type Ledger, type LedgerStore } from '../src/ledger/index.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { openLevelStore } from '../src/ledger/level/store.js'

interface ModelEntry {
  seq: number
  by: bigint
  tot: bigint
  note?: string | undefined
  idempotencyKey?: string | undefined
}
interface ModelAccount {
  entries: ModelEntry[]
  /** `rotateTo`: the key was first used by a rotation to that credential. */
  keys: Map<string, { by: bigint; tot: bigint; seq: number; move?: { to: string }; rotateTo?: string }>
  frozen?: boolean
}
/** The accounts by the credentials that address them now. */
type Model = Map<string, ModelAccount>
/** Credentials retired by a rotation, still naming their account (for a retry of the rotation). */
const retiredOf = new WeakMap<Model, Map<string, ModelAccount>>()
const retired = (model: Model): Map<string, ModelAccount> => {
  const found = retiredOf.get(model) ?? new Map<string, ModelAccount>()
  retiredOf.set(model, found)
  return found
}
type Outcome = { tot: bigint; seq: number; replayed: boolean } | { code: string }

interface Mod {
  cred: string
  by: bigint
  note?: string
  idempotencyKey?: string
}

/** A move of `by` (positive) from `cred` to `to`, or a freeze (frozen) of `cred`. */
interface Move {
  cred: string
  to: string
  by: bigint
  note?: string
  idempotencyKey?: string
}
interface Freeze {
  cred: string
  frozen: boolean
}
type Op = Mod | Move | Freeze
const isMove = (op: Op): op is Move => 'to' in op
const isFreeze = (op: Op): op is Freeze => 'frozen' in op

/** The specification, as plainly as it can be written. */
function applyToModel(model: Model, op: Op): Outcome {
  if (isMove(op)) return applyMoveToModel(model, op)
  if (isFreeze(op)) return applyFreezeToModel(model, op)
  const mod = op
  const account = model.get(mod.cred)
  if (mod.idempotencyKey !== undefined) {
    const first = account?.keys.get(mod.idempotencyKey)
    if (first !== undefined) {
      return first.by === mod.by && first.move === undefined ? { tot: first.tot, seq: first.seq, replayed: true } : { code: 'ACCMAN_IDEMPOTENCY_MISMATCH' }
    }
  }
  if (account === undefined && mod.by < 0n) return { code: 'ACCMAN_NO_ACCOUNT' }
  if (account?.frozen === true && mod.by < 0n) return { code: 'ACCMAN_FROZEN' }
  const before = account?.entries.at(-1)?.tot ?? 0n
  const tot = before + mod.by
  if (tot < 0n) return { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
  if (tot > amountMax) return { code: 'ACCMAN_OVERFLOW' }
  const target: ModelAccount = account ?? { entries: [], keys: new Map() }
  model.set(mod.cred, target)
  // A retired credential credited again addresses the new account from now on.
  if (account === undefined) retired(model).delete(mod.cred)
  const seq = target.entries.length + 1
  target.entries.push({ seq, by: mod.by, tot, note: mod.note, idempotencyKey: mod.idempotencyKey })
  if (mod.idempotencyKey !== undefined) target.keys.set(mod.idempotencyKey, { by: mod.by, tot, seq })
  return { tot, seq, replayed: false }
}

interface Rotation {
  cred: string
  to: string
  idempotencyKey?: string
}

/** A rotation (grace 0), as plainly: the account moves to the new credential, with a rotate entry. */
function rotateInModel(model: Model, rotation: Rotation): Outcome {
  const account = model.get(rotation.cred)
  const keyed = account ?? retired(model).get(rotation.cred)
  const first = rotation.idempotencyKey === undefined ? undefined : keyed?.keys.get(rotation.idempotencyKey)
  if (first !== undefined) {
    return first.rotateTo === rotation.to ? { tot: first.tot, seq: first.seq, replayed: true } : { code: 'ACCMAN_IDEMPOTENCY_MISMATCH' }
  }
  if (account === undefined) return { code: 'ACCMAN_NO_ACCOUNT' }
  if (model.has(rotation.to)) return { code: 'ACCMAN_CRED_IN_USE' }
  const tot = account.entries.at(-1)?.tot ?? 0n
  const seq = account.entries.length + 1
  account.entries.push({ seq, by: 0n, tot, note: undefined, idempotencyKey: rotation.idempotencyKey })
  if (rotation.idempotencyKey !== undefined) account.keys.set(rotation.idempotencyKey, { by: 0n, tot, seq, rotateTo: rotation.to })
  model.delete(rotation.cred)
  model.set(rotation.to, account)
  retired(model).set(rotation.cred, account)
  retired(model).delete(rotation.to)
  return { tot, seq, replayed: false }
}

async function rotateInLedger(ledger: Ledger, rotation: Rotation): Promise<Outcome> {
  try {
    const result = await ledger.rotate(credentialKeyOf(rotation.cred), {
      newCredentialKey: credentialKeyOf(rotation.to),
      graceMs: 0,
      ...(rotation.idempotencyKey === undefined ? {} : { idempotencyKey: rotation.idempotencyKey }),
    })
    const body = JSON.parse(result.body) as { tot: string; seq: number }
    return { tot: BigInt(body.tot), seq: body.seq, replayed: result.replayed }
  } catch (error) {
    if (error instanceof LedgerError) return { code: error.code }
    throw error
  }
}

/** A move: both sides or neither; the key is in FROM's key space, on FROM's entry only. */
function applyMoveToModel(model: Model, move: Move): Outcome {
  const from = model.get(move.cred)
  const first = move.idempotencyKey === undefined ? undefined : from?.keys.get(move.idempotencyKey)
  if (first !== undefined) {
    return first.move?.to === move.to && first.by === -move.by
      ? { tot: first.tot, seq: first.seq, replayed: true }
      : { code: 'ACCMAN_IDEMPOTENCY_MISMATCH' }
  }
  const to = model.get(move.to)
  if (from === undefined || to === undefined) return { code: 'ACCMAN_NO_ACCOUNT' }
  if (from.frozen === true) return { code: 'ACCMAN_FROZEN' }
  const fromTot = (from.entries.at(-1)?.tot ?? 0n) - move.by
  if (fromTot < 0n) return { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
  const toTot = (to.entries.at(-1)?.tot ?? 0n) + move.by
  if (toTot > amountMax) return { code: 'ACCMAN_OVERFLOW' }
  const seq = from.entries.length + 1
  from.entries.push({ seq, by: -move.by, tot: fromTot, note: move.note, idempotencyKey: move.idempotencyKey })
  to.entries.push({ seq: to.entries.length + 1, by: move.by, tot: toTot, note: move.note, idempotencyKey: undefined })
  if (move.idempotencyKey !== undefined) from.keys.set(move.idempotencyKey, { by: -move.by, tot: fromTot, seq, move: { to: move.to } })
  return { tot: fromTot, seq, replayed: false }
}

/** A freeze or unfreeze: an entry with by 0, or nothing when the account already is so. */
function applyFreezeToModel(model: Model, freeze: Freeze): Outcome {
  const account = model.get(freeze.cred)
  if (account === undefined) return { code: 'ACCMAN_NO_ACCOUNT' }
  const tot = account.entries.at(-1)?.tot ?? 0n
  if ((account.frozen === true) !== freeze.frozen) {
    account.frozen = freeze.frozen
    account.entries.push({ seq: account.entries.length + 1, by: 0n, tot, note: undefined, idempotencyKey: undefined })
  }
  return { tot, seq: account.entries.length, replayed: false }
}

async function applyToLedger(ledger: Ledger, op: Op): Promise<Outcome> {
  try {
    if (isFreeze(op)) {
      const { tot, seq, replayed } = await ledger.freeze(credentialKeyOf(op.cred), { frozen: op.frozen })
      return { tot, seq, replayed }
    }
    if (isMove(op)) {
      const { tot, seq, replayed } = await ledger.move(credentialKeyOf(op.cred), {
        by: op.by,
        toCredentialKey: credentialKeyOf(op.to),
        ...(op.note === undefined ? {} : { note: op.note }),
        ...(op.idempotencyKey === undefined ? {} : { idempotencyKey: op.idempotencyKey }),
      })
      return { tot, seq, replayed }
    }
    const mod = op
    return await ledger.mod(credentialKeyOf(mod.cred), {
      by: mod.by,
      ...(mod.note === undefined ? {} : { note: mod.note }),
      ...(mod.idempotencyKey === undefined ? {} : { idempotencyKey: mod.idempotencyKey }),
    })
  } catch (error) {
    if (error instanceof LedgerError) return { code: error.code }
    throw error
  }
}

type Real = { ledger: Ledger }

class ModCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly mod: Op) {}
  check = () => true
  async run(model: Model, real: Real) {
    expect(await applyToLedger(real.ledger, this.mod)).toEqual(applyToModel(model, this.mod))
  }
  toString = () => `op(${JSON.stringify(this.mod, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value))})`
}

/** Mods, moves and freezes submitted in one turn, as concurrent requests are: decided in submission order. */
class BurstCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly mods: Op[]) {}
  check = () => true
  async run(model: Model, real: Real) {
    const outcomes = await Promise.all(this.mods.map((mod) => applyToLedger(real.ledger, mod)))
    expect(outcomes).toEqual(this.mods.map((mod) => applyToModel(model, mod)))
  }
  toString = () => `burst(${this.mods.map((op) => (isFreeze(op) ? `${op.cred}:frozen=${op.frozen}` : `${op.cred}${isMove(op) ? `->${op.to}` : ''}:${op.by}${op.idempotencyKey ?? ''}`)).join(',')})`
}

class RotateCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly rotation: Rotation) {}
  check = () => true
  async run(model: Model, real: Real) {
    expect(await rotateInLedger(real.ledger, this.rotation)).toEqual(rotateInModel(model, this.rotation))
  }
  toString = () => `rotate(${JSON.stringify(this.rotation)})`
}

class TotCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly cred: string) {}
  check = () => true
  async run(model: Model, real: Real) {
    const entries = model.get(this.cred)?.entries
    const expected = entries === undefined ? undefined : { tot: entries.at(-1)?.tot, seq: entries.length }
    expect(await real.ledger.tot(credentialKeyOf(this.cred))).toEqual(expected)
  }
  toString = () => `tot(${this.cred})`
}

class PastCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly cred: string,
    readonly limit: number,
    readonly afterSeq: number | undefined,
    readonly order: 'asc' | 'desc',
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    const entries = model.get(this.cred)?.entries
    const query = { limit: this.limit, order: this.order, ...(this.afterSeq === undefined ? {} : { afterSeq: this.afterSeq }) }
    if (entries === undefined) {
      await expect(real.ledger.past(credentialKeyOf(this.cred), query)).rejects.toMatchObject({ code: 'ACCMAN_NO_ACCOUNT' })
      return
    }
    const selected = entries.filter((entry) => entry.seq > (this.afterSeq ?? 0))
    const ordered = this.order === 'asc' ? selected : [...selected].reverse()
    const page = await real.ledger.past(credentialKeyOf(this.cred), query)
    expect(page.tot).toBe(entries.at(-1)?.tot)
    expect(page.seq).toBe(entries.length)
    expect(page.entries.map(({ seq, by, tot, note, idempotencyKey }) => ({ seq, by, tot, note, idempotencyKey }))).toEqual(
      ordered.slice(0, this.limit),
    )
  }
  toString = () => `past(${this.cred}, ${this.limit}, ${this.afterSeq}, ${this.order})`
}

const creds = ['QUFBQQ==', 'QkJCQg==', 'Q0NDQw==', 'abcdefghijklmnopqrstuvwxyz0123456789-_==']
const credArb = fc.constantFrom(...creds)
const nonzero = (arb: fc.Arbitrary<bigint>) => arb.filter((value) => value !== 0n)
const amountArb = fc.oneof(
  nonzero(fc.bigInt({ min: -5n, max: 5n })),
  nonzero(fc.bigInt({ min: -1000n, max: 1000n })),
  fc.bigInt({ min: amountMax - 10n, max: amountMax }),
  fc.bigInt({ min: -amountMax, max: -amountMax + 10n }),
  nonzero(fc.bigInt({ min: -amountMax, max: amountMax })),
)
const modArb: fc.Arbitrary<Mod> = fc.record(
  {
    cred: credArb,
    by: amountArb,
    note: fc.string({ maxLength: 8 }),
    idempotencyKey: fc.constantFrom('k1', 'k2', 'order-7'),
  },
  { requiredKeys: ['cred', 'by'] },
)
const moveArb: fc.Arbitrary<Move> = fc
  .record(
    {
      cred: credArb,
      to: credArb,
      by: fc.oneof(fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: amountMax - 10n, max: amountMax })),
      note: fc.string({ maxLength: 8 }),
      idempotencyKey: fc.constantFrom('k1', 'k2', 'order-7'),
    },
    { requiredKeys: ['cred', 'to', 'by'] },
  )
  .filter((move) => move.cred !== move.to)
const freezeArb: fc.Arbitrary<Freeze> = fc.record({ cred: credArb, frozen: fc.boolean() })
const opArb: fc.Arbitrary<Op> = fc.oneof({ arbitrary: modArb, weight: 6 }, { arbitrary: moveArb, weight: 3 }, { arbitrary: freezeArb, weight: 1 })
const commandsArb = fc.commands(
  [
    opArb.map((op) => new ModCommand(op)),
    fc.array(opArb, { minLength: 2, maxLength: 12 }).map((mods) => new BurstCommand(mods)),
    credArb.map((cred) => new TotCommand(cred)),
    fc
      .record({ cred: credArb, to: credArb, idempotencyKey: fc.constantFrom('k1', 'r1', 'r2') }, { requiredKeys: ['cred', 'to'] })
      .filter((rotation) => rotation.cred !== rotation.to)
      .map((rotation) => new RotateCommand(rotation)),
    fc
      .tuple(credArb, fc.integer({ min: 1, max: 20 }), fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined }), fc.constantFrom('asc' as const, 'desc' as const))
      .map(([cred, limit, after, order]) => new PastCommand(cred, limit, after, order)),
  ],
  { maxCommands: 40 },
)

const seed = process.env.ACCMAN_FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ACCMAN_FC_SEED)
const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

/** Each backend: its name, a function that makes an empty store, and the runs it gets. */
const backends: [string, () => Promise<LedgerStore>, number][] = [
  ['memory-level', () => openLevelStore(new MemoryLevel<string, string>(), { sync: true }), 150],
  [
    'classic-level',
    () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-model-'))
      directories.push(directory)
      return openLevelStore(new ClassicLevel<string, string>(directory), { sync: true })
    },
    40,
  ],
  // A new database per run: fewer runs, each one a real PostgreSQL round trip per round.
  ['PostgreSQL', async () => openPostgresStore(await freshDatabase(), { sync: true, poolMax: 5, timeoutMs: 30_000 }), 12],
]

describe.each(backends)('the ledger on %s behaves like the model', (_name, makeStore, numRuns) => {
  // No cache, a cache smaller than the accounts in play (constant eviction), the default cache.
  test.each([0, 2, undefined])('random runs of tot, mod, bursts and past, account cache of %s', async (accountCacheMax) => {
    await fc.assert(
      fc.asyncProperty(commandsArb, async (commands) => {
        const ledger = await openLedger(await makeStore(), {
          writerBatchMax: 5,
          writerQueueMax: 1000,
          ...(accountCacheMax === undefined ? {} : { accountCacheMax }),
        })
        try {
          await fc.asyncModelRun(() => ({ model: new Map(), real: { ledger } }), commands)
        } finally {
          await ledger.close()
        }
      }),
      { seed, numRuns, endOnFailure: false },
    )
  })
})

// The decision itself, driven directly: any sequence of mods, with time moving on (or not),
// decided by decideMod against the states its own writes left, gives what a plain model with
// an idempotency window gives, and the writes it returns are exactly the model's new records.
interface TimedMod extends Mod {
  /** The clock moves by this much before the mod (0: the same round). */
  stepMs: number
}
interface WindowedModelAccount {
  entries: Array<ModelEntry & { atMs: number }>
  keys: Map<string, { by: bigint; tot: bigint; seq: number; atMs: number }>
}
const windowMs = 100
const legacyAtMs = 1_000

/** The specification with time: a key is replayed while younger than the window. */
function applyToWindowedModel(model: Map<string, WindowedModelAccount>, mod: Mod, nowMs: number): Outcome {
  const account = model.get(mod.cred)
  const first = mod.idempotencyKey === undefined ? undefined : account?.keys.get(mod.idempotencyKey)
  if (first !== undefined && nowMs - first.atMs < windowMs) {
    return first.by === mod.by ? { tot: first.tot, seq: first.seq, replayed: true } : { code: 'ACCMAN_IDEMPOTENCY_MISMATCH' }
  }
  if (account === undefined && mod.by < 0n) return { code: 'ACCMAN_NO_ACCOUNT' }
  const last = account?.entries.at(-1)
  const tot = (last?.tot ?? 0n) + mod.by
  if (tot < 0n) return { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
  if (tot > amountMax) return { code: 'ACCMAN_OVERFLOW' }
  const target: WindowedModelAccount = account ?? { entries: [], keys: new Map() }
  model.set(mod.cred, target)
  const seq = target.entries.length + 1
  const atMs = Math.max(nowMs, last?.atMs ?? 0)
  target.entries.push({ seq, by: mod.by, tot, atMs, note: mod.note, idempotencyKey: mod.idempotencyKey })
  if (mod.idempotencyKey !== undefined) target.keys.set(mod.idempotencyKey, { by: mod.by, tot, seq, atMs })
  return { tot, seq, replayed: false }
}

const timedModArb: fc.Arbitrary<TimedMod> = fc
  .tuple(modArb, fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 40 }), fc.integer({ min: windowMs - 2, max: windowMs + 2 })))
  .map(([mod, stepMs]) => ({ ...mod, stepMs }))

describe('decideMod, the pure decision, behaves like the model', () => {
  test('any sequence of mods over time, with the idempotency window', () => {
    fc.assert(
      fc.property(fc.array(timedModArb, { maxLength: 80 }), fc.integer({ min: 0, max: 2 ** 40 }), (mods, startMs) => {
        const model = new Map<string, WindowedModelAccount>()
        const accounts = new Map<string, AccountState>()
        const records = new Map<string, IdempotencyState>()
        let clockMs = startMs
        for (const mod of mods) {
          clockMs += mod.stepMs
          const context = { atMs: clockMs, idempotencyClockMs: clockMs, idempotencyWindowMs: windowMs, legacyIdempotencyAtMs: legacyAtMs }
          const recordKey = mod.idempotencyKey === undefined ? undefined : `${mod.cred}!${mod.idempotencyKey}`
          const account = accounts.get(mod.cred)
          const record = recordKey === undefined ? undefined : records.get(recordKey)
          const input = Object.freeze({
            by: mod.by,
            ...(mod.note === undefined ? {} : { note: mod.note }),
            ...(mod.idempotencyKey === undefined ? {} : { idempotencyKey: mod.idempotencyKey }),
          })
          // Frozen inputs: a decision that wrote to its arguments would throw here.
          const decision = decideMod(
            account === undefined ? undefined : Object.freeze({ ...account }),
            record === undefined ? undefined : Object.freeze({ ...record }),
            input,
            Object.freeze(context),
          )
          // Pure: the same arguments give the same decision.
          expect(decideMod(account, record, input, context)).toEqual(decision)
          const expected = applyToWindowedModel(model, mod, clockMs)
          if ('refusal' in decision) {
            expect({ code: decision.refusal.code }).toEqual(expected)
            if (decision.refusal.code === 'ACCMAN_INSUFFICIENT_FUNDS') expect(decision.refusal.tot).toBe(account?.tot)
            continue
          }
          expect(decision.result).toEqual(expected)
          if (decision.writes === undefined) {
            expect(decision.result.replayed).toBe(true)
            continue
          }
          const modelAccount = model.get(mod.cred)
          const entry = modelAccount?.entries.at(-1)
          assert(entry !== undefined)
          const { note, idempotencyKey, ...required } = entry
          expect(decision.writes.entry).toEqual({
            ...required,
            ...(note === undefined ? {} : { note }),
            ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
          })
          // The account keeps the time of its first entry.
          expect(decision.writes.account).toEqual({ tot: entry.tot, seq: entry.seq, atMs: entry.atMs, createdMs: modelAccount?.entries[0]?.atMs })
          expect(decision.writes.idempotency).toEqual(
            mod.idempotencyKey === undefined ? undefined : modelAccount?.keys.get(mod.idempotencyKey),
          )
          accounts.set(mod.cred, decision.writes.account)
          if (recordKey !== undefined && decision.writes.idempotency !== undefined) records.set(recordKey, decision.writes.idempotency)
        }
      }),
      { seed, numRuns: 300 },
    )
  })

  test('a record from before the window carries no time: it counts as written at the ledger start', () => {
    const account: AccountState = { tot: 10n, seq: 1, atMs: 500 }
    const legacy: IdempotencyState = { by: 10n, tot: 10n, seq: 1, atMs: undefined }
    const input = { by: 10n, idempotencyKey: 'k1' }
    const at = (clockMs: number) => ({ atMs: clockMs, idempotencyClockMs: clockMs, idempotencyWindowMs: windowMs, legacyIdempotencyAtMs: legacyAtMs })
    expect(decideMod(account, legacy, input, at(legacyAtMs + windowMs - 1))).toEqual({
      result: { tot: 10n, seq: 1, replayed: true },
      writes: undefined,
    })
    const expired = decideMod(account, legacy, input, at(legacyAtMs + windowMs))
    expect(expired).toEqual({
      result: { tot: 20n, seq: 2, replayed: false },
      writes: {
        account: { tot: 20n, seq: 2, atMs: legacyAtMs + windowMs },
        entry: { seq: 2, by: 10n, tot: 20n, atMs: legacyAtMs + windowMs, idempotencyKey: 'k1' },
        idempotency: { by: 10n, tot: 20n, seq: 2, atMs: legacyAtMs + windowMs },
      },
    })
  })

  test('an entry never goes back in time, whatever the clock says', () => {
    const account: AccountState = { tot: 1n, seq: 4, atMs: 9_000 }
    const context = { atMs: 5_000, idempotencyClockMs: 5_000, idempotencyWindowMs: windowMs, legacyIdempotencyAtMs: 0 }
    const decision = decideMod(account, undefined, { by: 1n }, context)
    expect('writes' in decision && decision.writes?.entry).toEqual({ seq: 5, by: 1n, tot: 2n, atMs: 9_000 })
  })
})
