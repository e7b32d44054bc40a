// The deterministic simulator: the ledger core driven by concurrent submitters over a store that
// injects faults (see faulty-level.ts), crashed and restarted as a supervisor would, with its
// clock stepped at random; after every tick the store, the ledger's answers and its cache are
// checked against a plain model. One seeded PRNG decides everything, and the event loop only
// turns when the simulator lets it, so a seed and a tick count replay a run exactly.
import assert from 'node:assert/strict'
import { openLedger, type Ledger } from '../ledger/index.js'
import { credentialKeyOf, decodeAccount, decodeCredential, decodeEntry, decodeIdempotency, historyKeyOf, parseIdempotencyKey } from '../ledger/codec.js'
import { isLedgerError } from '../ledger/errors.js'
import { openLevelStore, tablesOf } from '../ledger/level/store.js'
import type { AccountKey, CredentialKey, Entry } from '../ledger/types.js'
import { Disk, FaultyLevel, noFaults, type FaultRates } from './faulty-level.js'
import { Prng } from './prng.js'

/** The simulation's shape: small on purpose, so that accounts collide and faults meet each other. */
export const simLimits = {
  accounts: 6,
  submitters: 12,
  /** Event-loop turns that let every runnable step finish; more are never needed for a tick. */
  settleTurns: 6,
  /** Turns a close or a start may take before the simulator calls it stuck. */
  stuckTurnsMax: 200,
  /** Every this many ticks the whole store is checked, not only what changed. */
  fullCheckEvery: 50,
} as const

export interface SimReport {
  seed: number
  ticks: number
  mods: { sent: number; acknowledged: number; replayed: number; refused: number; unknown: number }
  crashes: number
  cleanRestarts: number
  fatalStops: number
  injected: { writeFailures: number; writeFailuresAfterApply: number; writesHeld: number; readFailures: number }
  entries: number
}

export class SimFailure extends Error {
  override readonly name = 'SimFailure'
  constructor(
    readonly seed: number,
    readonly tick: number,
    readonly reason: string,
  ) {
    super(`seed ${seed} tick ${tick}: ${reason}`)
  }
}

/** One mod as the model knows it; a retry re-sends the same id, key and amount. */
interface ModRecord {
  id: string
  /** The credential the mod names (the store's account key is what the credentials table maps it to). */
  accountKey: CredentialKey
  by: bigint
  key: string | undefined
  status: 'pending' | 'acknowledged' | 'refused' | 'unknown'
  seq?: number
  tot?: bigint
}

interface Submitter {
  current: ModRecord | undefined
  /** The incarnation of the ledger the current attempt went to; answers from older ones are void. */
  generation: number
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

export async function runSeed(seed: number, ticks: number): Promise<SimReport> {
  return new Simulation(seed).run(ticks)
}

class Simulation {
  readonly #seed: number
  readonly #random: Prng
  readonly #disk = new Disk()
  readonly #rates: FaultRates
  readonly #accountKeys: CredentialKey[]
  /** The store's accounts by their credential, as the credentials table had them at the last check. */
  #credentialOf = new Map<AccountKey, CredentialKey>()
  #accountIdsIssued = 0
  readonly #mods = new Map<string, ModRecord>()
  readonly #submitters: Submitter[]
  #db: FaultyLevel | undefined
  #ledger: Ledger | undefined
  #generation = 0
  #fatal = false
  #nowMs = 1_800_000_000_000
  #tick = 0
  #modCount = 0
  /** Per account, the history already checked: its length and the text of its last entry. */
  readonly #checked = new Map<AccountKey, { seq: number; lastValue: string; tot: bigint; atMs: number }>()
  /** Where each mod id was found in the store, so that a second copy is caught wherever it lands. */
  readonly #placed = new Map<string, string>()
  /** Acknowledged since the last check; a full check looks at every acknowledged mod. */
  #newlyAcknowledged: ModRecord[] = []
  readonly #report: SimReport

  constructor(seed: number) {
    this.#seed = seed
    this.#random = new Prng(seed)
    // Each seed gets its own fault mix, from none to harsh.
    const harshness = this.#random.pick([0, 0.5, 1, 2])
    this.#rates = {
      writeFailure: 0.01 * harshness,
      writeFailureAfterApply: 0.005 * harshness,
      writeHeld: this.#random.pick([0, 0.2, 0.5]),
      readFailure: 0.01 * harshness,
    }
    this.#accountKeys = Array.from({ length: simLimits.accounts }, (_, index) => credentialKeyOf(`sim-account-${index}`))
    this.#submitters = Array.from({ length: simLimits.submitters }, () => ({ current: undefined, generation: 0 }))
    this.#report = {
      seed,
      ticks: 0,
      mods: { sent: 0, acknowledged: 0, replayed: 0, refused: 0, unknown: 0 },
      crashes: 0,
      cleanRestarts: 0,
      fatalStops: 0,
      injected: { writeFailures: 0, writeFailuresAfterApply: 0, writesHeld: 0, readFailures: 0 },
      entries: 0,
    }
  }

  #fail(reason: string): never {
    throw new SimFailure(this.#seed, this.#tick, reason)
  }

  #check(condition: boolean, reason: () => string): asserts condition {
    if (!condition) this.#fail(reason())
  }

  async run(ticks: number): Promise<SimReport> {
    for (this.#tick = 1; this.#tick <= ticks; this.#tick++) {
      try {
        await this.#step()
        // Whether a tick's check is full depends on the tick alone, so --ticks T replays tick T exactly.
        await this.#checkInvariants(this.#tick % simLimits.fullCheckEvery === 0)
      } catch (error) {
        this.#rethrow(error)
      }
    }
    this.#tick = ticks
    try {
      await this.#checkInvariants(true)
    } catch (error) {
      this.#rethrow(error)
    }
    this.#report.ticks = ticks
    if (this.#db !== undefined) this.#addInjected(this.#db)
    this.#db?.crash()
    return this.#report
  }

  /** A broken assertion in the core, or anything else thrown at the simulator, is a failure too. */
  #rethrow(error: unknown): never {
    if (error instanceof SimFailure) throw error
    this.#fail(`uncaught ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
  }

  async #step(): Promise<void> {
    if (this.#ledger === undefined) {
      await this.#start()
      return
    }
    const db = this.#db
    assert.ok(db !== undefined)
    // The clock mostly moves forward, sometimes not at all, now and then back (a clock step).
    this.#nowMs += this.#random.pick([0, 0, 1, 7, 250, 1000, 60_000, -500])
    const roll = this.#random.fraction()
    if (roll < 0.01) {
      this.#crash()
      return
    }
    if (roll < 0.02) {
      await this.#cleanRestart()
      return
    }
    for (const submitter of this.#submitters) {
      if (submitter.current === undefined && this.#random.chance(0.3)) this.#submit(submitter, this.#newMod())
    }
    if (db.heldCount > 0) db.release(this.#random.integer(0, db.heldCount))
    await this.#settle()
    if (this.#fatal) this.#crash()
  }

  async #settle(): Promise<void> {
    for (let turn = 0; turn < simLimits.settleTurns; turn++) await settle()
  }

  /** Waits for a promise while turning the event loop a bounded number of times. */
  async #bounded<T>(promise: Promise<T>, what: string): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined
    promise.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    )
    for (let turn = 0; turn < simLimits.stuckTurnsMax && outcome === undefined; turn++) {
      this.#db?.release(this.#db.heldCount)
      await settle()
    }
    if (outcome === undefined) this.#fail(`${what} did not finish`)
    if ('error' in outcome) throw outcome.error
    return outcome.value
  }

  /** A new process: the store as the disk kept it, the ledger loaded from it (which may fail). */
  async #start(): Promise<void> {
    this.#generation++
    this.#fatal = false
    const db = await FaultyLevel.fromDisk(this.#disk, this.#random)
    db.setRates(this.#rates)
    this.#db = db
    this.#checked.clear()
    this.#placed.clear()
    try {
      this.#ledger = await this.#bounded(
        openLevelStore(db, { sync: true }).then((store) => openLedger(store, {
          writerBatchMax: 4,
          writerQueueMax: 32,
          writerRoundsInFlightMax: 2,
          accountCacheMax: 3,
          now: () => this.#nowMs,
          // The background expiry pass runs on a real timer, which would make a run depend on the
          // machine's speed; the simulator makes no holds, so it has nothing to expire.
          holdExpiry: false,
          // Ids from a counter, so a seed replays exactly (never reused: the counter outlives restarts).
          newAccountKey: () => String(this.#accountIdsIssued++).padStart(22, 'A') as AccountKey,
          onFatal: () => {
            this.#fatal = true
            this.#report.fatalStops++
          },
        })),
        'starting the ledger',
      )
    } catch (error) {
      if (error instanceof SimFailure) throw error
      // A read failed while loading: the supervisor starts the process again next tick.
      this.#crash()
    }
  }

  /** The process dies: whatever was in flight gets no answer, and is retried if it had a key. */
  #crash(): void {
    this.#report.crashes++
    if (this.#db !== undefined) {
      this.#addInjected(this.#db)
      this.#db.crash()
    }
    this.#db = undefined
    this.#ledger = undefined
    for (const submitter of this.#submitters) {
      if (submitter.current?.status === 'pending') this.#lost(submitter)
    }
  }

  #addInjected(db: FaultyLevel): void {
    for (const name of Object.keys(db.injected) as (keyof SimReport['injected'])[]) this.#report.injected[name] += db.injected[name]
  }

  async #cleanRestart(): Promise<void> {
    const ledger = this.#ledger
    assert.ok(ledger !== undefined)
    this.#report.cleanRestarts++
    try {
      await this.#bounded(ledger.close(), 'a clean close')
    } catch (error) {
      if (error instanceof SimFailure) throw error
      // The close's own write failed: as good as a crash.
    }
    await this.#settle()
    this.#crash()
    this.#report.crashes--
  }

  #newMod(): ModRecord {
    this.#modCount++
    const credit = this.#random.chance(0.5)
    const by = credit ? BigInt(this.#random.integer(1, 100)) : -BigInt(this.#random.integer(1, 150))
    return {
      id: `m${this.#modCount}`,
      accountKey: this.#random.pick(this.#accountKeys),
      by,
      key: this.#random.chance(0.8) ? `k${this.#modCount}` : undefined,
      status: 'pending',
    }
  }

  /** An attempt that can never be answered: retried later with the same key, or given up. */
  #lost(submitter: Submitter): void {
    const mod = submitter.current
    assert.ok(mod !== undefined)
    mod.status = 'unknown'
    if (mod.key === undefined || !this.#random.chance(0.8)) {
      this.#report.mods.unknown++
      submitter.current = undefined
    }
  }

  #submit(submitter: Submitter, mod: ModRecord): void {
    const ledger = this.#ledger
    assert.ok(ledger !== undefined)
    this.#mods.set(mod.id, mod)
    mod.status = 'pending'
    submitter.current = mod
    submitter.generation = this.#generation
    this.#report.mods.sent++
    const generation = this.#generation
    ledger
      .mod(mod.accountKey, { by: mod.by, note: mod.id, ...(mod.key === undefined ? {} : { idempotencyKey: mod.key }) })
      .then(
        (result) => {
          if (generation !== this.#generation) return
          mod.status = 'acknowledged'
          mod.seq = result.seq
          mod.tot = result.tot
          this.#report.mods.acknowledged++
          this.#newlyAcknowledged.push(mod)
          if (result.replayed) this.#report.mods.replayed++
          submitter.current = undefined
        },
        (error: unknown) => {
          if (generation !== this.#generation) return
          if (isLedgerError(error) && ['ACCMAN_INSUFFICIENT_FUNDS', 'ACCMAN_NO_ACCOUNT', 'ACCMAN_QUEUE_FULL'].includes(error.code)) {
            mod.status = 'refused'
            this.#report.mods.refused++
            submitter.current = undefined
          } else {
            this.#lost(submitter)
          }
        },
      )
  }

  /** Retries every submitter's unanswered keyed mod at some point; called as part of a tick. */
  #retryLost(): void {
    for (const submitter of this.#submitters) {
      const mod = submitter.current
      if (mod?.status === 'unknown' && this.#random.chance(0.5)) this.#submit(submitter, mod)
    }
  }

  async #checkInvariants(full: boolean): Promise<void> {
    const db = this.#db
    const ledger = this.#ledger
    if (db === undefined || ledger === undefined) return
    this.#retryLost()
    await this.#settle()
    if (this.#fatal) {
      this.#crash()
      return
    }
    db.setRates(noFaults)
    try {
      await this.#checkStore(db, full)
      for (const accountKey of this.#accountKeys) {
        const fromLedger = await ledger.tot(accountKey)
        const credential = await tablesOf(db).credentials.get(accountKey)
        const storeKey = credential === undefined ? undefined : decodeCredential(accountKey, credential).accountKey
        const value = storeKey === undefined ? undefined : await tablesOf(db).accounts.get(storeKey)
        const stored = value === undefined || storeKey === undefined ? undefined : decodeAccount(storeKey, value)
        this.#check(
          fromLedger?.tot === stored?.tot && fromLedger?.seq === stored?.seq,
          () => `tot of ${accountKey.slice(0, 8)} from the ledger is ${fromLedger?.tot}@${fromLedger?.seq}, the store has ${stored?.tot}@${stored?.seq}`,
        )
      }
    } finally {
      db.setRates(this.#rates)
    }
  }

  /** The store against the model: chains, amounts, ids, idempotency records. */
  async #checkStore(db: FaultyLevel, full: boolean): Promise<void> {
    const tables = tablesOf(db)
    if (full) {
      this.#checked.clear()
      this.#placed.clear()
    }
    let entries = 0
    const credentialOf = new Map<AccountKey, CredentialKey>()
    for await (const [key, value] of tables.credentials.iterator()) credentialOf.set(decodeCredential(key, value).accountKey, key as CredentialKey)
    this.#credentialOf = credentialOf
    const storeKeyOf = new Map([...credentialOf].map(([accountKey, credentialKey]) => [credentialKey, accountKey]))
    for await (const [key, value] of tables.accounts.iterator()) {
      const accountKey = key as AccountKey
      const account = decodeAccount(key, value)
      const checked = this.#checked.get(accountKey) ?? { seq: 0, lastValue: '', tot: 0n, atMs: 0 }
      this.#check(account.seq >= checked.seq, () => `history of ${key.slice(0, 8)} shrank from ${checked.seq} to ${account.seq}`)
      if (checked.seq > 0) {
        const last = await tables.history.get(historyKeyOf(accountKey, checked.seq))
        this.#check(last === checked.lastValue, () => `entry ${checked.seq} of ${key.slice(0, 8)} was rewritten`)
      }
      const range = { gt: historyKeyOf(accountKey, checked.seq), lte: historyKeyOf(accountKey, Number.MAX_SAFE_INTEGER) }
      let { seq, tot, atMs } = checked
      let lastValue = checked.lastValue
      for await (const [entryKey, entryValue] of tables.history.iterator(range)) {
        const entry = decodeEntry(entryKey, entryValue)
        this.#check(entry.seq === seq + 1, () => `history of ${key.slice(0, 8)} has entry ${entry.seq} after ${seq}`)
        this.#check(entry.tot === tot + entry.by, () => `entry ${entry.seq} of ${key.slice(0, 8)}: tot ${entry.tot} is not ${tot} + ${entry.by}`)
        this.#check(entry.tot >= 0n, () => `entry ${entry.seq} of ${key.slice(0, 8)} is below zero`)
        this.#check(entry.atMs >= atMs, () => `entry ${entry.seq} of ${key.slice(0, 8)} goes back in time`)
        this.#checkEntryAgainstModel(accountKey, entry)
        seq = entry.seq
        tot = entry.tot
        atMs = entry.atMs
        lastValue = entryValue
      }
      this.#check(seq === account.seq, () => `account ${key.slice(0, 8)} says seq ${account.seq}, its history ends at ${seq}`)
      this.#check(tot === account.tot, () => `account ${key.slice(0, 8)} says tot ${account.tot}, its history ends at ${tot}`)
      this.#checked.set(accountKey, { seq, lastValue, tot, atMs })
      entries += seq
    }
    this.#report.entries = entries
    // Every acknowledged mod is in the store, at the seq and tot it was answered with.
    const acknowledged = full ? this.#mods.values() : this.#newlyAcknowledged
    this.#newlyAcknowledged = []
    for (const mod of acknowledged) {
      if (mod.status !== 'acknowledged' || mod.seq === undefined) continue
      const storeKey = storeKeyOf.get(mod.accountKey) ?? ('' as AccountKey)
      const value = await tables.history.get(historyKeyOf(storeKey, mod.seq))
      const entry = value === undefined ? undefined : decodeEntry(historyKeyOf(storeKey, mod.seq), value)
      this.#check(entry?.note === mod.id && entry.tot === mod.tot, () => `acknowledged ${mod.id} (seq ${mod.seq}, tot ${mod.tot}) is not in the store`)
    }
    if (!full) return
    this.#check(
      [...this.#checked.values()].reduce((sum, account) => sum + account.seq, 0) === (await tables.history.keys().all()).length,
      () => 'the history table holds entries beyond their accounts',
    )
    for await (const [key, value] of tables.idempotency.iterator()) {
      const parsed = parseIdempotencyKey(key)
      this.#check(parsed !== undefined, () => `malformed idempotency record key ${key}`)
      const record = decodeIdempotency(key, value)
      const entryValue = await tables.history.get(historyKeyOf(parsed.accountKey, record.seq))
      const entry = entryValue === undefined ? undefined : decodeEntry(historyKeyOf(parsed.accountKey, record.seq), entryValue)
      this.#check(
        entry?.idempotencyKey === parsed.idempotencyKey && entry.by === record.by && entry.tot === record.tot,
        () => `idempotency record ${parsed.idempotencyKey} does not match entry ${record.seq}`,
      )
    }
  }

  #checkEntryAgainstModel(accountKey: AccountKey, entry: Entry): void {
    const id = entry.note ?? ''
    const mod = this.#mods.get(id)
    this.#check(mod !== undefined, () => `entry ${entry.seq} of ${accountKey.slice(0, 8)} is no mod that was sent`)
    this.#check(mod.accountKey === this.#credentialOf.get(accountKey) && mod.by === entry.by && mod.key === entry.idempotencyKey, () => `entry ${entry.seq} differs from ${id} as sent`)
    this.#check(mod.status !== 'refused', () => `${id} was refused but is in the store`)
    if (mod.status === 'acknowledged') {
      this.#check(mod.seq === entry.seq && mod.tot === entry.tot, () => `${id} was answered seq ${mod.seq} tot ${mod.tot}, stored as ${entry.seq} tot ${entry.tot}`)
    }
    const where = `${accountKey}!${entry.seq}`
    const placed = this.#placed.get(id)
    this.#check(placed === undefined || placed === where, () => `${id} is in the store twice`)
    this.#placed.set(id, where)
  }
}
