// The store contract (test/store.contract.ts) on the LevelDB engine (memory-level, classic-level
// and a sublevel of each) and on the PostgreSQL engine.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { afterAll, expect, test } from 'vitest'
import { accountKeyOf } from '../src/ledger/codec.js'
import type { RootDb } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { storeContract } from './store.contract.js'

const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})
function classicLevel(): RootDb {
  const directory = mkdtempSync(join(tmpdir(), 'accman-store-'))
  directories.push(directory)
  return new ClassicLevel<string, string>(directory)
}

const level = (db: RootDb) => openLevelStore(db, { sync: true })
storeContract('memory-level', () => level(new MemoryLevel<string, string>()))
storeContract('a memory-level sublevel', () => level(new MemoryLevel<string, string>().sublevel<string, string>('nested', {})))
storeContract('classic-level', () => level(classicLevel()))
storeContract('a classic-level sublevel', () => level(classicLevel().sublevel<string, string>('nested', {})))
// PostgreSQL: a new database on the test run's server for every store.
storeContract('PostgreSQL', async () => await openPostgresStore(await freshDatabase(), { sync: true, poolMax: 10, timeoutMs: 30_000 }))

test('LevelDB: a round that fails its round-trip check leaves no key at all in the database', async () => {
  const db = new MemoryLevel<string, string>()
  const store = await level(db)
  const alice = accountKeyOf('QUFBQQ==')
  const writes = {
    accounts: [[alice, { tot: -1n, seq: 1, atMs: 0 }]] as [typeof alice, { tot: bigint; seq: number; atMs: number }][],
    entries: [],
    idempotency: [],
    idempotencyDeletes: [],
  }
  await expect(store.runRound(async () => ({ writes, value: undefined }))).rejects.toThrow(/does not round-trip|corrupt record/)
  expect(await db.keys().all()).toEqual([])
  await store.close()
})
