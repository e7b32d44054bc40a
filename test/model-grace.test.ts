// Model-based test of rotations with a grace, on a clock the test moves: random runs of credits,
// debits, rotations (grace 0, or a few milliseconds), clock steps and reads, against the ledger on
// memory-level and classic-level, compared step by step with a plain model of which credential
// addresses which account until when. PostgreSQL decides on its own clock, which a test cannot
// move; the grace is checked there through a real server (test/accounts-e2e.test.ts).
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

interface ModelAccount {
  tot: bigint
  seq: number
}
interface ModelCredential {
  account: ModelAccount
  /** From this instant on the credential addresses nothing; absent: never. */
  retiresMs?: number
}
interface Model {
  nowMs: number
  credentials: Map<string, ModelCredential>
}
type Outcome = { tot: bigint; seq: number } | { code: string }

/** The account a credential addresses now, if any. */
function liveAccount(model: Model, cred: string): ModelAccount | undefined {
  const credential = model.credentials.get(cred)
  if (credential === undefined) return undefined
  return credential.retiresMs === undefined || model.nowMs < credential.retiresMs ? credential.account : undefined
}

/** A credit or debit: a credential that addresses nothing opens a new account on a credit. */
function modInModel(model: Model, cred: string, by: bigint): Outcome {
  const account = liveAccount(model, cred)
  if (account === undefined) {
    if (by < 0n) return { code: 'ACCMAN_NO_ACCOUNT' }
    const opened = { tot: by, seq: 1 }
    model.credentials.set(cred, { account: opened })
    return { tot: opened.tot, seq: opened.seq }
  }
  if (account.tot + by < 0n) return { code: 'ACCMAN_INSUFFICIENT_FUNDS' }
  account.tot += by
  account.seq += 1
  return { tot: account.tot, seq: account.seq }
}

/** A rotation: `to` addresses the account from now on, `cred` until now + grace (never later than before). */
function rotateInModel(model: Model, cred: string, to: string, graceMs: number): Outcome {
  const account = liveAccount(model, cred)
  if (account === undefined) return { code: 'ACCMAN_NO_ACCOUNT' }
  if (liveAccount(model, to) !== undefined) return { code: 'ACCMAN_CRED_IN_USE' }
  account.seq += 1
  const old = model.credentials.get(cred)
  const retiresMs = Math.min(model.nowMs + graceMs, old?.retiresMs ?? Number.MAX_SAFE_INTEGER)
  model.credentials.set(cred, { account, retiresMs })
  model.credentials.set(to, { account })
  return { tot: account.tot, seq: account.seq }
}

async function outcomeOf(call: Promise<{ tot: bigint; seq: number }>): Promise<Outcome> {
  try {
    const { tot, seq } = await call
    return { tot, seq }
  } catch (error) {
    if (error instanceof LedgerError) return { code: error.code }
    throw error
  }
}

interface Real {
  ledger: Ledger
  clock: { nowMs: number }
}

class ModCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly cred: string,
    readonly by: bigint,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    const expected = modInModel(model, this.cred, this.by)
    expect(await outcomeOf(real.ledger.mod(credentialKeyOf(this.cred), { by: this.by }))).toEqual(expected)
  }
  toString = () => `mod(${this.cred}, ${this.by})`
}

class RotateCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly cred: string,
    readonly to: string,
    readonly graceMs: number,
  ) {}
  check = () => true
  async run(model: Model, real: Real) {
    const expected = rotateInModel(model, this.cred, this.to, this.graceMs)
    const rotation = real.ledger
      .rotate(credentialKeyOf(this.cred), { newCredentialKey: credentialKeyOf(this.to), graceMs: this.graceMs })
      .then((result) => JSON.parse(result.body) as { tot: string; seq: number })
      .then((body) => ({ tot: BigInt(body.tot), seq: body.seq }))
    expect(await outcomeOf(rotation)).toEqual(expected)
  }
  toString = () => `rotate(${this.cred} -> ${this.to}, grace ${this.graceMs} ms)`
}

class StepCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly stepMs: number) {}
  check = () => true
  async run(model: Model, real: Real) {
    model.nowMs += this.stepMs
    real.clock.nowMs += this.stepMs
  }
  toString = () => `step(${this.stepMs} ms)`
}

/** What each credential addresses now: the same balances, and the same account behind two credentials. */
class ReadAllCommand implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(model: Model, real: Real) {
    const accountKeys = new Map<ModelAccount, string | undefined>()
    for (const cred of creds) {
      const account = liveAccount(model, cred)
      const balance = await real.ledger.tot(credentialKeyOf(cred))
      expect(balance === undefined ? undefined : { tot: balance.tot, seq: balance.seq }, cred).toEqual(
        account === undefined ? undefined : { tot: account.tot, seq: account.seq },
      )
      if (account === undefined) continue
      const accountKey = await real.ledger.resolve(credentialKeyOf(cred))
      if (accountKeys.has(account)) expect(accountKey, `${cred} addresses the same account`).toBe(accountKeys.get(account))
      else {
        expect([...accountKeys.values()], `${cred} addresses an account of its own`).not.toContain(accountKey)
        accountKeys.set(account, accountKey)
      }
    }
  }
  toString = () => 'readAll()'
}

const creds = ['R0dHRw==', 'SEhISA==', 'SUlJSQ==', 'SkpKSg==']
const credArb = fc.constantFrom(...creds)
const graces = [0, 5, 50]
const commandsArb = fc.commands(
  [
    fc.tuple(credArb, fc.oneof(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: -100n, max: -1n }))).map(([cred, by]) => new ModCommand(cred, by)),
    fc
      .tuple(credArb, credArb, fc.constantFrom(...graces))
      .filter(([cred, to]) => cred !== to)
      .map(([cred, to, graceMs]) => new RotateCommand(cred, to, graceMs)),
    // Steps that land just before, on and just after a grace's end.
    fc.constantFrom(0, 1, 4, 5, 6, 49, 50, 51).map((stepMs) => new StepCommand(stepMs)),
    fc.constant(new ReadAllCommand()),
  ],
  { maxCommands: 50 },
)

const seed = process.env.ACCMAN_FC_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.ACCMAN_FC_SEED)
const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

const backends: [string, () => LedgerStore | Promise<LedgerStore>, number][] = [
  ['memory-level', () => openLevelStore(new MemoryLevel<string, string>(), { sync: true }), 200],
  [
    'classic-level',
    () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-model-grace-'))
      directories.push(directory)
      return openLevelStore(new ClassicLevel<string, string>(directory), { sync: true })
    },
    40,
  ],
]

describe.each(backends)('rotations with a grace on %s behave like the model', (_name, makeStore, numRuns) => {
  test.each([0, 2, undefined])('random runs of mods, rotations, clock steps and reads, account cache of %s', async (accountCacheMax) => {
    await fc.assert(
      fc.asyncProperty(commandsArb, async (commands) => {
        const startMs = 1_800_000_000_000
        const clock = { nowMs: startMs }
        const ledger = await openLedger(await makeStore(), {
          writerBatchMax: 5,
          writerQueueMax: 1000,
          now: () => clock.nowMs,
          holdExpiry: false,
          ...(accountCacheMax === undefined ? {} : { accountCacheMax }),
        })
        try {
          await fc.asyncModelRun(() => ({ model: { nowMs: startMs, credentials: new Map() }, real: { ledger, clock } }), commands)
        } finally {
          await ledger.close()
        }
      }),
      { seed, numRuns, endOnFailure: false },
    )
  })
})
