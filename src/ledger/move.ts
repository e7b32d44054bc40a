// The decisions of a move, a freeze and an unfreeze, and the refusals an account's lifecycle adds
// to every outgoing change (frozen, expired), as pure functions like decideMod: states in, the
// answer and the writes out. No I/O, no clock, no randomness (a move's id comes with its input).
import assert from 'node:assert/strict'
import type { AccountState, IdempotencyState } from './codec.js'
import { insufficientFunds, isIdempotencyExpired, type Decision, type DecisionContext } from './decide.js'
import { LedgerError } from './errors.js'
import { amountMax, seqMax } from './limits.js'
import type { AccountKey, Entry, FreezeInput, FreezeResult, MoveInput, MoveResult } from './types.js'

/** Whether the account's expiry has passed as of the round's time. */
export function isExpired(account: AccountState, context: DecisionContext): boolean {
  return account.expiresMs !== undefined && context.atMs >= account.expiresMs
}

/**
 * Why an existing account may not give anything out now (a debit, a move out, a new hold), or
 * undefined. Frozen is checked before expired: the operator's act says more than the clock.
 */
export function outgoingRefusal(account: AccountState, context: DecisionContext): LedgerError | undefined {
  if (account.frozen === true) return new LedgerError('ACCMAN_FROZEN', 'the account is frozen')
  if (isExpired(account, context)) return new LedgerError('ACCMAN_EXPIRED', 'the account has expired; a credit with ttl reopens it')
  return undefined
}

/** The expiry after a credit with `ttlSeconds`: the later of the current one and now + ttl. */
export function expiryAfterCredit(account: AccountState | undefined, ttlSeconds: number, context: DecisionContext): number {
  return Math.max(account?.expiresMs ?? 0, context.atMs + ttlSeconds * 1000)
}

/** The account's state with only tot, seq and atMs changed: expiry and frozen carry over. */
export function nextState(account: AccountState | undefined, tot: bigint, seq: number, atMs: number): AccountState {
  // Everything else an account carries (expiry, freezing, holds, settings) stays as it was.
  return account === undefined ? { tot, seq, atMs } : { ...account, tot, seq, atMs }
}

/** The canonical parameters of a move, kept in its idempotency record. */
export function moveFingerprint(input: { by: bigint; toAccountKey: AccountKey }): string {
  return `move to=${input.toAccountKey} by=${input.by}`
}

export interface MoveWrites {
  from: AccountState
  to: AccountState
  fromEntry: Entry
  toEntry: Entry
  idempotency: IdempotencyState | undefined
}

export type MoveDecision = Decision<MoveResult, MoveWrites>

/**
 * Decides one move of `input.by` from `from` to `to` (two different accounts). `idempotency` is
 * the record of the move's key in FROM's key space. Refusals, in order: FROM unknown (404), TO
 * unknown (404, naming `to`), FROM frozen (423), FROM expired (410), FROM short (402), TO would
 * overflow (422). A move into a frozen or expired account is accepted and changes neither.
 */
export function decideMove(
  from: AccountState | undefined,
  to: AccountState | undefined,
  idempotency: IdempotencyState | undefined,
  input: MoveInput,
  context: DecisionContext,
): MoveDecision {
  assert.ok(input.by > 0n && input.by <= amountMax, 'a move amount is positive')
  if (idempotency !== undefined && !isIdempotencyExpired(idempotency, context)) return replayMove(idempotency, input)
  if (from === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
  if (to === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for the credential in to') }
  const refusal = outgoingRefusal(from, context)
  if (refusal !== undefined) return { refusal }
  // Held funds are not spendable: a move out is checked against avail = tot - held.
  const fromHeld = from.held ?? 0n
  if (from.tot - fromHeld < input.by) return { refusal: insufficientFunds(from.tot, fromHeld, input.by) }
  const toTot = to.tot + input.by
  if (toTot > amountMax) {
    return { refusal: new LedgerError('ACCMAN_OVERFLOW', `the balance of to, ${to.tot}, plus the amount ${input.by} would exceed ${amountMax}`) }
  }
  const fromTot = from.tot - input.by
  const fromSeq = from.seq + 1
  const toSeq = to.seq + 1
  assert.ok(fromSeq <= seqMax && toSeq <= seqMax, 'history length exceeds seqMax')
  const fromAtMs = Math.max(context.atMs, from.atMs)
  const toAtMs = Math.max(context.atMs, to.atMs)

  const fromEntry: Entry = { seq: fromSeq, by: -input.by, tot: fromTot, atMs: fromAtMs }
  const toEntry: Entry = { seq: toSeq, by: input.by, tot: toTot, atMs: toAtMs }
  if (input.note !== undefined) {
    fromEntry.note = input.note
    toEntry.note = input.note
  }
  // The key belongs to FROM's key space: only FROM's entry carries it.
  if (input.idempotencyKey !== undefined) fromEntry.idempotencyKey = input.idempotencyKey
  // A move changes no hold: each entry carries its account's held as it is.
  if (fromHeld > 0n) fromEntry.held = fromHeld
  if (to.held !== undefined && to.held > 0n) toEntry.held = to.held
  for (const entry of [fromEntry, toEntry]) {
    entry.kind = 'move'
    entry.move = input.moveId
  }
  // Each side names the other's entry (stored only, never on the wire), so verify checks pairs.
  fromEntry.peer = { accountKey: input.toAccountKey, seq: toSeq }
  toEntry.peer = { accountKey: input.fromAccountKey, seq: fromSeq }
  if (input.actor !== undefined) {
    fromEntry.actor = input.actor
    toEntry.actor = input.actor
  }
  const result: MoveResult = { move: input.moveId, tot: fromTot, seq: fromSeq, replayed: false }
  if (fromHeld > 0n) result.held = fromHeld
  if (from.expiresMs !== undefined) result.expiresMs = from.expiresMs
  const record: IdempotencyState | undefined =
    input.idempotencyKey === undefined
      ? undefined
      : {
          by: -input.by,
          tot: fromTot,
          seq: fromSeq,
          atMs: fromAtMs,
          op: 'move',
          fingerprint: moveFingerprint(input),
          answer: moveAnswer(input.moveId, fromHeld),
        }
  return {
    result,
    writes: {
      from: nextState(from, fromTot, fromSeq, fromAtMs),
      to: nextState(to, toTot, toSeq, toAtMs),
      fromEntry,
      toEntry,
      idempotency: record,
    },
  }
}

/** What a move's idempotency record keeps of its answer besides tot and seq: its id. */
export function moveAnswer(moveId: string, held = 0n): string {
  return held > 0n ? JSON.stringify({ move: moveId, held: held.toString() }) : JSON.stringify({ move: moveId })
}

function replayMove(first: IdempotencyState, input: MoveInput): MoveDecision {
  if (first.op !== 'move' || first.fingerprint !== moveFingerprint(input) || first.answer === undefined) {
    return {
      refusal: new LedgerError('ACCMAN_IDEMPOTENCY_MISMATCH', 'this idempotency key was first used for another operation or with other parameters'),
    }
  }
  const answer: unknown = JSON.parse(first.answer)
  assert.ok(typeof answer === 'object' && answer !== null && 'move' in answer && typeof answer.move === 'string', 'a move record without its id')
  const result: MoveResult = { move: answer.move, tot: first.tot, seq: first.seq, replayed: true }
  if ('held' in answer && typeof answer.held === 'string') result.held = BigInt(answer.held)
  return { result, writes: undefined }
}

export type FreezeDecision = Decision<FreezeResult, { account: AccountState; entry: Entry }>

/**
 * Freezes or unfreezes an account. Already in that state: answered without an entry (a repeat
 * is harmless, so it needs no idempotency key). Otherwise one entry of kind freeze or unfreeze
 * with by 0.
 */
export function decideFreeze(account: AccountState | undefined, input: FreezeInput, context: DecisionContext): FreezeDecision {
  if (account === undefined) return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
  const base = { tot: account.tot, frozen: input.frozen, replayed: false }
  const withExpiry = <T extends object>(result: T) => (account.expiresMs === undefined ? result : { ...result, expiresMs: account.expiresMs })
  if ((account.frozen === true) === input.frozen) {
    return { result: withExpiry({ ...base, seq: account.seq, changed: false }), writes: undefined }
  }
  const seq = account.seq + 1
  assert.ok(seq <= seqMax, 'history length exceeds seqMax')
  const atMs = Math.max(context.atMs, account.atMs)
  const entry: Entry = { seq, by: 0n, tot: account.tot, atMs, kind: input.frozen ? 'freeze' : 'unfreeze' }
  if (input.actor !== undefined) entry.actor = input.actor
  if (account.held !== undefined && account.held > 0n) entry.held = account.held
  // Everything else the account carries (expiry, holds, settings) stays as it was.
  const state: AccountState = { ...account, seq, atMs }
  if (input.frozen) state.frozen = true
  else delete state.frozen
  return { result: withExpiry({ ...base, seq, changed: true }), writes: { account: state, entry } }
}
