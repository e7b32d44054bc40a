// Integrity check of a whole store, through one snapshot: every account's history is contiguous
// and chains to its balance, every idempotency record matches the entry it answers, no
// idempotency key is on two entries of an account less than a retention window apart, and no
// idempotency record belongs to no account. One pass over the accounts in key order, beside one
// over the idempotency records (a merge join on the account key), so memory stays flat however
// large the store: one page, and the keys and records of one account. LevelDB's raw key space
// gets a few checks of its own (see level/verify.ts).
import { AssertionError } from 'node:assert'
import { limits } from '../config.js'
import { KeyWindow } from './archive.js'
import { isAccountKey, metaKeys, parseIdempotencyKey, tableNames, type AccountState, type IdempotencyState } from './codec.js'
import { LevelStore } from './level/store.js'
import { levelStoreFaults } from './level/verify.js'
import { idempotencyTtlSecondsDefault } from './limits.js'
import type { LedgerStore, StoreSnapshot } from './store.js'
import type { AccountKey, CredentialKey, Entry } from './types.js'

/** The kinds of entry that are about a hold: each names it and changes held by heldBy. */
const holdKinds: ReadonlySet<string> = new Set(['hold', 'settle', 'void', 'expire'])

export interface VerifyCounts {
  accounts: number
  entries: number
  idempotencyKeys: number
  /** Credentials checked (stores of format 2). */
  credentials?: number
}

export interface VerifyReport extends VerifyCounts {
  /** Total faults found; `faults` lists the first `faultsListedMax` of them. */
  faultCount: number
  faults: string[]
}

const { verifyFaultsListedMax: faultsListedMax, verifyProgressAccounts: progressEvery, scanPageMax } = limits

export interface VerifyOptions {
  /** The retention window the store is served with (ACCMAN_IDEMPOTENCY_TTL). */
  idempotencyTtlMs?: number
  /** Now, to tell a record pruned after its window from one missing. */
  nowMs?: number
  onProgress?: (counts: VerifyCounts) => void
}

interface Window {
  ttlMs: number
  nowMs: number
}

type Fault = (message: string) => void

export async function verifyStore(store: LedgerStore, options: VerifyOptions = {}): Promise<VerifyReport> {
  const window: Window = { ttlMs: options.idempotencyTtlMs ?? idempotencyTtlSecondsDefault * 1000, nowMs: options.nowMs ?? Date.now() }
  const onProgress = options.onProgress ?? (() => {})
  const report: VerifyReport = { accounts: 0, entries: 0, idempotencyKeys: 0, faultCount: 0, faults: [] }
  const fault: Fault = (message) => {
    report.faultCount++
    if (report.faults.length < faultsListedMax) report.faults.push(message)
  }
  if ((await store.readMeta(metaKeys.importInProgress)) !== undefined) fault('an import did not finish: the store is incomplete')
  const snapshot = await store.snapshot()
  try {
    const records = new RecordCursor(snapshot, fault)
    await records.advance()
    for (let after: AccountKey | undefined; ; ) {
      const accounts = await readOrFault(() => snapshot.accounts(after, scanPageMax), fault)
      // A corrupt account record ends the walk: the page it is on cannot be read past.
      if (accounts === undefined || accounts.length === 0) break
      for (const [accountKey, account] of accounts) {
        const key: string = accountKey
        if (!isAccountKey(key)) {
          fault(`${tableNames.accounts}: malformed account key ${JSON.stringify(key.slice(0, 80))}`)
          continue
        }
        await records.skipOrphans(accountKey)
        const owned = await records.takeAccount(accountKey, report)
        await checkHistory(snapshot, accountKey, account, { owned, complete: !records.broken }, window, report, fault)
        for (const { record } of owned.values()) {
          if (!record.matched) fault(`account ${short(accountKey)}: an idempotency record does not match entry ${record.seq}`)
        }
        report.accounts++
        if (report.accounts % progressEvery === 0) onProgress(report)
      }
      after = accounts.at(-1)?.[0]
    }
    await records.skipOrphans(undefined)
    await checkCredentials(store, snapshot, report, fault)
  } finally {
    await snapshot.close()
  }
  if (store instanceof LevelStore) await levelStoreFaults(store.db, fault)
  onProgress(report)
  return report
}

/**
 * Every credential names an account that exists. (That every account keeps a live credential is
 * not checked: it needs an index from account to credentials, or memory that grows with the
 * store; an account whose credentials all retired is reachable by its public id and still holds
 * its balance, so it is not a fault either.)
 */
async function checkCredentials(store: LedgerStore, snapshot: StoreSnapshot, report: VerifyReport, fault: Fault): Promise<void> {
  for (let after: CredentialKey | undefined; ; ) {
    const page = await readOrFault(() => snapshot.credentials(after, scanPageMax), fault)
    if (page === undefined || page.length === 0) return
    for (const [credentialKey, state] of page) {
      report.credentials = (report.credentials ?? 0) + 1
      if ((await store.readAccount(state.accountKey)) === undefined) {
        fault(`${tableNames.credentials}: credential ${short(credentialKey)} names account ${short(state.accountKey)}, which does not exist`)
      }
    }
    after = page.at(-1)?.[0]
  }
}

/** A corrupt record fails its read with an AssertionError (see codec.ts): a fault, not a crash. */
async function readOrFault<T>(read: () => Promise<T>, fault: Fault): Promise<T | undefined> {
  try {
    return await read()
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error
    fault(error.message)
    return undefined
  }
}

const short = (accountKey: string) => `${accountKey.slice(0, 12)}…`

interface OwnedRecord {
  record: IdempotencyState & { matched?: boolean }
}

/** The idempotency records in key order, a page at a time, one record ahead. */
class RecordCursor {
  readonly #snapshot: StoreSnapshot
  readonly #fault: Fault
  #page: Array<[string, IdempotencyState]> = []
  #index = 0
  #after: string | undefined
  /** A corrupt record ended the walk: missing records are no longer told from unread ones. */
  broken = false
  current: [string, IdempotencyState] | undefined

  constructor(snapshot: StoreSnapshot, fault: Fault) {
    this.#snapshot = snapshot
    this.#fault = fault
  }

  async advance(): Promise<void> {
    if (this.#index >= this.#page.length && !this.broken) {
      const page = await readOrFault(() => this.#snapshot.idempotency(this.#after, scanPageMax), this.#fault)
      if (page === undefined) this.broken = true
      this.#page = page ?? []
      this.#index = 0
      this.#after = this.#page.at(-1)?.[0]
    }
    this.current = this.#page[this.#index++]
  }

  /** Reports and passes records whose account sorts before `accountKey` (all if undefined). */
  async skipOrphans(accountKey: AccountKey | undefined): Promise<void> {
    while (this.current !== undefined) {
      const owner = this.current[0].slice(0, Math.max(0, this.current[0].indexOf('!')))
      if (accountKey !== undefined && owner >= accountKey) return
      this.#fault(`${tableNames.idempotency}: ${JSON.stringify(this.current[0].slice(0, 100))} belongs to no account`)
      await this.advance()
    }
  }

  /** The records of one account, by the client's key. */
  async takeAccount(accountKey: AccountKey, report: VerifyReport): Promise<Map<string, OwnedRecord>> {
    const owned = new Map<string, OwnedRecord>()
    while (this.current !== undefined && this.current[0].startsWith(`${accountKey}!`)) {
      const [key, record] = this.current
      const parsed = parseIdempotencyKey(key)
      if (parsed === undefined) this.#fault(`${tableNames.idempotency}: malformed key`)
      else owned.set(parsed.idempotencyKey, { record: { ...record } })
      report.idempotencyKeys++
      await this.advance()
    }
    return owned
  }
}

/**
 * Walks one account's history in seq order. An entry with a key must have its record (unless
 * past its window: it may have been pruned), and a record is matched by the entry it answers.
 */
async function checkHistory(
  snapshot: StoreSnapshot,
  accountKey: AccountKey,
  account: AccountState,
  records: AccountRecords,
  window: Window,
  report: VerifyReport,
  fault: Fault,
): Promise<void> {
  let seq = 0
  /** Undefined after a corrupt entry: the next one cannot be chained. */
  let tot: bigint | undefined = 0n
  let held: bigint | undefined = 0n
  let atMs = 0
  const keys = new KeyWindow(window.ttlMs)
  // A page with a corrupt entry is read again one entry at a time up to that entry, to report it
  // and go on.
  let oneByOne = false
  for (let next = 1; ; ) {
    let entries: Entry[]
    try {
      entries = await snapshot.history(accountKey, next, oneByOne ? 1 : scanPageMax)
    } catch (error) {
      if (!(error instanceof AssertionError)) throw error
      if (oneByOne) {
        // Taken as the entry at `next`, which it most likely is.
        fault(error.message)
        report.entries++
        seq = next++
        tot = undefined
      }
      oneByOne = !oneByOne
      continue
    }
    if (entries.length === 0) break
    for (const entry of entries) {
      if (!Number.isSafeInteger(entry.seq) || entry.seq < next) {
        fault(`${tableNames.history}: a malformed key after entry ${seq} of account ${short(accountKey)}`)
        return
      }
      if (entry.seq !== seq + 1) fault(`account ${short(accountKey)}: entry ${entry.seq} follows entry ${seq}`)
      if (tot !== undefined && entry.tot !== tot + entry.by) {
        fault(`account ${short(accountKey)}: entry ${entry.seq} tot ${entry.tot} is not ${tot} + ${entry.by}`)
      }
      if (held !== undefined && (entry.held ?? 0n) !== held + (entry.heldBy ?? 0n)) {
        fault(`account ${short(accountKey)}: entry ${entry.seq} held ${entry.held ?? 0n} is not ${held} + ${entry.heldBy ?? 0n}`)
      }
      // Only the kinds about a hold name one and change held; the others (mod, move, freeze, ...) do neither.
      const aboutHold = holdKinds.has(entry.kind ?? 'mod')
      if (aboutHold ? entry.hold === undefined || entry.heldBy === undefined : entry.hold !== undefined || entry.heldBy !== undefined) {
        fault(`account ${short(accountKey)}: entry ${entry.seq} of kind ${entry.kind ?? 'mod'} has the wrong hold fields`)
      }
      if ((entry.held ?? 0n) > entry.tot) fault(`account ${short(accountKey)}: entry ${entry.seq} holds more than its balance`)
      if (entry.atMs < atMs) fault(`account ${short(accountKey)}: entry ${entry.seq} is earlier than the one before`)
      if (entry.idempotencyKey !== undefined) checkKeyedEntry(entry, entry.idempotencyKey, accountKey, records, keys, window, fault)
      if (entry.kind === 'move' || entry.peer !== undefined) await checkMoveEntry(snapshot, accountKey, entry, fault)
      seq = entry.seq
      tot = entry.tot
      held = entry.held ?? 0n
      atMs = entry.atMs
      next = entry.seq + 1
      report.entries++
    }
  }
  if (seq !== account.seq) fault(`account ${short(accountKey)}: ${seq} entries, the balance says ${account.seq}`)
  if (tot !== undefined && tot !== account.tot) fault(`account ${short(accountKey)}: history ends at ${tot}, the balance is ${account.tot}`)
  if (seq > 0 && atMs !== account.atMs) fault(`account ${short(accountKey)}: last entry time differs from the balance's`)
  if (held !== undefined && held !== (account.held ?? 0n)) fault(`account ${short(accountKey)}: history ends at held ${held}, the account says ${account.held ?? 0n}`)
  await checkHolds(snapshot, accountKey, account, fault)
}

/** The account's open holds add up to its held, count and next expiry. */
async function checkHolds(snapshot: StoreSnapshot, accountKey: AccountKey, account: AccountState, fault: Fault): Promise<void> {
  let held = 0n
  let count = 0
  let nextExpiryMs: number | undefined
  for (let after: string | undefined; ; ) {
    const page = await readOrFault(() => snapshot.holds(accountKey, after, scanPageMax), fault)
    if (page === undefined || page.length === 0) break
    for (const hold of page) {
      if (hold.closed !== undefined) continue
      held += hold.by
      count++
      nextExpiryMs = Math.min(nextExpiryMs ?? hold.expiresMs, hold.expiresMs)
    }
    after = page.at(-1)?.id
  }
  if (held !== (account.held ?? 0n) || count !== (account.holdCount ?? 0) || nextExpiryMs !== account.nextExpiryMs) {
    fault(`account ${short(accountKey)}: its open holds (${count}, ${held} held) disagree with the account`)
  }
}

/** The idempotency records of one account; not complete when a corrupt record ended their walk. */
interface AccountRecords {
  owned: Map<string, OwnedRecord>
  complete: boolean
}

function checkKeyedEntry(
  entry: Entry,
  idempotencyKey: string,
  accountKey: AccountKey,
  records: AccountRecords,
  keys: KeyWindow,
  window: Window,
  fault: Fault,
): void {
  if (!keys.admit(idempotencyKey, entry.atMs)) {
    fault(`account ${short(accountKey)}: entry ${entry.seq} repeats an idempotency key within its retention window`)
  }
  const owned = records.owned.get(idempotencyKey)
  // Past its window a record may have been pruned. An import rebuilds the records of mods only.
  const isMod = entry.kind === undefined || entry.kind === 'mod'
  if (owned === undefined && isMod && records.complete && window.nowMs - entry.atMs < window.ttlMs) {
    fault(`account ${short(accountKey)}: entry ${entry.seq} has a key with no record`)
  }
  const record = owned?.record
  if (record === undefined || record.seq !== entry.seq) return
  record.matched = record.by === entry.by && record.tot === entry.tot && (record.atMs === undefined || record.atMs === entry.atMs)
}

/**
 * A move's two entries name each other: the other side must exist, be a move with the same id
 * and the opposite amount, and name this entry back. One point read per move entry; no memory.
 */
async function checkMoveEntry(snapshot: StoreSnapshot, accountKey: AccountKey, entry: Entry, fault: Fault): Promise<void> {
  const where = `account ${short(accountKey)}: move entry ${entry.seq}`
  if (entry.kind !== 'move' || entry.move === undefined || entry.peer === undefined) {
    fault(`${where} lacks its kind, id or other side`)
    return
  }
  const peer = entry.peer
  const found = await readOrFault(() => snapshot.history(peer.accountKey, peer.seq, 1), fault)
  const other = found?.[0]
  if (other === undefined || other.seq !== peer.seq) {
    fault(`${where}: its other side is missing`)
    return
  }
  if (other.kind !== 'move' || other.move !== entry.move || other.by !== -entry.by) {
    fault(`${where}: its other side is not the same move with the opposite amount`)
  }
  if (other.peer?.accountKey !== accountKey || other.peer.seq !== entry.seq) fault(`${where}: its other side does not name it back`)
}
