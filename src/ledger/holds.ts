// Holds, as pure decisions: a hold reserves part of the balance (avail = tot - held) for a while,
// then a settle posts part or all of it as a debit and releases the rest, a void releases all of
// it, and an expiry releases it by itself. Every change is a history entry of its own, chained
// like a mod's (tot = previous tot + by; held = previous held + heldBy). As in decide.ts: no I/O,
// no clock, no randomness; the writer reads the states, the time and a fresh hold id, calls these
// and stores what they return.
import assert from 'node:assert/strict'
import type { AccountState, IdempotencyState } from './codec.js'
import { isIdempotencyExpired, type Decision, type DecisionContext } from './decide.js'
import { LedgerError } from './errors.js'
import { holdCountMax, seqMax } from './limits.js'
import { nextState, outgoingRefusal } from './move.js'
import type { Entry, HoldState } from './types.js'

export interface HoldInput {
  /** A fresh id (128 random bits, base64url), drawn by the caller; a replay answers the first one. */
  holdId: string
  by: bigint
  ttlMs: number
  note?: string
  idempotencyKey?: string
  /** The named token that asked for it, kept on the entry. */
  actor?: string
}

export interface SettleInput {
  holdId: string
  /** The amount to post; undefined: the whole hold. */
  by?: bigint
  note?: string
  idempotencyKey?: string
  actor?: string
}

export interface VoidInput {
  holdId: string
  note?: string
  idempotencyKey?: string
  actor?: string
}

export type HoldOp = ({ op: 'hold' } & HoldInput) | ({ op: 'settle' } & SettleInput) | ({ op: 'void' } & VoidInput)

/** The answer of a hold, settle or void: its JSON body, exactly as first answered. */
export interface HoldOpResult {
  /** The JSON body (see holdAnswer, settleAnswer, voidAnswer); a replay gives the first one back. */
  answer: string
  replayed: boolean
  /** What the answer says, for callers that do not parse it. */
  hold: string
  tot: bigint
  held: bigint
  seq: number
}

/** The writes of an applied hold, settle or void (after the account's due expiries). */
export interface HoldOpWrites {
  account: AccountState
  entry: Entry
  hold: HoldState
  idempotency: IdempotencyState | undefined
}

export type HoldOpDecision = Decision<HoldOpResult, HoldOpWrites>

/** What a decision knows of one account's holds: the open ones, and the one asked about. */
export interface HoldsView {
  /** Every open hold of the account, for a settle or void (to recompute nextExpiryMs); a hold needs none. */
  open: readonly HoldState[]
  /** The hold a settle or void names, open or closed; undefined if the account has none by that id. */
  target: HoldState | undefined
}

export function heldOf(account: AccountState | undefined): bigint {
  return account?.held ?? 0n
}

/** The parameters a key is bound to: the same key with others is ACCMAN_IDEMPOTENCY_MISMATCH. */
export function fingerprintOf(op: HoldOp, target?: HoldState): string {
  switch (op.op) {
    case 'hold':
      return `hold:${op.by}:${op.ttlMs}`
    case 'settle':
      // A settle without by is one of the whole hold: the same as naming its amount.
      return `settle:${op.holdId}:${op.by ?? target?.by ?? ''}`
    case 'void':
      return `void:${op.holdId}`
  }
}

/**
 * The account with its held, open hold count and next expiry; the fields are absent when zero or
 * none, as the store gives them back.
 */
function withHolds(account: AccountState, held: bigint, holdCount: number, nextExpiryMs: number | undefined): AccountState {
  // Everything else the account carries (expiry, freezing, creation time, settings) stays as it was.
  const next: AccountState = { ...account }
  delete next.held
  delete next.holdCount
  delete next.nextExpiryMs
  assert.ok(held >= 0n, 'held below zero')
  assert.ok(held <= account.tot, 'held above the balance')
  assert.ok((holdCount === 0) === (held === 0n) && (holdCount === 0) === (nextExpiryMs === undefined), 'held, count and expiry disagree')
  if (held > 0n) next.held = held
  if (holdCount > 0) next.holdCount = holdCount
  if (nextExpiryMs !== undefined) next.nextExpiryMs = nextExpiryMs
  return next
}

/** The account after a change to its open holds, given all of them. */
function withOpenHolds(account: AccountState, held: bigint, open: readonly HoldState[]): AccountState {
  assert.equal(open.reduce((sum, hold) => sum + hold.by, 0n), held, 'held is not the sum of the open holds')
  const nextExpiryMs = open.length === 0 ? undefined : Math.min(...open.map((hold) => hold.expiresMs))
  return withHolds(account, held, open.length, nextExpiryMs)
}

/** The account's time for a decision: never earlier than its last entry. */
export function decisionTimeOf(account: AccountState | undefined, context: DecisionContext): number {
  return Math.max(context.atMs, account?.atMs ?? 0)
}

/** Whether the account has holds due to expire at `atMs` (their expire entries come first). */
export function hasDueHolds(account: AccountState | undefined, atMs: number): boolean {
  return account?.nextExpiryMs !== undefined && account.nextExpiryMs <= atMs
}

/**
 * The expire entries of every open hold whose expiry is at or before `atMs`, in expiry order,
 * and the account and holds after them. `open` is every open hold of the account.
 */
export function expireDue(
  account: AccountState,
  open: readonly HoldState[],
  atMs: number,
): { account: AccountState; entries: Entry[]; closed: HoldState[]; open: HoldState[] } {
  const due = open.filter((hold) => hold.expiresMs <= atMs).sort((a, b) => a.expiresMs - b.expiresMs || (a.id < b.id ? -1 : 1))
  const remaining = open.filter((hold) => hold.expiresMs > atMs)
  const entries: Entry[] = []
  let held = heldOf(account)
  let seq = account.seq
  for (const hold of due) {
    held -= hold.by
    seq += 1
    assert.ok(seq <= seqMax, 'history length exceeds seqMax')
    const entry: Entry = { seq, by: 0n, tot: account.tot, atMs, kind: 'expire', hold: hold.id, heldBy: -hold.by }
    if (held > 0n) entry.held = held
    entries.push(entry)
  }
  const after = withOpenHolds(nextState(account, account.tot, seq, due.length > 0 ? atMs : account.atMs), held, remaining)
  return { account: after, entries, closed: due.map((hold) => ({ ...hold, closed: 'expire' })), open: remaining }
}

function refusal(code: ConstructorParameters<typeof LedgerError>[0], message: string): { refusal: LedgerError } {
  return { refusal: new LedgerError(code, message) }
}

/** Replays the first answer of a key, or refuses a key bound to another op or other parameters. */
function replay(first: IdempotencyState, op: HoldOp, target: HoldState | undefined): HoldOpDecision {
  if ((first.op ?? 'mod') !== op.op || first.fingerprint !== fingerprintOf(op, target) || first.answer === undefined) {
    return refusal(
      'ACCMAN_IDEMPOTENCY_MISMATCH',
      `this idempotency key was first used by ${first.op ?? 'mod'} with other parameters`,
    )
  }
  const body = JSON.parse(first.answer) as { hold: string; tot: string; held: string; seq: number }
  return {
    result: { answer: first.answer, replayed: true, hold: body.hold, tot: BigInt(body.tot), held: BigInt(body.held), seq: body.seq },
    writes: undefined,
  }
}

/** Decides a hold, settle or void against the account (after its due expiries) and its holds. */
export function decideHoldOp(
  account: AccountState | undefined,
  holds: HoldsView,
  idempotency: IdempotencyState | undefined,
  op: HoldOp,
  context: DecisionContext,
): HoldOpDecision {
  if (idempotency !== undefined && !isIdempotencyExpired(idempotency, context)) return replay(idempotency, op, holds.target)
  if (account === undefined) return refusal('ACCMAN_NO_ACCOUNT', 'no account for this credential')
  const atMs = decisionTimeOf(account, context)
  assert.ok(!hasDueHolds(account, atMs), 'due holds must expire before the next entry')
  switch (op.op) {
    case 'hold': {
      // A frozen or expired account takes no new hold; settling or voiding one it has stays allowed.
      const lifecycle = outgoingRefusal(account, { ...context, atMs })
      if (lifecycle !== undefined) return { refusal: lifecycle }
      return decideHold(account, op, atMs)
    }
    case 'settle':
    case 'void':
      return decideRelease(account, holds, op, atMs)
  }
}

function decideHold(
  account: AccountState,
  op: { op: 'hold' } & HoldInput,
  atMs: number,
): HoldOpDecision {
  assert.ok(op.by > 0n, 'a hold of a positive amount')
  const held = heldOf(account)
  const avail = account.tot - held
  if (avail < op.by) {
    return {
      refusal: new LedgerError(
        'ACCMAN_INSUFFICIENT_FUNDS',
        `insufficient funds: avail is ${avail}, the hold is ${op.by}`,
        account.tot,
        avail,
      ),
    }
  }
  if ((account.holdCount ?? 0) >= holdCountMax) {
    return refusal('ACCMAN_TOO_MANY_HOLDS', `the account has ${holdCountMax} active holds, the most it may have`)
  }
  const hold: HoldState = { id: op.holdId, by: op.by, atMs, expiresMs: atMs + op.ttlMs }
  if (op.note !== undefined) hold.note = op.note
  const seq = account.seq + 1
  const newHeld = held + op.by
  const entry: Entry = { seq, by: 0n, tot: account.tot, atMs, kind: 'hold', hold: hold.id, heldBy: op.by, held: newHeld }
  const nextExpiryMs = Math.min(account.nextExpiryMs ?? hold.expiresMs, hold.expiresMs)
  const next = withHolds(nextState(account, account.tot, seq, atMs), newHeld, (account.holdCount ?? 0) + 1, nextExpiryMs)
  const answer = holdAnswer(hold, next)
  return applied(next, entry, hold, op, answer)
}

function decideRelease(
  account: AccountState,
  holds: HoldsView,
  op: ({ op: 'settle' } & SettleInput) | ({ op: 'void' } & VoidInput),
  atMs: number,
): HoldOpDecision {
  const target = holds.target
  // When several apply, the first of 404, 409, 410, 422 answers.
  if (target === undefined) return refusal('ACCMAN_NO_HOLD', 'the account has no hold with this id')
  if (target.closed === 'settle' || target.closed === 'void') {
    return refusal('ACCMAN_HOLD_CLOSED', `the hold was ${target.closed === 'settle' ? 'settled' : 'voided'} already`)
  }
  if (target.closed === 'expire' || target.expiresMs <= atMs) {
    return refusal('ACCMAN_HOLD_EXPIRED', `the hold expired at ${new Date(target.expiresMs).toISOString()}`)
  }
  const settled = op.op === 'settle' ? (op.by ?? target.by) : 0n
  if (op.op === 'settle' && (settled < 1n || settled > target.by)) {
    return refusal('ACCMAN_HOLD_EXCEEDED', `by ${settled} is more than the hold's ${target.by}`)
  }
  const open = holds.open.filter((hold) => hold.id !== target.id)
  assert.equal(open.length, holds.open.length - 1, 'an open hold missing from the open holds')
  const seq = account.seq + 1
  const tot = account.tot - settled
  const held = heldOf(account) - target.by
  const entry: Entry = { seq, by: -settled, tot, atMs, kind: op.op, hold: target.id, heldBy: -target.by }
  if (held > 0n) entry.held = held
  const next = withOpenHolds(nextState(account, tot, seq, atMs), held, open)
  const closed: HoldState = { ...target, closed: op.op }
  const answer = op.op === 'settle' ? settleAnswer(target.id, settled, next) : voidAnswer(target.id, next)
  return applied(next, entry, closed, op, answer)
}

function applied(account: AccountState, entry: Entry, hold: HoldState, op: HoldOp, answer: string): HoldOpDecision {
  if (op.note !== undefined) entry.note = op.note
  if (op.idempotencyKey !== undefined) entry.idempotencyKey = op.idempotencyKey
  if (op.actor !== undefined) entry.actor = op.actor
  const held = heldOf(account)
  const record: IdempotencyState | undefined =
    op.idempotencyKey === undefined
      ? undefined
      : { by: entry.by, tot: entry.tot, seq: entry.seq, atMs: entry.atMs, op: op.op, fingerprint: fingerprintOf(op, hold), answer }
  return {
    result: { answer, replayed: false, hold: hold.id, tot: account.tot, held, seq: account.seq },
    writes: { account, entry, hold, idempotency: record },
  }
}

function figures(account: AccountState): string {
  const held = heldOf(account)
  return `"tot":"${account.tot}","held":"${held}","avail":"${account.tot - held}","seq":${account.seq}`
}

/** `{"hold","by","expires","tot","held","avail","seq"}`, as PATCH /hold answers. */
export function holdAnswer(hold: HoldState, account: AccountState): string {
  return `{"hold":"${hold.id}","by":"${hold.by}","expires":"${new Date(hold.expiresMs).toISOString()}",${figures(account)}}`
}

/** `{"hold","settled","tot","held","avail","seq"}`, as PATCH /settle answers. */
export function settleAnswer(holdId: string, settled: bigint, account: AccountState): string {
  return `{"hold":"${holdId}","settled":"${settled}",${figures(account)}}`
}

/** `{"hold","tot","held","avail","seq"}`, as PATCH /void answers. */
export function voidAnswer(holdId: string, account: AccountState): string {
  return `{"hold":"${holdId}",${figures(account)}}`
}

/** The held of an account as of `nowMs`: the open holds whose expiry is still ahead. */
export function heldAsOf(open: readonly HoldState[], nowMs: number): bigint {
  return open.reduce((sum, hold) => (hold.expiresMs > nowMs ? sum + hold.by : sum), 0n)
}
