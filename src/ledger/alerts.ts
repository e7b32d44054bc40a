// Low-balance alerts, as pure functions: from an account's figure before and after a change, the
// events the change causes, as plain data for the outbox (written in the change's own round).
// The figure is `avail` (tot less what active holds keep back).
import { createHash } from 'node:crypto'
import { publicAccountId } from './account-id.js'
import type { AccountState } from './codec.js'
import type { AccountKey } from './types.js'

/** Every event type, declared once (the outbox's decoders check against it). */
export const eventTypes = ['balance.low', 'balance.depleted', 'hold.expired', 'account.frozen', 'account.rotated'] as const
export type EventType = (typeof eventTypes)[number]

/** One event as the outbox keeps it: the body is final, so every delivery sends the same bytes. */
export interface OutboxEvent {
  /** Stable per event (Standard Webhooks' webhook-id): the receiver dedupes on it. */
  id: string
  type: EventType
  /** When the change that caused it was written. */
  atMs: number
  /** The JSON payload, sent as is. */
  body: string
}

/** The threshold in force: the account's own, else the default (undefined: none). */
export function thresholdOf(account: AccountState | undefined, alertBelowDefault: bigint | undefined): bigint | undefined {
  return account?.alertBelow ?? alertBelowDefault
}

/** A change crossed the threshold downwards: from at or above it to below it. Once per crossing. */
export function crossedBelow(before: bigint, after: bigint, threshold: bigint | undefined): boolean {
  return threshold !== undefined && before >= threshold && threshold > after
}

/** A change took the figure to exactly zero. */
export function depleted(before: bigint, after: bigint): boolean {
  return before > 0n && after === 0n
}

/**
 * The events of one applied change of `accountKey` from `before` to `after` (its state once the
 * change is applied). The figure compared is `avail` (see the top of this file).
 */
export function alertEvents(
  accountKey: AccountKey,
  before: AccountState | undefined,
  after: AccountState,
  alertBelowDefault: bigint | undefined,
): OutboxEvent[] {
  const figureBefore = before === undefined ? 0n : availOf(before)
  const figureAfter = availOf(after)
  const threshold = thresholdOf(after, alertBelowDefault)
  const events: OutboxEvent[] = []
  if (crossedBelow(figureBefore, figureAfter, threshold)) events.push(eventOf('balance.low', accountKey, after, threshold))
  if (depleted(figureBefore, figureAfter)) events.push(eventOf('balance.depleted', accountKey, after, threshold))
  return events
}

/** What may be spent: the balance less the holds as written (the round writes due expiries first). */
function availOf(account: AccountState): bigint {
  return account.tot - (account.held ?? 0n)
}

/**
 * An event about the account itself (a hold that expired, a freeze, a rotation), with its figures as of
 * `account` (the state after the entry that caused it); `extra` adds fields such as the hold's id.
 */
export function accountEvent(
  type: 'hold.expired' | 'account.frozen' | 'account.rotated',
  accountKey: AccountKey,
  account: AccountState,
  alertBelowDefault: bigint | undefined,
  extra: Record<string, string> = {},
): OutboxEvent {
  return eventOf(type, accountKey, account, thresholdOf(account, alertBelowDefault), extra)
}

function eventOf(type: EventType, accountKey: AccountKey, account: AccountState, threshold: bigint | undefined, extra: Record<string, string> = {}): OutboxEvent {
  const account_ = publicAccountId(accountKey)
  const data: Record<string, string | number> = {
    account: account_,
    tot: account.tot.toString(),
    held: (account.held ?? 0n).toString(),
    avail: availOf(account).toString(),
    seq: account.seq,
  }
  if (threshold !== undefined) data.threshold = threshold.toString()
  if (account.ref !== undefined) data.ref = account.ref
  Object.assign(data, extra)
  const body = JSON.stringify({ type, timestamp: new Date(account.atMs).toISOString(), data })
  // Derived from what caused it, so a round run twice (a shared engine's retry) gives the same id.
  const id = `evt_${createHash('sha256').update(`${accountKey}\0${account.seq}\0${type}`).digest('base64url').slice(0, 24)}`
  return { id, type, atMs: account.atMs, body }
}
