/** SHA-256 of a credential string, as 64 lowercase hex digits. Never the credential itself. */
export type AccountKey = string & { readonly brand: 'AccountKey' }

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
