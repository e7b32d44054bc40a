// Model-based property test of holds: random runs of mod, hold, settle, void, the expiry pass,
// the clock moving on, and reads, against the ledger core on memory-level, classic-level and
// PostgreSQL, compared step by step with a plain reference model of tot, held and avail per
// account. On PostgreSQL the clock is the database's: the runs there keep holds long-lived.
// Seeded and replayable: a failure prints its seed and path; ACCMAN_FC_SEED=<seed> replays it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import fc from 'fast-check'
import { MemoryLevel } from 'memory-level'
import { afterAll, describe, expect, test } from 'vitest'
import { credentialKeyOf, LedgerError, openLedger, type Ledger, type LedgerStore } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'

interface ModelHold {
  by: bigint
  expiresMs: number
  closed?: 'settle' | 'void' | 'expire'
}
interface ModelAccount {
  tot: bigint
  seq: number
  /** Every hold in the order opened (the real ids are kept in the same order). */
  holds: ModelHold[]
}
interface Model {
  accounts: Map<string, ModelAccount>
  clockMs: number
}
interface Real {
  ledger: Ledger
  ids: Map<string, string[]>
  clock: { ms: number }
}
type Outcome = { code: string } | { tot: bigint; held: bigint; seq: number }

const heldOf = (account: ModelAccount, nowMs: number) =>
  account.holds.reduce((sum, hold) => (hold.closed === undefined && hold.expiresMs > nowMs ? sum + hold.by : sum), 0n)

/** Writes the due expiries of an account, as every write to it does first. */
function expireDue(account: ModelAccount, nowMs: number): void {
  const due = account.holds.filter((hold) => hold.closed === undefined && hold.expiresMs <= nowMs)
  for (const hold of due) hold.closed = 'expire'
  account.seq += due.length
}

function figures(account: ModelAccount, nowMs: number): Outcome {
  return { tot: account.tot, held: heldOf(account, nowMs), seq: account.seq }
}

async function outcomeOf(action: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await action()
  } catch (error) {
    if (error instanceof LedgerError) return { code: error.code }
    throw error
  }
}

const creds = ['QUFBQQ==', 'QkJCQg==']

class ModCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly cred: string, readonly by: bigint) {}
  check = () => true
  async run(model: Model, real: Real) {
    const account = model.accounts.get(this.cred)
    let expected: Outcome
    if (account === undefined && this.by < 0n) expected = { code: 'ACCMAN_NO_ACCOUNT' }
    else {
      const target = account ?? { tot: 0n, seq: 0, holds: [] }
      expireDue(target, model.clockMs)
      if (target.tot + this.by < heldOf(target, model.clockMs)) expected = { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
      else {
        target.tot += this.by
        target.seq += 1
        model.accounts.set(this.cred, target)
        expected = figures(target, model.clockMs)
      }
    }
    const actual = await outcomeOf(async () => {
      const result = await real.ledger.mod(credentialKeyOf(this.cred), { by: this.by })
      return { tot: result.tot, held: result.held ?? 0n, seq: result.seq }
    })
    expect(actual).toEqual(expected)
  }
  toString = () => `mod(${this.cred}, ${this.by})`
}

class HoldCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly cred: string, readonly by: bigint, readonly ttlMs: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    const account = model.accounts.get(this.cred)
    let expected: Outcome
    if (account === undefined) expected = { code: 'ACCMAN_NO_ACCOUNT' }
    else {
      expireDue(account, model.clockMs)
      if (account.tot - heldOf(account, model.clockMs) < this.by) expected = { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
      else {
        account.holds.push({ by: this.by, expiresMs: model.clockMs + this.ttlMs })
        account.seq += 1
        expected = figures(account, model.clockMs)
      }
    }
    const actual = await outcomeOf(async () => {
      const result = await real.ledger.hold(credentialKeyOf(this.cred), { by: this.by, ttlMs: this.ttlMs })
      real.ids.set(this.cred, [...(real.ids.get(this.cred) ?? []), result.hold])
      return { tot: result.tot, held: result.held, seq: result.seq }
    })
    expect(actual).toEqual(expected)
  }
  toString = () => `hold(${this.cred}, ${this.by}, ${this.ttlMs})`
}

/** A settle (with or without by) or void of the account's n-th hold (modulo), or of an id it never had. */
class ReleaseCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly cred: string,
    readonly op: 'settle' | 'void',
    readonly index: number | undefined,
    readonly by: bigint | undefined,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    const account = model.accounts.get(this.cred)
    const ids = real.ids.get(this.cred) ?? []
    const position = this.index === undefined || ids.length === 0 ? undefined : this.index % ids.length
    const holdId = position === undefined ? 'AAAAAAAAAAAAAAAAAAAAAA' : (ids[position] ?? '')
    let expected: Outcome
    if (account === undefined) expected = { code: 'ACCMAN_NO_ACCOUNT' }
    else {
      expireDue(account, model.clockMs)
      const hold = position === undefined ? undefined : account.holds[position]
      const settled = this.op === 'settle' ? (this.by ?? hold?.by ?? 0n) : 0n
      if (hold === undefined) expected = { code: 'ACCMAN_NO_HOLD' }
      else if (hold.closed === 'settle' || hold.closed === 'void') expected = { code: 'ACCMAN_HOLD_CLOSED' }
      else if (hold.closed === 'expire') expected = { code: 'ACCMAN_HOLD_EXPIRED' }
      else if (this.op === 'settle' && settled > hold.by) expected = { code: 'ACCMAN_HOLD_EXCEEDED' }
      else {
        hold.closed = this.op
        account.tot -= settled
        account.seq += 1
        expected = figures(account, model.clockMs)
      }
    }
    const actual = await outcomeOf(async () => {
      const key = credentialKeyOf(this.cred)
      const result =
        this.op === 'settle'
          ? await real.ledger.settle(key, { holdId, ...(this.by === undefined ? {} : { by: this.by }) })
          : await real.ledger.void(key, { holdId })
      return { tot: result.tot, held: result.held, seq: result.seq }
    })
    expect(actual).toEqual(expected)
  }
  toString = () => `${this.op}(${this.cred}, ${this.index}, ${this.by})`
}

class TickCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly stepMs: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.clockMs += this.stepMs
    real.clock.ms += this.stepMs
  }
  toString = () => `tick(${this.stepMs})`
}

class ExpiryPassCommand implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(model: Model, real: Real) {
    for (const account of model.accounts.values()) expireDue(account, model.clockMs)
    await real.ledger.expireDueHolds(100)
  }
  toString = () => 'expiryPass()'
}

/** tot, held and seq as of now; the history chains, and ends at the account. */
class ReadCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly cred: string) {}
  check = () => true
  async run(model: Model, real: Real) {
    const account = model.accounts.get(this.cred)
    const key = credentialKeyOf(this.cred)
    const balance = await real.ledger.tot(key)
    if (account === undefined) {
      expect(balance).toBeUndefined()
      return
    }
    expect({ tot: balance?.tot, held: balance?.held ?? 0n, seq: balance?.seq }).toEqual(figures(account, model.clockMs))
    const listed = await real.ledger.holds(key)
    expect(listed.held).toBe(heldOf(account, model.clockMs))
    const page = await real.ledger.past(key, { limit: 1000, order: 'asc' })
    let tot = 0n
    let held = 0n
    for (const entry of page.entries) {
      tot += entry.by
      held += entry.heldBy ?? 0n
      expect([entry.tot, entry.held ?? 0n]).toEqual([tot, held])
      expect(tot - held >= 0n).toBe(true)
    }
    expect(page.entries.length).toBe(account.seq)
  }
  toString = () => `read(${this.cred})`
}

function commandsOf(clockMoves: boolean) {
  const cred = fc.constantFrom(...creds)
  const small = fc.bigInt({ min: 1n, max: 20n })
  const ttl = clockMoves ? fc.constantFrom(1000, 2000, 5000) : fc.constant(600_000)
  const commands: Array<fc.Arbitrary<fc.AsyncCommand<Model, Real>>> = [
    fc.tuple(cred, fc.oneof(small, small.map((by) => -by))).map(([c, by]) => new ModCommand(c, by)),
    fc.tuple(cred, small, ttl).map(([c, by, ms]) => new HoldCommand(c, by, ms)),
    fc
      .tuple(cred, fc.constantFrom('settle' as const, 'void' as const), fc.option(fc.nat(20), { nil: undefined }), fc.option(small, { nil: undefined }))
      .map(([c, op, index, by]) => new ReleaseCommand(c, op, index, by)),
    cred.map((c) => new ReadCommand(c)),
    fc.constant(new ExpiryPassCommand()),
  ]
  if (clockMoves) commands.push(fc.constantFrom(1, 500, 999, 1000, 2500).map((ms) => new TickCommand(ms)))
  return fc.commands(commands, { maxCommands: 40 })
}

const seed = process.env.ACCMAN_FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ACCMAN_FC_SEED)
const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

/** Each backend: its name, a store maker, whether the ledger's clock can be injected, and its runs. */
const backends: [string, () => Promise<LedgerStore>, boolean, number][] = [
  ['memory-level', () => openLevelStore(new MemoryLevel<string, string>(), { sync: true }), true, 150],
  [
    'classic-level',
    () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-holds-model-'))
      directories.push(directory)
      return openLevelStore(new ClassicLevel<string, string>(directory), { sync: true })
    },
    true,
    30,
  ],
  ['PostgreSQL', async () => openPostgresStore(await freshDatabase(), { sync: true, poolMax: 5, timeoutMs: 30_000 }), false, 10],
]

describe.each(backends)('holds on %s behave like the model of tot, held and avail', (_name, makeStore, clockMoves, numRuns) => {
  test('random runs of mod, hold, settle, void, expiry and reads', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(clockMoves), async (commands) => {
        const clock = { ms: Date.parse('2026-11-30T12:00:00.000Z') }
        const ledger = await openLedger(await makeStore(), {
          writerBatchMax: 5,
          writerQueueMax: 1000,
          holdExpiry: false,
          ...(clockMoves ? { now: () => clock.ms } : {}),
        })
        try {
          // On PostgreSQL no hold expires within a run: the model's clock stays put.
          await fc.asyncModelRun(() => ({ model: { accounts: new Map(), clockMs: clock.ms }, real: { ledger, ids: new Map(), clock } }), commands)
        } finally {
          await ledger.close()
        }
      }),
      { seed, numRuns, endOnFailure: false },
    )
  })
})
