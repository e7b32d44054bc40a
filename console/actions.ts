// The actions on an account, as a table: each says what it sends and what it does to the
// balance, and the console draws one button and one confirmation form per entry. Hold, settle,
// void, move, rotate and freeze join this table when the API has them.
import type { Api, Scope } from './api.js'
import type { Balance } from './format.js'

export interface ActionSpec {
  id: string
  /** The button's text, which is also its accessible name. */
  label: string
  /** The scope the server requires; the button is hidden from others. */
  scope: Scope
  /** The balance once the server has applied it, for the confirmation. */
  effect(tot: bigint, amount: bigint): bigint
  send(api: Api, cred: string, amount: bigint, note: string | undefined, idempotencyKey: string): Promise<Balance>
  /** What the console says once the server has applied it. */
  done(amount: string, balance: string): string
}

export const accountActions: readonly ActionSpec[] = [
  {
    id: 'credit',
    label: 'Credit',
    scope: 'write',
    effect: (tot, amount) => tot + amount,
    send: (api, cred, amount, note, key) => api.mod(cred, amount, note, key),
    done: (amount, balance) => `Credited ${amount}; the balance is ${balance}.`,
  },
  {
    id: 'debit',
    label: 'Debit',
    scope: 'write',
    effect: (tot, amount) => tot - amount,
    send: (api, cred, amount, note, key) => api.mod(cred, -amount, note, key),
    done: (amount, balance) => `Debited ${amount}; the balance is ${balance}.`,
  },
]

/** Whether a token of `scope` may do what `required` asks. */
export function allows(scope: Scope, required: Scope): boolean {
  if (scope === 'open' || scope === 'write') return true
  return required === 'read'
}
