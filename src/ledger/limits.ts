// The ledger's fixed ranges. They are part of the HTTP contract, so they live with the core
// rather than in configuration: a deployment cannot widen them.

/** The largest amount, and the largest balance: 2^127 - 1. */
export const amountMax = 2n ** 127n - 1n

/** Decimal digits of amountMax; a longer digit string is out of range without parsing it. */
export const amountDigitsMax = amountMax.toString().length

/** Counted in characters (code points), as zod's string length counts them. */
export const noteLengthMax = 256
export const idempotencyKeyLengthMax = 255

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

/** A rotation's grace (`grace`, seconds): how long the old credential keeps working; 0 by default. */
export const rotationGraceSecondsDefault = 0
export const rotationGraceSecondsMax = 86_400
