// The writer. A store's writes are atomic but a read followed by a write is not, so every mod
// goes through one queue and is decided against the state the previous mod of its account left.
// Mods are taken in rounds: one round reads what it needs, is decided in memory (decideMod, a
// pure function) and written as one atomic write, with one fsync (group commit). Several rounds
// may be in flight at once, but never two holding the same account: each account's mods are
// decided and stored strictly in order, and rounds in flight touch disjoint keys, so the order in
// which the store applies them cannot matter, and a crash between them leaves every account's
// history contiguous. The writer schedules, reads and writes; it never decides, and it knows no
// engine (see store.ts). On an exclusive store it keeps what it knows in memory (the cache and
// the key filters) and reads only what they cannot answer; on a shared one other nodes write
// too, so every round reads all it needs through its transaction and nothing is kept.
import assert from 'node:assert/strict'
import { idempotencyKeyOf, type AccountState, type IdempotencyState } from './codec.js'
import type { LedgerMemory } from './cache.js'
import { decideMod, type DecisionContext, type ModDecision } from './decide.js'
import { LedgerError } from './errors.js'
import { decideHoldOp, decisionTimeOf, expireDue, hasDueHolds, type HoldOp, type HoldOpDecision, type HoldOpResult } from './holds.js'
import { decideFreeze, decideMove, type FreezeDecision, type MoveDecision } from './move.js'
import type { LedgerStore, RoundTransaction, RoundWrites } from './store.js'
import { accountEvent, alertEvents } from './alerts.js'
import { decideAccountChange, type AccountChange } from './account-settings.js'
import type { AccountKey, HoldState, ModInput, ModResult } from './types.js'

export interface WriterOptions {
  /** Mods decided and written in one batch at most. */
  batchMax: number
  /** Rounds being written at once at most (on disjoint accounts). */
  roundsInFlightMax: number
  /** How far down the queue a round looks for mods of free accounts, in batches. */
  lookAheadBatchesMax: number
  /** Mods waiting at most; past this, mod() refuses with ACCMAN_QUEUE_FULL. */
  queueMax: number
  /** The writer's clock; a shared store's rounds take the store's clock instead. */
  now: () => number
  /** How long an idempotency key is replayed. */
  idempotencyWindowMs: number
  /**
   * The time taken as written for idempotency records from before the retention window existed
   * (they carry no time): the ledger's start, so they expire one window after the upgrade.
   */
  legacyIdempotencyAtMs: number
  /** Called once when a write fails or an invariant breaks; the writer is stopped by then. */
  onFatal: (error: Error) => void
  /** Called after each round is stored, for metrics. */
  onRound?: ((report: RoundReport) => void) | undefined
  /** Write low-balance events to the outbox (webhooks are configured); off by default. */
  outboxEnabled?: boolean | undefined
  /** The threshold of accounts without their own (ACCMAN_ALERT_BELOW); undefined: none. */
  alertBelowDefault?: bigint | undefined
}

/** What one stored round did; amounts are exact. */
export interface RoundReport {
  /** Mods decided, applied or not. */
  mods: number
  /** Entries appended. */
  applied: number
  accountsCreated: number
  credited: bigint
  debited: bigint
  /** Holds opened, settled, voided and expired, and their amounts (settled: the amount posted). */
  holds?: HoldCounts
  /** Moves applied, and the amount they moved. */
  moves: number
  moved: bigint
  /** Freezes and unfreezes applied. */
  freezes: number
  /** From the round's writes handed to the store (which encodes them) to their completion, with fsync when sync is on. */
  writeMs: number
}

export interface HoldCounts {
  opened: number
  openedUnits: bigint
  settled: number
  settledUnits: bigint
  voided: number
  voidedUnits: bigint
  expired: number
  expiredUnits: bigint
}

/** A hold, settle or void; or an expiry pass over one account (writes its due expiries, if any). */
export type WriterOp = HoldOp | { op: 'expire' }

/** What the writer queues besides a mod's input: absent op, a mod; 'move' and 'freeze' carry their own fields. */
export interface OpFields {
  op?: 'move' | 'freeze'
  /** A move's other account: the round holds both. */
  toAccountKey?: AccountKey
  moveId?: string
  /** A freeze's target state. */
  frozen?: boolean
}

interface PendingMod extends ModInput, OpFields {
  accountKey: AccountKey
  /** Absent: a mod (by, note, idempotencyKey). Present: by is 0 and the op says what to do. */
  holdOp?: WriterOp
  resolve: (result: ModResult | HoldOpResult | undefined) => void
  reject: (error: Error) => void
}

/** What a round knows of one account's holds. */
interface HoldsOfAccount {
  /** Every open hold, by id; undefined when not read (a hold needs none of them). */
  open: Map<string, HoldState> | undefined
  /** Every hold the round has seen (read by id, or open), as it is now in the round. */
  known: Map<string, HoldState>
}

type Decision = ModDecision | HoldOpDecision | MoveDecision | FreezeDecision | { result: undefined }
/** The accounts an op holds while its round is in flight: one, or a move's two. */
function accountsOf(mod: PendingMod): AccountKey[] {
  return mod.toAccountKey === undefined ? [mod.accountKey] : [mod.accountKey, mod.toAccountKey]
}
/** What one round knows: states read at its start, updated by each mod it decides. */
interface Round {
  accounts: Map<AccountKey, AccountState | undefined>
  idempotency: Map<string, IdempotencyState | undefined>
  /** Keys the filters could not rule out, read from the store before deciding. */
  toRead: { accounts: AccountKey[]; idempotency: string[] }
  /** Accounts whose state came from the cache or the store: only these may be created. */
  lookedUp: Set<AccountKey>
  dirtyAccounts: Set<AccountKey>
  /** Accounts this round creates, for the filters once it is stored. */
  createdAccounts: AccountKey[]
  /** The round's writes, stored as one atomic write (its idempotency records go to the filters). */
  writes: RoundWrites
  atMs: number
  applied: number
  credited: bigint
  debited: bigint
  /** Accounts' holds, for the accounts whose ops need them. */
  holds: Map<AccountKey, HoldsOfAccount>
  /** Holds written by the round, by account!id: each once, as it ends up. */
  holdWrites: Map<string, [AccountKey, HoldState]>
  holdCounts: HoldCounts
  moves: number
  moved: bigint
  freezes: number
}

export class Writer {
  readonly #store: LedgerStore
  readonly #options: WriterOptions
  readonly #memory: LedgerMemory
  /** Other nodes write the store too: no cache, no filters, every state read in the round. */
  readonly #shared: boolean
  #queue: PendingMod[] = []
  /** A pruning of expired idempotency records waiting for its accounts; at most one. */
  #prune: PendingPrune | undefined
  /** Accounts of the rounds in flight: their mods wait until that round is stored. */
  readonly #busyAccounts = new Set<AccountKey>()
  #roundsInFlight = 0
  #pumpScheduled = false
  #closing = false
  #failure: Error | undefined
  #drained: Array<() => void> = []
  /** Settings changes waiting, in order; one runs at a time (a ref names one account). */
  #updates: PendingUpdate[] = []
  #updateInFlight = false

  constructor(store: LedgerStore, memory: LedgerMemory, options: WriterOptions) {
    assert.ok(options.batchMax >= 1)
    assert.ok(options.roundsInFlightMax >= 1)
    assert.ok(options.lookAheadBatchesMax >= 1)
    assert.ok(options.queueMax >= options.batchMax)
    this.#store = store
    this.#options = options
    this.#memory = memory
    this.#shared = store.sharing === 'shared'
  }

  get queueDepth(): number {
    return this.#queue.length
  }

  get healthy(): boolean {
    return this.#failure === undefined && !this.#closing
  }

  /** Stopped on a storage fault or a broken invariant. */
  get failed(): boolean {
    return this.#failure !== undefined
  }

  submit(accountKey: AccountKey, input: ModInput & OpFields): Promise<ModResult> {
    return this.#enqueue(accountKey, input, undefined) as Promise<ModResult>
  }

  /** Queues a hold, settle or void (resolves with its answer), or an expiry pass (resolves undefined). */
  submitHoldOp(accountKey: AccountKey, op: WriterOp): Promise<HoldOpResult | undefined> {
    const idempotencyKey = op.op === 'expire' ? undefined : op.idempotencyKey
    return this.#enqueue(accountKey, { by: 0n, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }, op) as Promise<
      HoldOpResult | undefined
    >
  }

  #enqueue(accountKey: AccountKey, input: ModInput & OpFields, holdOp: WriterOp | undefined): Promise<ModResult | HoldOpResult | undefined> {
    if (this.#failure !== undefined || this.#closing) {
      return Promise.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting mods'))
    }
    if (this.#queue.length >= this.#options.queueMax) {
      return Promise.reject(new LedgerError('ACCMAN_QUEUE_FULL', 'too many mods waiting; retry later'))
    }
    return new Promise<ModResult | HoldOpResult | undefined>((resolve, reject) => {
      const pending: PendingMod = { ...input, accountKey, resolve, reject }
      if (holdOp !== undefined) pending.holdOp = holdOp
      this.#queue.push(pending)
      if (!this.#pumpScheduled) {
        this.#pumpScheduled = true
        // On the next turn, so that every request parsed in this one joins the same round.
        setImmediate(() => {
          this.#pumpScheduled = false
          this.#pump()
        })
      }
    })
  }

  /**
   * Deletes the idempotency records among `keys` that are past the retention window. It runs as
   * a round of its own holding their accounts, so no mod of those accounts is decided meanwhile:
   * a key reused after its window (which rewrites the record) cannot race the deletion. Each
   * record is read again in that round and deleted only if it is still expired. Resolves with
   * the number deleted.
   */
  prune(keys: string[]): Promise<number> {
    assert.ok(this.#prune === undefined, 'one pruning at a time')
    if (keys.length === 0 || this.#failure !== undefined || this.#closing) return Promise.resolve(0)
    const accounts = new Set<AccountKey>()
    for (const key of keys) accounts.add(key.slice(0, 64) as AccountKey)
    return new Promise<number>((resolve, reject) => {
      this.#prune = { keys, accounts, resolve, reject }
      this.#pump()
    })
  }

  /**
   * Changes an account's settings (threshold, ref) without a history entry, in a round of its own
   * holding the account, so no mod of it is decided meanwhile. Resolves with the account's state.
   */
  update(accountKey: AccountKey, change: AccountChange): Promise<AccountState> {
    if (this.#failure !== undefined || this.#closing) {
      return Promise.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting changes'))
    }
    if (this.#updates.length >= this.#options.queueMax) {
      return Promise.reject(new LedgerError('ACCMAN_QUEUE_FULL', 'too many changes waiting; retry later'))
    }
    return new Promise<AccountState>((resolve, reject) => {
      this.#updates.push({ accountKey, change, resolve, reject })
      this.#pump()
    })
  }

  /** Starts the first waiting settings change once no round holds its account. */
  #startUpdate(): void {
    const update = this.#updates[0]
    if (update === undefined || this.#updateInFlight || this.#roundsInFlight >= this.#options.roundsInFlightMax) return
    if (this.#failure !== undefined) {
      for (const waiting of this.#updates.splice(0)) waiting.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger stopped after a storage fault'))
      return
    }
    if (this.#busyAccounts.has(update.accountKey)) return
    this.#updates.shift()
    this.#busyAccounts.add(update.accountKey)
    this.#roundsInFlight++
    this.#updateInFlight = true
    void this.#runUpdate(update)
  }

  async #runUpdate(update: PendingUpdate): Promise<void> {
    const { accountKey, change } = update
    type Outcome = { state: AccountState } | { refusal: LedgerError }
    let outcome: Outcome | undefined
    let failure: Error | undefined
    try {
      outcome = await this.#store.runRound<Outcome>(async (transaction) => {
        const { accounts } = await transaction.readRound([accountKey], [])
        const owners = typeof change.ref === 'string' ? await transaction.readRefs([change.ref]) : []
        const decision = decideAccountChange(accountKey, accounts[0], change, owners[0])
        if ('refusal' in decision) return { writes: undefined, value: { refusal: decision.refusal } }
        const writes: RoundWrites = { accounts: [[accountKey, decision.account]], entries: [], idempotency: [], idempotencyDeletes: [], refs: decision.refs }
        return { writes, value: { state: decision.account } }
      })
      if (!this.#shared && outcome !== undefined && 'state' in outcome) this.#memory.accounts.commit([[accountKey, outcome.state]])
    } catch (error) {
      failure = asError(error)
    }
    this.#busyAccounts.delete(accountKey)
    this.#roundsInFlight--
    this.#updateInFlight = false
    if (outcome !== undefined) {
      if ('refusal' in outcome) update.reject(outcome.refusal)
      else update.resolve(outcome.state)
      this.#pump()
    } else if (failure !== undefined && isStoreUnavailable(failure)) {
      update.reject(failure)
      this.#pump()
    } else {
      update.reject(failure ?? new Error('a settings change failed'))
      this.#fail(failure ?? new Error('a settings change failed'), [])
    }
  }

  /** Stops taking mods and resolves once every queued mod is written and answered. */
  close(): Promise<void> {
    this.#closing = true
    if (this.#idle()) return Promise.resolve()
    return new Promise((resolve) => this.#drained.push(resolve))
  }

  #idle(): boolean {
    return (
      this.#roundsInFlight === 0 &&
      this.#prune === undefined &&
      (this.#updates.length === 0 || this.#failure !== undefined) &&
      (this.#queue.length === 0 || this.#failure !== undefined)
    )
  }

  /** Starts rounds while there are mods whose accounts are free, up to the rounds-in-flight bound. */
  #pump(): void {
    this.#startPrune()
    this.#startUpdate()
    while (
      this.#failure === undefined &&
      this.#queue.length > 0 &&
      this.#roundsInFlight < this.#options.roundsInFlightMax
    ) {
      const mods = this.#takeRound()
      if (mods.length === 0) break // every queued mod waits for an account in flight
      this.#roundsInFlight++
      void this.#runRound(mods)
    }
    if (this.#idle()) for (const resolve of this.#drained.splice(0)) resolve()
  }

  /**
   * Takes queued mods, in order, whose accounts no round in flight holds. A mod left behind keeps
   * its place, and so does every later mod of its account (its account stays busy, or the round
   * stays full), so each account's mods are decided in the order they came.
   */
  #takeRound(): PendingMod[] {
    const taken: PendingMod[] = []
    const waiting: PendingMod[] = []
    const claimed = new Set<AccountKey>()
    // Accounts of ops left behind: a later op of any of them waits too (a move left behind for
    // its other account must not be overtaken by a mod of its first).
    const leftBehind = new Set<AccountKey>()
    // Look a bounded way ahead, so a long queue for one busy account costs little per round.
    const horizon = Math.min(this.#queue.length, this.#options.batchMax * this.#options.lookAheadBatchesMax)
    for (let index = 0; index < horizon && taken.length < this.#options.batchMax; index++) {
      const mod = this.#queue[index]
      assert.ok(mod !== undefined)
      const accounts = accountsOf(mod)
      if (
        accounts.some(
          (accountKey) =>
            this.#busyAccounts.has(accountKey) ||
            leftBehind.has(accountKey) ||
            this.#prune?.accounts.has(accountKey) === true ||
            this.#updates[0]?.accountKey === accountKey,
        )
      ) {
        waiting.push(mod)
        for (const accountKey of accounts) leftBehind.add(accountKey)
      } else {
        taken.push(mod)
        for (const accountKey of accounts) claimed.add(accountKey)
      }
    }
    if (taken.length === 0) return taken
    this.#queue = waiting.concat(this.#queue.slice(taken.length + waiting.length))
    for (const accountKey of claimed) this.#busyAccounts.add(accountKey)
    return taken
  }

  async #runRound(mods: PendingMod[]): Promise<void> {
    let stored: StoredRound
    try {
      stored = await this.#decideAndStore(mods)
    } catch (error) {
      // Nothing of the round reached the store: its mods may be refused.
      this.#release(mods)
      if (isStoreUnavailable(error)) {
        // The store did not answer in time: refuse this round's mods and go on with the next.
        for (const mod of mods) mod.reject(error)
        this.#pump()
      } else {
        this.#fail(asError(error), mods)
      }
      return
    }
    // The round is stored. Whatever throws from here on, its mods are answered with their
    // results: refusing a stored mod would invite a client without a key to apply it twice.
    let fault: Error | undefined
    try {
      if (stored.written && !this.#shared) this.#stored(stored.round)
      this.#options.onRound?.(reportOf(stored.round, mods.length, stored.writeMs))
    } catch (error) {
      fault = asError(error)
    }
    this.#release(mods)
    if (fault !== undefined) {
      // The filters or the cache may now disagree with the store: answer, then stop.
      answer(mods, stored.decisions)
      this.#fail(fault, [])
      return
    }
    // Start what this round held up before answering it: the store does not idle meanwhile.
    this.#pump()
    answer(mods, stored.decisions)
  }

  /**
   * One round through the store. The body plans from scratch each time it runs (a shared store
   * may run it again) and changes nothing outside the round: memory is updated only once the
   * round is stored (see #stored).
   */
  async #decideAndStore(mods: PendingMod[]): Promise<StoredRound> {
    let writeStartedMs = 0
    const { round, decisions } = await this.#store.runRound(async (transaction) => {
      const round = this.#planRound(mods, transaction.nowMs)
      if (round.toRead.accounts.length > 0 || round.toRead.idempotency.length > 0) await this.#read(round, transaction)
      await this.#readHolds(round, mods, transaction)
      const context: DecisionContext = {
        atMs: round.atMs,
        // Exclusive: the filters' clock, read once per round after the reads (no await separates
        // it from the decisions). Shared: the store's clock of the round.
        idempotencyClockMs: this.#shared ? round.atMs : this.#memory.idempotencyKeys.clockMs,
        idempotencyWindowMs: this.#options.idempotencyWindowMs,
        legacyIdempotencyAtMs: this.#options.legacyIdempotencyAtMs,
      }
      const decisions = mods.map((mod) => this.#decide(round, mod, context))
      writeStartedMs = performance.now()
      return { writes: this.#writesOf(round), value: { round, decisions } }
    })
    return { round, decisions, written: round.applied > 0, writeMs: performance.now() - writeStartedMs }
  }

  /** Starts the waiting pruning once no round holds any of its accounts. */
  #startPrune(): void {
    const prune = this.#prune
    if (prune === undefined || this.#roundsInFlight >= this.#options.roundsInFlightMax) return
    if (this.#failure !== undefined) {
      this.#prune = undefined
      prune.resolve(0)
      return
    }
    for (const accountKey of prune.accounts) if (this.#busyAccounts.has(accountKey)) return
    for (const accountKey of prune.accounts) this.#busyAccounts.add(accountKey)
    this.#roundsInFlight++
    void this.#runPrune(prune)
  }

  async #runPrune(prune: PendingPrune): Promise<void> {
    let deleted = 0
    let failure: Error | undefined
    try {
      deleted = await this.#store.runRound(async (transaction) => {
        const { idempotency } = await transaction.readRound([], prune.keys)
        const clockMs = this.#idempotencyClock(transaction.nowMs)
        const expired = prune.keys.filter((_, index) => {
          const record = idempotency[index]
          const atMs = record?.atMs ?? this.#options.legacyIdempotencyAtMs
          return record !== undefined && clockMs - atMs >= this.#options.idempotencyWindowMs
        })
        const writes = { accounts: [], entries: [], idempotency: [], idempotencyDeletes: expired }
        return { writes: expired.length === 0 ? undefined : writes, value: expired.length }
      })
    } catch (error) {
      failure = asError(error)
    }
    for (const accountKey of prune.accounts) this.#busyAccounts.delete(accountKey)
    this.#roundsInFlight--
    this.#prune = undefined
    if (failure === undefined) {
      prune.resolve(deleted)
      this.#pump()
    } else if (isStoreUnavailable(failure)) {
      // Nothing was deleted; a later pass tries again.
      prune.reject(failure)
      this.#pump()
    } else {
      prune.reject(failure)
      this.#fail(failure, [])
    }
  }

  /**
   * The round's clock for idempotency windows. Exclusive: the filters' clock, moved forward to
   * now (it never goes back). Shared: the store's clock, read once for the round.
   */
  #idempotencyClock(storeNowMs: number | undefined): number {
    if (this.#shared) {
      assert.ok(storeNowMs !== undefined, 'a shared store gives each round its time')
      return storeNowMs
    }
    this.#memory.idempotencyKeys.advance(this.#options.now())
    return this.#memory.idempotencyKeys.clockMs
  }

  #release(mods: PendingMod[]): void {
    for (const mod of mods) for (const accountKey of accountsOf(mod)) this.#busyAccounts.delete(accountKey)
    this.#roundsInFlight--
  }

  #fail(error: Error, inRound: PendingMod[]): void {
    const first = this.#failure === undefined
    this.#failure ??= error
    const refusal = new LedgerError('ACCMAN_CLOSED', 'the ledger stopped after a storage fault')
    for (const mod of inRound) mod.reject(refusal)
    for (const mod of this.#queue.splice(0)) mod.reject(refusal)
    if (first) this.#options.onFatal(error)
    this.#pump()
  }

  /** The round's writes with each changed account once; undefined when nothing was applied. */
  #writesOf(round: Round): RoundWrites | undefined {
    if (round.applied === 0) return undefined
    for (const accountState of dirtyStates(round)) round.writes.accounts.push(accountState)
    if (round.holdWrites.size > 0) round.writes.holds = [...round.holdWrites.values()]
    return round.writes
  }

  /**
   * Reads the holds the round's ops need: an account's open holds when it has some and either
   * some are due (their expiries are written first) or a settle or void closes one (the next
   * expiry is recomputed); and each hold a settle or void names. On a shared store the accounts
   * are locked by now, so their holds stay as read.
   */
  async #readHolds(round: Round, mods: PendingMod[], transaction: RoundTransaction): Promise<void> {
    const openOf = new Set<AccountKey>()
    const byId = new Map<string, [AccountKey, string]>()
    for (const mod of mods) {
      // A move's other account too: its due expiries are written before its move entry.
      for (const accountKey of accountsOf(mod)) {
        const state = round.accounts.get(accountKey)
        if (!round.holds.has(accountKey)) {
          // An account with no open hold in the store: the round knows all of them (none).
          round.holds.set(accountKey, { open: state?.holdCount === undefined ? new Map() : undefined, known: new Map() })
        }
        if (state?.holdCount === undefined) continue
        const op = accountKey === mod.accountKey ? mod.holdOp?.op : undefined
        const atMs = Math.max(round.atMs, state.atMs)
        if (hasDueHolds(state, atMs) || op === 'settle' || op === 'void') openOf.add(accountKey)
      }
      // A settle or void on an account the store shows no open hold for may still name a closed one.
      if (mod.holdOp !== undefined && (mod.holdOp.op === 'settle' || mod.holdOp.op === 'void')) {
        byId.set(`${mod.accountKey}!${mod.holdOp.holdId}`, [mod.accountKey, mod.holdOp.holdId])
      }
    }
    if (openOf.size === 0 && byId.size === 0) return
    const openKeys = [...openOf]
    const ids = [...byId.values()]
    const read = await transaction.readHolds(openKeys, ids)
    for (const [index, accountKey] of openKeys.entries()) {
      const view = round.holds.get(accountKey)
      assert.ok(view !== undefined)
      const open = read.open[index] ?? []
      assert.equal(open.length, round.accounts.get(accountKey)?.holdCount, 'the open holds disagree with the account')
      view.open = new Map(open.map((hold) => [hold.id, hold]))
      for (const hold of open) view.known.set(hold.id, hold)
    }
    for (const [index, [accountKey]] of ids.entries()) {
      const hold = read.byId[index]
      if (hold !== undefined) round.holds.get(accountKey)?.known.set(hold.id, hold)
    }
  }

  /** Writes the account's due expiries, before anything else of the account in the round. */
  #expireDue(round: Round, accountKey: AccountKey, context: DecisionContext): void {
    const state = round.accounts.get(accountKey)
    if (state === undefined) return
    const atMs = decisionTimeOf(state, context)
    if (!hasDueHolds(state, atMs)) return
    const view = round.holds.get(accountKey)
    assert.ok(view?.open !== undefined, 'due holds not read')
    const expired = expireDue(state, [...view.open.values()], atMs)
    assert.equal(expired.entries.at(-1)?.seq, expired.account.seq, 'expiries do not end at the account seq')
    for (const entry of expired.entries) {
      round.writes.entries.push([accountKey, entry])
      if (this.#options.outboxEnabled === true && entry.hold !== undefined) {
        // The account as this entry left it: one event per expired hold, named by its entry's seq.
        const asOfEntry: AccountState = { ...expired.account, tot: entry.tot, seq: entry.seq, atMs: entry.atMs }
        if (entry.held === undefined) delete asOfEntry.held
        else asOfEntry.held = entry.held
        ;(round.writes.outbox ??= []).push(accountEvent('hold.expired', accountKey, asOfEntry, this.#options.alertBelowDefault, { hold: entry.hold }))
      }
    }
    for (const hold of expired.closed) {
      view.open.delete(hold.id)
      view.known.set(hold.id, hold)
      round.holdWrites.set(`${accountKey}!${hold.id}`, [accountKey, hold])
      round.holdCounts.expired++
      round.holdCounts.expiredUnits += hold.by
    }
    round.accounts.set(accountKey, expired.account)
    round.dirtyAccounts.add(accountKey)
    round.applied += expired.entries.length
  }

  /** Decides a hold, settle or void, or an expiry pass, and stages its writes. */
  #decideHoldOp(round: Round, mod: PendingMod, op: WriterOp, context: DecisionContext): Decision {
    if (op.op === 'expire') return { result: undefined }
    const view = round.holds.get(mod.accountKey)
    assert.ok(view !== undefined)
    const idempotencyKey = mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
    const before = round.accounts.get(mod.accountKey)
    const first = idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey)
    const target = op.op === 'hold' ? undefined : view.known.get(op.holdId)
    if (op.op !== 'hold' && before !== undefined) assert.ok(view.open !== undefined, 'a settle or void without the open holds')
    const decision = decideHoldOp(before, { open: [...(view.open?.values() ?? [])], target }, first, op, context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    const { account, entry, hold, idempotency } = decision.writes
    assert.ok(before !== undefined, 'a hold op on no account')
    assert.equal(account.seq, before.seq + 1, 'the new seq is not the old one plus one')
    assert.equal(account.tot, before.tot + entry.by, 'the new balance is not the old one plus by')
    assert.equal(account.held ?? 0n, (before.held ?? 0n) + (entry.heldBy ?? 0n), 'the new held is not the old one plus heldBy')
    round.writes.entries.push([mod.accountKey, entry])
    if (idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined)
      round.writes.idempotency.push([idempotencyKey, idempotency])
      round.idempotency.set(idempotencyKey, idempotency)
    }
    view.known.set(hold.id, hold)
    if (hold.closed === undefined) view.open?.set(hold.id, hold)
    else view.open?.delete(hold.id)
    round.holdWrites.set(`${mod.accountKey}!${hold.id}`, [mod.accountKey, hold])
    round.accounts.set(mod.accountKey, account)
    round.dirtyAccounts.add(mod.accountKey)
    round.applied++
    const counts = round.holdCounts
    if (op.op === 'hold') {
      counts.opened++
      counts.openedUnits += hold.by
    } else if (op.op === 'settle') {
      counts.settled++
      counts.settledUnits -= entry.by
    } else {
      counts.voided++
      counts.voidedUnits += hold.by
    }
    return decision
  }

  /** The round is stored: from here on readers may see it, through the filters and the cache. */
  #stored(round: Round): void {
    for (const accountKey of round.createdAccounts) this.#memory.accountKeys.add(accountKey)
    for (const [key, record] of round.writes.idempotency) {
      assert.ok(record.atMs !== undefined, 'a new idempotency record without its time')
      this.#memory.idempotencyKeys.add(key, record.atMs)
    }
    this.#memory.accounts.commit(round.writes.accounts)
  }

  /**
   * What the round knows without the store (exclusive: cached accounts, and keys certainly
   * absent), and what it must read.
   */
  #planRound(mods: PendingMod[], storeNowMs: number | undefined): Round {
    // Idempotency windows are measured on a clock that never goes back (see WindowedKeyFilter).
    const atMs = this.#idempotencyClock(storeNowMs)
    const round: Round = {
      accounts: new Map(),
      idempotency: new Map(),
      toRead: { accounts: [], idempotency: [] },
      lookedUp: new Set(),
      dirtyAccounts: new Set(),
      createdAccounts: [],
      writes: { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [] },
      atMs,
      applied: 0,
      credited: 0n,
      debited: 0n,
      holds: new Map(),
      holdWrites: new Map(),
      holdCounts: { opened: 0, openedUnits: 0n, settled: 0, settledUnits: 0n, voided: 0, voidedUnits: 0n, expired: 0, expiredUnits: 0n },
      moves: 0,
      moved: 0n,
      freezes: 0,
    }
    if (this.#shared) {
      planSharedRound(round, mods)
      return round
    }
    for (const mod of mods) {
      // Only a credit creates an account; a move or a freeze needs its accounts to exist.
      const creates = mod.op === undefined && mod.by > 0n
      for (const accountKey of accountsOf(mod)) this.#planAccount(round, accountKey, creates)
      if (mod.idempotencyKey === undefined) continue
      const key = idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
      if (round.idempotency.has(key)) continue
      round.idempotency.set(key, undefined)
      if (this.#memory.idempotencyKeys.mightContain(key)) round.toRead.idempotency.push(key)
    }
    return round
  }

  /** The account's state from the cache, or a read when the filter says maybe (always before a credit creates it). */
  #planAccount(round: Round, accountKey: AccountKey, creates: boolean): void {
    if (!round.accounts.has(accountKey)) {
      const cached = this.#memory.accounts.get(accountKey)
      round.accounts.set(accountKey, cached)
      if (cached !== undefined) round.lookedUp.add(accountKey)
    }
    // A filter that lies must not make the writer overwrite an account's history.
    if (
      round.accounts.get(accountKey) === undefined &&
      !round.lookedUp.has(accountKey) &&
      (creates || this.#memory.accountKeys.mightContain(accountKey))
    ) {
      round.toRead.accounts.push(accountKey)
      round.lookedUp.add(accountKey)
    }
  }

  /**
   * Reads what the round must (exclusive: what the filters could not rule out). No other round
   * of this writer holds these accounts, and on a shared store the transaction locks them, so
   * what it reads stays current until the round is stored.
   */
  async #read(round: Round, transaction: RoundTransaction): Promise<void> {
    const { accounts, idempotency } = round.toRead
    const states = await transaction.readRound(accounts, idempotency)
    for (const [index, key] of accounts.entries()) {
      const state = states.accounts[index]
      if (state === undefined) continue
      round.accounts.set(key, state)
      if (this.#shared) continue
      // A filter that missed an existing account learns it (the store is the truth).
      if (!this.#memory.accountKeys.mightContain(key)) this.#memory.accountKeys.add(key)
      this.#memory.accounts.fillFromWriter(key, state)
    }
    for (const [index, key] of idempotency.entries()) {
      const record = states.idempotency[index]
      if (record !== undefined) round.idempotency.set(key, record)
    }
  }

  /**
   * Decides one mod (see decideMod) against the states the previous mods of the round left,
   * and stages its writes.
   */
  #decide(round: Round, mod: PendingMod, context: DecisionContext): Decision {
    // Due expiries are written before any later entry of the account (both of a move's), on the round's clock.
    for (const accountKey of accountsOf(mod)) this.#expireDue(round, accountKey, context)
    if (mod.holdOp !== undefined || mod.op === 'move') {
      // A hold and a move out lower avail too: their crossings are events as a debit's are.
      const befores = accountsOf(mod).map((accountKey) => [accountKey, round.accounts.get(accountKey)] as const)
      const decision = mod.holdOp !== undefined ? this.#decideHoldOp(round, mod, mod.holdOp, context) : this.#decideMove(round, mod, context)
      this.#stageAlerts(round, befores)
      return decision
    }
    if (mod.op === 'freeze') return this.#decideFreeze(round, mod, context)
    const idempotencyKey =
      mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
    const before = round.accounts.get(mod.accountKey)
    const first = idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey)
    const decision = decideMod(before, first, mod, context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    const { account, entry, idempotency } = decision.writes

    // Paired checks on what the decision hands to the store: crash rather than corrupt.
    assert.equal(account.seq, (before?.seq ?? 0) + 1, 'the new seq is not the old one plus one')
    assert.equal(account.tot, (before?.tot ?? 0n) + mod.by, 'the new balance is not the old one plus by')
    assert.ok(entry.seq === account.seq && entry.tot === account.tot, 'the entry does not match the account')
    // Entry 1 is written only for an account the store was asked about and did not have.
    if (before === undefined) assert.ok(round.lookedUp.has(mod.accountKey), 'an account created without reading the store')

    round.writes.entries.push([mod.accountKey, entry])
    if (this.#options.outboxEnabled === true) {
      const events = alertEvents(mod.accountKey, before, account, this.#options.alertBelowDefault)
      if (events.length > 0) (round.writes.outbox ??= []).push(...events)
    }
    if (idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined, 'an idempotency record for a mod without a key')
      round.writes.idempotency.push([idempotencyKey, idempotency])
      round.idempotency.set(idempotencyKey, idempotency)
    }
    round.accounts.set(mod.accountKey, account)
    round.dirtyAccounts.add(mod.accountKey)
    round.applied++
    if (mod.by > 0n) round.credited += mod.by
    else round.debited -= mod.by
    if (before === undefined) round.createdAccounts.push(mod.accountKey)
    return decision
  }

  /** Decides one move against the states the round's earlier ops left, and stages both sides. */
  #decideMove(round: Round, mod: PendingMod, context: DecisionContext): MoveDecision {
    const toAccountKey = mod.toAccountKey
    assert.ok(toAccountKey !== undefined && mod.moveId !== undefined && toAccountKey !== mod.accountKey, 'a move names two accounts and an id')
    const idempotencyKey = mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
    const from = round.accounts.get(mod.accountKey)
    const to = round.accounts.get(toAccountKey)
    const first = idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey)
    const input = { by: mod.by, toAccountKey, fromAccountKey: mod.accountKey, moveId: mod.moveId, note: mod.note, idempotencyKey: mod.idempotencyKey, actor: mod.actor }
    const decision = decideMove(from, to, first, dropUndefined(input), context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    const writes = decision.writes
    assert.ok(from !== undefined && to !== undefined)
    // Paired checks: both sides change by the amount, in opposite directions, one entry each.
    assert.equal(writes.from.tot, from.tot - mod.by, 'a move out does not take its amount')
    assert.equal(writes.to.tot, to.tot + mod.by, 'a move in does not add its amount')
    assert.equal(writes.from.seq, from.seq + 1, 'the new seq is not the old one plus one')
    assert.equal(writes.to.seq, to.seq + 1, 'the new seq is not the old one plus one')
    assert.ok(writes.fromEntry.by === -writes.toEntry.by && writes.fromEntry.move === writes.toEntry.move, 'the two sides of a move differ')

    round.writes.entries.push([mod.accountKey, writes.fromEntry], [toAccountKey, writes.toEntry])
    if (writes.idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined, 'an idempotency record for a move without a key')
      round.writes.idempotency.push([idempotencyKey, writes.idempotency])
      round.idempotency.set(idempotencyKey, writes.idempotency)
    }
    round.accounts.set(mod.accountKey, writes.from)
    round.accounts.set(toAccountKey, writes.to)
    round.dirtyAccounts.add(mod.accountKey)
    round.dirtyAccounts.add(toAccountKey)
    round.applied += 2
    round.moves++
    round.moved += mod.by
    return decision
  }

  /** Stages the low-balance events of the accounts an op changed, from their states before it. */
  #stageAlerts(round: Round, befores: ReadonlyArray<readonly [AccountKey, AccountState | undefined]>): void {
    if (this.#options.outboxEnabled !== true) return
    for (const [accountKey, before] of befores) {
      const after = round.accounts.get(accountKey)
      if (after === undefined || after === before) continue
      const events = alertEvents(accountKey, before, after, this.#options.alertBelowDefault)
      if (events.length > 0) (round.writes.outbox ??= []).push(...events)
    }
  }

  /** Decides one freeze or unfreeze; a no-op (already in that state) stages nothing. */
  #decideFreeze(round: Round, mod: PendingMod, context: DecisionContext): FreezeDecision {
    assert.ok(mod.frozen !== undefined, 'a freeze names its state')
    const before = round.accounts.get(mod.accountKey)
    const decision = decideFreeze(before, dropUndefined({ frozen: mod.frozen, actor: mod.actor }), context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    assert.ok(before !== undefined)
    assert.ok(decision.writes.account.tot === before.tot && decision.writes.account.seq === before.seq + 1, 'a freeze changes only the seq')
    round.writes.entries.push([mod.accountKey, decision.writes.entry])
    if (this.#options.outboxEnabled === true && mod.frozen) {
      ;(round.writes.outbox ??= []).push(accountEvent('account.frozen', mod.accountKey, decision.writes.account, this.#options.alertBelowDefault))
    }
    round.accounts.set(mod.accountKey, decision.writes.account)
    round.dirtyAccounts.add(mod.accountKey)
    round.applied++
    round.freezes++
    return decision
  }
}

interface StoredRound {
  round: Round
  decisions: Decision[]
  /** False when the round had nothing to write (every mod refused or replayed). */
  written: boolean
  writeMs: number
}

interface PendingUpdate {
  accountKey: AccountKey
  change: AccountChange
  resolve: (state: AccountState) => void
  reject: (error: Error) => void
}

interface PendingPrune {
  keys: string[]
  accounts: Set<AccountKey>
  resolve: (deleted: number) => void
  reject: (error: Error) => void
}

/** Every account and every idempotency key of the round, read through its transaction. */
function planSharedRound(round: Round, mods: PendingMod[]): void {
  for (const mod of mods) {
    for (const accountKey of accountsOf(mod)) {
      if (round.lookedUp.has(accountKey)) continue
      round.accounts.set(accountKey, undefined)
      round.lookedUp.add(accountKey)
      round.toRead.accounts.push(accountKey)
    }
    if (mod.idempotencyKey === undefined) continue
    const key = idempotencyKeyOf(mod.accountKey, mod.idempotencyKey)
    if (round.idempotency.has(key)) continue
    round.idempotency.set(key, undefined)
    round.toRead.idempotency.push(key)
  }
}

/** The store did not answer in time and stored nothing: the round is refused, the writer goes on. */
function isStoreUnavailable(error: unknown): error is LedgerError {
  return error instanceof LedgerError && error.code === 'ACCMAN_STORE_UNAVAILABLE'
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

function* dirtyStates(round: Round): Generator<[AccountKey, AccountState]> {
  for (const accountKey of round.dirtyAccounts) {
    const state = round.accounts.get(accountKey)
    assert.ok(state !== undefined)
    yield [accountKey, state]
  }
}

function reportOf(round: Round, mods: number, writeMs: number): RoundReport {
  return {
    mods,
    applied: round.applied,
    accountsCreated: round.createdAccounts.length,
    credited: round.credited,
    debited: round.debited,
    holds: round.holdCounts,
    moves: round.moves,
    moved: round.moved,
    freezes: round.freezes,
    writeMs,
  }
}

function answer(mods: PendingMod[], decisions: Decision[]): void {
  assert.equal(mods.length, decisions.length)
  for (const [index, mod] of mods.entries()) {
    const decision = decisions[index]
    assert.ok(decision !== undefined)
    if ('refusal' in decision) mod.reject(decision.refusal)
    else mod.resolve(decision.result)
  }
}

/** The object without its undefined fields (optional fields are absent, never undefined). */
function dropUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> }
}
