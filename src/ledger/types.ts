/** SHA-256 of a credential string, as 64 lowercase hex digits. Never the credential itself. */
export type AccountKey = string & { readonly brand: 'AccountKey' }

/** A balance together with the history position it is valid at. */
export interface Balance {
  tot: bigint
  /** Number of history entries; the balance is the one valid after entry `seq`. */
  seq: number
  /** The sum of the active holds, as of the answer (absent: none); avail = tot - held. */
  held?: bigint
}

/** What an entry records: absent means 'mod'. The whole list is declared; holds use the first five. */
export type EntryKind = 'mod' | 'hold' | 'settle' | 'void' | 'expire' | 'rotate' | 'move' | 'freeze' | 'unfreeze'

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
