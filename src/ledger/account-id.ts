// The account's public id: what events and operators may show instead of the credential. It is
// derived from the account key (itself a hash of the credential), so it reveals neither.
import { createHash } from 'node:crypto'
import type { AccountKey } from './types.js'

export function publicAccountId(accountKey: AccountKey): string {
  return 'acct_' + createHash('sha256').update('accman/public-account-id\0').update(accountKey).digest('base64url').slice(0, 22)
}
