// Online backup: the export format, read from an explicit snapshot of the store while the writer
// keeps writing. Each round is stored atomically, holding an account's state with its new
// entries, so a snapshot holds every round whole or not at all: every account as of one instant,
// with its history up to that instant. A round acknowledged before the snapshot is taken is in it.
import { limits } from '../config.js'
import { exportStore, type ArchiveCounts } from './archive.js'
import type { LedgerStore, StoreSnapshot } from './store.js'

/**
 * Takes the snapshot now and returns the export as text chunks read from it. The snapshot is
 * released when the chunks are read to the end, or when the consumer stops early (a generator's
 * return runs its finally). Memory is one chunk plus one page of the store.
 */
export async function backupChunks(
  store: LedgerStore,
  counts: ArchiveCounts = { accounts: 0, entries: 0 },
): Promise<AsyncGenerator<string>> {
  const snapshot = await store.snapshot()
  return chunksOf(snapshot, counts)
}

async function* chunksOf(snapshot: StoreSnapshot, counts: ArchiveCounts): AsyncGenerator<string> {
  try {
    let chunk = ''
    for await (const line of exportStore(snapshot, counts)) {
      chunk += `${line}\n`
      // Lines are joined into chunks, so the stream is not one write per line.
      if (chunk.length < limits.exportChunkLengthMax) continue
      yield chunk
      chunk = ''
    }
    if (chunk !== '') yield chunk
  } finally {
    await snapshot.close()
  }
}
