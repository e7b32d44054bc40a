// The ledger: tot, mod and past over an abstract-level database. It knows nothing of HTTP; the
// server, the CLI and the tests all share these checks.
import assert from 'node:assert/strict'
import { hash } from 'node:crypto'
import { z } from 'zod'
import { limits } from '../config.js'
import { decodeAccount, decodeIdempotency, epochRecord, filtersRecord, metaKeys, tableNames } from './codec.js'
import { LedgerError } from './errors.js'
import {
  amountMax,
  characterCount,
  idempotencyKeyLengthMax,
  idempotencyTtlSecondsDefault,
  idempotencyTtlSecondsMax,
  idempotencyTtlSecondsMin,
  noteLengthMax,
  pageSizeMax,
} from './limits.js'
import type { AccountKey, Balance, Entry, ModInput, ModResult, PastPage, PastQuery } from './types.js'
import { AccountCache, KeyFilter, WindowedKeyFilter, type LedgerMemory } from './cache.js'
import { LevelStore, tablesOf, type RootDb, type Table, type Tables } from './level/store.js'
import type { LedgerStore } from './store.js'
import { Writer, type RoundReport } from './writer.js'

export { tablesOf } from './level/store.js'

export interface LedgerOptions {
  /** fsync every batch before acknowledging (classic-level skips it unless asked). */
  sync: boolean
  writerBatchMax: number
  writerQueueMax: number
  /** Rounds written at once at most, on disjoint accounts; limits.writerRoundsInFlightMax by default. */
  writerRoundsInFlightMax?: number
  /** How far down the queue a round looks, in batches; limits.writerLookAheadBatchesMax by default. */
  writerLookAheadBatchesMax?: number
  /** Account states kept in memory at most (exact: the writer keeps them current); limits.accountCacheMax by default. */
  accountCacheMax?: number
  now?: () => number
  /** Called once if the writer stops on a storage fault or a broken invariant. */
  onFatal?: (error: Error) => void
  /** Called after each round the writer stores, for metrics. */
  onRound?: (report: RoundReport) => void
  /** How long an idempotency key is replayed (ACCMAN_IDEMPOTENCY_TTL); a day by default. */
  idempotencyTtlMs?: number
  /** Background pruning of expired idempotency records; without it, only pruneExpiredIdempotency prunes. */
  idempotencyPrune?: { intervalMs: number; batchMax: number }
}

/** A store an import has not finished writing: never served. */
export class IncompleteStoreError extends Error {
  override readonly name = 'IncompleteStoreError'
}

export class Ledger {
  readonly #db: RootDb
  readonly #tables: Tables
  readonly #store: LedgerStore
  /** The ledger's own state across a clean stop (the filters); see load. */
  readonly #meta: Table
  readonly #writer: Writer
  readonly #memory: LedgerMemory
  readonly #idempotencyTtlMs: number
  readonly #legacyIdempotencyAtMs: number
  readonly #now: () => number
  readonly #prune: { intervalMs: number; batchMax: number } | undefined
  #pruneTimer: NodeJS.Timeout | undefined
  #pruning: Promise<number> | undefined
  /** Where the next pruning pass starts in the idempotency table; undefined: at its start. */
  #pruneCursor: string | undefined
  /** This run's start count; a clean stop tags the filters it keeps with it. */
  #epoch = 0

  /** Use openLedger, which also loads the filters and warms the cache. */
  constructor(db: RootDb, options: LedgerOptions) {
    assert.equal(db.status, 'open', 'open the database before the ledger')
    this.#db = db
    this.#tables = tablesOf(db)
    this.#store = new LevelStore(db, this.#tables, { sync: options.sync })
    this.#meta = db.sublevel<string, string>(tableNames.meta, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
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
    this.#memory = {
      accounts: new AccountCache(options.accountCacheMax ?? limits.accountCacheMax),
      accountKeys: new KeyFilter(),
      idempotencyKeys: new WindowedKeyFilter(this.#idempotencyTtlMs),
    }
    this.#writer = new Writer(this.#store, this.#memory, {
      batchMax: options.writerBatchMax,
      queueMax: options.writerQueueMax,
      roundsInFlightMax: options.writerRoundsInFlightMax ?? limits.writerRoundsInFlightMax,
      lookAheadBatchesMax: options.writerLookAheadBatchesMax ?? limits.writerLookAheadBatchesMax,
      now: this.#now,
      legacyIdempotencyAtMs: this.#legacyIdempotencyAtMs,
      onFatal: options.onFatal ?? (() => {}),
      onRound: options.onRound,
    })
  }

  get isOpen(): boolean {
    return this.#db.status === 'open'
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
    if ((await this.#meta.get(metaKeys.importInProgress)) !== undefined) {
      throw new IncompleteStoreError('the database holds an unfinished import; delete it and import again')
    }
    let restored = await this.#takeFilters()
    let lastWarm: string | undefined
    const scanned = new KeyFilter()
    const capacity = this.#memory.accounts.capacity
    let read = 0
    const warm = this.#tables.accounts.iterator({ limit: Math.max(capacity, sampleMax) })
    try {
      for (let page = await warm.nextv(scanPageMax); page.length > 0; page = await warm.nextv(scanPageMax)) {
        for (const [accountKey, value] of page) {
          if (restored !== undefined && !restored.accountKeys.mightContain(accountKey)) restored = undefined
          scanned.add(accountKey)
          const state = decodeAccount(accountKey, value)
          if (read++ < capacity) this.#memory.accounts.fillFromWriter(accountKey as AccountKey, state)
          lastWarm = accountKey
        }
      }
    } finally {
      await warm.close()
    }
    if (restored !== undefined && (await this.#idempotencySampleAgrees(restored.idempotencyKeys))) {
      this.#memory.accountKeys = restored.accountKeys
      this.#memory.idempotencyKeys = restored.idempotencyKeys
      return
    }
    this.#memory.accountKeys = scanned
    await scanKeys(this.#tables.accounts, (key) => scanned.add(key), lastWarm)
    const idempotencyKeys = this.#memory.idempotencyKeys
    idempotencyKeys.advance(this.#now())
    await scanEntries(this.#tables.idempotency, (key, value) => {
      idempotencyKeys.add(key, decodeIdempotency(key, value).atMs ?? this.#legacyIdempotencyAtMs)
    })
  }

  /**
   * Takes the filters a clean stop left, if they belong to the last run, and bumps the epoch:
   * from here on no kept filters match the store until this run stops cleanly.
   */
  async #takeFilters(): Promise<{ accountKeys: KeyFilter; idempotencyKeys: WindowedKeyFilter } | undefined> {
    const [text, epochText] = await this.#meta.getMany([metaKeys.filters, metaKeys.epoch])
    const epoch = epochText === undefined ? 0 : epochRecord.parse(JSON.parse(epochText))
    this.#epoch = epoch + 1
    await this.#meta.batch(
      [
        { type: 'del', key: metaKeys.filters },
        { type: 'put', key: metaKeys.epoch, value: JSON.stringify(this.#epoch) },
      ],
      synced,
    )
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
  async #idempotencySampleAgrees(filter: WindowedKeyFilter): Promise<boolean> {
    const sample = await this.#tables.idempotency.iterator({ limit: sampleMax }).all()
    return sample.every(([key, value]) => {
      const atMs = decodeIdempotency(key, value).atMs ?? this.#legacyIdempotencyAtMs
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
    const range = this.#pruneCursor === undefined ? {} : { gt: this.#pruneCursor }
    const page = await this.#tables.idempotency.iterator({ ...range, limit: batchMax }).all()
    this.#pruneCursor = page.length < batchMax ? undefined : page.at(-1)?.[0]
    const filter = this.#memory.idempotencyKeys
    filter.advance(this.#now())
    const expired = page
      .filter(([key, value]) => filter.isExpired(decodeIdempotency(key, value).atMs ?? this.#legacyIdempotencyAtMs))
      .map(([key]) => key)
    return this.#writer.prune(expired)
  }

  /** Starts background pruning, when configured. */
  startPruning(): void {
    const prune = this.#prune
    if (prune === undefined || this.#pruneTimer !== undefined) return
    this.#pruneTimer = setInterval(() => {
      if (this.#pruning === undefined && this.#writer.healthy) {
        // A failed pass has stopped the writer, which reports it through onFatal.
        this.pruneExpiredIdempotency(prune.batchMax).catch(() => {})
      }
    }, prune.intervalMs)
    this.#pruneTimer.unref()
  }

  /** The balance and its seq, or undefined for an unknown account. */
  async tot(accountKey: AccountKey): Promise<Balance | undefined> {
    const state = this.#memory.accounts.get(accountKey) ?? (await this.#readAccount(accountKey))
    return state === undefined ? undefined : { tot: state.tot, seq: state.seq }
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
  mod(accountKey: AccountKey, input: ModInput): Promise<ModResult> {
    assert.ok(input.by !== 0n, 'by must be nonzero')
    assert.ok(input.by >= -amountMax && input.by <= amountMax, 'by out of range')
    assert.ok(input.note === undefined || characterCount(input.note) <= noteLengthMax, 'note too long')
    assert.ok(
      input.idempotencyKey === undefined ||
        (input.idempotencyKey.length >= 1 && input.idempotencyKey.length <= idempotencyKeyLengthMax),
      'idempotency key length out of range',
    )
    return this.#writer.submit(accountKey, input)
  }

  /** One page of history with the account's current balance; throws ACCMAN_NO_ACCOUNT when unknown. */
  async past(accountKey: AccountKey, query: PastQuery): Promise<PastPage> {
    assert.ok(Number.isInteger(query.limit) && query.limit >= 1 && query.limit <= pageSizeMax)
    const balance = await this.tot(accountKey)
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

  /** Stops taking mods, writes what is queued, keeps the filters for the next start, closes the database. */
  async close(): Promise<void> {
    clearInterval(this.#pruneTimer)
    await this.#pruning?.catch(() => {})
    await this.#writer.close()
    // After a fault the filters may lack what the failed round created: the next start scans.
    if (this.#writer.failed || this.#db.status !== 'open') {
      await this.#db.close()
      return
    }
    const unsigned = {
      epoch: this.#epoch,
      digest: '',
      accounts: this.#memory.accountKeys.snapshot(),
      idempotency: this.#memory.idempotencyKeys.snapshot(),
    }
    const record: z.infer<typeof filtersRecord> = { ...unsigned, digest: filtersDigest(unsigned) }
    await this.#meta.put(metaKeys.filters, JSON.stringify(record), synced)
    await this.#db.close()
  }
}

const { scanPageMax, filterSampleMax: sampleMax } = limits

/** SHA-256 of the kept filters' content, in a fixed order, so a damaged or shuffled copy is not taken. */
function filtersDigest(record: z.infer<typeof filtersRecord>): string {
  return hash('sha256', JSON.stringify([record.epoch, record.accounts, record.idempotency]), 'hex')
}

async function scanEntries(table: Table, visit: (key: string, value: string) => void): Promise<void> {
  const iterator = table.iterator()
  try {
    for (;;) {
      const page = await iterator.nextv(scanPageMax)
      if (page.length === 0) return
      for (const [key, value] of page) visit(key, value)
    }
  } finally {
    await iterator.close()
  }
}

/** classic-level's fsync option; abstract-level passes it through but does not declare it. */
const synced = { sync: true } as object

async function scanKeys(table: Tables['accounts'], visit: (key: string) => void, after?: string): Promise<void> {
  const iterator = table.keys(after === undefined ? {} : { gt: after })
  try {
    for (;;) {
      const page = await iterator.nextv(scanPageMax)
      if (page.length === 0) return
      for (const key of page) visit(key)
    }
  } finally {
    await iterator.close()
  }
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
  }
}

/** Opens the database if needed and returns a ledger on it; the ledger owns the database after. */
export async function openLedger(db: RootDb, options: LedgerOptions): Promise<Ledger> {
  await db.open()
  const ledger = new Ledger(db, options)
  await ledger.load()
  ledger.startPruning()
  return ledger
}
