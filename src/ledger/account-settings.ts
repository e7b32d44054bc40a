// Changes to an account's settings (its low-balance threshold, its ref), as a pure decision: they
// change the account's state but write no history entry, and never touch the balance.
import { LedgerError } from './errors.js'
import type { AccountState } from './codec.js'
import type { AccountKey } from './types.js'

/** What to change; a field left out stays as it is, null removes it. */
export interface AccountChange {
  alertBelow?: bigint | null
  ref?: string | null
}

export type AccountChangeDecision =
  | { account: AccountState; refs: Array<[ref: string, accountKey: AccountKey | undefined]> }
  | { refusal: LedgerError }

/**
 * Decides a change of `accountKey`'s settings. `refOwner` is the account the new ref belongs to
 * now (undefined: none). A ref names one account: one already used by another is refused.
 */
export function decideAccountChange(
  accountKey: AccountKey,
  account: AccountState | undefined,
  change: AccountChange,
  refOwner: AccountKey | undefined,
): AccountChangeDecision {
  if (account === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
  const next: AccountState = { ...account }
  const refs: Array<[string, AccountKey | undefined]> = []
  if (change.alertBelow === null) delete next.alertBelow
  else if (change.alertBelow !== undefined) next.alertBelow = change.alertBelow
  if (change.ref !== undefined && change.ref !== account.ref) {
    if (change.ref !== null && refOwner !== undefined && refOwner !== accountKey) {
      return { refusal: new LedgerError('ACCMAN_REF_TAKEN', 'this ref already names another account') }
    }
    if (account.ref !== undefined) refs.push([account.ref, undefined])
    if (change.ref === null) delete next.ref
    else {
      next.ref = change.ref
      refs.push([change.ref, accountKey])
    }
  }
  return { account: next, refs }
}
