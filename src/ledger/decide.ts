// The decision of a mod, as a pure function: from the account's state, the idempotency record of
// its key and the input, it gives the answer and the writes the answer implies, as plain data.
// No I/O, no clock, no randomness: the writer reads the states and the time, calls it, and
// stores what it returns; the model tests call it directly. Every engine shares it.
import assert from 'node:assert/strict'
import type { AccountState, IdempotencyState } from './codec.js'
import { LedgerError } from './errors.js'
import { amountMax, seqMax } from './limits.js'
import { expiryAfterCredit, nextState, outgoingRefusal } from './move.js'
import type { Entry, ModInput, ModResult } from './types.js'

/** What a decision needs besides the states: the time, read once per round by the caller. */
export interface DecisionContext {
  /** The round's time; an entry is never earlier than its account's last one. */
  atMs: number
  /** The idempotency clock (never goes back); a record is expired once windowMs old on it. */
  idempotencyClockMs: number
  idempotencyWindowMs: number
  /** The time taken for idempotency records written before records carried one. */
  legacyIdempotencyAtMs: number
}

/** The writes of an applied mod: stored together, atomically, or not at all. */
export interface ModWrites {
  /** The account's new state (created when the account had none). */
  account: AccountState
  /** The history entry appended, at seq = the previous seq + 1. */
  entry: Entry
  /** The new record of the mod's idempotency key; undefined for a mod without a key. */
  idempotency: IdempotencyState | undefined
}

/**
 * What every decision gives (a mod, a hold, a move, a freeze, a rotation): applied, with the
 * writes to store before answering; answered without writing (a replay, a repeat); or refused,
 * with nothing to write.
 */
export type Decision<Result, Writes> = { result: Result; writes: Writes | undefined } | { refusal: LedgerError }

export type ModDecision = Decision<ModResult, ModWrites>

/**
 * Decides one mod. `account` is the account's state (undefined: the account does not exist),
 * `idempotency` the record of the mod's key on this account (undefined: none, or no key).
 * Callers decide each account's mods in order, each against the states the previous one left.
 */
export function decideMod(
  account: AccountState | undefined,
  idempotency: IdempotencyState | undefined,
  input: ModInput,
  context: DecisionContext,
): ModDecision {
  // Past its window a key counts as new; its record is replaced and its old entry keeps it.
  if (idempotency !== undefined && !isIdempotencyExpired(idempotency, context)) {
    return replay(idempotency, input.by)
  }
  if (account === undefined && input.by < 0n) {
    return { refusal: new LedgerError('ACCMAN_NO_ACCOUNT', 'no account for this credential') }
  }
  assert.ok(input.ttlSeconds === undefined || input.by > 0n, 'ttl only on a credit')
  const lifecycleRefusal = account !== undefined && input.by < 0n ? outgoingRefusal(account, context) : undefined
  if (lifecycleRefusal !== undefined) return { refusal: lifecycleRefusal }
  const totBefore = account?.tot ?? 0n
  const tot = totBefore + input.by
  // Held funds are not spendable: a debit is checked against avail = tot - held.
  const held = account?.held ?? 0n
  if (tot < held) return { refusal: insufficientFunds(totBefore, held, input.by) }
  if (tot > amountMax) {
    return {
      refusal: new LedgerError(
        'ACCMAN_OVERFLOW',
        `the balance ${totBefore} plus the amount ${input.by} would exceed ${amountMax}`,
      ),
    }
  }

  const seq = (account?.seq ?? 0) + 1
  const atMs = Math.max(context.atMs, account?.atMs ?? 0)
  assert.ok(seq <= seqMax, 'history length exceeds seqMax')

  // Optional fields absent rather than undefined: the entry as the store gives it back.
  const entry: Entry = { seq, by: input.by, tot, atMs }
  if (input.note !== undefined) entry.note = input.note
  if (input.idempotencyKey !== undefined) entry.idempotencyKey = input.idempotencyKey
  if (input.actor !== undefined) entry.actor = input.actor
  const record: IdempotencyState | undefined = input.idempotencyKey === undefined ? undefined : { by: input.by, tot, seq, atMs }
  const state = nextState(account, tot, seq, atMs)
  // A new account keeps its creation time (/acct's `created`).
  if (account === undefined) state.createdMs = atMs
  if (input.ttlSeconds !== undefined) state.expiresMs = expiryAfterCredit(account, input.ttlSeconds, context)
  const result: ModResult = { tot, seq, replayed: false }
  if (state.expiresMs !== undefined) result.expiresMs = state.expiresMs
  // The account's holds carry over (nextState keeps them); a mod changes none of them.
  if (held > 0n) {
    entry.held = held
    result.held = held
    if (record !== undefined) record.answer = `{"held":"${held}"}`
  }
  return { result, writes: { account: state, entry, idempotency: record } }
}

/** A record is replayed within its window; past it, its key counts as new. */
export function isIdempotencyExpired(record: IdempotencyState, context: DecisionContext): boolean {
  return context.idempotencyClockMs - (record.atMs ?? context.legacyIdempotencyAtMs) >= context.idempotencyWindowMs
}

function replay(first: IdempotencyState, by: bigint): ModDecision {
  if (first.op !== undefined && first.op !== 'mod') {
    return { refusal: new LedgerError('ACCMAN_IDEMPOTENCY_MISMATCH', `this idempotency key was first used for a ${first.op}, not a mod`) }
  }
  if (first.by !== by) {
    return {
      refusal: new LedgerError(
        'ACCMAN_IDEMPOTENCY_MISMATCH',
        `this idempotency key was first used with amount ${first.by}, not ${by}`,
      ),
    }
  }
  const result: ModResult = { tot: first.tot, seq: first.seq, replayed: true }
  // A mod on an account with holds keeps the held it answered with.
  if (first.answer !== undefined) {
    const held = BigInt((JSON.parse(first.answer) as { held: string }).held)
    if (held > 0n) result.held = held
  }
  return { result, writes: undefined }
}

/** The 402 of a debit or a move out: the balance, what is held of it, and the amount asked. */
export function insufficientFunds(tot: bigint, held: bigint, amount: bigint): LedgerError {
  const message =
    held === 0n
      ? `insufficient funds: the balance is ${tot}, the amount is ${amount}`
      : `insufficient funds: avail is ${tot - held} (the balance ${tot} less ${held} held), the amount is ${amount}`
  return new LedgerError('ACCMAN_INSUFFICIENT_FUNDS', message, tot, tot - held)
}
