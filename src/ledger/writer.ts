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
//
// A credential names an account through the credentials table. Ops are queued by credential (a
// rotation and a move by both of theirs; an expiry pass by its account directly): the mapping of
// a credential changes only in a round holding it, so each round resolves its credentials to
// accounts once, at its start, and then claims those accounts (two credentials of one account
// during a rotation's grace may sit in two rounds; the later waits). A round holding claims
// never waits for another, so none deadlock.
import assert from 'node:assert/strict'
import { idempotencyKeyOf, isCredentialLive, type AccountState, type CredentialState, type IdempotencyState } from './codec.js'
import type { LedgerMemory } from './cache.js'
import { decideMod, type DecisionContext, type ModDecision } from './decide.js'
import { decideRotate, type RotateDecision, type RotateResult } from './accounts.js'
import { LedgerError } from './errors.js'
import { decideHoldOp, decisionTimeOf, expireDue, hasDueHolds, heldAsOf, type HoldOp, type HoldOpDecision, type HoldOpResult } from './holds.js'
import { decideFreeze, decideMove, type FreezeDecision, type MoveDecision } from './move.js'
import type { LedgerStore, RoundTransaction, RoundWrites } from './store.js'
import { accountEvent, alertEvents } from './alerts.js'
import { decideAccountChange, type AccountChange } from './account-settings.js'
import type { AccountKey, CredentialKey, HoldState, ModInput, ModResult } from './types.js'

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
  /** The internal id of an account a credit creates (random; a simulation passes its own). */
  newAccountKey: () => AccountKey
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
  /** Credentials rotated. */
  rotations: number
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
  /** A move's other credential: the round resolves and holds both. */
  toCredentialKey?: CredentialKey
  moveId?: string
  /** A freeze's target state. */
  frozen?: boolean
}

/** A rotation of a credential (the old one) to newCredentialKey. */
export interface RotateRequest {
  newCredentialKey: CredentialKey
  graceMs: number
  idempotencyKey?: string
  actor?: string
}

interface PendingMod extends ModInput {
  op?: 'move' | 'freeze' | 'rotate'
  /** The credential the op came with; absent on an expiry pass, which names its account. */
  credentialKey?: CredentialKey
  /** An expiry pass's account (the background pass works by account). */
  accountKey?: AccountKey
  toCredentialKey?: CredentialKey
  moveId?: string
  frozen?: boolean
  /** A rotation's new credential and grace. */
  newCredentialKey?: CredentialKey
  graceMs?: number
  /** Absent: a mod (by, note, idempotencyKey). Present: by is 0 and the op says what to do. */
  holdOp?: WriterOp
  resolve: (result: ModResult | HoldOpResult | RotateResult | undefined) => void
  reject: (error: Error) => void
}

/** The credentials an op holds while it is in a round. */
function credentialsOf(mod: PendingMod): CredentialKey[] {
  const keys: CredentialKey[] = []
  if (mod.credentialKey !== undefined) keys.push(mod.credentialKey)
  if (mod.toCredentialKey !== undefined) keys.push(mod.toCredentialKey)
  if (mod.newCredentialKey !== undefined) keys.push(mod.newCredentialKey)
  return keys
}

/** A claim on an account by a round in flight (or a pruning, or a settings change); released once it is stored. */
interface Claim {
  released: Promise<void>
  release: () => void
}

function newClaim(): Claim {
  let release = () => {}
  const released = new Promise<void>((resolve) => (release = resolve))
  return { released, release }
}

/** What a round knows of one account's holds. */
interface HoldsOfAccount {
  /** Every open hold, by id; undefined when not read (a hold needs none of them). */
  open: Map<string, HoldState> | undefined
  /** Every hold the round has seen (read by id, or open), as it is now in the round. */
  known: Map<string, HoldState>
}

type Decision = ModDecision | HoldOpDecision | MoveDecision | FreezeDecision | RotateDecision | { result: undefined }
/** What one round knows: states read at its start, updated by each mod it decides. */
interface Round {
  /** The round's credentials as read at its start, updated by each op it decides. */
  credentials: Map<CredentialKey, CredentialState | undefined>
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
  rotations: number
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
  /** Credentials of the rounds in flight: their ops wait until that round is stored. */
  readonly #busyCredentials = new Set<CredentialKey>()
  /** Accounts claimed by the rounds in flight (and a pruning); a round resolving to one waits. */
  readonly #heldAccounts = new Map<AccountKey, Claim>()
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

  submit(credentialKey: CredentialKey, input: ModInput & OpFields): Promise<ModResult> {
    return this.#enqueue({ ...input, credentialKey }, undefined) as Promise<ModResult>
  }

  /**
   * Queues a hold, settle or void on the account of a credential (resolves with its answer), or
   * an expiry pass over an account by its internal id (resolves undefined).
   */
  submitHoldOp(target: { credentialKey: CredentialKey } | { accountKey: AccountKey }, op: WriterOp): Promise<HoldOpResult | undefined> {
    const idempotencyKey = op.op === 'expire' ? undefined : op.idempotencyKey
    return this.#enqueue({ ...target, by: 0n, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) }, op) as Promise<
      HoldOpResult | undefined
    >
  }

  /** Points request.newCredentialKey at the account of credentialKey; see decideRotate. */
  rotate(credentialKey: CredentialKey, request: RotateRequest): Promise<RotateResult> {
    assert.ok(credentialKey !== request.newCredentialKey, 'a rotation to the same credential')
    const { newCredentialKey, graceMs, idempotencyKey, actor } = request
    const input = { by: 0n, op: 'rotate' as const, credentialKey, newCredentialKey, graceMs, ...(idempotencyKey === undefined ? {} : { idempotencyKey }), ...(actor === undefined ? {} : { actor }) }
    return this.#enqueue(input, undefined) as Promise<RotateResult>
  }

  #enqueue(
    input: ModInput & Omit<PendingMod, 'resolve' | 'reject' | keyof ModInput>,
    holdOp: WriterOp | undefined,
  ): Promise<ModResult | HoldOpResult | RotateResult | undefined> {
    if (this.#failure !== undefined || this.#closing) {
      return Promise.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting mods'))
    }
    if (this.#queue.length >= this.#options.queueMax) {
      return Promise.reject(new LedgerError('ACCMAN_QUEUE_FULL', 'too many mods waiting; retry later'))
    }
    return new Promise<ModResult | HoldOpResult | RotateResult | undefined>((resolve, reject) => {
      const pending: PendingMod = { ...input, resolve, reject }
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
    for (const key of keys) accounts.add(key.slice(0, key.indexOf('!')) as AccountKey)
    return new Promise<number>((resolve, reject) => {
      this.#prune = { keys, accounts, resolve, reject }
      this.#pump()
    })
  }

  /**
   * Changes an account's settings (threshold, ref) without a history entry, in a round of its own
   * holding the account, so no mod of it is decided meanwhile. Resolves with the account's state.
   */
  update(credentialKey: CredentialKey, change: AccountChange): Promise<AccountState> {
    if (this.#failure !== undefined || this.#closing) {
      return Promise.reject(new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting changes'))
    }
    if (this.#updates.length >= this.#options.queueMax) {
      return Promise.reject(new LedgerError('ACCMAN_QUEUE_FULL', 'too many changes waiting; retry later'))
    }
    return new Promise<AccountState>((resolve, reject) => {
      this.#updates.push({ credentialKey, change, resolve, reject })
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
    if (this.#busyCredentials.has(update.credentialKey)) return
    this.#updates.shift()
    this.#busyCredentials.add(update.credentialKey)
    this.#roundsInFlight++
    this.#updateInFlight = true
    void this.#runUpdate(update)
  }

  async #runUpdate(update: PendingUpdate): Promise<void> {
    const { credentialKey, change } = update
    type Outcome = { state: AccountState; accountKey: AccountKey } | { refusal: LedgerError }
    let outcome: Outcome | undefined
    let failure: Error | undefined
    const claims = new Set<AccountKey>()
    try {
      outcome = await this.#store.runRound<Outcome>(async (transaction) => {
        this.#releaseClaims(claims)
        const credential = (await transaction.readRound([], [], [credentialKey])).credentials?.[0]
        const nowMs = transaction.nowMs ?? this.#options.now()
        if (credential === undefined || !isCredentialLive(credential, nowMs)) {
          return { writes: undefined, value: { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') } }
        }
        const accountKey = credential.accountKey
        await this.#claim([accountKey], claims)
        const { accounts } = await transaction.readRound([accountKey], [])
        const owners = typeof change.ref === 'string' ? await transaction.readRefs([change.ref]) : []
        const decision = decideAccountChange(accountKey, accounts[0], change, owners[0])
        if ('refusal' in decision) return { writes: undefined, value: { refusal: decision.refusal } }
        const writes: RoundWrites = { accounts: [[accountKey, decision.account]], entries: [], idempotency: [], idempotencyDeletes: [], refs: decision.refs }
        return { writes, value: { state: decision.account, accountKey } }
      })
      if (!this.#shared && outcome !== undefined && 'state' in outcome) this.#memory.accounts.commit([[outcome.accountKey, outcome.state]])
    } catch (error) {
      failure = asError(error)
    }
    this.#busyCredentials.delete(credentialKey)
    this.#releaseClaims(claims)
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
    const claimed = new Set<CredentialKey>()
    // Credentials of ops left behind: a later op of any of them waits too (a move or a rotation
    // left behind for its other credential must not be overtaken by a mod of its first).
    const leftBehind = new Set<CredentialKey>()
    // An expiry pass names its account: one per account per round, the round's claim does the rest.
    const expiring = new Set<AccountKey>()
    // Look a bounded way ahead, so a long queue for one busy account costs little per round.
    const horizon = Math.min(this.#queue.length, this.#options.batchMax * this.#options.lookAheadBatchesMax)
    for (let index = 0; index < horizon && taken.length < this.#options.batchMax; index++) {
      const mod = this.#queue[index]
      assert.ok(mod !== undefined)
      const credentials = credentialsOf(mod)
      if (
        credentials.some((key) => this.#busyCredentials.has(key) || leftBehind.has(key) || this.#updates[0]?.credentialKey === key) ||
        (mod.accountKey !== undefined && (expiring.has(mod.accountKey) || this.#prune?.accounts.has(mod.accountKey) === true))
      ) {
        waiting.push(mod)
        for (const key of credentials) leftBehind.add(key)
      } else {
        taken.push(mod)
        for (const key of credentials) claimed.add(key)
        if (mod.accountKey !== undefined) expiring.add(mod.accountKey)
      }
    }
    if (taken.length === 0) return taken
    this.#queue = waiting.concat(this.#queue.slice(taken.length + waiting.length))
    for (const key of claimed) this.#busyCredentials.add(key)
    return taken
  }

  async #runRound(mods: PendingMod[]): Promise<void> {
    let stored: StoredRound
    const claims = new Set<AccountKey>()
    try {
      stored = await this.#decideAndStore(mods, claims)
    } catch (error) {
      // Nothing of the round reached the store: its mods may be refused.
      this.#release(mods, claims)
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
    this.#release(mods, claims)
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
  async #decideAndStore(mods: PendingMod[], claims: Set<AccountKey>): Promise<StoredRound> {
    let writeStartedMs = 0
    const { round, decisions } = await this.#store.runRound(async (transaction) => {
      // A round never waits for a claim while holding one.
      this.#releaseClaims(claims)
      const round = this.#newRound(transaction.nowMs)
      await this.#resolveCredentials(round, mods, transaction)
      const accountKeys = [
        ...new Set([
          ...[...round.credentials.values()].flatMap((state) => (state === undefined ? [] : [state.accountKey])),
          ...mods.flatMap((mod) => (mod.accountKey === undefined ? [] : [mod.accountKey])),
        ]),
      ]
      await this.#claim(accountKeys, claims)
      this.#planReads(round, mods, accountKeys)
      if (round.toRead.accounts.length > 0 || round.toRead.idempotency.length > 0) await this.#read(round, transaction)
      await this.#fillCreatedTimes(round, mods)
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

  /** Waits until no other round holds any of `accountKeys`, then claims them all at once. */
  async #claim(accountKeys: AccountKey[], claims: Set<AccountKey>): Promise<void> {
    for (;;) {
      const held = accountKeys.find((key) => this.#heldAccounts.has(key) && !claims.has(key))
      if (held === undefined) break
      await this.#heldAccounts.get(held)?.released
    }
    for (const key of accountKeys) {
      if (claims.has(key)) continue
      claims.add(key)
      this.#heldAccounts.set(key, newClaim())
    }
  }

  #releaseClaims(claims: Set<AccountKey>): void {
    for (const key of claims) {
      this.#heldAccounts.get(key)?.release()
      this.#heldAccounts.delete(key)
    }
    claims.clear()
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
    for (const accountKey of prune.accounts) if (this.#heldAccounts.has(accountKey)) return
    const claims = new Set<AccountKey>()
    for (const accountKey of prune.accounts) {
      claims.add(accountKey)
      this.#heldAccounts.set(accountKey, newClaim())
    }
    this.#roundsInFlight++
    void this.#runPrune(prune, claims)
  }

  async #runPrune(prune: PendingPrune, claims: Set<AccountKey>): Promise<void> {
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
    this.#releaseClaims(claims)
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

  #release(mods: PendingMod[], claims: Set<AccountKey>): void {
    for (const mod of mods) for (const key of credentialsOf(mod)) this.#busyCredentials.delete(key)
    this.#releaseClaims(claims)
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
    if (round.createdAccounts.length > 0) round.writes.created = round.createdAccounts
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
      const own = accountOf(round, mod)
      // A move's other account too: its due expiries are written before its move entry.
      for (const accountKey of accountsOf(round, mod)) {
        const state = round.accounts.get(accountKey)
        if (!round.holds.has(accountKey)) {
          // An account with no open hold in the store: the round knows all of them (none).
          round.holds.set(accountKey, { open: state?.holdCount === undefined ? new Map() : undefined, known: new Map() })
        }
        if (state?.holdCount === undefined) continue
        const op = accountKey === own ? mod.holdOp?.op : undefined
        const atMs = Math.max(round.atMs, state.atMs)
        if (hasDueHolds(state, atMs) || op === 'settle' || op === 'void') openOf.add(accountKey)
      }
      // A settle or void on an account the store shows no open hold for may still name a closed one.
      if (own !== undefined && mod.holdOp !== undefined && (mod.holdOp.op === 'settle' || mod.holdOp.op === 'void')) {
        byId.set(`${own}!${mod.holdOp.holdId}`, [own, mod.holdOp.holdId])
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
    const accountKey = accountOf(round, mod)
    if (accountKey === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
    const view = round.holds.get(accountKey)
    assert.ok(view !== undefined)
    const idempotencyKey = mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(accountKey, mod.idempotencyKey)
    const before = round.accounts.get(accountKey)
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
    round.writes.entries.push([accountKey, entry])
    if (idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined)
      round.writes.idempotency.push([idempotencyKey, idempotency])
      round.idempotency.set(idempotencyKey, idempotency)
    }
    view.known.set(hold.id, hold)
    if (hold.closed === undefined) view.open?.set(hold.id, hold)
    else view.open?.delete(hold.id)
    round.holdWrites.set(`${accountKey}!${hold.id}`, [accountKey, hold])
    round.accounts.set(accountKey, account)
    round.dirtyAccounts.add(accountKey)
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
    for (const [key, state] of round.writes.credentials ?? []) this.#memory.credentials.set(key, state)
  }

  #newRound(storeNowMs: number | undefined): Round {
    // Idempotency windows are measured on a clock that never goes back (see WindowedKeyFilter).
    const atMs = this.#idempotencyClock(storeNowMs)
    return {
      credentials: new Map(),
      accounts: new Map(),
      idempotency: new Map(),
      toRead: { accounts: [], idempotency: [] },
      lookedUp: new Set(),
      dirtyAccounts: new Set(),
      createdAccounts: [],
      writes: { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [], credentials: [] },
      atMs,
      applied: 0,
      rotations: 0,
      credited: 0n,
      debited: 0n,
      holds: new Map(),
      holdWrites: new Map(),
      holdCounts: { opened: 0, openedUnits: 0n, settled: 0, settledUnits: 0n, voided: 0, voidedUnits: 0n, expired: 0, expiredUnits: 0n },
      moves: 0,
      moved: 0n,
      freezes: 0,
    }
  }

  /**
   * The one place where the round's credentials become accounts. Exclusive: from the cache, and
   * what it lacks from the store (the round holds its credentials: nothing else changes them).
   * Shared: every one through the transaction, which locks those that exist.
   */
  async #resolveCredentials(round: Round, mods: PendingMod[], transaction: RoundTransaction): Promise<void> {
    const toRead: CredentialKey[] = []
    for (const mod of mods) {
      for (const key of credentialsOf(mod)) {
        if (round.credentials.has(key)) continue
        const cached = this.#shared ? ([false] as const) : this.#memory.credentials.get(key)
        round.credentials.set(key, cached[0] ? cached[1] : undefined)
        if (!cached[0]) toRead.push(key)
      }
    }
    if (toRead.length === 0) return
    const { credentials } = await transaction.readRound([], [], toRead)
    for (const [index, key] of toRead.entries()) {
      const state = credentials?.[index]
      round.credentials.set(key, state)
      if (!this.#shared) this.#memory.credentials.set(key, state)
    }
  }

  /**
   * What the round knows without the store (exclusive: cached accounts, and idempotency keys
   * certainly absent), and what it must read. Accounts are those the credentials name.
   */
  #planReads(round: Round, mods: PendingMod[], accountKeys: AccountKey[]): void {
    for (const accountKey of accountKeys) {
      const cached = this.#shared ? undefined : this.#memory.accounts.get(accountKey)
      round.accounts.set(accountKey, cached)
      round.lookedUp.add(accountKey)
      if (cached === undefined) round.toRead.accounts.push(accountKey)
    }
    for (const mod of mods) {
      if (mod.idempotencyKey === undefined) continue
      // The credential's account even when retired: a retry of a rotation finds its record.
      const accountKey = mod.accountKey ?? (mod.credentialKey === undefined ? undefined : round.credentials.get(mod.credentialKey)?.accountKey)
      if (accountKey === undefined) continue
      const key = idempotencyKeyOf(accountKey, mod.idempotencyKey)
      if (round.idempotency.has(key)) continue
      round.idempotency.set(key, undefined)
      if (this.#shared || this.#memory.idempotencyKeys.mightContain(key)) round.toRead.idempotency.push(key)
    }
  }

  /** A rotation answers with the creation time: accounts of format 1 have it in entry 1 only. */
  async #fillCreatedTimes(round: Round, mods: PendingMod[]): Promise<void> {
    for (const mod of mods) {
      if (mod.op !== 'rotate') continue
      const accountKey = accountOf(round, mod)
      const state = accountKey === undefined ? undefined : round.accounts.get(accountKey)
      if (accountKey === undefined || state === undefined || state.createdMs !== undefined) continue
      const [first] = await this.#store.pageHistory(accountKey, { seqLow: 1, seqHigh: 1, limit: 1, order: 'asc' })
      assert.ok(first !== undefined, 'an account without entry 1')
      round.accounts.set(accountKey, { ...state, createdMs: first.atMs })
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
      // A credential names an account that is not there: the store is damaged. (An expiry pass
      // may name an account a shared store no longer has open holds on; it finds it anyway.)
      assert.ok(state !== undefined, `a credential names account ${key.slice(0, 12)}…, which does not exist`)
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
    const accountKeys = accountsOf(round, mod)
    for (const accountKey of accountKeys) this.#expireDue(round, accountKey, context)
    if (mod.holdOp !== undefined || mod.op === 'move') {
      // A hold and a move out lower avail too: their crossings are events as a debit's are.
      const befores = accountKeys.map((accountKey) => [accountKey, round.accounts.get(accountKey)] as const)
      const decision = mod.holdOp !== undefined ? this.#decideHoldOp(round, mod, mod.holdOp, context) : this.#decideMove(round, mod, context)
      this.#stageAlerts(round, befores)
      return decision
    }
    if (mod.op === 'freeze') return this.#decideFreeze(round, mod, context)
    if (mod.op === 'rotate') return this.#decideRotate(round, mod, context)
    assert.ok(mod.credentialKey !== undefined, 'a mod names its credential')
    // A credential that addresses no account now (none, or retired) gets a new account on a credit.
    let accountKey = accountOf(round, mod)
    let creates = false
    if (accountKey === undefined) {
      if (mod.by < 0n) return decideMod(undefined, undefined, mod, context)
      accountKey = this.#options.newAccountKey()
      assert.ok(!round.accounts.has(accountKey), 'a new account id already in use')
      round.accounts.set(accountKey, undefined)
      round.lookedUp.add(accountKey)
      creates = true
    }
    const idempotencyKey =
      mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(accountKey, mod.idempotencyKey)
    const before = round.accounts.get(accountKey)
    const first = idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey)
    const decision = decideMod(before, first, mod, context)
    if (!('writes' in decision) || decision.writes === undefined) {
      if (creates) round.accounts.delete(accountKey)
      return decision
    }
    const { account, entry, idempotency } = decision.writes

    // Paired checks on what the decision hands to the store: crash rather than corrupt.
    assert.equal(account.seq, (before?.seq ?? 0) + 1, 'the new seq is not the old one plus one')
    assert.equal(account.tot, (before?.tot ?? 0n) + mod.by, 'the new balance is not the old one plus by')
    assert.ok(entry.seq === account.seq && entry.tot === account.tot, 'the entry does not match the account')
    // Entry 1 is written only for an account the store was asked about and did not have.
    if (before === undefined) assert.ok(round.lookedUp.has(accountKey), 'an account created without reading the store')

    round.writes.entries.push([accountKey, entry])
    if (idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined, 'an idempotency record for a mod without a key')
      round.writes.idempotency.push([idempotencyKey, idempotency])
      round.idempotency.set(idempotencyKey, idempotency)
    }
    round.accounts.set(accountKey, account)
    this.#stageAlerts(round, [[accountKey, before]])
    round.dirtyAccounts.add(accountKey)
    round.applied++
    if (mod.by > 0n) round.credited += mod.by
    else round.debited -= mod.by
    if (before === undefined) {
      round.createdAccounts.push(accountKey)
      const state: CredentialState = { accountKey }
      round.credentials.set(mod.credentialKey, state)
      round.writes.credentials?.push([mod.credentialKey, state])
    }
    return decision
  }

  /** Decides one rotation (see decideRotate) and stages its writes. */
  #decideRotate(round: Round, mod: PendingMod, context: DecisionContext): RotateDecision {
    assert.ok(mod.credentialKey !== undefined && mod.newCredentialKey !== undefined && mod.graceMs !== undefined, 'a rotation names both credentials')
    const noAccount = { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
    const old = round.credentials.get(mod.credentialKey)
    if (old === undefined) return noAccount
    const account = round.accounts.get(old.accountKey)
    assert.ok(account !== undefined, 'a credential names an account that does not exist')
    const fresh = round.credentials.get(mod.newCredentialKey)
    const idempotencyKey = mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(old.accountKey, mod.idempotencyKey)
    const decision = decideRotate(
      account,
      idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey),
      dropUndefined({
        accountKey: old.accountKey,
        oldCredentialKey: mod.credentialKey,
        newCredentialKey: mod.newCredentialKey,
        oldCredential: old,
        oldLive: isCredentialLive(old, round.atMs),
        newInUse: fresh !== undefined && isCredentialLive(fresh, round.atMs),
        graceMs: mod.graceMs,
        idempotencyKey: mod.idempotencyKey,
        actor: mod.actor,
        held: heldNow(account, round.holds.get(old.accountKey), round.atMs),
      }),
      context,
    )
    if (!('writes' in decision) || decision.writes === undefined) return decision
    const { writes } = decision
    assert.equal(writes.account.seq, account.seq + 1, 'the new seq is not the old one plus one')
    assert.equal(writes.account.tot, account.tot, 'a rotation changed the balance')
    round.writes.entries.push([old.accountKey, writes.entry])
    if (writes.idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined)
      round.writes.idempotency.push([idempotencyKey, writes.idempotency])
      round.idempotency.set(idempotencyKey, writes.idempotency)
    }
    for (const [key, state] of writes.credentials) {
      round.credentials.set(key, state)
      round.writes.credentials?.push([key, state])
    }
    if (this.#options.outboxEnabled === true) (round.writes.outbox ??= []).push(accountEvent('account.rotated', old.accountKey, writes.account, this.#options.alertBelowDefault))
    round.accounts.set(old.accountKey, writes.account)
    round.dirtyAccounts.add(old.accountKey)
    round.applied++
    round.rotations++
    return decision
  }

  /** Decides one move against the states the round's earlier ops left, and stages both sides. */
  #decideMove(round: Round, mod: PendingMod, context: DecisionContext): MoveDecision {
    assert.ok(mod.toCredentialKey !== undefined && mod.moveId !== undefined && mod.toCredentialKey !== mod.credentialKey, 'a move names two credentials and an id')
    const fromAccountKey = accountOf(round, mod)
    if (fromAccountKey === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
    // Unknown TO: decideMove replays a keyed retry first, else answers 404 naming `to`.
    const toAccountKey = liveAccountOf(round, mod.toCredentialKey)
    // Two credentials of one account (during a rotation's grace): not a move between two accounts.
    if (toAccountKey === fromAccountKey) return { refusal: new LedgerError('ACCMAN_INVALID_QUERY', 'cred and to address the same account') }
    const idempotencyKey = mod.idempotencyKey === undefined ? undefined : idempotencyKeyOf(fromAccountKey, mod.idempotencyKey)
    const from = round.accounts.get(fromAccountKey)
    const to = toAccountKey === undefined ? undefined : round.accounts.get(toAccountKey)
    const first = idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey)
    // An unknown TO never matches a record's fingerprint (which names an account).
    const input = { by: mod.by, toAccountKey: toAccountKey ?? ('' as AccountKey), fromAccountKey, moveId: mod.moveId, note: mod.note, idempotencyKey: mod.idempotencyKey, actor: mod.actor }
    const decision = decideMove(from, to, first, dropUndefined(input), context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    const writes = decision.writes
    assert.ok(from !== undefined && to !== undefined && toAccountKey !== undefined)
    // Paired checks: both sides change by the amount, in opposite directions, one entry each.
    assert.equal(writes.from.tot, from.tot - mod.by, 'a move out does not take its amount')
    assert.equal(writes.to.tot, to.tot + mod.by, 'a move in does not add its amount')
    assert.equal(writes.from.seq, from.seq + 1, 'the new seq is not the old one plus one')
    assert.equal(writes.to.seq, to.seq + 1, 'the new seq is not the old one plus one')
    assert.ok(writes.fromEntry.by === -writes.toEntry.by && writes.fromEntry.move === writes.toEntry.move, 'the two sides of a move differ')

    round.writes.entries.push([fromAccountKey, writes.fromEntry], [toAccountKey, writes.toEntry])
    if (writes.idempotency !== undefined) {
      assert.ok(idempotencyKey !== undefined, 'an idempotency record for a move without a key')
      round.writes.idempotency.push([idempotencyKey, writes.idempotency])
      round.idempotency.set(idempotencyKey, writes.idempotency)
    }
    round.accounts.set(fromAccountKey, writes.from)
    round.accounts.set(toAccountKey, writes.to)
    round.dirtyAccounts.add(fromAccountKey)
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
    const accountKey = accountOf(round, mod)
    const before = accountKey === undefined ? undefined : round.accounts.get(accountKey)
    const decision = decideFreeze(before, dropUndefined({ frozen: mod.frozen, actor: mod.actor }), context)
    if (!('writes' in decision) || decision.writes === undefined) return decision
    assert.ok(before !== undefined && accountKey !== undefined)
    assert.ok(decision.writes.account.tot === before.tot && decision.writes.account.seq === before.seq + 1, 'a freeze changes only the seq')
    round.writes.entries.push([accountKey, decision.writes.entry])
    if (this.#options.outboxEnabled === true && mod.frozen) {
      ;(round.writes.outbox ??= []).push(accountEvent('account.frozen', accountKey, decision.writes.account, this.#options.alertBelowDefault))
    }
    round.accounts.set(accountKey, decision.writes.account)
    round.dirtyAccounts.add(accountKey)
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
  credentialKey: CredentialKey
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

/** The account an op is on as the round resolved it: its credential's (while live), or the one it names. */
function accountOf(round: Round, mod: PendingMod): AccountKey | undefined {
  if (mod.accountKey !== undefined) return mod.accountKey
  return mod.credentialKey === undefined ? undefined : liveAccountOf(round, mod.credentialKey)
}

function liveAccountOf(round: Round, credentialKey: CredentialKey): AccountKey | undefined {
  const state = round.credentials.get(credentialKey)
  return state !== undefined && isCredentialLive(state, round.atMs) ? state.accountKey : undefined
}

/** The accounts an op touches as resolved: one, a move's two, none for an unknown credential. */
function accountsOf(round: Round, mod: PendingMod): AccountKey[] {
  const keys: AccountKey[] = []
  const own = accountOf(round, mod)
  if (own !== undefined) keys.push(own)
  if (mod.toCredentialKey !== undefined) {
    const to = liveAccountOf(round, mod.toCredentialKey)
    if (to !== undefined && to !== own) keys.push(to)
  }
  return keys
}

/** The account's held as of atMs: its open holds not yet past their expiry, when the round read them. */
function heldNow(account: AccountState, holds: HoldsOfAccount | undefined, atMs: number): bigint {
  if (holds?.open !== undefined) return heldAsOf([...holds.open.values()], atMs)
  // Due holds are expired (and read) before any op of the account: what is written is current.
  return account.held ?? 0n
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
    rotations: round.rotations,
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
