// The one function that picks the engine for ACCMAN_DB: a LevelDB directory today; a PostgreSQL
// URL is routed to its own branch, which names the URL without its password.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { ConfigError } from '../src/config.js'
import { archiveHeader } from '../src/ledger/archive.js'
import { LevelStore } from '../src/ledger/level/store.js'
import { isStoreUrl, openStoreFor, printableLocation } from '../src/ledger/open-store.js'
import { runCli, temporaryDirectories } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-open-store-')
const url = 'postgresql://accman:s3cret-pw@db.internal:5432/ledger?sslmode=verify-full'

describe('openStoreFor', () => {
  test('a directory opens the LevelDB engine, exclusive, creating the database where asked', async () => {
    const store = await openStoreFor(join(temporaryDirectory(), 'data'), { sync: true })
    expect(store).toBeInstanceOf(LevelStore)
    expect(store.sharing).toBe('exclusive')
    expect(await store.ping()).toBe(true)
    await store.close()
    const missing = await openStoreFor(join(temporaryDirectory(), 'missing'), { sync: true, createIfMissing: false }).catch((error: unknown) => error)
    expect((missing as { cause?: Error }).cause?.message).toMatch(/does not exist/)
  })

  test('postgres:// and postgresql:// URLs go to the PostgreSQL branch; anything else is a directory', async () => {
    expect(['postgres://h/d', 'postgresql://h/d', 'POSTGRES://h/d'].map(isStoreUrl)).toEqual([true, true, true])
    expect(['./data', '/var/lib/accman', 'postgres', 'http://h/d'].map(isStoreUrl)).toEqual([false, false, false, false])
    const refused = await openStoreFor(url, { sync: true }).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(ConfigError)
    expect(String((refused as Error).message)).not.toContain('s3cret-pw')
  })

  test('a location as it may be printed: a URL without its user, password and parameters', () => {
    expect(printableLocation(url)).toBe('postgresql://db.internal:5432/ledger')
    expect(printableLocation('./data')).toBe('./data')
    expect(printableLocation('postgres://[broken')).toBe('the configured PostgreSQL URL')
  })
})

test('the offline commands go through it too: a PostgreSQL URL is refused with one line and no password', async () => {
  const file = join(temporaryDirectory(), 'export.jsonl')
  writeFileSync(file, `${archiveHeader}\n`)
  for (const command of [['verify'], ['export'], ['import', file]]) {
    const run = await runCli([...command, '--db', url])
    expect(run.code, command[0]).toBe(2)
    expect(run.stderr).toBe('accman: ACCMAN_DB is a PostgreSQL URL, but this build has no PostgreSQL engine\n')
    expect(run.stdout + run.stderr).not.toContain('s3cret-pw')
  }
})
