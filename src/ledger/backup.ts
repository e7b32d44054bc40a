// Online backup: the export format, read from an explicit snapshot of the store while the writer
// keeps writing. Each round is one atomic batch holding an account's record with its new entries,
// so a snapshot holds every round whole or not at all: every account as of one instant, with its
// history up to that instant. A round acknowledged before the snapshot is taken is in it.
import assert from 'node:assert/strict'
import { limits } from '../config.js'
import { exportStore, type ArchiveCounts } from './archive.js'
import type { RootDb } from './level/store.js'


/**
 * Takes the snapshot now (synchronously) and returns the export as text chunks read from it. The
 * snapshot is released when the chunks are read to the end, or when the consumer stops early
 * (a generator's return runs its finally). Memory is one chunk plus the iterators' buffers.
 */
export function backupChunks(db: RootDb, counts: ArchiveCounts = { accounts: 0, entries: 0 }): AsyncGenerator<string> {
  assert.equal(db.status, 'open', 'a backup needs an open database')
  assert.ok(db.supports.explicitSnapshots, 'a backup needs a store with explicit snapshots')
  const snapshot = db.snapshot()
  return chunksOf(db, snapshot, counts)
}

async function* chunksOf(db: RootDb, snapshot: ReturnType<RootDb['snapshot']>, counts: ArchiveCounts): AsyncGenerator<string> {
  try {
    let chunk = ''
    for await (const line of exportStore(db, counts, { snapshot })) {
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
