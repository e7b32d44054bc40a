// Fills a stopped store directly, in large unsynced batches with one fsync at the end: the
// benchmark's stores of 100,000 entries and of 1,000,000 accounts. Records are encoded by the
// ledger's own codec. Account i holds `entriesOf(i)` entries: an opening credit of
// `openingCredit`, then credits of 1. A ledger opened and closed on it at the end leaves the key
// filters a clean stop leaves.
import { ClassicLevel } from 'classic-level'
import { encodeAccount, encodeEntry, historyKeyOf } from '../src/ledger/codec.js'
import { accountKeyOf, openLedger, type RootDb } from '../src/ledger/index.js'
import { openLevelStore, tablesOf } from '../src/ledger/level/store.js'

/** A valid credential for account number `index`: deterministic, 16 characters. */
export function benchCredential(index: number): string {
  return `YmVuY2g${index.toString(36).padStart(9, '0')}`
}

const batchEntries = 20_000

export const openingCredit = 1_000_000_000_000n

export async function bulkLoad(
  path: string,
  accounts: number,
  entriesOf: (index: number) => number,
  onProgress: (accounts: number, entries: number) => void = () => {},
): Promise<{ accounts: number; entries: number }> {
  const db: RootDb = new ClassicLevel<string, string>(path)
  await db.open()
  const tables = tablesOf(db)
  const atMs = Date.now()
  let batch = db.batch()
  let entries = 0
  for (let index = 0; index < accounts; index++) {
    const accountKey = accountKeyOf(benchCredential(index))
    const count = entriesOf(index)
    let tot = 0n
    for (let seq = 1; seq <= count; seq++) {
      const by = seq === 1 ? openingCredit : 1n
      tot += by
      const entry = { by, tot, atMs }
      batch.put(historyKeyOf(accountKey, seq), encodeEntry(entry), { sublevel: tables.history })
      if (batch.length >= batchEntries) {
        await batch.write()
        batch = db.batch()
      }
    }
    batch.put(accountKey, encodeAccount({ tot, seq: count, atMs }), { sublevel: tables.accounts })
    entries += count
    if (index % 50_000 === 0) onProgress(index, entries)
  }
  await batch.write({ sync: true })
  await db.close()
  // As after a clean stop of a server that served this store: the ledger keeps its key filters,
  // so the measured server starts from them rather than scanning every key.
  const store = await openLevelStore(new ClassicLevel<string, string>(path), { sync: true })
  const ledger = await openLedger(store, { writerBatchMax: 1, writerQueueMax: 1 })
  await ledger.close()
  return { accounts, entries }
}
