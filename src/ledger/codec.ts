// Key layout and value encoding of the three tables. Every record read back from the store is
// parsed by the same schema that describes what the writer puts in, so a codec bug or a
// corrupt value stops at read time instead of reaching a balance.
import assert from 'node:assert/strict'
import { hash } from 'node:crypto'
import { z } from 'zod'
import { amountPattern, balancePattern } from '../contract/syntax.js'
import { amountMax, characterCount, noteLengthMax, idempotencyKeyLengthMax, refLengthMax, seqDigits, seqMax } from './limits.js'
import type { AccountKey, Entry } from './types.js'

/** Sublevel names: the store's tables. */
export const tableNames = {
  /** AccountKey -> AccountRecord: the current balance. */
  accounts: 'acct',
  /** AccountKey!seq -> EntryRecord: the append-only history. */
  history: 'past',
  /** AccountKey!idempotencyKey -> IdempotencyRecord: the first result of a keyed mod. */
  idempotency: 'idem',
  /** The ledger's own state across a clean stop: the key filters (see Ledger.load). */
  meta: 'meta',
  /** Ref -> AccountKey: the operators' own references (see PATCH /ref). */
  refs: 'refs',
  /** Event key (time!id) -> OutboxRecord: events waiting for delivery (see outbox.ts). */
  outbox: 'outbox',
  /** Due key (dueAtMs!event key) -> '': the outbox's events by when they are next due. */
  outboxDue: 'outbox-due',
} as const

const accountKeyPattern = /^[0-9a-f]{64}$/

/** The account key is derived from the credential string, so the store never holds a credential. */
export function accountKeyOf(credential: string): AccountKey {
  return hash('sha256', credential, 'hex') as AccountKey
}

export function isAccountKey(value: string): value is AccountKey {
  return accountKeyPattern.test(value)
}

export function historyKeyOf(accountKey: AccountKey, seq: number): string {
  return `${accountKey}!${String(seq).padStart(seqDigits, '0')}`
}

/** Splits a history key into its account key and seq; undefined if it is not one. */
export function parseHistoryKey(key: string): { accountKey: AccountKey; seq: number } | undefined {
  const accountKey = key.slice(0, 64)
  const seqText = key.slice(65)
  if (key[64] !== '!' || !isAccountKey(accountKey) || !/^[0-9]{16}$/.test(seqText)) return undefined
  return { accountKey, seq: Number(seqText) }
}

/** Splits an idempotency record's key into its account key and the client's key. */
export function parseIdempotencyKey(key: string): { accountKey: AccountKey; idempotencyKey: string } | undefined {
  const accountKey = key.slice(0, 64)
  const idempotencyKey = key.slice(65)
  if (key[64] !== '!' || !isAccountKey(accountKey) || idempotencyKey.length === 0) return undefined
  return { accountKey, idempotencyKey }
}

export function idempotencyKeyOf(accountKey: AccountKey, idempotencyKey: string): string {
  return `${accountKey}!${idempotencyKey}`
}

/** Schemas of the stored fields, shared with the export format. */
export const balance = z
  .string()
  .regex(balancePattern)
  .transform((text) => BigInt(text))
  .refine((tot) => tot >= 0n && tot <= amountMax)
export const amount = z
  .string()
  .regex(amountPattern)
  .transform((text) => BigInt(text))
  .refine((by) => by !== 0n && by >= -amountMax && by <= amountMax)
export const seq = z.number().int().min(1).max(seqMax)
export const atMs = z.number().int().min(0)

export const accountRecord = z.strictObject({ tot: balance, seq, atMs })
export const noteText = z.string().refine((text) => characterCount(text) <= noteLengthMax)
export const idempotencyKeyText = z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${idempotencyKeyLengthMax}}$`))

export const entryRecord = z.strictObject({
  by: amount,
  tot: balance,
  atMs,
  note: noteText.optional(),
  key: idempotencyKeyText.optional(),
})
// `atMs` (the entry's time, which starts the key's retention window) is absent from records
// written before the window existed; see Ledger.load for how they are treated.
export const idempotencyRecord = z.strictObject({ by: amount, tot: balance, seq, atMs: atMs.optional() })

export interface AccountState {
  tot: bigint
  seq: number
  /** Time of the last entry, so the next one never goes back in time. */
  atMs: number
  /** The account's own low-balance threshold (PATCH /alert); absent: the default, if any. */
  alertBelow?: bigint
  /** The operator's own reference to the account (PATCH /ref); absent: none. */
  ref?: string
}

export interface IdempotencyState {
  by: bigint
  tot: bigint
  seq: number
  /** When the entry was written; undefined in records older than the retention window. */
  atMs: number | undefined
}

// The three records are decoded on every write (the store's round-trip check) and read, so they
// are checked by hand, field by field, to exactly what the schemas above accept (the tests hold
// the two to the same verdicts): the schemas cost several times more per record.
type Field = 'balance' | 'amount' | 'seq' | 'atMs' | 'note' | 'key' | 'ref'
type Shape = Readonly<Record<string, { field: Field; optional: boolean }>>

function isBalanceText(value: unknown): value is string {
  return typeof value === 'string' && balancePattern.test(value) && BigInt(value) <= amountMax
}

function isAmountText(value: unknown): value is string {
  if (typeof value !== 'string' || !amountPattern.test(value)) return false
  const by = BigInt(value)
  return by >= -amountMax && by <= amountMax
}

const idempotencyKeyTextPattern = new RegExp(`^[\\x21-\\x7e]{1,${idempotencyKeyLengthMax}}$`)

function fieldIsValid(field: Field, value: unknown): boolean {
  switch (field) {
    case 'balance':
      return isBalanceText(value)
    case 'amount':
      return isAmountText(value)
    case 'seq':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= seqMax
    case 'atMs':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    case 'note':
      return typeof value === 'string' && characterCount(value) <= noteLengthMax
    case 'key':
      return typeof value === 'string' && idempotencyKeyTextPattern.test(value)
    case 'ref':
      return typeof value === 'string' && isRefText(value)
  }
}

/** The parsed JSON object when it has exactly the shape's fields (optional ones may be absent), each valid. */
function parseRecord(shape: Shape, table: string, key: string, text: string): Record<string, unknown> {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    assert.fail(`corrupt record in ${table} at ${key}: not JSON`)
  }
  const valid = typeof json === 'object' && json !== null && !Array.isArray(json) && recordMatches(shape, json as Record<string, unknown>)
  assert.ok(valid, `corrupt record in ${table} at ${key}`)
  return json as Record<string, unknown>
}

function recordMatches(shape: Shape, record: Record<string, unknown>): boolean {
  for (const name in record) {
    if (!Object.hasOwn(shape, name)) return false
  }
  for (const name in shape) {
    const rule = shape[name]!
    // Parsed JSON has no undefined values: a field is either absent or has to be valid.
    if (!Object.hasOwn(record, name)) {
      if (!rule.optional) return false
    } else if (!fieldIsValid(rule.field, record[name])) return false
  }
  return true
}

const accountShape: Shape = {
  tot: { field: 'balance', optional: false },
  seq: { field: 'seq', optional: false },
  atMs: { field: 'atMs', optional: false },
  alertBelow: { field: 'balance', optional: true },
  ref: { field: 'ref', optional: true },
}
const entryShape: Shape = {
  by: { field: 'amount', optional: false },
  tot: { field: 'balance', optional: false },
  atMs: { field: 'atMs', optional: false },
  note: { field: 'note', optional: true },
  key: { field: 'key', optional: true },
}
const idempotencyShape: Shape = {
  by: { field: 'amount', optional: false },
  tot: { field: 'balance', optional: false },
  seq: { field: 'seq', optional: false },
  atMs: { field: 'atMs', optional: true },
}

// The encoders write the JSON text directly, byte for byte what JSON.stringify of the record
// object gives (the tests hold them to it), without building the object first: every mod encodes
// two or three records on the event loop. Numbers are integers (asserted on decode), strings
// that may hold any character go through JSON.stringify.
export function encodeAccount(state: AccountState): string {
  const alertBelow = state.alertBelow === undefined ? '' : `,"alertBelow":"${state.alertBelow}"`
  const ref = state.ref === undefined ? '' : `,"ref":${JSON.stringify(state.ref)}`
  return `{"tot":"${state.tot}","seq":${state.seq},"atMs":${state.atMs}${alertBelow}${ref}}`
}

export function decodeAccount(key: string, text: string): AccountState {
  const record = parseRecord(accountShape, tableNames.accounts, key, text)
  const state: AccountState = { tot: BigInt(record.tot as string), seq: record.seq as number, atMs: record.atMs as number }
  if (record.alertBelow !== undefined) state.alertBelow = BigInt(record.alertBelow as string)
  if (record.ref !== undefined) state.ref = record.ref as string
  return state
}

/** A ref: 1 to refLengthMax characters, none of them a control character. */
export function isRefText(value: string): boolean {
  const length = characterCount(value)
  if (length < 1 || length > refLengthMax) return false
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index)
    if (code < 0x20 || code === 0x7f) return false
  }
  return true
}

/** What the writer stages; optional fields may be undefined, which JSON omits. */
export interface EntryDraft {
  by: bigint
  tot: bigint
  atMs: number
  note?: string | undefined
  idempotencyKey?: string | undefined
}

export function encodeEntry(entry: EntryDraft): string {
  const note = entry.note === undefined ? '' : `,"note":${JSON.stringify(entry.note)}`
  const key = entry.idempotencyKey === undefined ? '' : `,"key":${JSON.stringify(entry.idempotencyKey)}`
  return `{"by":"${entry.by}","tot":"${entry.tot}","atMs":${entry.atMs}${note}${key}}`
}

/** The seq is not stored in the value: the key carries it. */
export function decodeEntry(key: string, text: string): Entry {
  const seqText = key.slice(key.length - seqDigits)
  const record = parseRecord(entryShape, tableNames.history, key, text)
  const entry: Entry = { seq: Number(seqText), by: BigInt(record.by as string), tot: BigInt(record.tot as string), atMs: record.atMs as number }
  if (record.note !== undefined) entry.note = record.note as string
  if (record.key !== undefined) entry.idempotencyKey = record.key as string
  return entry
}

export function encodeIdempotency(state: IdempotencyState): string {
  const atMs = state.atMs === undefined ? '' : `,"atMs":${state.atMs}`
  return `{"by":"${state.by}","tot":"${state.tot}","seq":${state.seq}${atMs}}`
}

export function decodeIdempotency(key: string, text: string): IdempotencyState {
  const record = parseRecord(idempotencyShape, tableNames.idempotency, key, text)
  return { by: BigInt(record.by as string), tot: BigInt(record.tot as string), seq: record.seq as number, atMs: record.atMs as number | undefined }
}

const filterSnapshot = z.strictObject({
  bitsPerKey: z.int().positive(),
  probes: z.int().positive(),
  layers: z.array(z.strictObject({ count: z.int().nonnegative(), bits: z.base64() })),
})

/**
 * The key filters as kept in the meta table across a clean stop, with what ties them to the
 * store: the start count (`epoch`) of the run that wrote them, and a digest of their content.
 */
export const filtersRecord = z.strictObject({
  epoch: z.int().nonnegative(),
  digest: z.string(),
  accounts: filterSnapshot,
  idempotency: z.strictObject({
    windowMs: z.int().positive(),
    clockMs: z.int().nonnegative(),
    generations: z.array(z.strictObject({ index: z.int(), filter: filterSnapshot })),
  }),
})

/** The meta table's keys. */
export const metaKeys = {
  /** The key filters a clean stop left (see Ledger.load). */
  filters: 'filters',
  /** How many times a ledger has opened the store; bumped, with fsync, before each run writes. */
  epoch: 'epoch',
  /** Present while an import is writing: such a store is incomplete and is never served. */
  importInProgress: 'import-in-progress',
} as const

export const epochRecord = z.int().nonnegative()
