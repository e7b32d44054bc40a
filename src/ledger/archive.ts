// Export and import of a whole store as JSON Lines: a header, then each account (in key order)
// followed by its holds (open and closed, in id order) and its entries (in seq order), then (from
// version 2) the credentials table, each credential's SHA-256 with its account. An account line
// carries its threshold and ref when set. Idempotency
// records are not written out: each is the entry that carries its key (and, for a hold, settle or
// void, its hold), so import rebuilds them (a rotation's key is not replayed after an import). The format holds no credential. Import
// reads every version: version 1 (stores before the credentials table) keyed each account by its
// credential's SHA-256, so each account there gets that credential back.
import { z } from 'zod'
import { limits } from '../config.js'
import {
  accountRecord,
  atMs,
  balance,
  entryFields,
  idempotencyKeyOf,
  holdIdPattern,
  holdRecord,
  isAccountKey,
  isCredentialKey,
  isRefText,
  metaKeys,
  seq,
  type AccountState,
  type CredentialState,
  type IdempotencyState,
} from './codec.js'
import { markStoreFormat } from './upgrade.js'
import { idempotencyTtlSecondsDefault } from './limits.js'
import { moveAnswer, moveFingerprint } from './move.js'
import type { LedgerStore, RoundWrites, StoreSnapshot } from './store.js'
import type { AccountKey, CredentialKey, Entry, HoldState } from './types.js'
import { fingerprintOf, holdAnswer, settleAnswer, voidAnswer } from './holds.js'

/** The export format's version: 1 had no credentials table; 2 has it, creation times and entry kinds. */
export const archiveVersion = 2
export const archiveHeader = `{"format":"accman-export","version":${archiveVersion}}`

export interface ArchiveCounts {
  accounts: number
  entries: number
  /** Credentials (version 2). */
  credentials?: number
}

/** Lines of the export, without newlines: the store as of `snapshot` (the caller closes it). */
export async function* exportStore(
  snapshot: StoreSnapshot,
  counts: ArchiveCounts = { accounts: 0, entries: 0 },
): AsyncGenerator<string> {
  const { scanPageMax } = limits
  yield archiveHeader
  for (let after: AccountKey | undefined; ; ) {
    const accounts = await snapshot.accounts(after, scanPageMax)
    if (accounts.length === 0) break
    for (const [accountKey, account] of accounts) {
      yield accountLine(accountKey, account)
      for (let afterHold: string | undefined; ; ) {
        const holds = await snapshot.holds(accountKey, afterHold, scanPageMax)
        if (holds.length === 0) break
        for (const hold of holds) yield holdLine(hold)
        afterHold = holds.at(-1)?.id
      }
      const inconsistent = () => new ArchiveError(`the store is inconsistent at account ${accountKey.slice(0, 12)}…; run accman verify`)
      let expected = 1
      while (expected <= account.seq) {
        const entries = await snapshot.history(accountKey, expected, Math.min(scanPageMax, account.seq - expected + 1))
        if (entries.length === 0) throw inconsistent()
        for (const entry of entries) {
          if (entry.seq !== expected) throw inconsistent()
          yield entryLine(entry)
          expected++
          counts.entries++
        }
      }
      counts.accounts++
    }
    after = accounts.at(-1)?.[0]
  }
  counts.credentials = 0
  for (let after: CredentialKey | undefined; ; ) {
    const credentials = await snapshot.credentials(after, scanPageMax)
    if (credentials.length === 0) break
    for (const [credentialKey, state] of credentials) {
      yield JSON.stringify({ credential: credentialKey, account: state.accountKey, retiresMs: state.retiresMs })
      counts.credentials++
    }
    after = credentials.at(-1)?.[0]
  }
}

function accountLine(accountKey: AccountKey, account: AccountState): string {
  return JSON.stringify({
    account: accountKey,
    tot: account.tot.toString(),
    seq: account.seq,
    atMs: account.atMs,
    held: account.held?.toString(),
    holdCount: account.holdCount,
    nextExpiryMs: account.nextExpiryMs,
    expiresMs: account.expiresMs,
    frozen: account.frozen === true ? true : undefined,
    createdMs: account.createdMs,
    alertBelow: account.alertBelow?.toString(),
    ref: account.ref,
  })
}

function entryLine(entry: Entry): string {
  return JSON.stringify({
    seq: entry.seq,
    by: entry.by.toString(),
    tot: entry.tot.toString(),
    atMs: entry.atMs,
    note: entry.note,
    key: entry.idempotencyKey,
    kind: entry.kind,
    hold: entry.hold,
    heldBy: entry.heldBy?.toString(),
    held: entry.held?.toString(),
    move: entry.move,
    peer: entry.peer?.accountKey,
    peerSeq: entry.peer?.seq,
    actor: entry.actor,
  })
}

function holdLine(hold: HoldState): string {
  return JSON.stringify({ holdId: hold.id, by: hold.by.toString(), atMs: hold.atMs, expiresMs: hold.expiresMs, note: hold.note, closed: hold.closed })
}

/** The idempotency record of a keyed entry, as the writer made it (see decide.ts and holds.ts). */
function recordOf(entry: Entry, holds: Map<string, HoldState>): IdempotencyState | undefined {
  const record: IdempotencyState = { by: entry.by, tot: entry.tot, seq: entry.seq, atMs: entry.atMs }
  const kind = entry.kind ?? 'mod'
  const held = entry.held ?? 0n
  if (kind === 'mod') {
    if (held > 0n) record.answer = `{"held":"${held}"}`
    return record
  }
  // A rotation's record holds the new credential's key, which the export does not: not replayed.
  if (kind === 'rotate') return undefined
  if (kind === 'move' && entry.move !== undefined && entry.peer !== undefined) {
    record.op = 'move'
    record.fingerprint = moveFingerprint({ by: -entry.by, toAccountKey: entry.peer.accountKey })
    record.answer = moveAnswer(entry.move)
    return record
  }
  const hold = entry.hold === undefined ? undefined : holds.get(entry.hold)
  if (hold === undefined || (kind !== 'hold' && kind !== 'settle' && kind !== 'void')) throw new ArchiveError(`entry ${entry.seq}: a keyed ${kind} without its hold`)
  const account: AccountState = { tot: entry.tot, seq: entry.seq, atMs: entry.atMs, ...(held > 0n ? { held } : {}) }
  record.op = kind
  if (kind === 'hold') {
    record.fingerprint = fingerprintOf({ op: 'hold', holdId: hold.id, by: hold.by, ttlMs: hold.expiresMs - hold.atMs })
    record.answer = holdAnswer(hold, account)
  } else if (kind === 'settle') {
    record.fingerprint = fingerprintOf({ op: 'settle', holdId: hold.id, by: -entry.by }, hold)
    record.answer = settleAnswer(hold.id, -entry.by, account)
  } else {
    record.fingerprint = fingerprintOf({ op: 'void', holdId: hold.id })
    record.answer = voidAnswer(hold.id, account)
  }
  return record
}

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError'
}

const headerLine = z.strictObject({ format: z.literal('accman-export'), version: z.union([z.literal(1), z.literal(2)]) })
const accountLineSchema = accountRecord.extend({ account: z.string().refine(isAccountKey), alertBelow: balance.optional(), ref: z.string().refine(isRefText).optional() })
// A mod of 0 is checked with the chain, for a message that names the entry.
const entryLineSchema = entryFields.extend({ seq })
const holdLineSchema = holdRecord.extend({ holdId: z.string().regex(holdIdPattern) })

const credentialLineSchema = z.strictObject({
  credential: z.string().refine(isCredentialKey),
  account: z.string().refine(isAccountKey),
  retiresMs: atMs.optional(),
})

type ArchiveItem =
  | { kind: 'account'; accountKey: AccountKey; account: AccountState; version: number }
  | { kind: 'hold'; accountKey: AccountKey; hold: HoldState }
  | { kind: 'entry'; accountKey: AccountKey; entry: Entry; record: IdempotencyState | undefined }
  | { kind: 'credential'; credentialKey: CredentialKey; state: CredentialState }

/**
 * Parses and checks an export line by line, yielding its accounts and entries: accounts in
 * strictly increasing key order, each followed by exactly its entries 1..seq, each entry's tot
 * the previous tot plus its by, times never decreasing, an idempotency key repeated within the
 * account only once its retention window had passed, and the last entry equal to the account's balance.
 */
async function* parseArchive(lines: AsyncIterable<string>, idempotencyTtlMs: number): AsyncGenerator<ArchiveItem> {
  let lineNumber = 0
  const fail = (message: string): never => {
    throw new ArchiveError(`line ${lineNumber}: ${message}`)
  }
  let current:
    | { accountKey: AccountKey; account: AccountState; seq: number; tot: bigint; held: bigint; atMs: number; keys: KeyWindow; holds: Map<string, HoldState> }
    | undefined
  let version = 1
  let lastCredential: string | undefined
  const finishAccount = () => {
    if (current === undefined) return
    if (current.seq !== current.account.seq) fail(`account has ${current.seq} entries, its line says ${current.account.seq}`)
    if (current.tot !== current.account.tot) fail(`entries end at ${current.tot}, the account line says ${current.account.tot}`)
    if (current.atMs !== current.account.atMs) fail(`the last entry's time differs from the account line's`)
    if (current.held !== (current.account.held ?? 0n)) fail(`entries end at held ${current.held}, the account line says ${current.account.held ?? 0n}`)
    const open = [...current.holds.values()].filter((hold) => hold.closed === undefined)
    const openHeld = open.reduce((sum, hold) => sum + hold.by, 0n)
    if (openHeld !== (current.account.held ?? 0n) || open.length !== (current.account.holdCount ?? 0)) fail('the open holds disagree with the account line')
  }
  for await (const line of lines) {
    lineNumber++
    if (line === '') fail('empty line')
    let json: unknown
    try {
      json = JSON.parse(line)
    } catch {
      fail('not JSON')
    }
    if (lineNumber === 1) {
      const header = headerLine.safeParse(json)
      if (!header.success) fail('not an AccMan export (bad header)')
      version = header.data?.version ?? 1
      continue
    }
    if (typeof json === 'object' && json !== null && 'credential' in json) {
      if (version < 2) fail('a credential line in a version 1 export')
      const parsed = credentialLineSchema.safeParse(json)
      if (!parsed.success) fail('malformed credential line')
      const data = parsed.data as z.output<typeof credentialLineSchema>
      if (lastCredential === undefined) finishAccount()
      if (lastCredential !== undefined && data.credential <= lastCredential) fail('credentials out of order or repeated')
      lastCredential = data.credential
      current = undefined
      const state: CredentialState = { accountKey: data.account }
      if (data.retiresMs !== undefined) state.retiresMs = data.retiresMs
      yield { kind: 'credential', credentialKey: data.credential, state }
      continue
    }
    if (lastCredential !== undefined) fail('an account or entry after the credentials')
    if (typeof json === 'object' && json !== null && 'account' in json) {
      const parsed = accountLineSchema.safeParse(json)
      if (!parsed.success) fail('malformed account line')
      const { account: accountKey, held, holdCount, nextExpiryMs, expiresMs, frozen, createdMs, alertBelow, ref, ...plain } = parsed.data as z.output<typeof accountLineSchema>
      const account: AccountState = plain
      if (createdMs !== undefined) account.createdMs = createdMs
      if (held !== undefined) account.held = held
      if (holdCount !== undefined) account.holdCount = holdCount
      if (nextExpiryMs !== undefined) account.nextExpiryMs = nextExpiryMs
      if (expiresMs !== undefined) account.expiresMs = expiresMs
      if (frozen === true) account.frozen = true
      if (alertBelow !== undefined) account.alertBelow = alertBelow
      if (ref !== undefined) account.ref = ref
      // Version 1 keyed accounts by their credential's SHA-256: it is both there.
      if (version < 2 && !isCredentialKey(accountKey)) fail('a version 1 account key that is no credential key')
      finishAccount()
      if (current !== undefined && accountKey <= current.accountKey) fail('accounts out of order or repeated')
      current = { accountKey: accountKey, account, seq: 0, tot: 0n, held: 0n, atMs: 0, keys: new KeyWindow(idempotencyTtlMs), holds: new Map() }
      yield { kind: 'account', accountKey: accountKey, account, version }
      continue
    }
    if (typeof json === 'object' && json !== null && 'holdId' in json) {
      const parsed = holdLineSchema.safeParse(json)
      if (!parsed.success || current === undefined || current.seq > 0) fail('malformed hold line, or not between its account and its entries')
      const { holdId, note, closed, ...rest } = (parsed as { data: z.output<typeof holdLineSchema> }).data
      const hold: HoldState = { id: holdId, ...rest, ...(note === undefined ? {} : { note }), ...(closed === undefined ? {} : { closed }) }
      const owner = current as NonNullable<typeof current>
      owner.holds.set(hold.id, hold)
      yield { kind: 'hold', accountKey: owner.accountKey, hold }
      continue
    }
    const parsed = entryLineSchema.safeParse(json)
    if (!parsed.success) fail('malformed entry line')
    const data = parsed.data as z.output<typeof entryLineSchema>
    if (current === undefined) fail('an entry before any account')
    const owner = current as NonNullable<typeof current>
    if (data.seq !== owner.seq + 1) fail(`entry ${data.seq} follows entry ${owner.seq}`)
    if (data.tot !== owner.tot + data.by) fail(`entry ${data.seq}: tot is not the previous tot plus by`)
    if ((data.held ?? 0n) !== owner.held + (data.heldBy ?? 0n)) fail(`entry ${data.seq}: held is not the previous held plus heldBy`)
    if (data.by === 0n && (data.kind ?? 'mod') === 'mod') fail(`entry ${data.seq}: a mod of 0`)
    if (data.atMs < owner.atMs) fail(`entry ${data.seq} is earlier than the one before`)
    if (data.key !== undefined && !owner.keys.admit(data.key, data.atMs)) {
      fail(`entry ${data.seq} repeats an idempotency key within its retention window`)
    }
    owner.seq = data.seq
    owner.tot = data.tot
    owner.held = data.held ?? 0n
    owner.atMs = data.atMs
    const entry: Entry = { seq: data.seq, by: data.by, tot: data.tot, atMs: data.atMs }
    if (data.note !== undefined) entry.note = data.note
    if (data.key !== undefined) entry.idempotencyKey = data.key
    if (data.kind !== undefined) entry.kind = data.kind
    if (data.hold !== undefined) entry.hold = data.hold
    if (data.heldBy !== undefined) entry.heldBy = data.heldBy
    if (data.held !== undefined) entry.held = data.held
    if (data.move !== undefined) entry.move = data.move
    if ((data.peer === undefined) !== (data.peerSeq === undefined)) fail(`entry ${data.seq}: peer and peerSeq go together`)
    if (data.peer !== undefined && data.peerSeq !== undefined) entry.peer = { accountKey: data.peer, seq: data.peerSeq }
    if (data.actor !== undefined) entry.actor = data.actor
    let record: IdempotencyState | undefined
    try {
      record = entry.idempotencyKey === undefined ? undefined : recordOf(entry, owner.holds)
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error))
    }
    yield { kind: 'entry', accountKey: owner.accountKey, entry, record }
  }
  if (lineNumber === 0) fail('empty file')
  if (lastCredential === undefined) finishAccount()
}

/**
 * The idempotency keys of one account's entries still within their window of the latest entry,
 * in time order: memory follows one window of one account, not its whole history.
 */
export class KeyWindow {
  readonly #windowMs: number
  readonly #atMsByKey = new Map<string, number>()
  /** Keys in the order they were admitted; entry times never decrease, so oldest first. */
  readonly #order: [key: string, atMs: number][] = []
  #oldest = 0

  constructor(windowMs: number) {
    this.#windowMs = windowMs
  }

  /** False when `key` was used less than a window before `atMs`; records it either way. */
  admit(key: string, atMs: number): boolean {
    while (this.#oldest < this.#order.length) {
      const [oldKey, oldAtMs] = this.#order[this.#oldest] ?? ['', 0]
      if (atMs - oldAtMs < this.#windowMs) break
      if (this.#atMsByKey.get(oldKey) === oldAtMs) this.#atMsByKey.delete(oldKey)
      this.#oldest++
    }
    if (this.#oldest > 1024 && this.#oldest * 2 > this.#order.length) {
      this.#order.splice(0, this.#oldest)
      this.#oldest = 0
    }
    const previousAtMs = this.#atMsByKey.get(key)
    this.#atMsByKey.set(key, atMs)
    this.#order.push([key, atMs])
    return previousAtMs === undefined || atMs - previousAtMs >= this.#windowMs
  }
}


export interface ImportOptions {
  /** The retention window the store will be served with (ACCMAN_IDEMPOTENCY_TTL). */
  idempotencyTtlMs?: number
  onProgress?: (counts: ArchiveCounts) => void
}

/**
 * Restores an export into an empty store, all or nothing. The whole input is checked before
 * anything is written (hence a function that opens it anew). A marker is written and made durable
 * first and deleted last: a store an import did not finish carries it, and the ledger refuses to
 * open it (and verify reports it), so a crash never leaves a partial store that serves. Each
 * account is written before its entries, in rounds of at most limits.importBatchMax records.
 */
export async function importStore(
  store: LedgerStore,
  openLines: () => AsyncIterable<string>,
  options: ImportOptions = {},
): Promise<ArchiveCounts> {
  const idempotencyTtlMs = options.idempotencyTtlMs ?? idempotencyTtlSecondsDefault * 1000
  const onProgress = options.onProgress ?? (() => {})
  if ((await store.readMeta(metaKeys.importInProgress)) !== undefined) {
    throw new ArchiveError('the database holds an unfinished import; delete it and import again')
  }
  if (!(await isEmpty(store))) throw new ArchiveError('the database is not empty; import needs an empty one')
  for await (const item of parseArchive(openLines(), idempotencyTtlMs)) void item
  await store.writeMeta([[metaKeys.importInProgress, JSON.stringify({ startedAtMs: Date.now() })]])
  const counts: ArchiveCounts = { accounts: 0, entries: 0, credentials: 0 }
  let writes = emptyWrites()
  /** Where each idempotency record of the round is, by its key: a round writes a key once. */
  let idempotencyIndex = new Map<string, number>()
  let records = 0
  const flush = async () => {
    const round = writes
    // Nothing to read or decide: the body only hands over the records (safe to run again).
    if (records > 0) await store.runRound(async () => ({ writes: round, value: undefined }))
    writes = emptyWrites()
    idempotencyIndex = new Map()
    records = 0
    onProgress(counts)
  }
  for await (const item of parseArchive(openLines(), idempotencyTtlMs)) {
    if (item.kind === 'credential') {
      // Every account is written by now: a credential must name one of them.
      if (counts.credentials === 0) await flush()
      if ((await store.readAccount(item.state.accountKey)) === undefined) {
        throw new ArchiveError(`credential ${item.credentialKey.slice(0, 12)}… names an account the export does not have`)
      }
      writes.credentials?.push([item.credentialKey, item.state])
      counts.credentials = (counts.credentials ?? 0) + 1
      records++
    } else if (item.kind === 'account') {
      writes.accounts.push([item.accountKey, item.account])
      writes.created?.push(item.accountKey)
      const { ref } = item.account
      if (ref !== undefined) {
        // A ref names one account: one named twice in the export is refused (the import stays unfinished).
        if ((await store.readRef(ref)) !== undefined || writes.refs?.some(([taken]) => taken === ref) === true) throw new ArchiveError(`the ref of account ${item.accountKey.slice(0, 12)}… names another account too`)
        ;(writes.refs ??= []).push([ref, item.accountKey])
      }
      if (item.version < 2) writes.credentials?.push([item.accountKey as string as CredentialKey, { accountKey: item.accountKey }])
      counts.accounts++
      records++
    } else if (item.kind === 'hold') {
      ;(writes.holds ??= []).push([item.accountKey, item.hold])
      records++
    } else {
      const { accountKey, entry } = item
      writes.entries.push([accountKey, entry])
      if (entry.idempotencyKey !== undefined && item.record !== undefined) {
        // A key used again after its window: the later entry's record replaces the earlier one.
        const key = idempotencyKeyOf(accountKey, entry.idempotencyKey)
        const record: [string, IdempotencyState] = [key, item.record]
        const index = idempotencyIndex.get(key)
        if (index === undefined) idempotencyIndex.set(key, writes.idempotency.push(record) - 1)
        else writes.idempotency[index] = record
      }
      counts.entries++
      records++
    }
    if (records >= limits.importBatchMax) await flush()
  }
  await flush()
  await markStoreFormat(store)
  await store.writeMeta([[metaKeys.importInProgress, undefined]])
  onProgress(counts)
  return counts
}

function emptyWrites(): RoundWrites {
  return { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [], credentials: [], created: [] }
}

/** No account and no idempotency record (meta records of a ledger that never wrote may remain). */
async function isEmpty(store: LedgerStore): Promise<boolean> {
  const snapshot = await store.snapshot()
  try {
    return (await snapshot.accounts(undefined, 1)).length === 0 && (await snapshot.idempotency(undefined, 1)).length === 0
  } finally {
    await snapshot.close()
  }
}
