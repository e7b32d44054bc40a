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
// rotation by both of its credentials): the mapping of a credential changes only in a round
// holding it, so each round resolves its credentials to accounts once, at its start, and then
// claims those accounts (two credentials of one account during a rotation's grace may sit in two
// rounds; the later waits). A round holding claims never waits for another, so none deadlock.
import assert from 'node:assert/strict'
import {
  idempotencyKeyOf,
  isCredentialLive,
  type AccountState,
  type CredentialState,
  type IdempotencyState,
} from './codec.js'
import type { LedgerMemory } from './cache.js'
import { decideMod, type DecisionContext, type ModDecision } from './decide.js'
import { decideRotate, type RotateDecision, type RotateResult } from './accounts.js'
import { LedgerError } from './errors.js'
import type { LedgerStore, RoundTransaction, RoundWrites } from './store.js'
import type { AccountKey, CredentialKey, ModInput, ModResult } from './types.js'

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
  /** From the round's writes handed to the store (which encodes them) to their completion, with fsync when sync is on. */
  writeMs: number
}

interface PendingMod extends ModInput {
  op: 'mod'
  credentialKey: CredentialKey
  resolve: (result: ModResult) => void
  reject: (error: Error) => void
}

/** A rotation of `credentialKey` (the old credential) to newCredentialKey. */
export interface RotateRequest {
  newCredentialKey: CredentialKey
  graceMs: number
  idempotencyKey?: string
}

interface PendingRotate extends RotateRequest {
  op: 'rotate'
  credentialKey: CredentialKey
  resolve: (result: RotateResult) => void
  reject: (error: Error) => void
}

type PendingOp = PendingMod | PendingRotate
type OpDecision = ModDecision | RotateDecision

/** The credentials an op holds while it is in a round. */
function credentialsOf(op: PendingOp): CredentialKey[] {
  return op.op === 'mod' ? [op.credentialKey] : [op.credentialKey, op.newCredentialKey]
}

/** A claim on an account by a round in flight (or a pruning); released once it is stored. */
interface Hold {
  released: Promise<void>
  release: () => void
}

function newHold(): Hold {
  let release = () => {}
  const released = new Promise<void>((resolve) => (release = resolve))
  return { released, release }
}

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
}

export class Writer {
  readonly #store: LedgerStore
  readonly #options: WriterOptions
  readonly #memory: LedgerMemory
  /** Other nodes write the store too: no cache, no filters, every state read in the round. */
  readonly #shared: boolean
  #queue: PendingOp[] = []
  /** A pruning of expired idempotency records waiting for its accounts; at most one. */
  #prune: PendingPrune | undefined
  /** Credentials of the rounds in flight: their ops wait until that round is stored. */
  readonly #busyCredentials = new Set<CredentialKey>()
  /** Accounts claimed by the rounds in flight (and a pruning); a round resolving to one waits. */
  readonly #heldAccounts = new Map<AccountKey, Hold>()
  #roundsInFlight = 0
  #pumpScheduled = false
  #closing = false
  #failure: Error | undefined
  #drained: Array<() => void> = []

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

  submit(credentialKey: CredentialKey, input: ModInput): Promise<ModResult> {
    const refusal = this.#refusal()
    if (refusal !== undefined) return Promise.reject(refusal)
    return new Promise<ModResult>((resolve, reject) => {
      this.#enqueue({ ...input, op: 'mod', credentialKey, resolve, reject })
    })
  }

  /** Points request.newCredentialKey at the account of credentialKey; see decideRotate. */
  rotate(credentialKey: CredentialKey, request: RotateRequest): Promise<RotateResult> {
    assert.ok(credentialKey !== request.newCredentialKey, 'a rotation to the same credential')
    const refusal = this.#refusal()
    if (refusal !== undefined) return Promise.reject(refusal)
    return new Promise<RotateResult>((resolve, reject) => {
      this.#enqueue({ ...request, op: 'rotate', credentialKey, resolve, reject })
    })
  }

  #refusal(): LedgerError | undefined {
    if (this.#failure !== undefined || this.#closing) return new LedgerError('ACCMAN_CLOSED', 'the ledger is not accepting mods')
    if (this.#queue.length >= this.#options.queueMax) return new LedgerError('ACCMAN_QUEUE_FULL', 'too many mods waiting; retry later')
    return undefined
  }

  #enqueue(op: PendingOp): void {
    this.#queue.push(op)
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true
      // On the next turn, so that every request parsed in this one joins the same round.
      setImmediate(() => {
        this.#pumpScheduled = false
        this.#pump()
      })
    }
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
      (this.#queue.length === 0 || this.#failure !== undefined)
    )
  }

  /** Starts rounds while there are mods whose accounts are free, up to the rounds-in-flight bound. */
  #pump(): void {
    this.#startPrune()
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
   * Takes queued ops, in order, whose credentials no round in flight holds. An op left behind
   * keeps its place, and so does every later op of its credentials (they stay busy, or the round
   * stays full), so each credential's ops are decided in the order they came.
   */
  #takeRound(): PendingOp[] {
    const taken: PendingOp[] = []
    const waiting: PendingOp[] = []
    const claimed = new Set<CredentialKey>()
    const blocked = new Set<CredentialKey>()
    // Look a bounded way ahead, so a long queue for one busy account costs little per round.
    const horizon = Math.min(this.#queue.length, this.#options.batchMax * this.#options.lookAheadBatchesMax)
    for (let index = 0; index < horizon && taken.length < this.#options.batchMax; index++) {
      const op = this.#queue[index]
      assert.ok(op !== undefined)
      const credentials = credentialsOf(op)
      // A rotation takes both credentials at once or waits; an op behind a waiting one of its
      // credential waits too (the waiting one keeps its credential in `blocked`).
      if (credentials.some((key) => this.#busyCredentials.has(key) || blocked.has(key))) {
        waiting.push(op)
        for (const key of credentials) blocked.add(key)
      } else {
        taken.push(op)
        for (const key of credentials) claimed.add(key)
      }
    }
    if (taken.length === 0) return taken
    this.#queue = waiting.concat(this.#queue.slice(taken.length + waiting.length))
    for (const key of claimed) this.#busyCredentials.add(key)
    return taken
  }

  async #runRound(mods: PendingOp[]): Promise<void> {
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
   * may run it again) and changes nothing outside the round but its claims (given back before
   * it runs again): memory is updated only once the round is stored (see #stored).
   */
  async #decideAndStore(ops: PendingOp[], claims: Set<AccountKey>): Promise<StoredRound> {
    let writeStartedMs = 0
    const { round, decisions } = await this.#store.runRound(async (transaction) => {
      // A round never waits for a claim while holding one.
      this.#releaseClaims(claims)
      const round = this.#newRound(transaction.nowMs)
      await this.#resolveCredentials(round, ops, transaction)
      const accountKeys = [...new Set([...round.credentials.values()].flatMap((state) => (state === undefined ? [] : [state.accountKey])))]
      await this.#claim(accountKeys, claims)
      this.#planReads(round, ops, accountKeys)
      if (round.toRead.accounts.length > 0 || round.toRead.idempotency.length > 0) await this.#read(round, transaction)
      await this.#fillCreatedTimes(round, ops)
      const context: DecisionContext = {
        atMs: round.atMs,
        // Exclusive: the filters' clock, read once per round after the reads (no await separates
        // it from the decisions). Shared: the store's clock of the round.
        idempotencyClockMs: this.#shared ? round.atMs : this.#memory.idempotencyKeys.clockMs,
        idempotencyWindowMs: this.#options.idempotencyWindowMs,
        legacyIdempotencyAtMs: this.#options.legacyIdempotencyAtMs,
      }
      const decisions = ops.map((op) => (op.op === 'mod' ? this.#decide(round, op, context) : this.#decideRotate(round, op, context)))
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
      this.#heldAccounts.set(key, newHold())
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
      this.#heldAccounts.set(accountKey, newHold())
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

  #release(ops: PendingOp[], claims: Set<AccountKey>): void {
    for (const op of ops) for (const key of credentialsOf(op)) this.#busyCredentials.delete(key)
    this.#releaseClaims(claims)
    this.#roundsInFlight--
  }

  #fail(error: Error, inRound: PendingOp[]): void {
    const first = this.#failure === undefined
    this.#failure ??= error
    const refusal = new LedgerError('ACCMAN_CLOSED', 'the ledger stopped after a storage fault')
    for (const op of inRound) op.reject(refusal)
    for (const op of this.#queue.splice(0)) op.reject(refusal)
    if (first) this.#options.onFatal(error)
    this.#pump()
  }

  /** The round's writes with each changed account once; undefined when nothing was applied. */
  #writesOf(round: Round): RoundWrites | undefined {
    if (round.applied === 0) return undefined
    for (const accountState of dirtyStates(round)) round.writes.accounts.push(accountState)
    if (round.createdAccounts.length > 0) round.writes.created = round.createdAccounts
    return round.writes
  }

  /** The round is stored: from here on readers may see it, through the filters and the caches. */
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
    }
  }

  /**
   * The one place where the round's credentials become accounts. Exclusive: from the cache, and
   * what it lacks from the store (the round holds its credentials: nothing else changes them).
   * Shared: every one through the transaction, which locks those that exist.
   */
  async #resolveCredentials(round: Round, ops: PendingOp[], transaction: RoundTransaction): Promise<void> {
    const toRead: CredentialKey[] = []
    for (const op of ops) {
      for (const key of credentialsOf(op)) {
        if (round.credentials.has(key)) continue
        const cached = this.#shared ? ([false] as const) : this.#memory.credentials.get(key)
        round.credentials.set(key, cached[0] ? cached[1] : undefined)
        if (!cached[0]) toRead.push(key)
      }
    }
    if (toRead.length === 0) return
    const { credentials } = await transaction.readRound([], [], toRead)
    for (const [index, key] of toRead.entries()) {
      const state = credentials[index]
      round.credentials.set(key, state)
      if (!this.#shared) this.#memory.credentials.set(key, state)
    }
  }

  /**
   * What the round knows without the store (exclusive: cached accounts, and idempotency keys
   * certainly absent), and what it must read. Accounts are those the credentials name.
   */
  #planReads(round: Round, ops: PendingOp[], accountKeys: AccountKey[]): void {
    for (const accountKey of accountKeys) {
      const cached = this.#shared ? undefined : this.#memory.accounts.get(accountKey)
      round.accounts.set(accountKey, cached)
      round.lookedUp.add(accountKey)
      if (cached === undefined) round.toRead.accounts.push(accountKey)
    }
    for (const op of ops) {
      if (op.idempotencyKey === undefined) continue
      const accountKey = round.credentials.get(op.credentialKey)?.accountKey
      if (accountKey === undefined) continue
      const key = idempotencyKeyOf(accountKey, op.idempotencyKey)
      if (round.idempotency.has(key)) continue
      round.idempotency.set(key, undefined)
      if (this.#shared || this.#memory.idempotencyKeys.mightContain(key)) round.toRead.idempotency.push(key)
    }
  }

  /**
   * Reads what the round must. No other round of this writer holds these accounts (the round
   * claimed them), and on a shared store the transaction locks them, so what it reads stays
   * current until the round is stored.
   */
  async #read(round: Round, transaction: RoundTransaction): Promise<void> {
    const { accounts, idempotency } = round.toRead
    const states = await transaction.readRound(accounts, idempotency)
    for (const [index, key] of accounts.entries()) {
      const state = states.accounts[index]
      // A credential names an account that is not there: the store is damaged.
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

  /** A rotation answers with the creation time: accounts of format 1 have it in entry 1 only. */
  async #fillCreatedTimes(round: Round, ops: PendingOp[]): Promise<void> {
    for (const op of ops) {
      if (op.op !== 'rotate') continue
      const accountKey = round.credentials.get(op.credentialKey)?.accountKey
      const state = accountKey === undefined ? undefined : round.accounts.get(accountKey)
      if (accountKey === undefined || state === undefined || state.createdMs !== undefined) continue
      const [first] = await this.#store.pageHistory(accountKey, { seqLow: 1, seqHigh: 1, limit: 1, order: 'asc' })
      assert.ok(first !== undefined, 'an account without entry 1')
      round.accounts.set(accountKey, { ...state, createdMs: first.atMs })
    }
  }

  /**
   * Decides one mod (see decideMod) against the states the previous ops of the round left,
   * and stages its writes. A credential that addresses no account now (none, or retired) gets
   * a new account on a credit.
   */
  #decide(round: Round, mod: PendingMod, context: DecisionContext): ModDecision {
    const credential = round.credentials.get(mod.credentialKey)
    let accountKey = credential !== undefined && isCredentialLive(credential, round.atMs) ? credential.accountKey : undefined
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
  #decideRotate(round: Round, op: PendingRotate, context: DecisionContext): RotateDecision {
    const noAccount = { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
    const old = round.credentials.get(op.credentialKey)
    if (old === undefined) return noAccount
    const account = round.accounts.get(old.accountKey)
    assert.ok(account !== undefined, 'a credential names an account that does not exist')
    const fresh = round.credentials.get(op.newCredentialKey)
    const idempotencyKey = op.idempotencyKey === undefined ? undefined : idempotencyKeyOf(old.accountKey, op.idempotencyKey)
    const decision = decideRotate(
      account,
      idempotencyKey === undefined ? undefined : round.idempotency.get(idempotencyKey),
      {
        accountKey: old.accountKey,
        oldCredentialKey: op.credentialKey,
        newCredentialKey: op.newCredentialKey,
        oldCredential: old,
        oldLive: isCredentialLive(old, round.atMs),
        newInUse: fresh !== undefined && isCredentialLive(fresh, round.atMs),
        graceMs: op.graceMs,
        ...(op.idempotencyKey === undefined ? {} : { idempotencyKey: op.idempotencyKey }),
      },
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
    round.accounts.set(old.accountKey, writes.account)
    round.dirtyAccounts.add(old.accountKey)
    round.applied++
    round.rotations++
    return decision
  }
}

interface StoredRound {
  round: Round
  decisions: OpDecision[]
  /** False when the round had nothing to write (every mod refused or replayed). */
  written: boolean
  writeMs: number
}

interface PendingPrune {
  keys: string[]
  accounts: Set<AccountKey>
  resolve: (deleted: number) => void
  reject: (error: Error) => void
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
    writeMs,
  }
}

function answer(ops: PendingOp[], decisions: OpDecision[]): void {
  assert.equal(ops.length, decisions.length)
  for (const [index, op] of ops.entries()) {
    const decision = decisions[index]
    assert.ok(decision !== undefined)
    if ('refusal' in decision) op.reject(decision.refusal)
    else if (op.op === 'mod') op.resolve(decision.result as ModResult)
    else op.resolve(decision.result as RotateResult)
  }
}
