// The LevelDB engine (classic-level on disk, memory-level in tests): the ledger's tables are
// sublevels, and a round is one chained batch of plain puts on the root, with one fsync when
// `sync` is on. The engine is exclusive: this process is its only writer (LevelDB's lock), so a
// round reads without locking and its body runs exactly once. Every record is decoded as it is encoded before it goes in, and parsed by the
// same schema coming out, so a codec bug stops here rather than in a balance.
import assert from 'node:assert/strict'
import type { AbstractChainedBatchWriteOptions, AbstractLevel, AbstractSnapshot, AbstractSublevel } from 'abstract-level'
import { publicAccountId } from '../account-id.js'
import {
  accountKeyOfHoldExpiry,
  decodeAccount,
  decodeCredential,
  encodeCredential,
  decodeEntry,
  decodeHold,
  decodeIdempotency,
  encodeAccount,
  encodeEntry,
  encodeHold,
  encodeIdempotency,
  historyKeyOf,
  holdExpiryKeyOf,
  holdKeyOf,
  keyIndexKeyOf,
  tableNames,
  type AccountState,
  type CredentialState,
  type IdempotencyState,
} from '../codec.js'
import { holdCountMax, seqDigits } from '../limits.js'
import type {
  HistoryRange,
  Holding,
  RoundHolds,
  LedgerStore,
  RoundOutcome,
  RoundStates,
  RoundTransaction,
  RoundWrites,
  StoreSnapshot,
} from '../store.js'
import type { AccountKey, CredentialKey, Entry, HoldState } from '../types.js'
import {
  decodeOutboxRecord,
  encodeOutboxRecord,
  eventKeyOfDueKey,
  newOutboxRecord,
  outboxDueBound,
  outboxDueKeyOf,
  outboxKeyOf,
  type OutboxRecord,
} from '../outbox.js'

// The root may itself be a sublevel (the test suite runs on one), hence the loose key type.
export type RootDb = AbstractLevel<any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any
export type Table = AbstractSublevel<RootDb, any, string, string> // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Tables {
  accounts: Table
  history: Table
  idempotency: Table
  meta: Table
  holds: Table
  holdExpiries: Table
  openHolds: Table
  keyIndex: Table
  refs: Table
  outbox: Table
  outboxDue: Table
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
    holds: table(tableNames.holds),
    holdExpiries: table(tableNames.holdExpiries),
    openHolds: table(tableNames.openHolds),
    keyIndex: table(tableNames.keyIndex),
    refs: table(tableNames.refs),
    outbox: table(tableNames.outbox),
    outboxDue: table(tableNames.outboxDue),
    credentials: table(tableNames.credentials),
    publicIds: table(tableNames.publicIds),
  }
}

/** classic-level's fsync option; abstract-level passes it through but does not declare it. */
const synced = { sync: true } as object

/** Opens `db` (if it is not open yet) and returns the engine on it; the store owns `db` after. */
export async function openLevelStore(db: RootDb, options: { sync: boolean }): Promise<LevelStore> {
  await db.open()
  const store = new LevelStore(db, options)
  await store.countOutbox()
  return store
}

export class LevelStore implements LedgerStore {
  readonly sharing = 'exclusive'
  readonly #db: RootDb
  readonly #tables: Tables
  readonly #sync: boolean
  /** Each table's key prefix within the root database. */
  readonly #prefixes: {
    accounts: string
    history: string
    idempotency: string
    holds: string
    holdExpiries: string
    openHolds: string
    keyIndex: string
    refs: string
    outbox: string
    outboxDue: string
    credentials: string
    publicIds: string
  }
  /** Events in the outbox: counted once, then kept by every write (this process is the only writer). */
  #outboxCount: number | undefined
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
      readHolds: (openOf, byId) => this.#readHolds(openOf, byId),
      readRefs: async (refs) => (refs.length === 0 ? [] : ((await this.#tables.refs.getMany(refs)) as Array<AccountKey | undefined>)),
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
      holds: prefixOf(tables.holds, tableNames.holds),
      holdExpiries: prefixOf(tables.holdExpiries, tableNames.holdExpiries),
      openHolds: prefixOf(tables.openHolds, tableNames.openHolds),
      keyIndex: prefixOf(tables.keyIndex, tableNames.keyIndex),
      refs: prefixOf(tables.refs, tableNames.refs),
      outbox: prefixOf(tables.outbox, tableNames.outbox),
      outboxDue: prefixOf(tables.outboxDue, tableNames.outboxDue),
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

  async #readHolds(openOf: AccountKey[], byId: Array<[AccountKey, string]>): Promise<RoundHolds> {
    const open = await Promise.all(openOf.map(async (accountKey) => await openHoldsOf(this.#tables, accountKey, undefined)))
    const keys = byId.map(([accountKey, holdId]) => holdKeyOf(accountKey, holdId))
    const values = keys.length === 0 ? [] : await this.#tables.holds.getMany(keys)
    return { open, byId: keys.map((key, index) => (values[index] === undefined ? undefined : decodeHold(key, values[index]))) }
  }

  async readHolding(accountKey: AccountKey): Promise<Holding> {
    // One snapshot: the account and its holds as of one instant.
    const snapshot = this.#db.snapshot()
    try {
      const value = await this.#tables.accounts.get(accountKey, { snapshot })
      const account = value === undefined ? undefined : decodeAccount(accountKey, value)
      const open = account?.holdCount === undefined ? [] : await openHoldsOf(this.#tables, accountKey, snapshot)
      return { account, open, nowMs: undefined }
    } finally {
      await snapshot.close()
    }
  }

  async dueHoldAccounts(nowMs: number, limit: number): Promise<AccountKey[]> {
    // '"' follows '!': every key whose expiry is at or before nowMs.
    const keys = await this.#tables.holdExpiries.keys({ lt: `${String(nowMs).padStart(seqDigits, '0')}"`, limit }).all()
    const accounts = new Set<AccountKey>()
    for (const key of keys) {
      const accountKey = accountKeyOfHoldExpiry(key)
      assert.ok(accountKey !== undefined, `corrupt key in ${tableNames.holdExpiries}`)
      accounts.add(accountKey)
    }
    return [...accounts]
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
      // Found by its key after the idempotency record is pruned (see entriesWithKey).
      if (entry.idempotencyKey !== undefined) puts.push([prefixes.keyIndex + keyIndexKeyOf(accountKey, entry.idempotencyKey, entry.seq), ''])
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
    const deletes: string[] = []
    for (const [accountKey, hold] of writes.holds ?? []) {
      const key = holdKeyOf(accountKey, hold.id)
      const value = encodeHold(hold)
      assert.deepEqual(decodeHold(key, value), hold, 'a hold does not round-trip')
      puts.push([prefixes.holds + key, value])
      const indexKeys = [prefixes.openHolds + key, prefixes.holdExpiries + holdExpiryKeyOf(accountKey, hold.id, hold.expiresMs)]
      if (hold.closed === undefined) for (const indexKey of indexKeys) puts.push([indexKey, ''])
      else deletes.push(...indexKeys)
    }
    for (const event of writes.outbox ?? []) {
      const record = newOutboxRecord(event)
      const key = outboxKeyOf(record)
      puts.push([prefixes.outbox + key, encodeOutboxRecord(record)])
      puts.push([prefixes.outboxDue + outboxDueKeyOf(event.atMs, key), ''])
    }
    for (const [credentialKey, state] of writes.credentials ?? []) {
      const value = encodeCredential(state)
      assert.deepEqual(decodeCredential(credentialKey, value), state, 'a credential record does not round-trip')
      puts.push([prefixes.credentials + credentialKey, value])
    }
    for (const accountKey of writes.created ?? []) puts.push([prefixes.publicIds + publicAccountId(accountKey), accountKey])
    const batch = this.#db.batch()
    for (const [key, value] of puts) batch.put(key, value)
    for (const key of deletes) batch.del(key)
    for (const key of writes.idempotencyDeletes) batch.del(prefixes.idempotency + key)
    for (const [ref, accountKey] of writes.refs ?? []) {
      if (accountKey === undefined) batch.del(prefixes.refs + ref)
      else batch.put(prefixes.refs + ref, accountKey)
    }
    if (this.#outboxCount !== undefined) this.#outboxCount += writes.outbox?.length ?? 0
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
   * The index holds every keyed entry written since it exists; the idempotency record adds the
   * entry of its key for stores written before (while the record is kept: one retention window).
   */
  async entriesWithKey(accountKey: AccountKey, idempotencyKey: string, limit: number): Promise<Entry[]> {
    const prefix = `${accountKey}!${idempotencyKey}!`
    // A key may itself hold '!': only a tail of exactly seqDigits digits is this key's.
    const indexKeys = await this.#tables.keyIndex.keys({ gte: prefix, lt: `${prefix}\x7f`, limit: limit * 4 }).all()
    const seqs = new Set<number>()
    for (const key of indexKeys) {
      const tail = key.slice(prefix.length)
      if (/^[0-9]{16}$/.test(tail)) seqs.add(Number(tail))
    }
    const recordValue = await this.#tables.idempotency.get(`${accountKey}!${idempotencyKey}`)
    if (recordValue !== undefined) seqs.add(decodeIdempotency(`${accountKey}!${idempotencyKey}`, recordValue).seq)
    const keys = [...seqs].sort((a, b) => a - b).slice(0, limit).map((seq) => historyKeyOf(accountKey, seq))
    if (keys.length === 0) return []
    const values = await this.#tables.history.getMany(keys)
    return keys.flatMap((key, index) => {
      const value = values[index]
      assert.ok(value !== undefined, `history entry missing at ${key}`)
      const entry = decodeEntry(key, value)
      return entry.idempotencyKey === idempotencyKey ? [entry] : []
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

  async readRef(ref: string): Promise<AccountKey | undefined> {
    return (await this.#tables.refs.get(ref)) as AccountKey | undefined
  }

  async claimOutbox(nowMs: number, limit: number): Promise<OutboxRecord[]> {
    const dueKeys = await this.#tables.outboxDue.keys({ lt: outboxDueBound(nowMs), limit }).all()
    const eventKeys = dueKeys.map(eventKeyOfDueKey)
    const values = eventKeys.length === 0 ? [] : await this.#tables.outbox.getMany(eventKeys)
    const records: OutboxRecord[] = []
    for (const [index, key] of eventKeys.entries()) {
      const value = values[index]
      if (value !== undefined) records.push(decodeOutboxRecord(key, value))
    }
    return records
  }

  async updateOutbox(saves: OutboxRecord[], deletes: OutboxRecord[]): Promise<void> {
    const prefixes = this.#prefixes
    const changed = [...saves, ...deletes]
    const keys = changed.map(outboxKeyOf)
    const before = keys.length === 0 ? [] : await this.#tables.outbox.getMany(keys)
    const batch = this.#db.batch()
    let deleted = 0
    for (const [index, record] of changed.entries()) {
      const key = keys[index]!
      const stored = before[index]
      // An event trimmed meanwhile stays gone.
      if (stored === undefined) continue
      const previousDue = decodeOutboxRecord(key, stored).dueAtMs
      if (previousDue !== undefined) batch.del(prefixes.outboxDue + outboxDueKeyOf(previousDue, key))
      if (index >= saves.length) {
        batch.del(prefixes.outbox + key)
        deleted++
        continue
      }
      batch.put(prefixes.outbox + key, encodeOutboxRecord(record))
      if (record.dueAtMs !== undefined) batch.put(prefixes.outboxDue + outboxDueKeyOf(record.dueAtMs, key), '')
    }
    await batch.write({ sync: this.#sync } as AbstractChainedBatchWriteOptions)
    if (this.#outboxCount !== undefined) this.#outboxCount -= deleted
  }

  async pageOutbox(after: OutboxRecord | undefined, limit: number): Promise<OutboxRecord[]> {
    const range = after === undefined ? {} : { gt: outboxKeyOf(after) }
    const rows = await this.#tables.outbox.iterator({ ...range, limit }).all()
    return rows.map(([key, value]) => decodeOutboxRecord(key, value))
  }

  async trimOutbox(max: number): Promise<number> {
    const excess = (await this.countOutbox()) - max
    if (excess <= 0) return 0
    const oldest = await this.pageOutbox(undefined, excess)
    await this.updateOutbox([], oldest)
    return oldest.length
  }

  async countOutbox(): Promise<number> {
    if (this.#outboxCount === undefined) {
      // Once per open, before this process writes (the outbox is bounded, see limits.outboxMax).
      let count = 0
      for await (const key of this.#tables.outbox.keys()) if (key !== '') count++
      this.#outboxCount = count
    }
    return this.#outboxCount
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

  /** Up to `limit` records of `table` after the key `after` (from the first when undefined), decoded. */
  async #page<Key extends string, Value>(table: Table, after: Key | undefined, limit: number, decode: (key: Key, value: string) => Value): Promise<Array<[Key, Value]>> {
    const range = after === undefined ? {} : { gt: after }
    const rows = await table.iterator({ ...range, limit, snapshot: this.#snapshot }).all()
    return rows.map(([key, value]) => [key, decode(key, value)])
  }

  accounts(after: AccountKey | undefined, limit: number): Promise<Array<[AccountKey, AccountState]>> {
    return this.#page(this.#tables.accounts, after, limit, decodeAccount)
  }

  async history(accountKey: AccountKey, seqLow: number, limit: number): Promise<Entry[]> {
    // '"' follows '!': the first key past the account's entries.
    const range = { gte: historyKeyOf(accountKey, seqLow), lt: `${accountKey}"`, limit, snapshot: this.#snapshot }
    const rows = await this.#tables.history.iterator(range).all()
    return rows.map(([key, value]) => decodeEntry(key, value))
  }

  idempotency(after: string | undefined, limit: number): Promise<Array<[string, IdempotencyState]>> {
    return this.#page(this.#tables.idempotency, after, limit, decodeIdempotency)
  }

  async holds(accountKey: AccountKey, after: string | undefined, limit: number): Promise<HoldState[]> {
    const range = { gt: after === undefined ? `${accountKey}!` : holdKeyOf(accountKey, after), lt: `${accountKey}"`, limit, snapshot: this.#snapshot }
    const rows = await this.#tables.holds.iterator(range).all()
    return rows.map(([key, value]) => decodeHold(key, value))
  }

  credentials(after: CredentialKey | undefined, limit: number): Promise<Array<[CredentialKey, CredentialState]>> {
    return this.#page(this.#tables.credentials, after, limit, decodeCredential)
  }

  close(): Promise<void> {
    return this.#snapshot.close()
  }
}

/** The open holds of an account, oldest first (at most holdCountMax exist). */
async function openHoldsOf(tables: Tables, accountKey: AccountKey, snapshot: AbstractSnapshot | undefined): Promise<HoldState[]> {
  const options = { gt: `${accountKey}!`, lt: `${accountKey}"`, limit: holdCountMax + 1, ...(snapshot === undefined ? {} : { snapshot }) }
  const keys = await tables.openHolds.keys(options).all()
  assert.ok(keys.length <= holdCountMax, 'more open holds than an account may have')
  if (keys.length === 0) return []
  const values = await tables.holds.getMany(keys, snapshot === undefined ? {} : { snapshot })
  const open = keys.map((key, index) => {
    const value = values[index]
    assert.ok(value !== undefined, `an open hold missing at ${key}`)
    const hold = decodeHold(key, value)
    assert.ok(hold.closed === undefined, `a closed hold indexed as open at ${key}`)
    return hold
  })
  return open.sort((a, b) => a.atMs - b.atMs || (a.id < b.id ? -1 : 1))
}
