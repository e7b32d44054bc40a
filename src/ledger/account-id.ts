// The public id of an account: stable across rotations, derived from the internal id only, so it
// reveals nothing about any credential. Webhooks, the operator page and `id=` reads use it.
import { createHash } from 'node:crypto'
import type { AccountKey } from './types.js'

export function publicAccountId(accountKey: AccountKey): string {
  return 'acct_' + createHash('sha256').update('accman/public-account-id\0').update(accountKey).digest('base64url').slice(0, 22)
}

/** What publicAccountId gives: 'acct_' and 22 base64url characters. */
export const publicAccountIdPattern = /^acct_[A-Za-z0-9_-]{22}$/
