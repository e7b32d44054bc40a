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
}

export interface ModInput {
  by: bigint
  note?: string
  idempotencyKey?: string
}

export interface ModResult extends Balance {
  /** True when an earlier mod with the same idempotency key answered this one. */
  replayed: boolean
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
