// The syntax of a credential and of an amount on the wire, declared once: the server's schemas,
// the client, the CLI and the stored records all test against these. A pure module: the
// published client imports it.
import { amountDigitsMax, amountMax } from '../ledger/limits.js'

/** Counted in characters; a credential is ASCII, so also in bytes. */
export const credentialLengthMin = 4
export const credentialLengthMax = 512

/** base64url with padding: whole groups of four characters, the last one padded with '=' as needed. */
export const credentialPattern = /^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{4}|[A-Za-z0-9_-]{3}=|[A-Za-z0-9_-]{2}==)$/

/** What a credential is, in words, for the messages that refuse one. */
export const credentialSyntax = `base64url with padding, ${credentialLengthMin} to ${credentialLengthMax} characters`

/** What AccMan accepts as a credential: base64url with padding, 4 to 512 characters. */
export function isCredential(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    text.length >= credentialLengthMin &&
    text.length <= credentialLengthMax &&
    credentialPattern.test(text)
  )
}

const digitsAfterFirst = `[0-9]{0,${amountDigitsMax - 1}}`

/**
 * An amount (a mod's `by`, an entry's `by`): a nonzero decimal integer, an optional minus, no
 * leading zero, at most amountDigitsMax digits. Its magnitude must also be at most amountMax.
 */
export const amountPattern = new RegExp(`^-?[1-9]${digitsAfterFirst}$`)

/** A balance (`tot`): 0 or a positive decimal integer of at most amountDigitsMax digits, at most amountMax. */
export const balancePattern = new RegExp(`^(0|[1-9]${digitsAfterFirst})$`)

/** The amount a text stands for, or undefined when it is not one (or out of range). */
export function parseAmount(text: string): bigint | undefined {
  if (!amountPattern.test(text)) return undefined
  const amount = BigInt(text)
  return amount >= -amountMax && amount <= amountMax ? amount : undefined
}
