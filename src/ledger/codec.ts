// Key layout and value encoding of the three tables. Every record read back from the store is
// parsed by the same schema that describes what the writer puts in, so a codec bug or a
// corrupt value stops at read time instead of reaching a balance.
import assert from 'node:assert/strict'
import { hash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { amountPattern, balancePattern } from '../contract/syntax.js'
import { amountMax, characterCount, noteLengthMax, idempotencyKeyLengthMax, refLengthMax, seqDigits, seqMax } from './limits.js'
import type { AccountKey, CredentialKey, Entry, EntryKind, HoldState } from './types.js'

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
  /** AccountKey!holdId -> HoldRecord: every hold, open or closed (a closed one answers 409/410). */
  holds: 'hold',
  /** expiresMs!AccountKey!holdId -> '': the open holds by expiry, for the expiry pass. */
  holdExpiries: 'hexp',
  /** AccountKey!holdId -> '': each account's open holds, so finding them never reads closed ones. */
  openHolds: 'hopn',
  /** AccountKey!idempotencyKey!seq -> '': the entries that carry a key, past its record's window (LevelDB). */
  keyIndex: 'kidx',
  /** Ref -> AccountKey: the operators' own references (see PATCH /ref). */
  refs: 'refs',
  /** Event key (time!id) -> OutboxRecord: events waiting for delivery (see outbox.ts). */
  outbox: 'outbox',
  /** Due key (dueAtMs!event key) -> '': the outbox's events by when they are next due. */
  outboxDue: 'outbox-due',
  /** CredentialKey -> CredentialRecord: which account a credential addresses, and until when. */
  credentials: 'cred',
  /** Public account id -> AccountKey: finding an account without its credential (id= reads). */
  publicIds: 'pid',
} as const

/** A hold id: 128 random bits, base64url without padding. */
export const holdIdPattern = /^[A-Za-z0-9_-]{22}$/

export function holdKeyOf(accountKey: AccountKey, holdId: string): string {
  return `${accountKey}!${holdId}`
}

/** Expiry keys sort by time: the expiry zero-padded to seqDigits. */
export function holdExpiryKeyOf(accountKey: AccountKey, holdId: string, expiresMs: number): string {
  return `${String(expiresMs).padStart(seqDigits, '0')}!${accountKey}!${holdId}`
}

/** The account key of an expiry key. */
export function accountKeyOfHoldExpiry(key: string): AccountKey | undefined {
  // Account keys are 64 hex digits (older accounts) or 22 base64url characters; hold ids have no '!'.
  const accountKey = key.slice(seqDigits + 1, key.lastIndexOf('!'))
  return isAccountKey(accountKey) ? accountKey : undefined
}

/** The index key of an entry that carries an idempotency key; its seq is the fixed-width tail. */
export function keyIndexKeyOf(accountKey: AccountKey, idempotencyKey: string, seq: number): string {
  return `${accountKey}!${idempotencyKey}!${String(seq).padStart(seqDigits, '0')}`
}


/** A credential's hash (stores before the credentials table), or 128 random bits in base64url. */
const accountKeyPattern = /^(?:[0-9a-f]{64}|[A-Za-z0-9_-]{22})$/
const credentialKeyPattern = /^[0-9a-f]{64}$/

/**
 * The SHA-256 of a credential, as stores written before the credentials table keyed its account:
 * such an account keeps it as its internal id. New code addresses accounts by credentialKeyOf.
 */
export function accountKeyOf(credential: string): AccountKey {
  return hash('sha256', credential, 'hex') as AccountKey
}

/** The credential's key in the credentials table: its SHA-256, so the store never holds a credential. */
export function credentialKeyOf(credential: string): CredentialKey {
  return hash('sha256', credential, 'hex') as CredentialKey
}

export function isAccountKey(value: string): value is AccountKey {
  return accountKeyPattern.test(value)
}

export function isCredentialKey(value: string): value is CredentialKey {
  return credentialKeyPattern.test(value)
}

/** The internal id of an account created now: 128 bits from the system's CSPRNG. */
export function newAccountKey(): AccountKey {
  return randomBytes(16).toString('base64url') as AccountKey
}

export function historyKeyOf(accountKey: AccountKey, seq: number): string {
  return `${accountKey}!${String(seq).padStart(seqDigits, '0')}`
}

/** Splits a history key into its account key and seq; undefined if it is not one. */
export function parseHistoryKey(key: string): { accountKey: AccountKey; seq: number } | undefined {
  // Account keys hold no '!': the first one ends the account key.
  const end = key.indexOf('!')
  const accountKey = key.slice(0, end)
  const seqText = key.slice(end + 1)
  if (end < 0 || !isAccountKey(accountKey) || !/^[0-9]{16}$/.test(seqText)) return undefined
  return { accountKey, seq: Number(seqText) }
}

/** Splits an idempotency record's key into its account key and the client's key. */
export function parseIdempotencyKey(key: string): { accountKey: AccountKey; idempotencyKey: string } | undefined {
  const end = key.indexOf('!')
  const accountKey = key.slice(0, end)
  const idempotencyKey = key.slice(end + 1)
  if (end < 0 || !isAccountKey(accountKey) || idempotencyKey.length === 0) return undefined
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

/** An entry's by: an amount, or 0 on entries that change no balance (hold, void, expire, rotate, freeze, unfreeze). */
export const entryAmount = z
  .string()
  .regex(new RegExp(`^(0|${amountPattern.source.slice(1, -1)})$`))
  .transform((text) => BigInt(text))
  .refine((by) => by >= -amountMax && by <= amountMax)
const holdCount = z.number().int().min(1)
/** The kinds an entry may record (absent: 'mod'). */
export const entryKinds = ['mod', 'hold', 'settle', 'void', 'expire', 'rotate', 'move', 'freeze', 'unfreeze'] as const satisfies readonly EntryKind[]
const entryKind = z.enum(entryKinds)
/** A move's id: random, URL-safe. */
export const moveIdPattern = /^[A-Za-z0-9_-]{1,64}$/
/** A token's name, as ACCMAN_TOKENS gives it (name:token). */
export const actorPattern = /^[A-Za-z0-9_.-]{1,64}$/
/** Idempotency records of ops other than mod: their parameters and their first answer, bounded. */
const recordTextLengthMax = 4096

export const accountRecord = z.strictObject({
  tot: balance,
  seq,
  atMs,
  held: balance.optional(),
  holdCount: holdCount.optional(),
  nextExpiryMs: atMs.optional(),
  expiresMs: atMs.optional(),
  frozen: z.literal(true).optional(),
  createdMs: atMs.optional(),
})
export const noteText = z.string().refine((text) => characterCount(text) <= noteLengthMax)
export const idempotencyKeyText = z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${idempotencyKeyLengthMax}}$`))

/** An entry's fields, as stored and as exported (an export line adds its seq). */
export const entryFields = z.strictObject({
  by: entryAmount,
  tot: balance,
  atMs,
  note: noteText.optional(),
  key: idempotencyKeyText.optional(),
  kind: entryKind.optional(),
  hold: z.string().regex(holdIdPattern).optional(),
  heldBy: amount.optional(),
  held: balance.optional(),
  move: z.string().regex(moveIdPattern).optional(),
  peer: z.string().refine(isAccountKey).optional(),
  peerSeq: seq.optional(),
  actor: z.string().regex(actorPattern).optional(),
})
export const entryRecord = entryFields
  // A mod moves something; only the other kinds may have a by of 0.
  .refine((record) => record.by !== 0n || (record.kind !== undefined && record.kind !== 'mod'))
// `atMs` (the entry's time, which starts the key's retention window) is absent from records
// written before the window existed; see Ledger.load for how they are treated.
export const idempotencyRecord = z
  .strictObject({
    by: entryAmount,
    tot: balance,
    seq,
    atMs: atMs.optional(),
    op: z.string().regex(/^[a-z]{1,16}$/).optional(),
    fingerprint: z.string().max(recordTextLengthMax).optional(),
    answer: z.string().max(recordTextLengthMax).optional(),
  })
  // A mod's record has a nonzero by; a hold's or void's entry moves nothing.
  .refine((record) => record.by !== 0n || record.op !== undefined)

export const holdRecord = z.strictObject({
  by: balance.refine((by) => by > 0n),
  atMs,
  expiresMs: atMs,
  note: noteText.optional(),
  closed: z.enum(['settle', 'void', 'expire']).optional(),
})

export interface AccountState {
  tot: bigint
  seq: number
  /** Time of the last entry, so the next one never goes back in time. */
  atMs: number
  /** The sum of the open holds as written (absent: 0); reads past nextExpiryMs leave out the expired. */
  held?: bigint
  /** The number of open holds (absent: 0). */
  holdCount?: number
  /** The earliest expiry among the open holds (absent: none open). */
  nextExpiryMs?: number
  /** After this instant (ms since the epoch) the account refuses debits and moves out; absent: never. */
  expiresMs?: number
  /** Refuses debits and moves out while true; absent: not frozen. */
  frozen?: boolean
  /** The account's own low-balance threshold (PATCH /alert); absent: the default, if any. */
  alertBelow?: bigint
  /** The operator's own reference to the account (PATCH /ref); absent: none. */
  ref?: string
  /** Time of entry 1; absent on accounts written before it was kept (read entry 1 then). */
  createdMs?: number
}

export interface IdempotencyState {
  by: bigint
  tot: bigint
  seq: number
  /** When the entry was written; undefined in records older than the retention window. */
  atMs: number | undefined
  /** The operation that used the key: absent means 'mod'. */
  op?: string
  /** The operation's parameters, as a canonical string (ops other than mod). */
  fingerprint?: string
  /** The first answer's JSON body, replayed as is (ops other than mod; a mod on an account with holds). */
  answer?: string
}

/** Where a credential points: its account, and (after a rotation) when it stops working. */
export interface CredentialState {
  accountKey: AccountKey
  /** Works while now < retiresMs; absent: works until rotated. */
  retiresMs?: number
}

/** Whether a credential addresses its account at `nowMs`. */
export function isCredentialLive(state: CredentialState, nowMs: number): boolean {
  return state.retiresMs === undefined || nowMs < state.retiresMs
}

const credentialRecord = z.strictObject({ account: z.string().refine(isAccountKey), retiresMs: atMs.optional() })

export function encodeCredential(state: CredentialState): string {
  const retires = state.retiresMs === undefined ? '' : `,"retiresMs":${state.retiresMs}`
  return `{"account":"${state.accountKey}"${retires}}`
}

export function decodeCredential(key: string, text: string): CredentialState {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    assert.fail(`corrupt record in ${tableNames.credentials} at ${key}: not JSON`)
  }
  const parsed = credentialRecord.safeParse(json)
  assert.ok(parsed.success, `corrupt record in ${tableNames.credentials} at ${key}`)
  const state: CredentialState = { accountKey: parsed.data.account }
  if (parsed.data.retiresMs !== undefined) state.retiresMs = parsed.data.retiresMs
  return state
}

// The three records are decoded on every write (the store's round-trip check) and read, so they
// are checked by hand, field by field, to exactly what the schemas above accept (the tests hold
// the two to the same verdicts): the schemas cost several times more per record.
type Field = 'balance' | 'amount' | 'change' | 'seq' | 'atMs' | 'note' | 'key' | 'count' | 'kind' | 'holdId' | 'text' | 'closed' | 'move' | 'accountKey' | 'actor' | 'true' | 'op' | 'ref'
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
    case 'change':
      return value === '0' || isAmountText(value)
    case 'count':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1
    case 'holdId':
      return typeof value === 'string' && holdIdPattern.test(value)
    case 'closed':
      return value === 'settle' || value === 'void' || value === 'expire'
    case 'seq':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= seqMax
    case 'atMs':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    case 'note':
      return typeof value === 'string' && characterCount(value) <= noteLengthMax
    case 'key':
      return typeof value === 'string' && idempotencyKeyTextPattern.test(value)
    case 'kind':
      return typeof value === 'string' && (entryKinds as readonly string[]).includes(value)
    case 'move':
      return typeof value === 'string' && moveIdPattern.test(value)
    case 'accountKey':
      return typeof value === 'string' && accountKeyPattern.test(value)
    case 'actor':
      return typeof value === 'string' && actorPattern.test(value)
    case 'true':
      return value === true
    case 'op':
      return typeof value === 'string' && /^[a-z]{1,16}$/.test(value)
    case 'text':
      return typeof value === 'string' && value.length <= recordTextLengthMax
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
  held: { field: 'balance', optional: true },
  holdCount: { field: 'count', optional: true },
  nextExpiryMs: { field: 'atMs', optional: true },
  expiresMs: { field: 'atMs', optional: true },
  frozen: { field: 'true', optional: true },
  alertBelow: { field: 'balance', optional: true },
  ref: { field: 'ref', optional: true },
  createdMs: { field: 'atMs', optional: true },
}
const entryShape: Shape = {
  by: { field: 'change', optional: false },
  tot: { field: 'balance', optional: false },
  atMs: { field: 'atMs', optional: false },
  note: { field: 'note', optional: true },
  key: { field: 'key', optional: true },
  kind: { field: 'kind', optional: true },
  hold: { field: 'holdId', optional: true },
  heldBy: { field: 'amount', optional: true },
  held: { field: 'balance', optional: true },
  move: { field: 'move', optional: true },
  peer: { field: 'accountKey', optional: true },
  peerSeq: { field: 'seq', optional: true },
  actor: { field: 'actor', optional: true },
}
const idempotencyShape: Shape = {
  by: { field: 'change', optional: false },
  tot: { field: 'balance', optional: false },
  seq: { field: 'seq', optional: false },
  atMs: { field: 'atMs', optional: true },
  op: { field: 'op', optional: true },
  fingerprint: { field: 'text', optional: true },
  answer: { field: 'text', optional: true },
}
const holdShape: Shape = {
  by: { field: 'balance', optional: false },
  atMs: { field: 'atMs', optional: false },
  expiresMs: { field: 'atMs', optional: false },
  note: { field: 'note', optional: true },
  closed: { field: 'closed', optional: true },
}

// The encoders write the JSON text directly, byte for byte what JSON.stringify of the record
// object gives (the tests hold them to it), without building the object first: every mod encodes
// two or three records on the event loop. Numbers are integers (asserted on decode), strings
// that may hold any character go through JSON.stringify.
export function encodeAccount(state: AccountState): string {
  const held = state.held === undefined ? '' : `,"held":"${state.held}"`
  const holdCount = state.holdCount === undefined ? '' : `,"holdCount":${state.holdCount}`
  const nextExpiry = state.nextExpiryMs === undefined ? '' : `,"nextExpiryMs":${state.nextExpiryMs}`
  const expires = state.expiresMs === undefined ? '' : `,"expiresMs":${state.expiresMs}`
  const frozen = state.frozen === true ? ',"frozen":true' : ''
  const alertBelow = state.alertBelow === undefined ? '' : `,"alertBelow":"${state.alertBelow}"`
  const ref = state.ref === undefined ? '' : `,"ref":${JSON.stringify(state.ref)}`
  const created = state.createdMs === undefined ? '' : `,"createdMs":${state.createdMs}`
  return `{"tot":"${state.tot}","seq":${state.seq},"atMs":${state.atMs}${created}${held}${holdCount}${nextExpiry}${expires}${frozen}${alertBelow}${ref}}`
}

export function decodeAccount(key: string, text: string): AccountState {
  const record = parseRecord(accountShape, tableNames.accounts, key, text)
  const state: AccountState = { tot: BigInt(record.tot as string), seq: record.seq as number, atMs: record.atMs as number }
  if (record.held !== undefined) state.held = BigInt(record.held as string)
  if (record.holdCount !== undefined) state.holdCount = record.holdCount as number
  if (record.nextExpiryMs !== undefined) state.nextExpiryMs = record.nextExpiryMs as number
  if (record.expiresMs !== undefined) state.expiresMs = record.expiresMs as number
  if (record.frozen === true) state.frozen = true
  if (record.alertBelow !== undefined) state.alertBelow = BigInt(record.alertBelow as string)
  if (record.ref !== undefined) state.ref = record.ref as string
  if (record.createdMs !== undefined) state.createdMs = record.createdMs as number
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
  kind?: EntryKind | undefined
  hold?: string | undefined
  heldBy?: bigint | undefined
  held?: bigint | undefined
  move?: string | undefined
  peer?: { accountKey: AccountKey; seq: number } | undefined
  actor?: string | undefined
}

export function encodeEntry(entry: EntryDraft): string {
  const note = entry.note === undefined ? '' : `,"note":${JSON.stringify(entry.note)}`
  const key = entry.idempotencyKey === undefined ? '' : `,"key":${JSON.stringify(entry.idempotencyKey)}`
  if (entry.kind === undefined && entry.move === undefined && entry.peer === undefined && entry.actor === undefined && entry.hold === undefined && entry.held === undefined) {
    return `{"by":"${entry.by}","tot":"${entry.tot}","atMs":${entry.atMs}${note}${key}}`
  }
  // Kinds, hold and move ids, account keys and actor names are checked patterns; the actor is quoted anyway.
  const kind = entry.kind === undefined ? '' : `,"kind":"${entry.kind}"`
  const hold = entry.hold === undefined ? '' : `,"hold":${JSON.stringify(entry.hold)}`
  const heldBy = entry.heldBy === undefined ? '' : `,"heldBy":"${entry.heldBy}"`
  const held = entry.held === undefined ? '' : `,"held":"${entry.held}"`
  const move = entry.move === undefined ? '' : `,"move":"${entry.move}"`
  const peer = entry.peer === undefined ? '' : `,"peer":"${entry.peer.accountKey}","peerSeq":${entry.peer.seq}`
  const actor = entry.actor === undefined ? '' : `,"actor":${JSON.stringify(entry.actor)}`
  return `{"by":"${entry.by}","tot":"${entry.tot}","atMs":${entry.atMs}${note}${key}${kind}${hold}${heldBy}${held}${move}${peer}${actor}}`
}

/** The seq is not stored in the value: the key carries it. */
export function decodeEntry(key: string, text: string): Entry {
  const seqText = key.slice(key.length - seqDigits)
  const record = parseRecord(entryShape, tableNames.history, key, text)
  assert.ok(record.by !== '0' || record.kind !== undefined, `corrupt record in ${tableNames.history} at ${key}: a mod of 0`)
  const entry: Entry = { seq: Number(seqText), by: BigInt(record.by as string), tot: BigInt(record.tot as string), atMs: record.atMs as number }
  if (record.note !== undefined) entry.note = record.note as string
  if (record.key !== undefined) entry.idempotencyKey = record.key as string
  if (record.kind !== undefined) entry.kind = record.kind as EntryKind
  if (record.hold !== undefined) entry.hold = record.hold as string
  if (record.heldBy !== undefined) entry.heldBy = BigInt(record.heldBy as string)
  if (record.held !== undefined) entry.held = BigInt(record.held as string)
  if (record.move !== undefined) entry.move = record.move as string
  // A peer is stored with its seq, or not at all.
  assert.ok((record.peer === undefined) === (record.peerSeq === undefined), `corrupt record in ${tableNames.history} at ${key}: peer without peerSeq`)
  if (record.peer !== undefined) entry.peer = { accountKey: record.peer as AccountKey, seq: record.peerSeq as number }
  if (record.actor !== undefined) entry.actor = record.actor as string
  // A mod moves something; only the other kinds may have a by of 0.
  assert.ok(entry.by !== 0n || (entry.kind !== undefined && entry.kind !== 'mod'), `corrupt record in ${tableNames.history} at ${key}`)
  return entry
}

export function encodeIdempotency(state: IdempotencyState): string {
  const atMs = state.atMs === undefined ? '' : `,"atMs":${state.atMs}`
  const op = state.op === undefined ? '' : `,"op":${JSON.stringify(state.op)}`
  const fingerprint = state.fingerprint === undefined ? '' : `,"fingerprint":${JSON.stringify(state.fingerprint)}`
  const answer = state.answer === undefined ? '' : `,"answer":${JSON.stringify(state.answer)}`
  return `{"by":"${state.by}","tot":"${state.tot}","seq":${state.seq}${atMs}${op}${fingerprint}${answer}}`
}

export function decodeIdempotency(key: string, text: string): IdempotencyState {
  const record = parseRecord(idempotencyShape, tableNames.idempotency, key, text)
  const state: IdempotencyState = {
    by: BigInt(record.by as string),
    tot: BigInt(record.tot as string),
    seq: record.seq as number,
    atMs: record.atMs as number | undefined,
  }
  if (record.op !== undefined) state.op = record.op as string
  if (record.fingerprint !== undefined) state.fingerprint = record.fingerprint as string
  if (record.answer !== undefined) state.answer = record.answer as string
  // Only a mod's record has a nonzero by for certain; a hold's or void's entry moves nothing.
  assert.ok(state.by !== 0n || state.op !== undefined, `corrupt record in ${tableNames.idempotency} at ${key}`)
  return state
}

/** A hold as stored: the id is in the key. */
export function encodeHold(hold: HoldState): string {
  const note = hold.note === undefined ? '' : `,"note":${JSON.stringify(hold.note)}`
  const closed = hold.closed === undefined ? '' : `,"closed":"${hold.closed}"`
  return `{"by":"${hold.by}","atMs":${hold.atMs},"expiresMs":${hold.expiresMs}${note}${closed}}`
}

export function decodeHold(key: string, text: string): HoldState {
  const record = parseRecord(holdShape, tableNames.holds, key, text)
  const separator = key.lastIndexOf('!')
  const id = key.slice(separator + 1)
  assert.ok(holdIdPattern.test(id) && isAccountKey(key.slice(0, separator)), `corrupt key in ${tableNames.holds} at ${key}`)
  const hold: HoldState = { id, by: BigInt(record.by as string), atMs: record.atMs as number, expiresMs: record.expiresMs as number }
  assert.ok(hold.by > 0n, `corrupt record in ${tableNames.holds} at ${key}`)
  if (record.note !== undefined) hold.note = record.note as string
  if (record.closed !== undefined) hold.closed = record.closed as HoldState['closed'] & string
  return hold
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
  /** The store's format (see upgrade.ts); absent: format 1, before the credentials table. */
  storeFormat: 'store-format',
  /** During an upgrade: the last account key whose records it wrote. */
  upgradeCursor: 'upgrade-cursor',
} as const

export const epochRecord = z.int().nonnegative()
