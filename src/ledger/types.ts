/**
 * An account's stable internal id: what its history, idempotency records and state hang off.
 * Accounts created before credentials were mapped keep their credential's SHA-256 (64 hex
 * digits); later ones get 128 random bits in base64url (22 characters). Never a credential.
 */
export type AccountKey = string & { readonly brand: 'AccountKey' }

/** SHA-256 of a credential string, as 64 lowercase hex digits; the credentials table maps it to an account. */
export type CredentialKey = string & { readonly brand: 'CredentialKey' }

/** What an entry records; absent on an entry means 'mod'. */
export type EntryKind = 'mod' | 'hold' | 'settle' | 'void' | 'expire' | 'rotate' | 'move' | 'freeze' | 'unfreeze'

/** A balance together with the history position it is valid at. */
export interface Balance {
  tot: bigint
  /** Number of history entries; the balance is the one valid after entry `seq`. */
  seq: number
  /** The sum of the active holds, as of the answer (absent: none); avail = tot - held. */
  held?: bigint
}

/** One accepted mod, as the history holds it. */
export interface Entry {
  seq: number
  by: bigint
  /** Balance after this entry: the previous entry's tot plus by. */
  tot: bigint
  /** Milliseconds since the epoch, UTC; never decreases within an account. */
  atMs: number
  note?: string
  idempotencyKey?: string
  /** Absent: 'mod'. */
  kind?: EntryKind
  /** The hold an entry of kind hold, settle, void or expire is about. */
  hold?: string
  /** The signed change of the account's held: +A for a hold of A, -A for its settle, void or expire. */
  heldBy?: bigint
  /** The account's held after this entry (absent: 0): the previous entry's held plus heldBy. */
  held?: bigint
  /** The move's id, on both entries of a move (kind 'move'). */
  move?: string
  /** The other side of a move: its account and the seq of its entry there. Stored, never on the wire. */
  peer?: { accountKey: AccountKey; seq: number }
  /** The name of the token that wrote the entry, when it was a named one. */
  actor?: string
}

export interface ModInput {
  by: bigint
  note?: string
  idempotencyKey?: string
  /** On a credit: the account's expiry becomes at least now + ttlSeconds. */
  ttlSeconds?: number
  /** The name of the token the request came with, when named. */
  actor?: string
}

export interface ModResult extends Balance {
  /** True when an earlier mod with the same idempotency key answered this one. */
  replayed: boolean
  /** The account's expiry after the mod, when it has one (ms since the epoch). */
  expiresMs?: number
}

export interface MoveInput {
  /** Positive: the amount taken from the account and given to `toAccountKey`. */
  by: bigint
  toAccountKey: AccountKey
  /** The account moved from (the one the move is submitted on). */
  fromAccountKey: AccountKey
  /** The move's id, chosen by the caller (random, URL-safe). */
  moveId: string
  note?: string
  idempotencyKey?: string
  actor?: string
}

export interface MoveResult extends ModResult {
  /** The move's id; on a replay, the first one's. */
  move: string
}

/** Freezing or unfreezing an account. */
export interface FreezeInput {
  frozen: boolean
  actor?: string
}

export interface FreezeResult extends ModResult {
  frozen: boolean
  /** False when the account already was in that state: nothing was written. */
  changed: boolean
}

export interface PastQuery {
  limit: number
  order: 'asc' | 'desc'
  /** Only entries with seq > afterSeq. */
  afterSeq?: number
  /** Only entries with seq < beforeSeq. */
  beforeSeq?: number
  /** Only entries with atMs >= fromMs. */
  fromMs?: number
  /** Only entries with atMs <= toMs. */
  toMs?: number
}

export interface PastPage extends Balance {
  entries: Entry[]
}

/** One hold of an account, as stored. Closed holds are kept, so a late settle or void is told why. */
export interface HoldState {
  id: string
  by: bigint
  atMs: number
  expiresMs: number
  note?: string
  /** How it closed; absent while it is open. */
  closed?: 'settle' | 'void' | 'expire'
}
