// Offline integrity check of a whole store: every account's history is contiguous and chains to
// its balance, every idempotency record matches the entry it answers, no idempotency key is on two
// entries of an account less than a retention window apart, and nothing is stored that belongs to
// no account. One streaming pass per table in key order (a merge join on the account key), so
// memory stays flat however large the store (the keys of one window of one account at most).
import { AssertionError } from 'node:assert'
import { limits } from '../config.js'
import { KeyWindow } from './archive.js'
import {
  decodeAccount,
  decodeEntry,
  decodeIdempotency,
  historyKeyOf,
  idempotencyKeyOf,
  isAccountKey,
  metaKeys,
  parseHistoryKey,
  parseIdempotencyKey,
  tableNames,
  type AccountState,
} from './codec.js'
import { tablesOf } from './ledger.js'
import { idempotencyTtlSecondsDefault } from './limits.js'
import type { AccountKey } from './types.js'
import type { RootDb, Table } from './level/store.js'

export interface VerifyCounts {
  accounts: number
  entries: number
  idempotencyKeys: number
}

export interface VerifyReport extends VerifyCounts {
  /** Total faults found; `faults` lists the first `faultsListedMax` of them. */
  faultCount: number
  faults: string[]
}

const { verifyFaultsListedMax: faultsListedMax, verifyProgressAccounts: progressEvery } = limits

/** Reads a table in key order, one row ahead, so two tables can be walked side by side. */
class Cursor {
  readonly #iterator: ReturnType<Table['iterator']>
  current: [string, string] | undefined
  constructor(table: Table) {
    this.#iterator = table.iterator()
  }
  async advance(): Promise<[string, string] | undefined> {
    this.current = (await this.#iterator.next()) as [string, string] | undefined
    return this.current
  }
  close(): Promise<void> {
    return this.#iterator.close()
  }
}

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

export async function verifyStore(db: RootDb, options: VerifyOptions = {}): Promise<VerifyReport> {
  const window: Window = { ttlMs: options.idempotencyTtlMs ?? idempotencyTtlSecondsDefault * 1000, nowMs: options.nowMs ?? Date.now() }
  const onProgress = options.onProgress ?? (() => {})
  await db.open()
  const tables = tablesOf(db)
  const report: VerifyReport = { accounts: 0, entries: 0, idempotencyKeys: 0, faultCount: 0, faults: [] }
  const fault = (message: string) => {
    report.faultCount++
    if (report.faults.length < faultsListedMax) report.faults.push(message)
  }
  const meta = db.sublevel<string, string>(tableNames.meta, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  if ((await meta.get(metaKeys.importInProgress)) !== undefined) fault('an import did not finish: the store is incomplete')
  const history = new Cursor(tables.history)
  const idempotency = new Cursor(tables.idempotency)
  await history.advance()
  await idempotency.advance()
  try {
    for await (const [accountKey, value] of tables.accounts.iterator()) {
      if (!isAccountKey(accountKey)) {
        fault(`${tableNames.accounts}: malformed account key ${JSON.stringify(accountKey.slice(0, 80))}`)
        continue
      }
      const account = decodeOrFault(() => decodeAccount(accountKey, value), fault)
      await skipOrphans(history, accountKey, tableNames.history, fault)
      await checkHistory(history, accountKey, account, tables, window, report, fault)
      await skipOrphans(idempotency, accountKey, tableNames.idempotency, fault)
      await checkIdempotency(idempotency, accountKey, account, tables.history, report, fault)
      report.accounts++
      if (report.accounts % progressEvery === 0) onProgress(report)
    }
    await skipOrphans(history, undefined, tableNames.history, fault)
    await skipOrphans(idempotency, undefined, tableNames.idempotency, fault)
    await checkForeignKeys(db, fault)
  } finally {
    await history.close()
    await idempotency.close()
  }
  onProgress(report)
  return report
}

function decodeOrFault<T>(decode: () => T, fault: (message: string) => void): T | undefined {
  try {
    return decode()
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error
    fault(error.message)
    return undefined
  }
}

const short = (accountKey: string) => `${accountKey.slice(0, 12)}…`

/** Reports and passes rows whose account sorts before `accountKey` (all rows if undefined). */
async function skipOrphans(
  cursor: Cursor,
  accountKey: AccountKey | undefined,
  table: string,
  fault: (message: string) => void,
): Promise<void> {
  while (cursor.current !== undefined) {
    const owner = cursor.current[0].slice(0, 64)
    if (accountKey !== undefined && owner >= accountKey) return
    fault(`${table}: ${JSON.stringify(cursor.current[0].slice(0, 100))} belongs to no account`)
    await cursor.advance()
  }
}

async function checkHistory(
  history: Cursor,
  accountKey: AccountKey,
  account: AccountState | undefined,
  tables: ReturnType<typeof tablesOf>,
  window: Window,
  report: VerifyReport,
  fault: (message: string) => void,
): Promise<void> {
  let seq = 0
  let tot = 0n
  let atMs = 0
  const keys = new KeyWindow(window.ttlMs)
  while (history.current !== undefined && history.current[0].startsWith(accountKey)) {
    const [key, value] = history.current
    const parsed = parseHistoryKey(key)
    const entry = decodeOrFault(() => decodeEntry(key, value), fault)
    if (parsed === undefined) fault(`${tableNames.history}: malformed key ${JSON.stringify(key.slice(0, 100))}`)
    else if (parsed.seq !== seq + 1) fault(`account ${short(accountKey)}: entry ${parsed.seq} follows entry ${seq}`)
    if (entry !== undefined && parsed !== undefined) {
      if (entry.tot !== tot + entry.by) {
        fault(`account ${short(accountKey)}: entry ${parsed.seq} tot ${entry.tot} is not ${tot} + ${entry.by}`)
      }
      if (entry.atMs < atMs) fault(`account ${short(accountKey)}: entry ${parsed.seq} is earlier than the one before`)
      if (entry.idempotencyKey !== undefined) {
        if (!keys.admit(entry.idempotencyKey, entry.atMs)) {
          fault(`account ${short(accountKey)}: entry ${parsed.seq} repeats an idempotency key within its retention window`)
        }
        const record = await tables.idempotency.get(idempotencyKeyOf(accountKey, entry.idempotencyKey))
        // Past its window a record may have been pruned.
        if (record === undefined && window.nowMs - entry.atMs < window.ttlMs) {
          fault(`account ${short(accountKey)}: entry ${parsed.seq} has a key with no record`)
        }
      }
      seq = parsed.seq
      tot = entry.tot
      atMs = entry.atMs
    }
    report.entries++
    await history.advance()
  }
  if (account === undefined) return
  if (seq !== account.seq) fault(`account ${short(accountKey)}: ${seq} entries, the balance says ${account.seq}`)
  if (tot !== account.tot) fault(`account ${short(accountKey)}: history ends at ${tot}, the balance is ${account.tot}`)
  if (seq > 0 && atMs !== account.atMs) fault(`account ${short(accountKey)}: last entry time differs from the balance's`)
}

async function checkIdempotency(
  idempotency: Cursor,
  accountKey: AccountKey,
  account: AccountState | undefined,
  history: Table,
  report: VerifyReport,
  fault: (message: string) => void,
): Promise<void> {
  while (idempotency.current !== undefined && idempotency.current[0].startsWith(accountKey)) {
    const [key, value] = idempotency.current
    const parsed = parseIdempotencyKey(key)
    const record = decodeOrFault(() => decodeIdempotency(key, value), fault)
    if (parsed === undefined) fault(`${tableNames.idempotency}: malformed key`)
    if (parsed !== undefined && record !== undefined && account !== undefined) {
      const entryValue = record.seq <= account.seq ? await history.get(historyKeyOf(accountKey, record.seq)) : undefined
      const historyKey = historyKeyOf(accountKey, record.seq)
      const entry = entryValue === undefined ? undefined : decodeOrFault(() => decodeEntry(historyKey, entryValue), fault)
      const matches =
        entry !== undefined &&
        entry.seq === record.seq &&
        entry.by === record.by &&
        entry.tot === record.tot &&
        entry.idempotencyKey === parsed.idempotencyKey &&
        (record.atMs === undefined || record.atMs === entry.atMs)
      if (!matches) fault(`account ${short(accountKey)}: an idempotency record does not match entry ${record.seq}`)
    }
    report.idempotencyKeys++
    await idempotency.advance()
  }
}

/** Keys outside the three tables: nothing else belongs in a ledger's store. */
async function checkForeignKeys(db: RootDb, fault: (message: string) => void): Promise<void> {
  const names = Object.values(tableNames).sort()
  const gaps: { gte?: string; lt?: string }[] = []
  let lower: string | undefined
  for (const name of names) {
    gaps.push(lower === undefined ? { lt: `!${name}!` } : { gte: lower, lt: `!${name}!` })
    lower = `!${name}"` // '"' follows '!': the first key past the sublevel's range
  }
  gaps.push(lower === undefined ? {} : { gte: lower })
  for (const range of gaps) {
    const keys = await db.keys({ ...range, keyEncoding: 'utf8', limit: faultsListedMax }).all()
    for (const key of keys) fault(`a key outside the ledger's tables: ${JSON.stringify(String(key).slice(0, 100))}`)
  }
}
