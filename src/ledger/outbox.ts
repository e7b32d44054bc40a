// The outbox: events written in the same atomic write as the change that caused them, and the
// state of their delivery to each endpoint, as plain data the engines store. Engines store; the
// deliverer (src/webhooks) decides when to send, and what an answer means.
import assert from 'node:assert/strict'
import { eventTypes, type OutboxEvent } from './alerts.js'

export type { OutboxEvent } from './alerts.js'

export interface DeliveryState {
  status: 'pending' | 'delivered' | 'failed'
  /** Attempts made so far. */
  attempts: number
  /** When the next attempt is due (pending only). */
  nextAtMs: number
  /** When the first attempt (or the first after an operator's retry) was made: the retry window's start. */
  sinceMs?: number
  /** The last failure, for operators: a status or an error code, never a URL or a secret. */
  lastError?: string
}

/** An event and its deliveries, by endpoint id; an endpoint not listed has not been tried. */
export interface OutboxRecord extends OutboxEvent {
  deliveries: Record<string, DeliveryState>
  /** When the event is next due for some endpoint; undefined: nothing is (delivered or failed everywhere). */
  dueAtMs: number | undefined
}

/** A fresh record of an event: due at once, to every endpoint. */
export function newOutboxRecord(event: OutboxEvent): OutboxRecord {
  return { ...event, deliveries: {}, dueAtMs: event.atMs }
}

const timeDigits = 16

/** Event keys sort by the event's time, then id: the oldest first. */
export function outboxKeyOf(record: { atMs: number; id: string }): string {
  return `${String(record.atMs).padStart(timeDigits, '0')}!${record.id}`
}

/** Due keys sort by when the event is next due. */
export function outboxDueKeyOf(dueAtMs: number, eventKey: string): string {
  return `${String(Math.max(0, dueAtMs)).padStart(timeDigits, '0')}!${eventKey}`
}

/** The first due key past everything due at nowMs. */
export function outboxDueBound(nowMs: number): string {
  return `${String(nowMs + 1).padStart(timeDigits, '0')}!`
}

/** The event key within a due key. */
export function eventKeyOfDueKey(dueKey: string): string {
  return dueKey.slice(timeDigits + 1)
}

export function encodeOutboxRecord(record: OutboxRecord): string {
  return JSON.stringify(record)
}

const knownEventTypes: ReadonlySet<string> = new Set(eventTypes)
const statuses = new Set(['pending', 'delivered', 'failed'])

export function decodeOutboxRecord(key: string, text: string): OutboxRecord {
  const record = JSON.parse(text) as OutboxRecord
  assert.ok(typeof record.id === 'string' && knownEventTypes.has(record.type), `corrupt outbox record at ${key}`)
  assert.ok(Number.isSafeInteger(record.atMs) && typeof record.body === 'string', `corrupt outbox record at ${key}`)
  assert.ok(record.dueAtMs === undefined || Number.isSafeInteger(record.dueAtMs), `corrupt outbox record at ${key}`)
  for (const state of Object.values(record.deliveries)) {
    assert.ok(statuses.has(state.status) && Number.isSafeInteger(state.attempts), `corrupt outbox record at ${key}`)
  }
  return record
}
