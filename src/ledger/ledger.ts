// The ledger: tot, mod and past over a store (see store.ts). It knows nothing of HTTP, nor which
// engine runs; the server, the CLI and the tests all share these checks.
import assert from 'node:assert/strict'
import { hash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { limits } from '../config.js'
import { actorPattern, epochRecord, filtersRecord, isCredentialLive, isRefText, metaKeys, newAccountKey, type AccountState } from './codec.js'
import type { AccountChange } from './account-settings.js'
import { accountBody, viewOf, type AccountView, type RotateResult } from './accounts.js'
import { upgradeStore } from './upgrade.js'
import type { RotateRequest } from './writer.js'
import { LedgerError } from './errors.js'
import {
  accountTtlSecondsMax,
  accountTtlSecondsMin,
  amountMax,
  entriesWithKeyMax,
  characterCount,
  idempotencyKeyLengthMax,
  idempotencyTtlSecondsDefault,
  idempotencyTtlSecondsMax,
  idempotencyTtlSecondsMin,
  noteLengthMax,
  pageSizeMax,
  rotationGraceSecondsMax,
} from './limits.js'
import type {
  AccountKey,
  Balance,
  Entry,
  FreezeInput,
  FreezeResult,
  HoldState,
  ModInput,
  ModResult,
  MoveInput,
  MoveResult,
  PastPage,
  PastQuery,
} from './types.js'
import { heldAsOf, type HoldInput, type HoldOpResult, type SettleInput, type VoidInput } from './holds.js'
import { holdTtlSecondsMax, holdTtlSecondsMin } from './limits.js'
import type { CredentialKey } from './types.js'
import { AccountCache, CredentialCache, KeyFilter, WindowedKeyFilter, type LedgerMemory } from './cache.js'
import type { LedgerStore, StoreSnapshot } from './store.js'
import { Writer, type RoundReport } from './writer.js'

export interface LedgerOptions {
  writerBatchMax: number
  writerQueueMax: number
  /** Rounds written at once at most, on disjoint accounts; limits.writerRoundsInFlightMax by default. */
  writerRoundsInFlightMax?: number
  /** How far down the queue a round looks, in batches; limits.writerLookAheadBatchesMax by default. */
  writerLookAheadBatchesMax?: number
  /** Account states kept in memory at most (exact: the writer keeps them current); limits.accountCacheMax by default. */
  accountCacheMax?: number
  /** Credential mappings kept in memory at most (exclusive engine); limits.credentialCacheMax by default. */
  credentialCacheMax?: number
  /** Accounts per batch of a store-format upgrade at load; limits.upgradeBatchMax by default. */
  upgradeBatchMax?: number
  now?: () => number
  /** The internal id of a new account: 128 random bits by default; a deterministic simulation passes its own. */
  newAccountKey?: () => AccountKey
  /** Called once if the writer stops on a storage fault or a broken invariant. */
  onFatal?: (error: Error) => void
  /** Called after each round the writer stores, for metrics. */
  onRound?: (report: RoundReport) => void
  /** How long an idempotency key is replayed (ACCMAN_IDEMPOTENCY_TTL); a day by default. */
  idempotencyTtlMs?: number
  /** Background pruning of expired idempotency records; without it, only pruneExpiredIdempotency prunes. */
  idempotencyPrune?: { intervalMs: number; batchMax: number }
  /** Write low-balance events to the outbox (webhooks are configured); off by default. */
  outboxEnabled?: boolean
  /** The low-balance threshold of accounts without their own (ACCMAN_ALERT_BELOW). */
  alertBelowDefault?: bigint
  /** The background pass that writes due hold expiries; limits' by default, false: only expireDueHolds does. */
  holdExpiry?: { intervalMs: number; batchMax: number } | false
}

/** The active holds of an account as of an instant, oldest first, and their sum. */
export interface HoldList {
  held: bigint
  holds: HoldState[]
}

/** A store an import has not finished writing: never served. */
export class IncompleteStoreError extends Error {
  override readonly name = 'IncompleteStoreError'
}

export class Ledger {
  readonly #store: LedgerStore
  /** Other nodes write the store too: nothing is kept in memory (see store.ts). */
  readonly #shared: boolean
  readonly #writer: Writer
  readonly #memory: LedgerMemory
  readonly #idempotencyTtlMs: number
  readonly #legacyIdempotencyAtMs: number
  readonly #now: () => number
  readonly #prune: { intervalMs: number; batchMax: number } | undefined
  readonly #upgradeBatchMax: number
  #pruneTimer: NodeJS.Timeout | undefined
  readonly #holdExpiry: { intervalMs: number; batchMax: number } | false
  #expiryTimer: NodeJS.Timeout | undefined
  #expiring: Promise<number> | undefined
  #pruning: Promise<number> | undefined
  /** Where the next pruning pass starts in the idempotency table; undefined: at its start. */
  #pruneCursor: string | undefined
  /** This run's start count; a clean stop tags the filters it keeps with it. */
  #epoch = 0
  #closed = false
  readonly #alertBelowDefault: bigint | undefined

  /** Use openLedger, which also loads the filters and warms the cache. */
  constructor(store: LedgerStore, options: LedgerOptions) {
    this.#store = store
    this.#shared = store.sharing === 'shared'
    this.#idempotencyTtlMs = options.idempotencyTtlMs ?? idempotencyTtlSecondsDefault * 1000
    assert.ok(
      Number.isInteger(this.#idempotencyTtlMs) &&
        this.#idempotencyTtlMs >= idempotencyTtlSecondsMin * 1000 &&
        this.#idempotencyTtlMs <= idempotencyTtlSecondsMax * 1000,
      'idempotencyTtlMs out of range',
    )
    this.#now = options.now ?? Date.now
    this.#legacyIdempotencyAtMs = this.#now()
    this.#prune = options.idempotencyPrune
    this.#holdExpiry = options.holdExpiry ?? { intervalMs: limits.holdExpiryIntervalMs, batchMax: limits.holdExpiryBatchMax }
    this.#memory = {
      // Nothing to keep on a shared store: other nodes change it.
      accounts: new AccountCache(this.#shared ? 0 : (options.accountCacheMax ?? limits.accountCacheMax)),
      accountKeys: new KeyFilter(),
      idempotencyKeys: new WindowedKeyFilter(this.#idempotencyTtlMs),
      credentials: new CredentialCache(this.#shared ? 0 : (options.credentialCacheMax ?? limits.credentialCacheMax)),
    }
    this.#upgradeBatchMax = options.upgradeBatchMax ?? limits.upgradeBatchMax
    this.#writer = new Writer(this.#store, this.#memory, {
      batchMax: options.writerBatchMax,
      queueMax: options.writerQueueMax,
      roundsInFlightMax: options.writerRoundsInFlightMax ?? limits.writerRoundsInFlightMax,
      lookAheadBatchesMax: options.writerLookAheadBatchesMax ?? limits.writerLookAheadBatchesMax,
      now: this.#now,
      newAccountKey: options.newAccountKey ?? newAccountKey,
      idempotencyWindowMs: this.#idempotencyTtlMs,
      legacyIdempotencyAtMs: this.#legacyIdempotencyAtMs,
      onFatal: options.onFatal ?? (() => {}),
      onRound: options.onRound,
      outboxEnabled: options.outboxEnabled,
      alertBelowDefault: options.alertBelowDefault,
    })
    this.#alertBelowDefault = options.alertBelowDefault
  }

  /** Until close(): the process serves (liveness), whether or not the store answers now. */
  get isOpen(): boolean {
    return !this.#closed
  }

  /** Ready to serve (readiness): open, the writer healthy, and the store answering now. */
  async ready(): Promise<boolean> {
    return !this.#closed && this.#writer.healthy && (await this.#store.ping())
  }

  get writerHealthy(): boolean {
    return this.#writer.healthy
  }

  get writerQueueDepth(): number {
    return this.#writer.queueDepth
  }

  get idempotencyTtlMs(): number {
    return this.#idempotencyTtlMs
  }

  /** The idempotency filters' size now: it follows the traffic of one window. */
  get idempotencyFilterStats(): { keys: number; generations: number; sizeBytes: number } {
    const filter = this.#memory.idempotencyKeys
    return { keys: filter.count, generations: filter.generationCount, sizeBytes: filter.sizeBytes }
  }

  /**
   * Before the ledger serves, every account and every idempotency record within its window must
   * be in the filters, and the cache starts with the first accounts it can hold. A clean stop
   * leaves the filters in the meta table, tagged with the run's start count (epoch) and a digest:
   * they are taken only if both match and the first accounts and records of the store (those
   * the cache is warmed with, at least 10,000 of each) are all in them; they are deleted and the epoch bumped (with fsync) before anything is written, so after
   * a crash, or with a copy from an earlier stop, the keys are scanned instead. The scan reads in
   * pages, so a large store costs start-up time but little heap; it does page the tables' files in.
   *
   * Idempotency records written before records carried a time are taken as written now: they
   * are replayed for one more window, then count as new and are pruned.
   */
  async load(): Promise<void> {
    if ((await this.#store.readMeta(metaKeys.importInProgress)) !== undefined) {
      throw new IncompleteStoreError('the database holds an unfinished import; delete it and import again')
    }
    // A store of an earlier format is upgraded (or its upgrade finished) before anything reads it.
    await upgradeStore(this.#store, { batchMax: this.#upgradeBatchMax })
    // A shared store keeps nothing in memory: every read goes to it.
    if (this.#shared) return
    const snapshot = await this.#store.snapshot()
    try {
      await this.#loadFrom(snapshot)
    } finally {
      await snapshot.close()
    }
  }

  async #loadFrom(snapshot: StoreSnapshot): Promise<void> {
    let restored = await this.#takeFilters()
    let lastWarm: AccountKey | undefined
    const scanned = new KeyFilter()
    const capacity = this.#memory.accounts.capacity
    const warmMax = Math.max(capacity, sampleMax)
    for (let read = 0; read < warmMax; ) {
      const page = await snapshot.accounts(lastWarm, Math.min(scanPageMax, warmMax - read))
      for (const [accountKey, state] of page) {
        if (restored !== undefined && !restored.accountKeys.mightContain(accountKey)) restored = undefined
        scanned.add(accountKey)
        if (read++ < capacity) this.#memory.accounts.fillFromWriter(accountKey, state)
        lastWarm = accountKey
      }
      if (page.length === 0) break
    }
    if (restored !== undefined && (await this.#idempotencySampleAgrees(snapshot, restored.idempotencyKeys))) {
      this.#memory.accountKeys = restored.accountKeys
      this.#memory.idempotencyKeys = restored.idempotencyKeys
      return
    }
    this.#memory.accountKeys = scanned
    for (let after = lastWarm; ; ) {
      const page = await snapshot.accounts(after, scanPageMax)
      if (page.length === 0) break
      for (const [accountKey] of page) scanned.add(accountKey)
      after = page.at(-1)?.[0]
    }
    const idempotencyKeys = this.#memory.idempotencyKeys
    idempotencyKeys.advance(this.#now())
    for (let after: string | undefined; ; ) {
      const page = await snapshot.idempotency(after, scanPageMax)
      if (page.length === 0) break
      for (const [key, record] of page) idempotencyKeys.add(key, record.atMs ?? this.#legacyIdempotencyAtMs)
      after = page.at(-1)?.[0]
    }
  }

  /**
   * Takes the filters a clean stop left, if they belong to the last run, and bumps the epoch:
   * from here on no kept filters match the store until this run stops cleanly.
   */
  async #takeFilters(): Promise<{ accountKeys: KeyFilter; idempotencyKeys: WindowedKeyFilter } | undefined> {
    const text = await this.#store.readMeta(metaKeys.filters)
    const epochText = await this.#store.readMeta(metaKeys.epoch)
    const epoch = epochText === undefined ? 0 : epochRecord.parse(JSON.parse(epochText))
    this.#epoch = epoch + 1
    await this.#store.writeMeta([
      [metaKeys.filters, undefined],
      [metaKeys.epoch, JSON.stringify(this.#epoch)],
    ])
    if (text === undefined) return undefined
    let record: z.infer<typeof filtersRecord>
    try {
      record = filtersRecord.parse(JSON.parse(text))
    } catch {
      return undefined // damaged: scan instead
    }
    if (record.epoch !== epoch || record.digest !== filtersDigest(record)) return undefined
    const accountKeys = KeyFilter.fromSnapshot(record.accounts)
    const idempotencyKeys = WindowedKeyFilter.fromSnapshot(record.idempotency, this.#idempotencyTtlMs)
    if (accountKeys === undefined || idempotencyKeys === undefined) return undefined
    idempotencyKeys.advance(this.#now())
    return { accountKeys, idempotencyKeys }
  }

  /** The first records of the idempotency table, those within the window, must all be in the filter. */
  async #idempotencySampleAgrees(snapshot: StoreSnapshot, filter: WindowedKeyFilter): Promise<boolean> {
    const sample = await snapshot.idempotency(undefined, sampleMax)
    return sample.every(([key, record]) => {
      const atMs = record.atMs ?? this.#legacyIdempotencyAtMs
      return filter.isExpired(atMs) || filter.mightContain(key)
    })
  }

  /**
   * One pass of pruning: reads at most `batchMax` idempotency records from where the last pass
   * stopped and deletes those past their window (through the writer, see Writer.prune). Returns
   * the number deleted; a full sweep of the table takes (records / batchMax) passes.
   */
  pruneExpiredIdempotency(batchMax: number): Promise<number> {
    assert.ok(Number.isInteger(batchMax) && batchMax >= 1)
    this.#pruning ??= this.#prunePass(batchMax).finally(() => (this.#pruning = undefined))
    return this.#pruning
  }

  async #prunePass(batchMax: number): Promise<number> {
    const snapshot = await this.#store.snapshot()
    let page: Awaited<ReturnType<StoreSnapshot['idempotency']>>
    try {
      page = await snapshot.idempotency(this.#pruneCursor, batchMax)
    } finally {
      await snapshot.close()
    }
    this.#pruneCursor = page.length < batchMax ? undefined : page.at(-1)?.[0]
    // The candidates; the writer checks each again, in a round holding its account, on the round's clock.
    let clockMs = this.#now()
    if (!this.#shared) {
      this.#memory.idempotencyKeys.advance(clockMs)
      clockMs = this.#memory.idempotencyKeys.clockMs
    }
    const expired = page
      .filter(([, record]) => clockMs - (record.atMs ?? this.#legacyIdempotencyAtMs) >= this.#idempotencyTtlMs)
      .map(([key]) => key)
    return this.#writer.prune(expired)
  }

  /** Starts background pruning, when configured. */
  startPruning(): void {
    const prune = this.#prune
    if (prune === undefined || this.#pruneTimer !== undefined) return
    this.#pruneTimer = this.#every(prune.intervalMs, () => this.#pruning, () => this.pruneExpiredIdempotency(prune.batchMax))
  }

  /**
   * Runs `pass` every `intervalMs` in the background, unless one is still running (`running`) or
   * the writer has stopped. A store that does not answer is tried again on the next pass; a fault
   * stops the writer, which reports it through onFatal, so the pass's own rejection is dropped.
   */
  #every(intervalMs: number, running: () => Promise<unknown> | undefined, pass: () => Promise<unknown>): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (running() === undefined && this.#writer.healthy) pass().catch(() => {})
    }, intervalMs)
    timer.unref()
    return timer
  }

  /**
   * The account a credential addresses now, or undefined (none, or retired). Exclusive: the
   * writer's cache, else the store; shared: the store, judged on its clock.
   */
  async resolve(credentialKey: CredentialKey): Promise<AccountKey | undefined> {
    const cached = this.#memory.credentials.get(credentialKey)
    if (cached[0]) return cached[1] !== undefined && isCredentialLive(cached[1], this.#now()) ? cached[1].accountKey : undefined
    const { state, nowMs } = await this.#store.readCredential(credentialKey)
    return state !== undefined && isCredentialLive(state, nowMs ?? this.#now()) ? state.accountKey : undefined
  }

  /** The account a public id names, or undefined. */
  async accountOfPublicId(publicId: string): Promise<AccountKey | undefined> {
    return await this.#store.accountOfPublicId(publicId)
  }

  /** The balance and its seq (see totOf), or undefined for a credential that addresses no account. */
  async tot(credentialKey: CredentialKey): Promise<(Balance & { expiresMs?: number }) | undefined> {
    const accountKey = await this.resolve(credentialKey)
    return accountKey === undefined ? undefined : await this.totOf(accountKey)
  }

  /** The details /acct gives, or undefined for a credential that addresses no account. */
  async acct(credentialKey: CredentialKey): Promise<AccountView | undefined> {
    const accountKey = await this.resolve(credentialKey)
    return accountKey === undefined ? undefined : await this.acctOf(accountKey)
  }

  /** The details of an account by its internal id. */
  async acctOf(accountKey: AccountKey): Promise<AccountView | undefined> {
    const state = await this.accountOf(accountKey)
    if (state === undefined) return undefined
    // held as of now, as /tot answers it (holds past their expiry count no more).
    const balance = await this.#balanceOf(accountKey, state)
    if (balance === undefined) return undefined
    let createdMs = state.createdMs
    if (createdMs === undefined) {
      // An account from before creation times were kept: entry 1 has it.
      const [first] = await this.#store.pageHistory(accountKey, { seqLow: 1, seqHigh: 1, limit: 1, order: 'asc' })
      assert.ok(first !== undefined, 'an account without entry 1')
      createdMs = first.atMs
    }
    // The figures of one read (the balance's), the settings as read just before.
    return viewOf(accountKey, { ...state, tot: balance.tot, seq: balance.seq }, balance.held ?? 0n, createdMs)
  }

  /** The JSON body /acct answers with. */
  accountBody(view: AccountView): string {
    return accountBody(view)
  }

  /**
   * Points a new credential at the account of `credentialKey`, which keeps working for the
   * grace; refuses with a LedgerError, writing nothing, when it cannot.
   */
  rotate(credentialKey: CredentialKey, request: RotateRequest): Promise<RotateResult> {
    assert.ok(Number.isInteger(request.graceMs) && request.graceMs >= 0 && request.graceMs <= rotationGraceSecondsMax * 1000, 'graceMs out of range')
    // The edge refuses a new credential equal to the old one (ACCMAN_INVALID_CRED).
    assert.ok(credentialKey !== request.newCredentialKey, 'a rotation to the same credential')
    return this.#writer.rotate(credentialKey, request)
  }

  /**
   * The balance and its seq, and `held` as of now (absent when 0), of an account by its internal
   * id, or undefined. Holds past their expiry count no more, whether or not their expiry is written yet.
   */
  async totOf(accountKey: AccountKey): Promise<(Balance & { expiresMs?: number }) | undefined> {
    const state = await this.accountOf(accountKey)
    return state === undefined ? undefined : await this.#balanceOf(accountKey, state)
  }

  /** totOf, from the account's state as already read. */
  async #balanceOf(accountKey: AccountKey, state: AccountState): Promise<(Balance & { expiresMs?: number }) | undefined> {
    const withExpiry = <T extends Balance>(balance: T): T & { expiresMs?: number } =>
      state.expiresMs === undefined ? balance : { ...balance, expiresMs: state.expiresMs }
    if (state.holdCount === undefined) return withExpiry({ tot: state.tot, seq: state.seq })
    // Before the next expiry the stored held is exact; a shared store's clock is read with the holds.
    if (!this.#shared && this.#now() < (state.nextExpiryMs ?? 0)) return withExpiry(withHeld({ tot: state.tot, seq: state.seq }, state.held ?? 0n))
    const list = await this.holdsOf(accountKey)
    const holding = list.balance
    return holding === undefined ? undefined : withExpiry(withHeld(holding, list.held))
  }

  /** The active holds of a credential's account as of now, oldest first; ACCMAN_NO_ACCOUNT when unknown. */
  async holds(credentialKey: CredentialKey): Promise<HoldList & { balance: Balance | undefined }> {
    const accountKey = await this.resolve(credentialKey)
    if (accountKey === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    return await this.holdsOf(accountKey)
  }

  /** The active holds of an account by its internal id as of now, oldest first; ACCMAN_NO_ACCOUNT when unknown. */
  async holdsOf(accountKey: AccountKey): Promise<HoldList & { balance: Balance | undefined }> {
    const holding = await this.#store.readHolding(accountKey)
    if (holding.account === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    const nowMs = holding.nowMs ?? this.#now()
    const holds = holding.open.filter((hold) => hold.expiresMs > nowMs)
    return { held: heldAsOf(holds, nowMs), holds, balance: { tot: holding.account.tot, seq: holding.account.seq } }
  }

  /** Reserves `by` for ttlMs: avail shrinks, tot stays. Answers the JSON body of PATCH /hold. */
  hold(credentialKey: CredentialKey, input: Omit<HoldInput, 'holdId'>): Promise<HoldOpResult> {
    assert.ok(input.by > 0n && input.by <= amountMax, 'by out of range')
    assert.ok(Number.isInteger(input.ttlMs) && input.ttlMs >= holdTtlSecondsMin * 1000 && input.ttlMs <= holdTtlSecondsMax * 1000, 'ttl out of range')
    this.#assertNoteAndKey(input)
    // 128 random bits: an id reveals nothing of another hold or account.
    const holdId = randomBytes(16).toString('base64url')
    return this.#holdOp(credentialKey, { op: 'hold', holdId, ...input })
  }

  /** Posts `by` of a hold (all of it by default) as a debit and releases the rest. */
  settle(credentialKey: CredentialKey, input: SettleInput): Promise<HoldOpResult> {
    assert.ok(input.by === undefined || (input.by > 0n && input.by <= amountMax), 'by out of range')
    this.#assertNoteAndKey(input)
    return this.#holdOp(credentialKey, { op: 'settle', ...input })
  }

  /** Releases a whole hold. */
  void(credentialKey: CredentialKey, input: VoidInput): Promise<HoldOpResult> {
    this.#assertNoteAndKey(input)
    return this.#holdOp(credentialKey, { op: 'void', ...input })
  }

  async #holdOp(credentialKey: CredentialKey, op: Parameters<Writer['submitHoldOp']>[1]): Promise<HoldOpResult> {
    const result = await this.#writer.submitHoldOp({ credentialKey }, op)
    assert.ok(result !== undefined)
    return result
  }

  /** What every write may carry: a note, an idempotency key, the name of the token that sent it. */
  #assertNoteAndKey(input: { note?: string; idempotencyKey?: string; actor?: string }): void {
    assert.ok(input.note === undefined || characterCount(input.note) <= noteLengthMax, 'note too long')
    assert.ok(
      input.idempotencyKey === undefined || (input.idempotencyKey.length >= 1 && input.idempotencyKey.length <= idempotencyKeyLengthMax),
      'idempotency key length out of range',
    )
    assert.ok(input.actor === undefined || actorPattern.test(input.actor), 'malformed actor name')
  }

  /**
   * One expiry pass: writes the due expiries of at most `batchMax` due holds' accounts, each in a
   * round holding its account (which, on a shared store, locks it: one node writes each expiry).
   * Resolves with the number of accounts looked at.
   */
  expireDueHolds(batchMax: number): Promise<number> {
    assert.ok(Number.isInteger(batchMax) && batchMax >= 1)
    this.#expiring ??= this.#expirePass(batchMax).finally(() => (this.#expiring = undefined))
    return this.#expiring
  }

  async #expirePass(batchMax: number): Promise<number> {
    const accounts = await this.#store.dueHoldAccounts(this.#now(), batchMax)
    await Promise.all(accounts.map(async (accountKey) => await this.#writer.submitHoldOp({ accountKey }, { op: 'expire' })))
    return accounts.length
  }

  /** Starts the background expiry pass, unless turned off. */
  startExpiring(): void {
    const expiry = this.#holdExpiry
    if (expiry === false || this.#expiryTimer !== undefined) return
    this.#expiryTimer = this.#every(expiry.intervalMs, () => this.#expiring, () => this.expireDueHolds(expiry.batchMax))
  }

  /** The whole state (balance, expiry, frozen) of a credential's account, or undefined for none. */
  async account(credentialKey: CredentialKey): Promise<AccountState | undefined> {
    const accountKey = await this.resolve(credentialKey)
    return accountKey === undefined ? undefined : await this.accountOf(accountKey)
  }

  /** The account's whole state by its internal id, or undefined for an unknown account. */
  async accountOf(accountKey: AccountKey): Promise<AccountState | undefined> {
    return this.#shared
      ? await this.#store.readAccount(accountKey)
      : (this.#memory.accounts.get(accountKey) ?? (await this.#readAccount(accountKey)))
  }

  /** The low-balance threshold in force for an account: its own, else the default. */
  alertBelowOf(account: AccountState): bigint | undefined {
    return account.alertBelow ?? this.#alertBelowDefault
  }

  /** Changes an account's settings (no history entry); ACCMAN_NO_ACCOUNT, ACCMAN_REF_TAKEN. */
  updateAccount(credentialKey: CredentialKey, change: AccountChange): Promise<AccountState> {
    assert.ok(change.alertBelow == null || (change.alertBelow >= 0n && change.alertBelow <= amountMax), 'alertBelow out of range')
    assert.ok(change.ref == null || isRefText(change.ref), 'ref out of range')
    return this.#writer.update(credentialKey, change)
  }

  /** The account a ref names, or undefined. */
  accountKeyOfRef(ref: string): Promise<AccountKey | undefined> {
    return this.#store.readRef(ref)
  }

  async #readAccount(accountKey: AccountKey) {
    if (!this.#memory.accountKeys.mightContain(accountKey)) return undefined
    const commitsBeforeRead = this.#memory.accounts.commits
    const state = await this.#store.readAccount(accountKey)
    if (state === undefined) return undefined
    this.#memory.accounts.fillFromRead(accountKey, state, commitsBeforeRead)
    return state
  }

  /** Adds `by` to the balance; refuses with a LedgerError, writing nothing, when it cannot. */
  mod(credentialKey: CredentialKey, input: ModInput): Promise<ModResult> {
    assert.ok(input.by !== 0n, 'by must be nonzero')
    assert.ok(input.by >= -amountMax && input.by <= amountMax, 'by out of range')
    this.#assertNoteAndKey(input)
    assert.ok(
      input.ttlSeconds === undefined ||
        (input.by > 0n && Number.isInteger(input.ttlSeconds) && input.ttlSeconds >= accountTtlSecondsMin && input.ttlSeconds <= accountTtlSecondsMax),
      'ttl only on a credit, within its range',
    )
    return this.#writer.submit(credentialKey, input)
  }

  /**
   * Moves `input.by` (positive) to another account: both sides in one atomic write, or neither
   * (see decideMove). The move's id is random, URL-safe.
   */
  move(
    credentialKey: CredentialKey,
    input: Omit<MoveInput, 'moveId' | 'fromAccountKey' | 'toAccountKey'> & { toCredentialKey: CredentialKey },
  ): Promise<MoveResult> {
    assert.ok(input.by > 0n && input.by <= amountMax, 'a move amount is positive and in range')
    // The edge refuses one credential twice; two of one account are refused in the round.
    assert.ok(input.toCredentialKey !== credentialKey, 'a move names two different credentials')
    this.#assertNoteAndKey(input)
    const moveId = randomBytes(moveIdBytes).toString('base64url')
    return this.#writer.submit(credentialKey, { ...input, op: 'move', moveId }) as Promise<MoveResult>
  }

  /** Freezes (frozen: true) or unfreezes an account; answered without an entry when already so. */
  freeze(credentialKey: CredentialKey, input: FreezeInput): Promise<FreezeResult> {
    assert.ok(input.actor === undefined || actorPattern.test(input.actor), 'malformed actor name')
    // `by` is unused by a freeze; 1 keeps the queue's mod shape.
    const { frozen, actor } = input
    return this.#writer.submit(credentialKey, { by: 1n, op: 'freeze', frozen, ...(actor === undefined ? {} : { actor }) }) as Promise<FreezeResult>
  }

  /**
   * The entries that carry `idempotencyKey` ("was request X charged?"), oldest first, with the
   * balance; throws ACCMAN_NO_ACCOUNT when unknown. Found through the store's index, so also once
   * the key's idempotency record has expired and been pruned.
   */
  async pastByKey(credentialKey: CredentialKey, idempotencyKey: string): Promise<PastPage> {
    const accountKey = await this.resolve(credentialKey)
    if (accountKey === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    return await this.pastByKeyOf(accountKey, idempotencyKey)
  }

  /** pastByKey of an account by its internal id (id= and ref= reads). */
  async pastByKeyOf(accountKey: AccountKey, idempotencyKey: string): Promise<PastPage> {
    const balance = await this.totOf(accountKey)
    if (balance === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    // Entries above the balance's seq are not stored yet as far as this answer goes.
    const entries = (await this.#store.entriesWithKey(accountKey, idempotencyKey, entriesWithKeyMax)).filter((entry) => entry.seq <= balance.seq)
    return { ...balance, entries }
  }

  /** One page of history with the account's current balance; throws ACCMAN_NO_ACCOUNT when unknown. */
  async past(credentialKey: CredentialKey, query: PastQuery): Promise<PastPage> {
    const accountKey = await this.resolve(credentialKey)
    if (accountKey === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    return await this.pastOf(accountKey, query)
  }

  /** One page of history of an account by its internal id; throws ACCMAN_NO_ACCOUNT when unknown. */
  async pastOf(accountKey: AccountKey, query: PastQuery): Promise<PastPage> {
    assert.ok(Number.isInteger(query.limit) && query.limit >= 1 && query.limit <= pageSizeMax)
    const balance = await this.totOf(accountKey)
    if (balance === undefined) throw new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential')
    // Entries 1..seq exist and never change, so reading within that range needs no snapshot.
    let seqLow = Math.max(1, (query.afterSeq ?? 0) + 1)
    let seqHigh = Math.min(balance.seq, (query.beforeSeq ?? Number.MAX_SAFE_INTEGER) - 1)
    if (query.fromMs !== undefined && seqLow <= seqHigh) {
      seqLow = await this.#store.firstSeqAtOrAfter(accountKey, query.fromMs, seqLow, seqHigh)
    }
    if (query.toMs !== undefined && seqLow <= seqHigh) {
      seqHigh = (await this.#store.firstSeqAtOrAfter(accountKey, query.toMs + 1, seqLow, seqHigh)) - 1
    }
    let entries: Entry[] = []
    if (seqLow <= seqHigh) {
      entries = await this.#store.pageHistory(accountKey, { seqLow, seqHigh, limit: query.limit, order: query.order })
      assertChain(entries, query.order)
    }
    return { ...balance, entries }
  }

  /** Stops taking mods, writes what is queued, keeps the filters for the next start, closes the store. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#pruneTimer)
    clearInterval(this.#expiryTimer)
    await this.#pruning?.catch(() => {})
    await this.#expiring?.catch(() => {})
    await this.#writer.close()
    // After a fault the filters may lack what the failed round created: the next start scans.
    if (this.#shared || this.#writer.failed || !(await this.#store.ping())) {
      await this.#store.close()
      return
    }
    const unsigned = {
      epoch: this.#epoch,
      digest: '',
      accounts: this.#memory.accountKeys.snapshot(),
      idempotency: this.#memory.idempotencyKeys.snapshot(),
    }
    const record: z.infer<typeof filtersRecord> = { ...unsigned, digest: filtersDigest(unsigned) }
    await this.#store.writeMeta([[metaKeys.filters, JSON.stringify(record)]])
    await this.#store.close()
  }
}

const { scanPageMax, filterSampleMax: sampleMax } = limits

/** A move's id: 16 random bytes, 22 characters of base64url. */
const moveIdBytes = 16

/** SHA-256 of the kept filters' content, in a fixed order, so a damaged or shuffled copy is not taken. */
function filtersDigest(record: z.infer<typeof filtersRecord>): string {
  return hash('sha256', JSON.stringify([record.epoch, record.accounts, record.idempotency]), 'hex')
}

function withHeld(balance: Balance, held: bigint): Balance {
  return held === 0n ? balance : { ...balance, held }
}

/** Entries read back in one page must chain: contiguous seq and tot = previous tot + by. */
function assertChain(entries: Entry[], order: 'asc' | 'desc'): void {
  const ascending = order === 'asc' ? entries : [...entries].reverse()
  for (let index = 1; index < ascending.length; index++) {
    const previous = ascending[index - 1]
    const entry = ascending[index]
    assert.ok(previous !== undefined && entry !== undefined)
    assert.equal(entry.seq, previous.seq + 1, 'history seq not contiguous')
    assert.equal(entry.tot, previous.tot + entry.by, 'history tot does not chain')
    assert.equal(entry.held ?? 0n, (previous.held ?? 0n) + (entry.heldBy ?? 0n), 'history held does not chain')
  }
}

/** A ledger on an open store, loaded; the ledger owns the store after (its close closes it). */
export async function openLedger(store: LedgerStore, options: LedgerOptions): Promise<Ledger> {
  const ledger = new Ledger(store, options)
  try {
    await ledger.load()
  } catch (error) {
    await store.close().catch(() => {})
    throw error
  }
  ledger.startPruning()
  ledger.startExpiring()
  return ledger
}
