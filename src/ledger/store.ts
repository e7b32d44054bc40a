// What the ledger needs from a storage engine, and nothing more: run a round (read the states it
// needs, locking them where other nodes write too, then store its writes atomically), read an
// account, page the history, and scan the tables for load, verify, export and backup. Engines
// store; they never decide (see decide.ts). Two kinds of engine:
// - exclusive (LevelDB): this process is the only writer. The writer guarantees that no two
//   rounds in flight touch the same account, so the engine needs no locking, and the ledger may
//   keep states in memory (cache, key filters) because nothing else changes them.
// - shared (PostgreSQL): several nodes write. Nothing is cached; every read goes to the store;
//   a round runs in one transaction that locks its accounts (in key order, so two nodes never
//   deadlock) and may be run again on a serialization failure, a deadlock or a concurrent
//   creation of the same account.
import type { AccountState, CredentialState, IdempotencyState } from './codec.js'
import type { OutboxEvent, OutboxRecord } from './outbox.js'
import type { AccountKey, CredentialKey, Entry, HoldState } from './types.js'

/** What one round stores, as plain data; the engine encodes it. */
export interface RoundWrites {
  /**
   * Each changed account once, with its state at the end of the round; read by the round first
   * (a shared engine updates the accounts it read and locked, and creates the others).
   */
  accounts: Array<[AccountKey, AccountState]>
  /** History entries appended, in the order decided (per account, seq ascending and contiguous). */
  entries: Array<[AccountKey, Entry]>
  /** Idempotency records written, by their store key (see idempotencyKeyOf). */
  idempotency: Array<[string, IdempotencyState]>
  /** Idempotency records deleted (expired), by their store key. */
  idempotencyDeletes: string[]
  /** Events the round's changes caused, for delivery (see outbox.ts); absent: none. */
  outbox?: OutboxEvent[]
  /** Refs set (to their account) or released (undefined); absent: none. */
  refs?: Array<[ref: string, accountKey: AccountKey | undefined]>
  /** Holds created or closed, each once, as they are at the end of the round (absent: none). */
  holds?: Array<[AccountKey, HoldState]>
  /** Credentials pointed (anew) at an account, or retired. */
  credentials?: Array<[CredentialKey, CredentialState]>
  /** Accounts this round creates: the engine indexes their public ids. */
  created?: AccountKey[]
}

/** The holds a round asked for: each account's open holds, and holds by id (open or closed). */
export interface RoundHolds {
  open: HoldState[][]
  byId: Array<HoldState | undefined>
}

/** An account and its open holds, read together as of one instant. */
export interface Holding {
  account: AccountState | undefined
  /** Open holds (no settle, void or expire written), oldest first; some may be past their expiry. */
  open: HoldState[]
  /** The store's clock at the read (shared engines); undefined on an exclusive engine. */
  nowMs: number | undefined
}

/** The states a round asked for, in the order asked; undefined where there is none. */
export interface RoundStates {
  accounts: Array<AccountState | undefined>
  idempotency: Array<IdempotencyState | undefined>
  /** The credentials asked for (whether live or not is the caller's to judge, on the round's clock). */
  credentials: Array<CredentialState | undefined>
}

/** What a round's body sees: its reads, and the round's time on a shared engine. */
export interface RoundTransaction {
  /**
   * The store's clock, read once for the round (shared engines: the database's clock, so nodes
   * with drifting clocks still write non-decreasing times); undefined on an exclusive engine,
   * where the writer's own clock is the one.
   */
  readonly nowMs: number | undefined
  /**
   * The states of the given accounts and idempotency records (by store key). On a shared engine
   * the accounts that exist are locked until the round ends, so what is read stays current; so
   * are the credentials that exist (credentials before accounts, each in key order).
   */
  /**
   * The open holds of the given accounts (read after readRound, which locked them on a shared
   * engine), and the given holds by account and id.
   */
  readHolds(openOf: AccountKey[], byId: Array<[AccountKey, string]>): Promise<RoundHolds>
  /** The account each ref belongs to (undefined: none), current until the round ends. */
  readRefs(refs: string[]): Promise<Array<AccountKey | undefined>>
  /** See above: credentials are read (and locked) before the accounts. */
  readRound(accountKeys: AccountKey[], idempotencyKeys: string[], credentialKeys?: CredentialKey[]): Promise<RoundStates>
}

/** What a round's body returns: the writes to store (undefined: nothing) and its own value. */
export interface RoundOutcome<T> {
  writes: RoundWrites | undefined
  value: T
}

/** A contiguous range of seqs, read from one end. */
export interface HistoryRange {
  seqLow: number
  seqHigh: number
  limit: number
  order: 'asc' | 'desc'
}

/** A consistent view of the whole store, for verify, export and backup. Close it after use. */
export interface StoreSnapshot {
  /** Accounts in key order, after `after` (exclusive), at most `limit`. */
  accounts(after: AccountKey | undefined, limit: number): Promise<Array<[AccountKey, AccountState]>>
  /** The entries of one account in seq order, from seqLow, at most `limit`. */
  history(accountKey: AccountKey, seqLow: number, limit: number): Promise<Entry[]>
  /** Idempotency records in store-key order, after `after` (exclusive), at most `limit`. */
  idempotency(after: string | undefined, limit: number): Promise<Array<[string, IdempotencyState]>>
  /** The holds of one account (open and closed) in id order, after `after` (exclusive), at most `limit`. */
  holds(accountKey: AccountKey, after: string | undefined, limit: number): Promise<HoldState[]>
  /** Credentials in key order, after `after` (exclusive), at most `limit`. */
  credentials(after: CredentialKey | undefined, limit: number): Promise<Array<[CredentialKey, CredentialState]>>
  close(): Promise<void>
}

export interface LedgerStore {
  /** See the top of this file. */
  readonly sharing: 'exclusive' | 'shared'
  /** One account's state, or undefined if the store has none (current, on a shared engine). */
  readAccount(accountKey: AccountKey): Promise<AccountState | undefined>
  /**
   * A credential's record, or undefined; with the store's clock on a shared engine (whether the
   * credential is live is judged on it), undefined on an exclusive one.
   */
  readCredential(credentialKey: CredentialKey): Promise<{ state: CredentialState | undefined; nowMs: number | undefined }>
  /** The account a public id names, or undefined. */
  accountOfPublicId(publicId: string): Promise<AccountKey | undefined>
  /**
   * Runs one round: `body` reads through the transaction it is given and returns the writes,
   * which are stored as one atomic write, all of it or none of it; resolves with the body's value
   * once they are stored (durably, if the engine was opened so). On a shared engine the body may
   * run more than once, so it must not change anything outside itself before it returns. Rejects
   * with a LedgerError ACCMAN_STORE_UNAVAILABLE when the store cannot be reached in time and
   * nothing was stored; with any other error when the store failed in a way the ledger must not
   * survive. An engine that loses its connection during COMMIT finds out whether the round was
   * stored before it settles.
   */
  runRound<T>(body: (transaction: RoundTransaction) => Promise<RoundOutcome<T>>): Promise<T>
  /**
   * The entries of `range`, at most `limit`, from seqLow up (asc) or from seqHigh down (desc).
   * Every seq in the range exists: callers bound it by the account's seq.
   */
  pageHistory(accountKey: AccountKey, range: HistoryRange): Promise<Entry[]>
  /** The entries of the account that carry `idempotencyKey`, in seq order, at most `limit`. */
  entriesWithKey(accountKey: AccountKey, idempotencyKey: string, limit: number): Promise<Entry[]>
  /** The first seq in [seqLow, seqHigh] whose entry is at or after atMs, or seqHigh + 1 if none. */
  firstSeqAtOrAfter(accountKey: AccountKey, atMs: number, seqLow: number, seqHigh: number): Promise<number>
  /** A consistent view of the store as it is now. */
  snapshot(): Promise<StoreSnapshot>
  /** An account and its open holds, consistent with each other (current, on a shared engine). */
  readHolding(accountKey: AccountKey): Promise<Holding>
  /**
   * Accounts with an open hold whose expiry is at or before `nowMs` (shared engines: the store's
   * clock; `nowMs` is ignored), at most `limit`, earliest expiry first.
   */
  dueHoldAccounts(nowMs: number, limit: number): Promise<AccountKey[]>
  /** The ledger's own small records (kept filters, epoch, import marker), by name. */
  readMeta(name: string): Promise<string | undefined>
  /** Writes (a string) or deletes (undefined) meta records, atomically and durably. */
  writeMeta(records: Array<[name: string, value: string | undefined]>): Promise<void>
  /** The account a ref belongs to, or undefined. */
  readRef(ref: string): Promise<AccountKey | undefined>
  /**
   * Outbox events due at nowMs (some endpoint's next attempt is due), soonest due first, at most
   * `limit`. A shared engine leases them for leaseMs, so no other node takes them meanwhile.
   */
  claimOutbox(nowMs: number, limit: number, leaseMs: number): Promise<OutboxRecord[]>
  /** Stores events' delivery states, and deletes events (delivered everywhere); ends their lease. */
  updateOutbox(saves: OutboxRecord[], deletes: OutboxRecord[]): Promise<void>
  /** A page of the outbox, oldest first, after the event `after` (exclusive). */
  pageOutbox(after: OutboxRecord | undefined, limit: number): Promise<OutboxRecord[]>
  /** Deletes the oldest events past `max`; resolves with how many were dropped. */
  trimOutbox(max: number): Promise<number>
  /** Events in the outbox. */
  countOutbox(): Promise<number>
  /** Whether the store answers now (for /readyz); never throws. */
  ping(): Promise<boolean>
  close(): Promise<void>
  /** An engine with a connection pool: its connections now (for /metrics). */
  poolStats?(): StorePoolStats
}

/** Connections open, idle, and callers waiting for one. */
export interface StorePoolStats {
  total: number
  idle: number
  waiting: number
}
