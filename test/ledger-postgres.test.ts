// The shared ledger suite on the PostgreSQL engine: a new database on the test run's server for
// every store, and the same database opened again for the tests that reopen.
import assert from 'node:assert/strict'
import type { LedgerStore } from '../src/ledger/index.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { accountsSuite } from './accounts.suite.js'
import { ledgerSuite } from './ledger.suite.js'
import { lifecycleSuite } from './lifecycle.suite.js'
import { freshDatabase } from './postgres-support.js'

const urls = new WeakMap<LedgerStore, string>()

async function open(url: string): Promise<LedgerStore> {
  const store = await openPostgresStore(url, { sync: true, poolMax: 10, timeoutMs: 30_000 })
  urls.set(store, url)
  return store
}

ledgerSuite('PostgreSQL', {
  storeClock: true,
  makeStore: async () => open(await freshDatabase()),
  reopen: async (store) => {
    const url = urls.get(store)
    assert.ok(url !== undefined)
    return open(url)
  },
})

lifecycleSuite('PostgreSQL', { storeClock: true, makeStore: async () => open(await freshDatabase()) })
accountsSuite('PostgreSQL', { storeClock: true, makeStore: async () => open(await freshDatabase()) })
