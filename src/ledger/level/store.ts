// The LevelDB engine (classic-level on disk, memory-level in tests): the ledger's tables are
// sublevels, and a round is one chained batch of plain puts on the root, with one fsync when
// `sync` is on. The engine is exclusive: this process is its only writer (LevelDB's lock), so a
// round reads without locking and its body runs exactly once. Every record is decoded as it is encoded before it goes in, and parsed by the
// same schema coming out, so a codec bug stops here rather than in a balance.
import assert from 'node:assert/strict'
import type { AbstractChainedBatchWriteOptions, AbstractLevel, AbstractSnapshot, AbstractSublevel } from 'abstract-level'
import { publicAccountId } from '../account-id.js'
import {
  decodeAccount,
  decodeCredential,
  encodeCredential,
  decodeEntry,
  decodeIdempotency,
  encodeAccount,
  encodeEntry,
  encodeIdempotency,
  historyKeyOf,
  tableNames,
  type AccountState,
  type CredentialState,
  type IdempotencyState,
} from '../codec.js'
import type {
  HistoryRange,
  LedgerStore,
  RoundOutcome,
  RoundStates,
  RoundTransaction,
  RoundWrites,
  StoreSnapshot,
} from '../store.js'
import type { AccountKey, CredentialKey, Entry } from '../types.js'

// The root may itself be a sublevel (the test suite runs on one), hence the loose key type.
export type RootDb = AbstractLevel<any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any
export type Table = AbstractSublevel<RootDb, any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Tables {
  accounts: Table
  history: Table
  idempotency: Table
  meta: Table
  credentials: Table
  publicIds: Table
}

/** The ledger's tables: sublevels of `db` with string keys and values. */
export function tablesOf(db: RootDb): Tables {
  const table = (name: string) => db.sublevel<string, string>(name, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  return {
    accounts: table(tableNames.accounts),
    history: table(tableNames.history),
    idempotency: table(tableNames.idempotency),
    meta: table(tableNames.meta),
    credentials: table(tableNames.credentials),
    publicIds: table(tableNames.publicIds),
  }
}

/** classic-level's fsync option; abstract-level passes it through but does not declare it. */
const synced = { sync: true } as object

/** Opens `db` (if it is not open yet) and returns the engine on it; the store owns `db` after. */
export async function openLevelStore(db: RootDb, options: { sync: boolean }): Promise<LevelStore> {
  await db.open()
  return new LevelStore(db, options)
}

export class LevelStore implements LedgerStore {
  readonly sharing = 'exclusive'
  readonly #db: RootDb
  readonly #tables: Tables
  readonly #sync: boolean
  /** Each table's key prefix within the root database. */
  readonly #prefixes: { accounts: string; history: string; idempotency: string; credentials: string; publicIds: string }
  /** The one transaction every round is handed: plain reads, and the writer's clock. */
  readonly #transaction: RoundTransaction

  /** `sync`: fsync each round before it resolves (classic-level skips it unless asked). */
  constructor(db: RootDb, options: { sync: boolean }) {
    assert.equal(db.status, 'open', 'open the database before the store')
    this.#db = db
    this.#tables = tablesOf(db)
    this.#sync = options.sync
    this.#transaction = {
      nowMs: undefined,
      readRound: (accountKeys, idempotencyKeys, credentialKeys) => this.#readRound(accountKeys, idempotencyKeys, credentialKeys ?? []),
    }
    const tables = this.#tables
    // Writes go to the root with each table's prefix, as the sublevel would add it: one chained
    // batch of plain puts costs a fraction of a batch of sublevel operations on the event loop.
    assert.equal(db.keyEncoding().commonName, 'utf8', 'the root database must have utf8 keys')
    assert.equal(db.valueEncoding().commonName, 'utf8', 'the root database must have utf8 values')
    const prefixOf = (table: Table, name: string) => {
      const prefix = `!${name}!`
      assert.ok(table.prefix.endsWith(prefix), `unexpected sublevel prefix ${table.prefix}`)
      return prefix
    }
    this.#prefixes = {
      accounts: prefixOf(tables.accounts, tableNames.accounts),
      history: prefixOf(tables.history, tableNames.history),
      idempotency: prefixOf(tables.idempotency, tableNames.idempotency),
      credentials: prefixOf(tables.credentials, tableNames.credentials),
      publicIds: prefixOf(tables.publicIds, tableNames.publicIds),
    }
  }

  /** The database under the store, for LevelDB's own checks (see verify.ts). */
  get db(): RootDb {
    return this.#db
  }

  async readAccount(accountKey: AccountKey): Promise<AccountState | undefined> {
    const value = await this.#tables.accounts.get(accountKey)
    return value === undefined ? undefined : decodeAccount(accountKey, value)
  }

  async readCredential(credentialKey: CredentialKey): Promise<{ state: CredentialState | undefined; nowMs: undefined }> {
    const value = await this.#tables.credentials.get(credentialKey)
    return { state: value === undefined ? undefined : decodeCredential(credentialKey, value), nowMs: undefined }
  }

  async accountOfPublicId(publicId: string): Promise<AccountKey | undefined> {
    return (await this.#tables.publicIds.get(publicId)) as AccountKey | undefined
  }

  /**
   * The body runs once: the writer never has two rounds of one account in flight, and nothing
   * else writes, so what it reads stays current until its writes are stored.
   */
  async runRound<T>(body: (transaction: RoundTransaction) => Promise<RoundOutcome<T>>): Promise<T> {
    const { writes, value } = await body(this.#transaction)
    if (writes !== undefined) await this.#writeRound(writes)
    return value
  }

  async #readRound(accountKeys: AccountKey[], idempotencyKeys: string[], credentialKeys: CredentialKey[]): Promise<RoundStates> {
    const [accountValues, idempotencyValues, credentialValues] = await Promise.all([
      accountKeys.length === 0 ? [] : this.#tables.accounts.getMany(accountKeys),
      idempotencyKeys.length === 0 ? [] : this.#tables.idempotency.getMany(idempotencyKeys),
      credentialKeys.length === 0 ? [] : this.#tables.credentials.getMany(credentialKeys),
    ])
    return {
      credentials: credentialKeys.map((key, index) => {
        const value = credentialValues[index]
        return value === undefined ? undefined : decodeCredential(key, value)
      }),
      accounts: accountKeys.map((key, index) => {
        const value = accountValues[index]
        return value === undefined ? undefined : decodeAccount(key, value)
      }),
      idempotency: idempotencyKeys.map((key, index) => {
        const value = idempotencyValues[index]
        return value === undefined ? undefined : decodeIdempotency(key, value)
      }),
    }
  }

  #writeRound(writes: RoundWrites): Promise<void> {
    const prefixes = this.#prefixes
    // Encoded before the batch opens: a failed round-trip check leaves no batch behind.
    const puts: Array<[prefixedKey: string, value: string]> = []
    for (const [accountKey, entry] of writes.entries) {
      const key = historyKeyOf(accountKey, entry.seq)
      const value = encodeEntry(entry)
      assert.deepEqual(decodeEntry(key, value), entry, 'a history entry does not round-trip')
      puts.push([prefixes.history + key, value])
    }
    for (const [key, record] of writes.idempotency) {
      const value = encodeIdempotency(record)
      assert.deepEqual(decodeIdempotency(key, value), record, 'an idempotency record does not round-trip')
      puts.push([prefixes.idempotency + key, value])
    }
    for (const [accountKey, state] of writes.accounts) {
      const value = encodeAccount(state)
      assert.deepEqual(decodeAccount(accountKey, value), state, 'an account record does not round-trip')
      puts.push([prefixes.accounts + accountKey, value])
    }
    for (const [credentialKey, state] of writes.credentials ?? []) {
      const value = encodeCredential(state)
      assert.deepEqual(decodeCredential(credentialKey, value), state, 'a credential record does not round-trip')
      puts.push([prefixes.credentials + credentialKey, value])
    }
    for (const accountKey of writes.created ?? []) puts.push([prefixes.publicIds + publicAccountId(accountKey), accountKey])
    const batch = this.#db.batch()
    for (const [key, value] of puts) batch.put(key, value)
    for (const key of writes.idempotencyDeletes) batch.del(prefixes.idempotency + key)
    // `sync` is classic-level's (fsync before resolving); abstract-level passes it through.
    return batch.write({ sync: this.#sync } as AbstractChainedBatchWriteOptions)
  }

  /**
   * Entries seqLow..seqHigh all exist (the history has no gaps), so a page is a list of known
   * keys: one getMany, cheaper than opening an iterator, and its cost does not depend on how
   * long the history is.
   */
  async pageHistory(accountKey: AccountKey, range: HistoryRange): Promise<Entry[]> {
    const count = Math.min(range.limit, range.seqHigh - range.seqLow + 1)
    const first = range.order === 'asc' ? range.seqLow : range.seqHigh
    const step = range.order === 'asc' ? 1 : -1
    const keys = Array.from({ length: count }, (_, index) => historyKeyOf(accountKey, first + index * step))
    const values = await this.#tables.history.getMany(keys)
    return keys.map((key, index) => {
      const value = values[index]
      assert.ok(value !== undefined, `history entry missing at ${key}`)
      return decodeEntry(key, value)
    })
  }

  /**
   * Entry times never decrease within an account, so a binary search of point reads finds it
   * in O(log n): a time-bounded page costs the same however long the history is.
   */
  async firstSeqAtOrAfter(accountKey: AccountKey, atMs: number, seqLow: number, seqHigh: number): Promise<number> {
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

  async snapshot(): Promise<StoreSnapshot> {
    assert.ok(this.#db.supports.explicitSnapshots, 'a snapshot needs a database with explicit snapshots')
    return new LevelSnapshot(this.#tables, this.#db.snapshot())
  }

  readMeta(name: string): Promise<string | undefined> {
    return this.#tables.meta.get(name)
  }

  async writeMeta(records: Array<[name: string, value: string | undefined]>): Promise<void> {
    const operations = records.map(([key, value]) =>
      value === undefined ? { type: 'del' as const, key } : { type: 'put' as const, key, value },
    )
    await this.#tables.meta.batch(operations, synced)
  }

  async ping(): Promise<boolean> {
    return this.#db.status === 'open'
  }

  async close(): Promise<void> {
    await this.#db.close()
  }
}

/** Reads of the tables as of one LevelDB snapshot, in key order, a bounded page at a time. */
class LevelSnapshot implements StoreSnapshot {
  readonly #tables: Tables
  readonly #snapshot: AbstractSnapshot

  constructor(tables: Tables, snapshot: AbstractSnapshot) {
    this.#tables = tables
    this.#snapshot = snapshot
  }

  async accounts(after: AccountKey | undefined, limit: number): Promise<Array<[AccountKey, AccountState]>> {
    const range = after === undefined ? {} : { gt: after }
    const rows = await this.#tables.accounts.iterator({ ...range, limit, snapshot: this.#snapshot }).all()
    return rows.map(([key, value]) => [key, decodeAccount(key, value)])
  }

  async history(accountKey: AccountKey, seqLow: number, limit: number): Promise<Entry[]> {
    // '"' follows '!': the first key past the account's entries.
    const range = { gte: historyKeyOf(accountKey, seqLow), lt: `${accountKey}"`, limit, snapshot: this.#snapshot }
    const rows = await this.#tables.history.iterator(range).all()
    return rows.map(([key, value]) => decodeEntry(key, value))
  }

  async idempotency(after: string | undefined, limit: number): Promise<Array<[string, IdempotencyState]>> {
    const range = after === undefined ? {} : { gt: after }
    const rows = await this.#tables.idempotency.iterator({ ...range, limit, snapshot: this.#snapshot }).all()
    return rows.map(([key, value]) => [key, decodeIdempotency(key, value)])
  }

  async credentials(after: CredentialKey | undefined, limit: number): Promise<Array<[CredentialKey, CredentialState]>> {
    const range = after === undefined ? {} : { gt: after }
    const rows = await this.#tables.credentials.iterator({ ...range, limit, snapshot: this.#snapshot }).all()
    return rows.map(([key, value]) => [key, decodeCredential(key, value)])
  }

  close(): Promise<void> {
    return this.#snapshot.close()
  }
}
