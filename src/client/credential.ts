import { credentialLengthMax, credentialLengthMin } from '../ledger/limits.js'

const credentialPattern = /^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{4}|[A-Za-z0-9_-]{3}=|[A-Za-z0-9_-]{2}==)$/

/** What AccMan accepts as a credential: base64url with padding, 4 to 512 characters. */
export function isCredential(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    text.length >= credentialLengthMin &&
    text.length <= credentialLengthMax &&
    credentialPattern.test(text)
  )
}
