// What the ledger needs from a storage engine, and nothing more: read the states a round needs,
// write a round atomically, read an account, page the history. Engines store; they never decide
// (see decide.ts). The writer guarantees that no two rounds in flight touch the same account, so
// an engine needs no locking of its own within one process.
import type { AccountState, IdempotencyState } from './codec.js'
import type { AccountKey, Entry } from './types.js'

/** What one round stores, as plain data; the engine encodes it. */
export interface RoundWrites {
  /** Each changed account once, with its state at the end of the round. */
  accounts: Array<[AccountKey, AccountState]>
  /** History entries appended, in the order decided (per account, seq ascending and contiguous). */
  entries: Array<[AccountKey, Entry]>
  /** Idempotency records written, by their store key (see idempotencyKeyOf). */
  idempotency: Array<[string, IdempotencyState]>
  /** Idempotency records deleted (expired), by their store key. */
  idempotencyDeletes: string[]
}

/** The states a round asked for, in the order asked; undefined where there is none. */
export interface RoundStates {
  accounts: Array<AccountState | undefined>
  idempotency: Array<IdempotencyState | undefined>
}

/** A contiguous range of seqs, read from one end. */
export interface HistoryRange {
  seqLow: number
  seqHigh: number
  limit: number
  order: 'asc' | 'desc'
}

export interface LedgerStore {
  /** One account's state, or undefined if the store has none. */
  readAccount(accountKey: AccountKey): Promise<AccountState | undefined>
  /** The states of the given accounts and idempotency records (by store key). */
  readRound(accountKeys: AccountKey[], idempotencyKeys: string[]): Promise<RoundStates>
  /**
   * Stores the round as one atomic write, all of it or none of it, and resolves once it is
   * stored (durably, if the engine was opened so). Rejects if it could not be stored.
   */
  writeRound(writes: RoundWrites): Promise<void>
  /**
   * The entries of `range`, at most `limit`, from seqLow up (asc) or from seqHigh down (desc).
   * Every seq in the range exists: callers bound it by the account's seq.
   */
  pageHistory(accountKey: AccountKey, range: HistoryRange): Promise<Entry[]>
  /** The first seq in [seqLow, seqHigh] whose entry is at or after atMs, or seqHigh + 1 if none. */
  firstSeqAtOrAfter(accountKey: AccountKey, atMs: number, seqLow: number, seqHigh: number): Promise<number>
}
