// Key layout and value encoding of the three tables. Every record read back from the store is
// parsed by the same schema that describes what the writer puts in, so a codec bug or a
// corrupt value stops at read time instead of reaching a balance.
import assert from 'node:assert/strict'
import { hash, randomBytes } from 'node:crypto'
import { z } from 'zod'
import { amountPattern, balancePattern } from '../contract/syntax.js'
import { amountMax, characterCount, noteLengthMax, idempotencyKeyLengthMax, seqDigits, seqMax } from './limits.js'
import type { AccountKey, CredentialKey, Entry, EntryKind } from './types.js'

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
  /** CredentialKey -> CredentialRecord: which account a credential addresses, and until when. */
  credentials: 'cred',
  /** Public account id -> AccountKey: finding an account without its credential (id= reads). */
  publicIds: 'pid',
} as const

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

export const accountRecord = z.strictObject({ tot: balance, seq, atMs, createdMs: atMs.optional() })
export const noteText = z.string().refine((text) => characterCount(text) <= noteLengthMax)
export const idempotencyKeyText = z.string().regex(new RegExp(`^[\\x21-\\x7e]{1,${idempotencyKeyLengthMax}}$`))

/** An entry's or a record's `by`: an amount, or 0 on kinds that move no money (rotate, freeze). */
const delta = z.union([z.literal('0').transform(() => 0n), amount])

export const entryRecord = z.strictObject({
  by: delta,
  tot: balance,
  atMs,
  note: noteText.optional(),
  key: idempotencyKeyText.optional(),
  kind: z.enum(['hold', 'settle', 'void', 'expire', 'rotate', 'move', 'freeze', 'unfreeze']).optional(),
}).refine((record) => record.by !== 0n || record.kind !== undefined)
// `atMs` (the entry's time, which starts the key's retention window) is absent from records
// written before the window existed; see Ledger.load for how they are treated.
export const idempotencyRecord = z.strictObject({
  by: delta,
  tot: balance,
  seq,
  atMs: atMs.optional(),
  op: z.string().optional(),
  fingerprint: z.string().optional(),
  answer: z.string().optional(),
}).refine((record) => record.by !== 0n || record.op !== undefined)

export interface AccountState {
  tot: bigint
  seq: number
  /** Time of the last entry, so the next one never goes back in time. */
  atMs: number
  /** Time of entry 1; absent on accounts written before it was kept (read entry 1 then). */
  createdMs?: number
}

export interface IdempotencyState {
  by: bigint
  tot: bigint
  seq: number
  /** When the entry was written; undefined in records older than the retention window. */
  atMs: number | undefined
  /** The operation the key was first used for; absent: 'mod'. */
  op?: string
  /** The operation's parameters, canonical, for ops other than mod. */
  fingerprint?: string
  /** The first answer's JSON body, for ops other than mod. */
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
type Field = 'balance' | 'amount' | 'delta' | 'seq' | 'atMs' | 'note' | 'key' | 'kind' | 'text'
type Shape = Readonly<Record<string, { field: Field; optional: boolean }>>

function isBalanceText(value: unknown): value is string {
  return typeof value === 'string' && balancePattern.test(value) && BigInt(value) <= amountMax
}

function isAmountText(value: unknown): value is string {
  if (typeof value !== 'string' || !amountPattern.test(value)) return false
  const by = BigInt(value)
  return by >= -amountMax && by <= amountMax
}

/** Kinds an entry record may name ('mod' is never stored: it is the absent kind). */
const storedEntryKinds: ReadonlySet<string> = new Set<EntryKind>(['hold', 'settle', 'void', 'expire', 'rotate', 'move', 'freeze', 'unfreeze'])

const idempotencyKeyTextPattern = new RegExp(`^[\\x21-\\x7e]{1,${idempotencyKeyLengthMax}}$`)

function fieldIsValid(field: Field, value: unknown): boolean {
  switch (field) {
    case 'balance':
      return isBalanceText(value)
    case 'amount':
      return isAmountText(value)
    case 'delta':
      return value === '0' || isAmountText(value)
    case 'seq':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1 && value <= seqMax
    case 'atMs':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
    case 'note':
      return typeof value === 'string' && characterCount(value) <= noteLengthMax
    case 'key':
      return typeof value === 'string' && idempotencyKeyTextPattern.test(value)
    case 'kind':
      return typeof value === 'string' && storedEntryKinds.has(value)
    case 'text':
      return typeof value === 'string'
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
  createdMs: { field: 'atMs', optional: true },
}
const entryShape: Shape = {
  by: { field: 'delta', optional: false },
  tot: { field: 'balance', optional: false },
  atMs: { field: 'atMs', optional: false },
  note: { field: 'note', optional: true },
  key: { field: 'key', optional: true },
  kind: { field: 'kind', optional: true },
}
const idempotencyShape: Shape = {
  by: { field: 'delta', optional: false },
  tot: { field: 'balance', optional: false },
  seq: { field: 'seq', optional: false },
  atMs: { field: 'atMs', optional: true },
  op: { field: 'text', optional: true },
  fingerprint: { field: 'text', optional: true },
  answer: { field: 'text', optional: true },
}

// The encoders write the JSON text directly, byte for byte what JSON.stringify of the record
// object gives (the tests hold them to it), without building the object first: every mod encodes
// two or three records on the event loop. Numbers are integers (asserted on decode), strings
// that may hold any character go through JSON.stringify.
export function encodeAccount(state: AccountState): string {
  const created = state.createdMs === undefined ? '' : `,"createdMs":${state.createdMs}`
  return `{"tot":"${state.tot}","seq":${state.seq},"atMs":${state.atMs}${created}}`
}

export function decodeAccount(key: string, text: string): AccountState {
  const record = parseRecord(accountShape, tableNames.accounts, key, text)
  const state: AccountState = { tot: BigInt(record.tot as string), seq: record.seq as number, atMs: record.atMs as number }
  if (record.createdMs !== undefined) state.createdMs = record.createdMs as number
  return state
}

/** What the writer stages; optional fields may be undefined, which JSON omits. */
export interface EntryDraft {
  by: bigint
  tot: bigint
  atMs: number
  note?: string | undefined
  idempotencyKey?: string | undefined
  kind?: EntryKind | undefined
}

export function encodeEntry(entry: EntryDraft): string {
  const note = entry.note === undefined ? '' : `,"note":${JSON.stringify(entry.note)}`
  const key = entry.idempotencyKey === undefined ? '' : `,"key":${JSON.stringify(entry.idempotencyKey)}`
  const kind = entry.kind === undefined || entry.kind === 'mod' ? '' : `,"kind":"${entry.kind}"`
  return `{"by":"${entry.by}","tot":"${entry.tot}","atMs":${entry.atMs}${note}${key}${kind}}`
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
  assert.ok(record.by !== '0' || record.op !== undefined, `corrupt record in ${tableNames.idempotency} at ${key}: a mod of 0`)
  const state: IdempotencyState = { by: BigInt(record.by as string), tot: BigInt(record.tot as string), seq: record.seq as number, atMs: record.atMs as number | undefined }
  if (record.op !== undefined) state.op = record.op as string
  if (record.fingerprint !== undefined) state.fingerprint = record.fingerprint as string
  if (record.answer !== undefined) state.answer = record.answer as string
  return state
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
