// Accounts that outlive their credentials: the account's details (/acct) and the rotation of its
// credential, decided as a pure function like a mod (see decide.ts): state in, answer and writes
// out, no I/O, no clock.
import assert from 'node:assert/strict'
import { publicAccountId } from './account-id.js'
import type { AccountState, CredentialState, IdempotencyState } from './codec.js'
import { isIdempotencyExpired, type Decision, type DecisionContext } from './decide.js'
import { LedgerError } from './errors.js'
import { seqMax } from './limits.js'
import type { AccountKey, CredentialKey, Entry } from './types.js'

/** What /acct tells about an account. Never a credential. */
export interface AccountView {
  accountKey: AccountKey
  tot: bigint
  /** Held by the active holds, as of the answer. */
  held: bigint
  seq: number
  createdMs: number
  /** The last entry's time. */
  updatedMs: number
  /** The account's expiry, when it has one. */
  expiresMs?: number
  frozen?: boolean
  /** The account's own low-balance threshold, when set (PATCH /alert). */
  alertBelow?: bigint
  /** The operator's reference, when set (PATCH /ref). */
  ref?: string
}

/** The view of an account state: its settings as stored, `held` as the caller computed it as of now. */
export function viewOf(accountKey: AccountKey, state: AccountState, held: bigint, createdMs: number): AccountView {
  const view: AccountView = { accountKey, tot: state.tot, held, seq: state.seq, createdMs, updatedMs: state.atMs }
  if (state.expiresMs !== undefined) view.expiresMs = state.expiresMs
  if (state.frozen === true) view.frozen = true
  if (state.alertBelow !== undefined) view.alertBelow = state.alertBelow
  if (state.ref !== undefined) view.ref = state.ref
  return view
}

/** The /acct (and /rotate) JSON body, field for field as the contract has it. */
export function accountBody(view: AccountView): string {
  const body: Record<string, string | number | boolean> = {
    account: publicAccountId(view.accountKey),
    tot: view.tot.toString(),
    held: view.held.toString(),
    avail: (view.tot - view.held).toString(),
    seq: view.seq,
    created: new Date(view.createdMs).toISOString(),
    updated: new Date(view.updatedMs).toISOString(),
  }
  if (view.expiresMs !== undefined) body.expires = new Date(view.expiresMs).toISOString()
  if (view.frozen === true) body.frozen = true
  if (view.alertBelow !== undefined) body.alertBelow = view.alertBelow.toString()
  if (view.ref !== undefined) body.ref = view.ref
  return JSON.stringify(body)
}

export interface RotateInput {
  accountKey: AccountKey
  oldCredentialKey: CredentialKey
  newCredentialKey: CredentialKey
  /** The old credential's record (it may be retired: a replay still finds the rotation). */
  oldCredential: CredentialState
  /** Whether the old credential addresses the account now. */
  oldLive: boolean
  /** Whether the new credential addresses any account now. */
  newInUse: boolean
  graceMs: number
  idempotencyKey?: string
  /** The name of the token the rotation came with, when a named one. */
  actor?: string
  /** The account's held as of the round (the answer shows it). */
  held?: bigint
}

export interface RotateResult {
  /** The answer, as /acct's JSON body. */
  body: string
  /** True when an earlier rotation with the same idempotency key answered this one. */
  replayed: boolean
}

export interface RotateWrites {
  account: AccountState
  entry: Entry
  idempotency: IdempotencyState | undefined
  credentials: Array<[CredentialKey, CredentialState]>
}

export type RotateDecision = Decision<RotateResult, RotateWrites>

/** The rotation's parameters as its idempotency record keeps them: a retry must repeat them. */
export function rotateFingerprint(newCredentialKey: CredentialKey, graceMs: number): string {
  return `rotate:${newCredentialKey}:${graceMs}`
}

/**
 * Decides one rotation. `account` is the account's state, whose createdMs the caller has filled
 * in; `idempotency` the record of the rotation's key on the account.
 */
export function decideRotate(
  account: AccountState,
  idempotency: IdempotencyState | undefined,
  input: RotateInput,
  context: DecisionContext,
): RotateDecision {
  const fingerprint = rotateFingerprint(input.newCredentialKey, input.graceMs)
  if (idempotency !== undefined && !isIdempotencyExpired(idempotency, context)) {
    if (idempotency.op !== 'rotate' || idempotency.fingerprint !== fingerprint || idempotency.answer === undefined) {
      return {
        refusal: new LedgerError('ACCMAN_IDEMPOTENCY_MISMATCH', 'this idempotency key was first used for another operation or other parameters'),
      }
    }
    return { result: { body: idempotency.answer, replayed: true }, writes: undefined }
  }
  if (!input.oldLive) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
  if (input.newInUse) return { refusal: new LedgerError('ACCMAN_CRED_IN_USE', 'new already addresses an account') }
  assert.ok(input.oldCredentialKey !== input.newCredentialKey, 'a rotation to the same credential')
  assert.ok(account.createdMs !== undefined, 'a rotation without the account creation time')

  const seq = account.seq + 1
  assert.ok(seq <= seqMax, 'history length exceeds seqMax')
  const atMs = Math.max(context.atMs, account.atMs)
  const entry: Entry = { seq, by: 0n, tot: account.tot, atMs, kind: 'rotate' }
  if (input.idempotencyKey !== undefined) entry.idempotencyKey = input.idempotencyKey
  if (input.actor !== undefined) entry.actor = input.actor
  // The rotation changes no held: the entry carries it on as every kind does.
  if (account.held !== undefined && account.held > 0n) entry.held = account.held
  const next: AccountState = { ...account, seq, atMs }
  // A second rotation during a grace never lengthens the old credential's life.
  const retiresMs = Math.min(context.atMs + input.graceMs, input.oldCredential.retiresMs ?? Number.MAX_SAFE_INTEGER)
  const body = accountBody(viewOf(input.accountKey, next, input.held ?? 0n, account.createdMs))
  const record: IdempotencyState | undefined =
    input.idempotencyKey === undefined
      ? undefined
      : { by: 0n, tot: next.tot, seq, atMs, op: 'rotate', fingerprint, answer: body }
  return {
    result: { body, replayed: false },
    writes: {
      account: next,
      entry,
      idempotency: record,
      credentials: [
        [input.oldCredentialKey, { accountKey: input.accountKey, retiresMs }],
        [input.newCredentialKey, { accountKey: input.accountKey }],
      ],
    },
  }
}
