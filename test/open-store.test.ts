// The one function that picks the engine for ACCMAN_DB: a LevelDB directory or a PostgreSQL
// URL, which is never printed with its password.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { limits } from '../src/config.js'
import { archiveHeader } from '../src/ledger/archive.js'
import { LevelStore } from '../src/ledger/level/store.js'
import { isStoreUrl, openStoreFor, printableLocation } from '../src/ledger/open-store.js'
import { PostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { runCli, ServerProcess, temporaryDirectories } from './support.js'

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
    const store = await openStoreFor(await freshDatabase(), { sync: true })
    expect(store).toBeInstanceOf(PostgresStore)
    expect(store.sharing).toBe('shared')
    expect(await store.ping()).toBe(true)
    await store.close()
    const refused = await openStoreFor('postgres://accman:s3cret-pw@127.0.0.1:5/ledger', { sync: true, timeoutMs: 1000 }).catch(
      (error: unknown) => error,
    )
    expect(refused).toBeInstanceOf(Error)
    expect(String((refused as Error).message)).not.toContain('s3cret-pw')
  })

  test('a location as it may be printed: a URL without its user, password and parameters', () => {
    expect(printableLocation(url)).toBe('postgresql://db.internal:5432/ledger')
    expect(printableLocation('./data')).toBe('./data')
    expect(printableLocation('postgres://[broken')).toBe('the configured PostgreSQL URL')
  })
})

test('the offline commands work on PostgreSQL: LevelDB export, import into PostgreSQL, verify and export again, equal', async () => {
  const leveldb = join(temporaryDirectory(), 'data')
  const file = join(temporaryDirectory(), 'from-level.jsonl')
  const history = [`${archiveHeader}`]
  writeFileSync(file, `${history.join('\n')}\n`)
  expect((await runCli(['import', file, '--db', leveldb])).code).toBe(0)
  const server = new ServerProcess({ ACCMAN_DB: leveldb })
  const base = `http://127.0.0.1:${await server.port}`
  for (const by of ['100', '-1', '7']) {
    const answer = await fetch(`${base}/mod?cred=QUFBQQ%3D%3D&by=${by}`, { method: 'PATCH', headers: { 'idempotency-key': `k${by}` } })
    expect(answer.status).toBe(200)
  }
  expect(await server.kill('SIGTERM')).toBe(0)
  const exported = await runCli(['export', '--db', leveldb])
  expect(exported.code).toBe(0)
  writeFileSync(file, exported.stdout)
  const pg = await freshDatabase()
  const imported = await runCli(['import', file, '--db', pg])
  expect(imported.code, imported.stderr).toBe(0)
  const verified = await runCli(['verify', '--db', pg])
  expect(verified.code, verified.stderr).toBe(0)
  const again = await runCli(['export', '--db', pg])
  expect(again.code).toBe(0)
  expect(again.stdout).toBe(exported.stdout)
  expect(exported.stdout).toContain('"tot":"106"')
  for (const run of [imported, verified, again]) expect(run.stdout + run.stderr).not.toMatch(/accman_[0-9a-f]{16}.*:.*@|postgres:\/\/[^@\s]*:[^@\s]*@/)
})

test('a server on PostgreSQL answers mod, tot and past, and /readyz', async () => {
  const server = new ServerProcess({ ACCMAN_DB: await freshDatabase() })
  const base = `http://127.0.0.1:${await server.port}`
  const mod = await fetch(`${base}/mod?cred=QUFBQQ%3D%3D&by=5`, { method: 'PATCH', headers: { accept: 'application/json' } })
  expect(mod.status).toBe(200)
  expect(await mod.json()).toMatchObject({ tot: '5', seq: 1 })
  expect(await (await fetch(`${base}/tot?cred=QUFBQQ%3D%3D`)).text()).toBe('5')
  const past = (await (await fetch(`${base}/past?cred=QUFBQQ%3D%3D`, { headers: { accept: 'application/json' } })).json()) as { entries: unknown[] }
  expect(past.entries).toHaveLength(1)
  expect((await fetch(`${base}/readyz`)).status).toBe(200)
  expect(await server.kill('SIGTERM')).toBe(0)
})

/** The samples of one metric in a /metrics text, by their labels. */
function samplesOf(text: string, name: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line)
    if (match !== null) samples.set(match[1] ?? '', Number(match[2]))
  }
  return samples
}

test('/metrics on PostgreSQL has the connection pool gauges; on LevelDB it has none', async () => {
  const server = new ServerProcess({ ACCMAN_DB: await freshDatabase() })
  const base = `http://127.0.0.1:${await server.port}`
  // Four mods at once need more than one connection: the pool opens them and keeps them idle.
  const mods = await Promise.all(['1', '2', '3', '4'].map((by) => fetch(`${base}/mod?cred=QUFBQQ%3D%3D&by=${by}`, { method: 'PATCH' })))
  expect(mods.map((mod) => mod.status)).toEqual([200, 200, 200, 200])
  const metrics = await (await fetch(`${base}/metrics`)).text()
  const pool = samplesOf(metrics, 'accman_store_pool_connections')
  expect([...pool.keys()].sort()).toEqual(['{state="idle"}', '{state="total"}', '{state="waiting"}'])
  expect(pool.get('{state="total"}')).toBeGreaterThanOrEqual(1)
  expect(pool.get('{state="total"}')).toBeLessThanOrEqual(limits.storePoolMax)
  expect(pool.get('{state="idle"}')).toBeLessThanOrEqual(pool.get('{state="total"}') ?? 0)
  expect(pool.get('{state="waiting"}')).toBe(0)
  expect(metrics).toContain('# TYPE accman_store_pool_connections gauge')
  expect(await server.kill('SIGTERM')).toBe(0)
  const leveldb = new ServerProcess({ ACCMAN_DB: join(temporaryDirectory(), 'data') })
  const levelMetrics = await (await fetch(`http://127.0.0.1:${await leveldb.port}/metrics`)).text()
  expect(levelMetrics).toContain('accman_writer_queue_depth')
  expect(levelMetrics).not.toContain('accman_store_pool')
  expect(await leveldb.kill('SIGTERM')).toBe(0)
})
