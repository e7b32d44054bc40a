// The ledger's fixed ranges. They are part of the HTTP contract, so they live with the core
// rather than in configuration: a deployment cannot widen them.

/** The largest amount, and the largest balance: 2^127 - 1. */
export const amountMax = 2n ** 127n - 1n

/** Decimal digits of amountMax; a longer digit string is out of range without parsing it. */
export const amountDigitsMax = amountMax.toString().length

/** Counted in characters (code points), as zod's string length counts them. */
export const noteLengthMax = 256
export const idempotencyKeyLengthMax = 255
/** An account's ref (PATCH /ref), in characters. */
export const refLengthMax = 128

export const pageSizeDefault = 100
export const pageSizeMax = 1000

/** History keys carry the seq zero-padded to this width so that they sort as numbers. */
export const seqDigits = 16
/** Above this, seq would no longer fit the key width or a JS number exactly. */
export const seqMax = Number.MAX_SAFE_INTEGER

/** Length in characters (code points), so an emoji counts once, as a person counts it. */
export function characterCount(text: string): number {
  return Array.from(text).length
}

if (amountDigitsMax !== 39) throw new Error('amountMax must have 39 digits')
if (String(seqMax).length > seqDigits) throw new Error('seqMax must fit seqDigits')

/**
 * How long an idempotency key is replayed (ACCMAN_IDEMPOTENCY_TTL, in seconds): a day by default,
 * like Stripe's 24 hours, and at most 30 days. Past it a key counts as new.
 */
export const idempotencyTtlSecondsDefault = 86_400
export const idempotencyTtlSecondsMin = 1
export const idempotencyTtlSecondsMax = 2_592_000

/** Active holds one account may have at once (more: ACCMAN_TOO_MANY_HOLDS). */
export const holdCountMax = 1000
/** A hold's ttl, in seconds: 1 to 7 days, 300 when not given. */
export const holdTtlSecondsMin = 1
export const holdTtlSecondsMax = 604_800
export const holdTtlSecondsDefault = 300
/** An account's ttl (`ttl` on a credit), in seconds: 1 s to 10 years. */
export const accountTtlSecondsMin = 1
export const accountTtlSecondsMax = 315_360_000

/** Entries /past?key= returns at most: a key is on one entry per retention window. */
export const entriesWithKeyMax = 100
/** A rotation's grace (`grace`, seconds): how long the old credential keeps working; 0 by default. */
export const rotationGraceSecondsDefault = 0
export const rotationGraceSecondsMax = 86_400
