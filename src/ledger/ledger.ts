// The ledger: tot, mod and past over an abstract-level database. It knows nothing of HTTP; the
// server, the CLI and the tests all share these checks.
import assert from 'node:assert/strict'
import { z } from 'zod'
import { decodeAccount, decodeEntry, filtersKey, filtersRecord, historyKeyOf, tableNames } from './codec.js'
import { LedgerError } from './errors.js'
import { amountMax, characterCount, noteLengthMax, idempotencyKeyLengthMax, pageSizeMax } from './limits.js'
import type { AccountKey, Balance, Entry, ModInput, ModResult, PastPage, PastQuery } from './types.js'
import { AccountCache, KeyFilter, type LedgerMemory } from './cache.js'
import { Writer, type RootDb, type RoundReport, type Table, type Tables } from './writer.js'

export interface LedgerOptions {
  /** fsync every batch before acknowledging (classic-level skips it unless asked). */
  sync: boolean
  writerBatchMax: number
  writerQueueMax: number
  /** Rounds written at once at most, on disjoint accounts (default 2: measured best of 1, 2 and 4). */
  writerRoundsInFlightMax?: number
  /** Account states kept in memory at most (exact: the writer keeps them current). */
  accountCacheMax?: number
  now?: () => number
  /** Called once if the writer stops on a storage fault or a broken invariant. */
  onFatal?: (error: Error) => void
  /** Called after each round the writer stores, for metrics. */
  onRound?: (report: RoundReport) => void
}

/** About 200 bytes each: 100,000 states take some 20 MB. */
export const accountCacheMaxDefault = 100_000

export class Ledger {
  readonly #db: RootDb
  readonly #tables: Tables
  /** The ledger's own state across a clean stop (the filters); see load. */
  readonly #meta: Table
  readonly #writer: Writer
  readonly #memory: LedgerMemory

  /** Use openLedger, which also loads the filters and warms the cache. */
  constructor(db: RootDb, options: LedgerOptions) {
    assert.equal(db.status, 'open', 'open the database before the ledger')
    this.#db = db
    this.#tables = tablesOf(db)
    this.#meta = db.sublevel<string, string>(tableNames.meta, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.#memory = {
      accounts: new AccountCache(options.accountCacheMax ?? accountCacheMaxDefault),
      accountKeys: new KeyFilter(),
      idempotencyKeys: new KeyFilter(),
    }
    this.#writer = new Writer(db, this.#tables, this.#memory, {
      sync: options.sync,
      batchMax: options.writerBatchMax,
      queueMax: options.writerQueueMax,
      roundsInFlightMax: options.writerRoundsInFlightMax ?? 2,
      now: options.now ?? Date.now,
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

  /**
   * Before the ledger serves, every account and idempotency record must be in the filters, and
   * the cache starts with the first accounts it can hold. A clean stop leaves the filters in the
   * meta table: they are loaded, then deleted (with fsync) before anything is written, so after a
   * crash none is found and the keys are scanned instead. The scan reads keys only, in pages, so a
   * large store costs start-up time but little heap; it does page the tables' files in.
   */
  async load(): Promise<void> {
    const restored = await this.#restoreFilters()
    let lastWarm: string | undefined
    const warm = this.#tables.accounts.iterator({ limit: this.#memory.accounts.capacity })
    try {
      for (let page = await warm.nextv(scanPageMax); page.length > 0; page = await warm.nextv(scanPageMax)) {
        for (const [accountKey, value] of page) {
          if (!restored) this.#memory.accountKeys.add(accountKey)
          this.#memory.accounts.fillFromWriter(accountKey as AccountKey, decodeAccount(accountKey, value))
          lastWarm = accountKey
        }
      }
    } finally {
      await warm.close()
    }
    if (restored) return
    await scanKeys(this.#tables.accounts, (key) => this.#memory.accountKeys.add(key), lastWarm)
    await scanKeys(this.#tables.idempotency, (key) => this.#memory.idempotencyKeys.add(key))
  }

  /** Takes the filters a clean stop left, if any; true when both were usable. */
  async #restoreFilters(): Promise<boolean> {
    const text = await this.#meta.get(filtersKey)
    if (text === undefined) return false
    // Gone before the first write: a later crash must not leave a stale filter behind.
    await this.#meta.del(filtersKey, synced)
    let record: z.infer<typeof filtersRecord>
    try {
      record = filtersRecord.parse(JSON.parse(text))
    } catch {
      return false // damaged: scan instead
    }
    const accountKeys = KeyFilter.fromSnapshot(record.accounts)
    const idempotencyKeys = KeyFilter.fromSnapshot(record.idempotency)
    if (accountKeys === undefined || idempotencyKeys === undefined) return false
    this.#memory.accountKeys = accountKeys
    this.#memory.idempotencyKeys = idempotencyKeys
    return true
  }

  /** The balance and its seq, or undefined for an unknown account. */
  async tot(accountKey: AccountKey): Promise<Balance | undefined> {
    const state = this.#memory.accounts.get(accountKey) ?? (await this.#readAccount(accountKey))
    return state === undefined ? undefined : { tot: state.tot, seq: state.seq }
  }

  async #readAccount(accountKey: AccountKey) {
    if (!this.#memory.accountKeys.mightContain(accountKey)) return undefined
    const commitsBeforeRead = this.#memory.accounts.commits
    const value = await this.#tables.accounts.get(accountKey)
    if (value === undefined) return undefined
    const state = decodeAccount(accountKey, value)
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
      seqLow = await this.#firstSeqAtOrAfter(accountKey, query.fromMs, seqLow, seqHigh)
    }
    if (query.toMs !== undefined && seqLow <= seqHigh) {
      seqHigh = (await this.#firstSeqAtOrAfter(accountKey, query.toMs + 1, seqLow, seqHigh)) - 1
    }
    const entries = seqLow > seqHigh ? [] : await this.#readEntries(accountKey, seqLow, seqHigh, query)
    return { ...balance, entries }
  }

  /** Stops taking mods, writes what is queued, keeps the filters for the next start, closes the database. */
  async close(): Promise<void> {
    await this.#writer.close()
    // After a fault the filters may lack what the failed round created: the next start scans.
    if (this.#writer.failed || this.#db.status !== 'open') {
      await this.#db.close()
      return
    }
    const record: z.infer<typeof filtersRecord> = {
      accounts: this.#memory.accountKeys.snapshot(),
      idempotency: this.#memory.idempotencyKeys.snapshot(),
    }
    await this.#meta.put(filtersKey, JSON.stringify(record), synced)
    await this.#db.close()
  }

  /**
   * Entries seqLow..seqHigh all exist (the history has no gaps), so a page is a list of known
   * keys: one getMany, cheaper than opening an iterator, and its cost does not depend on how
   * long the history is.
   */
  async #readEntries(accountKey: AccountKey, seqLow: number, seqHigh: number, query: PastQuery): Promise<Entry[]> {
    const count = Math.min(query.limit, seqHigh - seqLow + 1)
    const first = query.order === 'asc' ? seqLow : seqHigh
    const step = query.order === 'asc' ? 1 : -1
    const keys = Array.from({ length: count }, (_, index) => historyKeyOf(accountKey, first + index * step))
    const values = await this.#tables.history.getMany(keys)
    const entries = keys.map((key, index) => {
      const value = values[index]
      assert.ok(value !== undefined, `history entry missing at ${key}`)
      return decodeEntry(key, value)
    })
    assertChain(entries, query.order)
    return entries
  }

  /**
   * The first seq in [seqLow, seqHigh] whose entry is at or after atMs, or seqHigh + 1 if none.
   * Entry times never decrease within an account, so a binary search of point reads finds it
   * in O(log n): a time-bounded page costs the same however long the history is.
   */
  async #firstSeqAtOrAfter(accountKey: AccountKey, atMs: number, seqLow: number, seqHigh: number): Promise<number> {
    let low = seqLow
    let high = seqHigh + 1
    while (low < high) {
      const middle = low + Math.floor((high - low) / 2)
      const key = historyKeyOf(accountKey, middle)
      const value = await this.#tables.history.get(key)
      assert.ok(value !== undefined, `history entry missing at ${key}`)
      if (decodeEntry(key, value).atMs >= atMs) high = middle
      else low = middle + 1
    }
    return low
  }
}

const scanPageMax = 10_000

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

/** The ledger's tables: sublevels of `db` with string keys and values. */
export function tablesOf(db: RootDb): Tables {
  const table = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  return {
    accounts: table(tableNames.accounts),
    history: table(tableNames.history),
    idempotency: table(tableNames.idempotency),
  }
}

/** Opens the database if needed and returns a ledger on it; the ledger owns the database after. */
export async function openLedger(db: RootDb, options: LedgerOptions): Promise<Ledger> {
  await db.open()
  const ledger = new Ledger(db, options)
  await ledger.load()
  return ledger
}
