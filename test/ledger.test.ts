import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { afterAll } from 'vitest'
import type { RootDb } from '../src/ledger/index.js'
import { ledgerSuite } from './ledger.suite.js'

const directories: string[] = []
const locations = new WeakMap<RootDb, string>()
const roots = new WeakMap<RootDb, RootDb>()

function classicLevel(location = mkdtempSync(join(tmpdir(), 'accman-ledger-'))): RootDb {
  directories.push(location)
  const db = new ClassicLevel<string, string>(location)
  locations.set(db, location)
  return db
}

afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})

ledgerSuite('memory-level', { makeDb: () => new MemoryLevel<string, string>() })
ledgerSuite('a memory-level sublevel', { makeDb: () => new MemoryLevel<string, string>().sublevel('nested', {}) })
ledgerSuite('classic-level', {
  makeDb: () => classicLevel(),
  reopen: async (db) => classicLevel(locations.get(db)),
})
/** The sublevel 'nested' of a classic-level database, remembering its root and location. */
function nestedLevel(location?: string): RootDb {
  const root = classicLevel(location)
  const nested = root.sublevel<string, string>('nested', {})
  locations.set(nested, locations.get(root) ?? '')
  roots.set(nested, root)
  return nested
}

ledgerSuite('a classic-level sublevel', {
  makeDb: () => nestedLevel(),
  reopen: async (db) => {
    // Closing a sublevel leaves its root open, holding the LevelDB lock.
    await roots.get(db)?.close()
    return nestedLevel(locations.get(db))
  },
})
