// The single writer. LevelDB batches are atomic but a read followed by a write is not, so every
// mod goes through one queue and is decided against the balance the previous mod left. All mods
// that arrive while a batch is being written are decided and written together in the next round:
// one batch and one fsync for the lot (group commit).
import assert from 'node:assert/strict'
import type { AbstractLevel, AbstractSublevel } from 'abstract-level'
import {
  decodeAccount,
  decodeIdempotency,
  encodeAccount,
  encodeEntry,
  encodeIdempotency,
  historyKeyOf,
  idempotencyKeyOf,
  type AccountState,
  type IdempotencyState,
} from './codec.js'
import type { AccountCache, AccountFilter } from './cache.js'
import { LedgerError } from './errors.js'
import { amountMax, seqMax } from './limits.js'
import type { AccountKey, ModInput, ModResult } from './types.js'

// The root may itself be a sublevel (the test suite runs on one), hence the loose key type.
export type RootDb = AbstractLevel<any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any
export type Table = AbstractSublevel<RootDb, any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Tables {
  accounts: Table
  history: Table
  idempotency: Table
}

export interface WriterOptions {
  /** fsync each batch before acknowledging its mods. */
  sync: boolean
  /** Mods decided and written in one batch at most. */
  batchMax: number
  /** Mods waiting at most; past this, mod() refuses with ACCMAN_QUEUE_FULL. */
  queueMax: number
  now: () => number
  /** Called once when a write fails or an invariant breaks; the writer is stopped by then. */
  onFatal: (error: Error) => void
}

interface PendingMod extends ModInput {
  accountKey: AccountKey
  resolve: (result: ModResult) => void
  reject: (error: Error) => void
}

type Decision = { result: ModResult } | { error: LedgerError }

/** What one round knows: states read at its start, updated by each mod it decides. */
interface Round {
  accounts: Map<AccountKey, AccountState | undefined>
  idempotency: Map<string, IdempotencyState | undefined>
  dirtyAccounts: Set<AccountKey>
  /** Accounts this round creates, for the filter once the batch is stored. */
  createdAccounts: AccountKey[]
  batch: ReturnType<RootDb['batch']>
  atMs: number
}

export class Writer {
  readonly #db: RootDb
  readonly #tables: Tables
  readonly #options: WriterOptions
  readonly #cache: AccountCache
  readonly #filter: AccountFilter
  #queue: PendingMod[] = []
  #running = false
  #closing = false
  #failure: Error | undefined
  #drained: Array<() => void> = []

  constructor(db: RootDb, tables: Tables, cache: AccountCache, filter: AccountFilter, options: WriterOptions) {
    assert.ok(options.batchMax >= 1)
    assert.ok(options.queueMax >= options.batchMax)
    this.#db = db
    this.#tables = tables
    this.#cache = cache
    this.#filter = filter
    this.#options = options
  }

  get queueDepth(): number {
    return this.#queue.length
  }

  get healthy(): boolean {
    return this.#failure === undefined && !this.#closing
  }

  submit(accountKey: AccountKey, input: ModInput): Promise<ModResult> {
    if (this.#failure !== undefined || this.#closing) {
      return Promise.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting mods'))
    }
    if (this.#queue.length >= this.#options.queueMax) {
      return Promise.reject(new LedgerError('ACCMAN_QUEUE_FULL', 'too many mods waiting; retry later'))
    }
    return new Promise<ModResult>((resolve, reject) => {
      this.#queue.push({ ...input, accountKey, resolve, reject })
      if (!this.#running) {
        this.#running = true
        // Start on the next turn so that every request parsed in this one joins the first batch.
        setImmediate(() => void this.#run())
      }
    })
  }

  /** Stops taking mods and resolves once every queued mod is written and answered. */
  close(): Promise<void> {
    this.#closing = true
    if (!this.#running) return Promise.resolve()
    return new Promise((resolve) => this.#drained.push(resolve))
  }

  async #run(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === undefined) {
      const mods = this.#queue.splice(0, this.#options.batchMax)
      try {
        await this.#applyRound(mods)
      } catch (error) {
        this.#fail(error instanceof Error ? error : new Error(String(error)), mods)
      }
    }
    this.#running = false
    for (const resolve of this.#drained.splice(0)) resolve()
  }

  #fail(error: Error, inRound: PendingMod[]): void {
    this.#failure = error
    const refusal = new LedgerError('ACCMAN_CLOSED', 'the ledger stopped after a storage fault')
    for (const mod of inRound) mod.reject(refusal)
    for (const mod of this.#queue.splice(0)) mod.reject(refusal)
    this.#options.onFatal(error)
  }

  async #applyRound(mods: PendingMod[]): Promise<void> {
    const round = await this.#readRound(mods)
    const decisions = mods.map((mod) => this.#decide(round, mod))
    for (const accountKey of round.dirtyAccounts) {
      const state = round.accounts.get(accountKey)
      assert.ok(state !== undefined)
      round.batch.put(accountKey, encodeAccount(state), { sublevel: this.#tables.accounts })
    }
    if (round.batch.length > 0) {
      await round.batch.write({ sync: this.#options.sync })
      // Stored: from here on readers may see the new states, in the filter and the cache.
      for (const accountKey of round.createdAccounts) this.#filter.add(accountKey)
      this.#cache.commit(dirtyStates(round))
    } else {
      await round.batch.close()
    }
    // Answer only once the batch is stored: an acknowledged mod is never lost.
    for (const [index, mod] of mods.entries()) {
      const decision = decisions[index]
      assert.ok(decision !== undefined)
      if ('result' in decision) mod.resolve(decision.result)
      else mod.reject(decision.error)
    }
  }

  async #readRound(mods: PendingMod[]): Promise<Round> {
    const accounts = new Map<AccountKey, AccountState | undefined>()
    // Only accounts neither cached nor known to be absent are read from the store.
    const accountKeys: AccountKey[] = []
    for (const mod of mods) {
      if (accounts.has(mod.accountKey)) continue
      const cached = this.#cache.get(mod.accountKey)
      accounts.set(mod.accountKey, cached)
      if (cached === undefined && this.#filter.mightContain(mod.accountKey)) accountKeys.push(mod.accountKey)
    }
    const idempotencyKeys = [
      ...new Set(
        mods.flatMap((mod) =>
          mod.idempotencyKey === undefined ? [] : [idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)],
        ),
      ),
    ]
    const [accountValues, idempotencyValues] = await Promise.all([
      accountKeys.length === 0 ? [] : this.#tables.accounts.getMany(accountKeys),
      idempotencyKeys.length === 0 ? [] : this.#tables.idempotency.getMany(idempotencyKeys),
    ])
    for (const [index, key] of accountKeys.entries()) {
      const value = accountValues[index]
      if (value === undefined) continue
      const state = decodeAccount(key, value)
      accounts.set(key, state)
      this.#cache.fillFromWriter(key, state)
    }
    const idempotency = new Map<string, IdempotencyState | undefined>()
    for (const [index, key] of idempotencyKeys.entries()) {
      const value = idempotencyValues[index]
      idempotency.set(key, value === undefined ? undefined : decodeIdempotency(key, value))
    }
    return {
      accounts,
      idempotency,
      dirtyAccounts: new Set(),
      createdAccounts: [],
      batch: this.#db.batch(),
      atMs: this.#options.now(),
    }
  }

  /** Decides one mod against the state the previous mods of the round left, staging its writes. */
  #decide(round: Round, mod: PendingMod): Decision {
    const idempotencyKey =
      mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
    if (idempotencyKey !== undefined) {
      const first = round.idempotency.get(idempotencyKey)
      if (first !== undefined) return replay(first, mod.by)
    }

    const before = round.accounts.get(mod.accountKey)
    if (before === undefined && mod.by < 0n) {
      return { error: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
    }
    const totBefore = before?.tot ?? 0n
    const tot = totBefore + mod.by
    if (tot < 0n) {
      return {
        error: new LedgerError(
          'ACCMAN_INSUFFICIENT_FUNDS',
          `insufficient funds: the balance is ${totBefore}, the amount is ${mod.by}`,
          totBefore,
        ),
      }
    }
    if (tot > amountMax) {
      return {
        error: new LedgerError(
          'ACCMAN_OVERFLOW',
          `the balance ${totBefore} plus the amount ${mod.by} would exceed ${amountMax}`,
        ),
      }
    }

    const seq = (before?.seq ?? 0) + 1
    const atMs = Math.max(round.atMs, before?.atMs ?? 0)
    assert.ok(seq <= seqMax, 'history length exceeds seqMax')
    assert.ok(tot >= 0n && tot <= amountMax)
    assert.equal(tot - totBefore, mod.by)

    const entry = { by: mod.by, tot, atMs, note: mod.note, idempotencyKey: mod.idempotencyKey }
    round.batch.put(historyKeyOf(mod.accountKey, seq), encodeEntry(entry), { sublevel: this.#tables.history })
    if (idempotencyKey !== undefined) {
      const first = { by: mod.by, tot, seq }
      round.batch.put(idempotencyKey, encodeIdempotency(first), { sublevel: this.#tables.idempotency })
      round.idempotency.set(idempotencyKey, first)
    }
    round.accounts.set(mod.accountKey, { tot, seq, atMs })
    round.dirtyAccounts.add(mod.accountKey)
    if (before === undefined) round.createdAccounts.push(mod.accountKey)
    return { result: { tot, seq, replayed: false } }
  }
}

function* dirtyStates(round: Round): Generator<[AccountKey, AccountState]> {
  for (const accountKey of round.dirtyAccounts) {
    const state = round.accounts.get(accountKey)
    assert.ok(state !== undefined)
    yield [accountKey, state]
  }
}

function replay(first: IdempotencyState, by: bigint): Decision {
  if (first.by !== by) {
    return {
      error: new LedgerError(
        'ACCMAN_IDEMPOTENCY_MISMATCH',
        `this idempotency key was first used with amount ${first.by}, not ${by}`,
      ),
    }
  }
  return { result: { tot: first.tot, seq: first.seq, replayed: true } }
}
