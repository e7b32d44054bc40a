// Store formats. Format 1 keyed each account by its credential's SHA-256; format 2 adds the
// credentials table (credential -> account) and the public-id index, so an account outlives its
// credentials. Upgrading 1 -> 2 rewrites nothing: each account keeps its key as its internal id,
// and gets one credentials record (its key -> itself) and one public-id record. The records are
// written in bounded batches, each idempotent, with a cursor in the meta table; the format
// record is written last. A store without it is never served: start-up finishes the upgrade
// first (from the cursor), or stops. PostgreSQL does the same in its migration 3, in one
// transaction, which also writes the format record.
import assert from 'node:assert/strict'
import { metaKeys, type CredentialState } from './codec.js'
import type { LedgerStore } from './store.js'
import type { AccountKey, CredentialKey } from './types.js'

/** The format this code writes; it reads every earlier one only to upgrade it. */
export const storeFormatLatest = 2

export class StoreFormatError extends Error {
  override readonly name = 'StoreFormatError'
}

export interface UpgradeOptions {
  /** Accounts per batch. */
  batchMax: number
  /** Stop after this many batches, as a crash would (tests). */
  stopAfterBatches?: number
  /** Called after each batch with the accounts upgraded so far. */
  onProgress?: (accounts: number) => void
}

/** The store's format: 1 when no format record is there. */
export async function storeFormatOf(store: LedgerStore): Promise<number> {
  const text = await store.readMeta(metaKeys.storeFormat)
  if (text === undefined) return 1
  const format = Number(text)
  if (!Number.isInteger(format) || format < 1) throw new StoreFormatError(`the store's format record is damaged (${JSON.stringify(text.slice(0, 20))})`)
  return format
}

/**
 * Brings the store to storeFormatLatest; returns the accounts upgraded (0 when it was there).
 * Refuses a store of a later format, written by a newer AccMan.
 */
export async function upgradeStore(store: LedgerStore, options: UpgradeOptions): Promise<number> {
  assert.ok(Number.isInteger(options.batchMax) && options.batchMax >= 1)
  const format = await storeFormatOf(store)
  if (format > storeFormatLatest) {
    throw new StoreFormatError(`the store has format ${format}, written by a newer AccMan; this one reads format ${storeFormatLatest} at most`)
  }
  if (format === storeFormatLatest) return 0
  let after = (await store.readMeta(metaKeys.upgradeCursor)) as AccountKey | undefined
  let upgraded = 0
  for (let batches = 0; ; batches++) {
    if (options.stopAfterBatches !== undefined && batches >= options.stopAfterBatches) return upgraded
    const snapshot = await store.snapshot()
    let page: Array<[AccountKey, unknown]>
    try {
      page = await snapshot.accounts(after, options.batchMax)
    } finally {
      await snapshot.close()
    }
    if (page.length === 0) break
    const credentials: Array<[CredentialKey, CredentialState]> = page.map(([accountKey]) => {
      // Format 1 keyed an account by its credential's SHA-256: that key is both.
      return [accountKey as string as CredentialKey, { accountKey }]
    })
    const created = page.map(([accountKey]) => accountKey)
    // Nothing to read or decide: the body hands the records over (safe to run again).
    await store.runRound(async () => ({
      writes: { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [], credentials, created },
      value: undefined,
    }))
    after = page.at(-1)?.[0]
    assert.ok(after !== undefined)
    await store.writeMeta([[metaKeys.upgradeCursor, after]])
    upgraded += page.length
    options.onProgress?.(upgraded)
  }
  await store.writeMeta([
    [metaKeys.storeFormat, String(storeFormatLatest)],
    [metaKeys.upgradeCursor, undefined],
  ])
  return upgraded
}

/** Marks a new (empty) store as of the latest format, as import does once it has written. */
export async function markStoreFormat(store: LedgerStore): Promise<void> {
  await store.writeMeta([[metaKeys.storeFormat, String(storeFormatLatest)]])
}
