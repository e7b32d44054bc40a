import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { afterAll } from 'vitest'
import type { LedgerStore, RootDb } from '../src/ledger/index.js'
import { LevelStore, openLevelStore } from '../src/ledger/level/store.js'
import { accountsSuite } from './accounts.suite.js'
import { ledgerSuite } from './ledger.suite.js'
import { lifecycleSuite } from './lifecycle.suite.js'

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

const level = (db: RootDb) => openLevelStore(db, { sync: true })
const dbOf = (store: LedgerStore): RootDb => (store as LevelStore).db

ledgerSuite('memory-level', { makeStore: () => level(new MemoryLevel<string, string>()), dbOf })
ledgerSuite('a memory-level sublevel', { makeStore: () => level(new MemoryLevel<string, string>().sublevel('nested', {})), dbOf })
ledgerSuite('classic-level', {
  makeStore: () => level(classicLevel()),
  reopen: async (store) => level(classicLevel(locations.get(dbOf(store)))),
  dbOf,
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
  makeStore: () => level(nestedLevel()),
  reopen: async (store) => {
    // Closing a sublevel leaves its root open, holding the LevelDB lock.
    await roots.get(dbOf(store))?.close()
    return level(nestedLevel(locations.get(dbOf(store))))
  },
  dbOf,
})

lifecycleSuite('memory-level', { makeStore: () => level(new MemoryLevel<string, string>()), dbOf })
lifecycleSuite('classic-level', { makeStore: () => level(classicLevel()), dbOf })
accountsSuite('memory-level', { makeStore: () => level(new MemoryLevel<string, string>()), dbOf })
accountsSuite('classic-level', { makeStore: () => level(classicLevel()), dbOf })
