// The PostgreSQL engine against a real server (test/global-postgres.ts), one database per suite.
import { createServer, connect, type Server, type Socket } from 'node:net'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { accountKeyOf, idempotencyKeyOf, type AccountState } from '../src/ledger/codec.js'
import { isLedgerError } from '../src/ledger/errors.js'
import { migrate, migrations, schemaVersionLatest } from '../src/ledger/postgres/migrations.js'
import { openPostgresStore, type PostgresStore } from '../src/ledger/postgres/store.js'
import type { LedgerStore, RoundWrites } from '../src/ledger/store.js'
import type { AccountKey, Entry } from '../src/ledger/types.js'
import { closedPort } from './fault-proxy.js'
import { freshDatabase } from './postgres-support.js'

const options = { sync: true, poolMax: 10, timeoutMs: 5000 }

function noWrites(): RoundWrites {
  return { accounts: [], entries: [], idempotency: [], idempotencyDeletes: [] }
}

/** One round adding `by` to the account, optionally under an idempotency key; resolves with the entry's seq. */
async function add(store: LedgerStore, accountKey: AccountKey, by: bigint, idempotencyKey?: string): Promise<number> {
  return await store.runRound(async (transaction) => {
    const storeKey = idempotencyKey === undefined ? undefined : idempotencyKeyOf(accountKey, idempotencyKey)
    const states = await transaction.readRound([accountKey], storeKey === undefined ? [] : [storeKey])
    const earlier = states.idempotency[0]
    if (earlier !== undefined) return { writes: undefined, value: earlier.seq }
    const previous: AccountState = states.accounts[0] ?? { tot: 0n, seq: 0, atMs: 0 }
    const atMs = Math.max(previous.atMs, transaction.nowMs ?? 0)
    const entry: Entry = { seq: previous.seq + 1, by, tot: previous.tot + by, atMs }
    if (idempotencyKey !== undefined) entry.idempotencyKey = idempotencyKey
    const writes = noWrites()
    writes.accounts.push([accountKey, { tot: entry.tot, seq: entry.seq, atMs }])
    writes.entries.push([accountKey, entry])
    if (storeKey !== undefined) writes.idempotency.push([storeKey, { by, tot: entry.tot, seq: entry.seq, atMs }])
    return { writes, value: entry.seq }
  })
}

async function sql<R extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<R>(text, values)).rows
  } finally {
    await client.end()
  }
}

/** Waits for `condition`, failing after `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * A TCP proxy in front of PostgreSQL: passes, stalls (forwards nothing more), or, once armed,
 * drops the connection when the answer to a COMMIT arrives (the round is stored, never heard).
 */
class PgProxy {
  mode: 'pass' | 'stall' | 'drop-commit-answer' = 'pass'
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  port = 0

  constructor(targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      this.#sockets.add(client).add(upstream)
      let commitSent = false
      client.on('data', (chunk) => {
        if (this.mode === 'stall') return
        if (this.mode === 'drop-commit-answer' && chunk.includes('COMMIT')) commitSent = true
        upstream.write(chunk)
      })
      upstream.on('data', (chunk) => {
        if (this.mode === 'stall') return
        if (commitSent) {
          this.mode = 'pass'
          client.destroy()
          upstream.destroy()
          return
        }
        client.write(chunk)
      })
      for (const socket of [client, upstream]) {
        socket.on('error', () => undefined)
        socket.on('close', () => {
          client.destroy()
          upstream.destroy()
        })
      }
    })
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const address = this.#server.address()
    if (address === null || typeof address !== 'object') throw new Error('no address')
    this.port = address.port
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

function viaPort(url: string, port: number): string {
  const parsed = new URL(url)
  parsed.port = String(port)
  return parsed.toString()
}

describe('PostgresStore', () => {
  let url: string
  let store: PostgresStore
  const opened: PostgresStore[] = []
  const open = async (target = url, extra: Partial<typeof options> = {}): Promise<PostgresStore> => {
    const next = await openPostgresStore(target, { ...options, ...extra })
    opened.push(next)
    return next
  }

  beforeAll(async () => {
    url = await freshDatabase()
    store = await open()
  })
  afterAll(async () => {
    for (const each of opened) await each.close()
  })

  it('is a shared engine and answers ping', async () => {
    expect(store.sharing).toBe('shared')
    expect(await store.ping()).toBe(true)
  })

  it('stores a round atomically: account, entry and idempotency record, readable with plain SQL', async () => {
    const key = accountKeyOf('atomic')
    expect(await add(store, key, 5n, 'k1')).toBe(1)
    expect(await add(store, key, -2n)).toBe(2)
    const account = await store.readAccount(key)
    expect(account?.tot).toBe(3n)
    expect(account?.seq).toBe(2)
    const rows = await sql<{ seq: string; by: string; tot: string; idempotency_key: string | null }>(
      url,
      'SELECT seq, by::text, tot::text, idempotency_key FROM entries WHERE account_key = $1 ORDER BY seq',
      [key],
    )
    expect(rows).toEqual([
      { seq: '1', by: '5', tot: '5', idempotency_key: 'k1' },
      { seq: '2', by: '-2', tot: '3', idempotency_key: null },
    ])
    const history = await store.pageHistory(key, { seqLow: 1, seqHigh: 2, limit: 10, order: 'desc' })
    expect(history.map((entry) => entry.seq)).toEqual([2, 1])
    expect(history[1]?.idempotencyKey).toBe('k1')
  })

  it('writes nothing when a round fails before it returns', async () => {
    const key = accountKeyOf('failing')
    await expect(
      store.runRound(async (transaction) => {
        await transaction.readRound([key], [])
        const writes = noWrites()
        writes.accounts.push([key, { tot: 1n, seq: 1, atMs: 1 }])
        // seq 2 without seq 1 is fine for the table; the second entry repeats seq 1 and breaks the round.
        writes.entries.push([key, { seq: 1, by: 1n, tot: 1n, atMs: 1 }], [key, { seq: 1, by: 1n, tot: 1n, atMs: 1 }])
        return { writes, value: undefined }
      }),
    ).rejects.toThrow()
    expect(await store.readAccount(key)).toBeUndefined()
  })

  it('never loses an update: two stores (two nodes) x 500 concurrent rounds of +1 on one account', async () => {
    // 1000 rounds wait for 20 connections here: the timeout bounds that wait too.
    const patient = await open(url, { timeoutMs: 60_000 })
    const other = await open(url, { timeoutMs: 60_000 })
    const key = accountKeyOf('contended')
    const rounds = Array.from({ length: 500 }, () => [add(patient, key, 1n), add(other, key, 1n)]).flat()
    const seqs = await Promise.all(rounds)
    expect(new Set(seqs).size).toBe(1000)
    const account = await store.readAccount(key)
    expect(account?.tot).toBe(1000n)
    expect(account?.seq).toBe(1000)
    const rows = await sql<{ n: string; low: string; high: string; sum: string }>(
      url,
      'SELECT count(*)::text AS n, min(seq)::text AS low, max(seq)::text AS high, sum(by)::text AS sum FROM entries WHERE account_key = $1',
      [key],
    )
    expect(rows).toEqual([{ n: '1000', low: '1', high: '1000', sum: '1000' }])
  })

  it('applies an idempotency key sent to both nodes at once once', async () => {
    const other = await open()
    const key = accountKeyOf('idempotent')
    const seqs = await Promise.all([add(store, key, 7n, 'once'), add(other, key, 7n, 'once'), add(store, key, 7n, 'once')])
    expect(seqs).toEqual([1, 1, 1])
    expect((await store.readAccount(key))?.tot).toBe(7n)
  })

  it('runs a body again after a conflict, and stores its writes once', async () => {
    const other = await open()
    const key = accountKeyOf('created-twice')
    let bodies = 0
    const counted = store.runRound(async (transaction) => {
      bodies += 1
      const states = await transaction.readRound([key], [])
      const previous = states.accounts[0] ?? { tot: 0n, seq: 0, atMs: 0 }
      // The first time, another node creates the account between this read and this round's insert.
      if (bodies === 1) await add(other, key, 10n)
      const entry: Entry = { seq: previous.seq + 1, by: 1n, tot: previous.tot + 1n, atMs: transaction.nowMs ?? 0 }
      const writes = noWrites()
      writes.accounts.push([key, { tot: entry.tot, seq: entry.seq, atMs: entry.atMs }])
      writes.entries.push([key, entry])
      return { writes, value: entry.seq }
    })
    expect(await counted).toBe(2)
    expect(bodies).toBe(2)
    expect((await store.readAccount(key))?.tot).toBe(11n)
  })

  it('gives a snapshot that later rounds do not change, paged by key', async () => {
    const key = accountKeyOf('snapshot')
    await add(store, key, 1n, 's1')
    const snapshot = await store.snapshot()
    try {
      await add(store, key, 1n, 's2')
      const accounts = await snapshot.accounts(undefined, 1000)
      expect(accounts.find(([each]) => each === key)?.[1].seq).toBe(1)
      expect((await snapshot.history(key, 1, 10)).map((entry) => entry.seq)).toEqual([1])
      const records = await snapshot.idempotency(undefined, 1000)
      expect(records.filter(([storeKey]) => storeKey.startsWith(key)).map(([storeKey]) => storeKey)).toEqual([idempotencyKeyOf(key, 's1')])
      const first = await snapshot.accounts(undefined, 1)
      const second = await snapshot.accounts(first[0]?.[0], 1)
      expect((second[0]?.[0] ?? '') > (first[0]?.[0] ?? '')).toBe(true)
    } finally {
      await snapshot.close()
    }
    expect((await store.readAccount(key))?.seq).toBe(2)
  })

  it('finds the first seq at or after a time', async () => {
    const key = accountKeyOf('times')
    await store.runRound(async (transaction) => {
      await transaction.readRound([key], [])
      const writes = noWrites()
      const entries: Entry[] = [10, 20, 20, 30].map((atMs, index) => ({ seq: index + 1, by: 1n, tot: BigInt(index + 1), atMs }))
      writes.accounts.push([key, { tot: 4n, seq: 4, atMs: 30 }])
      for (const entry of entries) writes.entries.push([key, entry])
      return { writes, value: undefined }
    })
    expect(await store.firstSeqAtOrAfter(key, 15, 1, 4)).toBe(2)
    expect(await store.firstSeqAtOrAfter(key, 20, 3, 4)).toBe(3)
    expect(await store.firstSeqAtOrAfter(key, 31, 1, 4)).toBe(5)
  })

  it('reads, writes and deletes meta records', async () => {
    expect(await store.readMeta('epoch')).toBeUndefined()
    await store.writeMeta([
      ['epoch', '3'],
      ['marker', 'x'],
    ])
    expect(await store.readMeta('epoch')).toBe('3')
    await store.writeMeta([
      ['epoch', '4'],
      ['marker', undefined],
    ])
    expect(await store.readMeta('epoch')).toBe('4')
    expect(await store.readMeta('marker')).toBeUndefined()
  })

  it('reports its pool', async () => {
    const stats = store.poolStats()
    expect(stats.total).toBeGreaterThanOrEqual(1)
    expect(stats.idle).toBeLessThanOrEqual(stats.total)
    expect(stats.waiting).toBe(0)
  })
})

describe('PostgresStore when the connection fails', () => {
  let url: string
  let proxy: PgProxy
  const opened: PostgresStore[] = []
  const password = (): string => decodeURIComponent(new URL(url).password)

  beforeAll(async () => {
    url = await freshDatabase()
  })
  afterEach(async () => {
    for (const each of opened.splice(0)) await each.close()
    await proxy?.close()
  })

  it('resolves a round whose COMMIT answer was lost but which was stored', async () => {
    proxy = new PgProxy(Number(new URL(url).port))
    await proxy.listen()
    const store = await openPostgresStore(viaPort(url, proxy.port), options)
    opened.push(store)
    const key = accountKeyOf('commit-lost-stored')
    proxy.mode = 'drop-commit-answer'
    expect(await add(store, key, 9n)).toBe(1)
    const rows = await sql<{ tot: string }>(url, 'SELECT tot::text FROM accounts WHERE account_key = $1', [key])
    expect(rows).toEqual([{ tot: '9' }])
  })

  it('rejects ACCMAN_STORE_UNAVAILABLE when the server process ends during COMMIT before storing', async () => {
    const store = await openPostgresStore(url, options)
    opened.push(store)
    const key = accountKeyOf('commit-killed')
    // A deferred trigger holds the COMMIT long enough to end its server process there.
    await sql(url, `CREATE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$`)
    await sql(url, `CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT ON entries DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit()`)
    try {
      const round = add(store, key, 4n).then(
        () => 'resolved',
        (error: unknown) => (isLedgerError(error) ? error.code : String(error)),
      )
      let pid: number | undefined
      await waitFor(async () => {
        const rows = await sql<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'")
        pid = rows[0]?.pid
        return pid !== undefined
      })
      await sql(url, 'SELECT pg_terminate_backend($1)', [pid])
      expect(await round).toBe('ACCMAN_STORE_UNAVAILABLE')
      expect(await sql(url, 'SELECT 1 FROM entries WHERE account_key = $1', [key])).toEqual([])
    } finally {
      await sql(url, 'DROP TRIGGER hold_commit ON entries')
    }
  })

  it('rejects ACCMAN_STORE_UNAVAILABLE within the timeout when the server stalls, and recovers', async () => {
    proxy = new PgProxy(Number(new URL(url).port))
    await proxy.listen()
    const store = await openPostgresStore(viaPort(url, proxy.port), { ...options, timeoutMs: 300 })
    opened.push(store)
    const key = accountKeyOf('stalled')
    proxy.mode = 'stall'
    const error: unknown = await add(store, key, 1n).catch((caught: unknown) => caught)
    expect(isLedgerError(error) && error.code).toBe('ACCMAN_STORE_UNAVAILABLE')
    expect(String((error as Error).message)).not.toContain(password())
    expect(await store.ping()).toBe(false)
    proxy.mode = 'pass'
    await waitFor(async () => await store.ping())
    expect(await add(store, key, 1n)).toBe(1)
  })

  it('rejects ACCMAN_STORE_UNAVAILABLE without the password when the port is closed or the password wrong', async () => {
    const refused = viaPort(url, await closedPort())
    const refusal: unknown = await openPostgresStore(refused, options).catch((caught: unknown) => caught)
    expect(isLedgerError(refusal) && refusal.code).toBe('ACCMAN_STORE_UNAVAILABLE')
    expect((refusal as Error).message).not.toContain(password())
    expect((refusal as Error).message).toContain('127.0.0.1')
    const wrong = new URL(url)
    wrong.password = 'not-the-Secret-42'
    const denial: unknown = await openPostgresStore(wrong.toString(), options).catch((caught: unknown) => caught)
    expect(isLedgerError(denial) && denial.code).toBe('ACCMAN_STORE_UNAVAILABLE')
    expect((denial as Error).message).not.toContain('not-the-Secret-42')
  })
})

describe('migrations', () => {
  it('apply once when several nodes start together, and again do nothing', async () => {
    const url = await freshDatabase()
    const stores = await Promise.all(Array.from({ length: 4 }, async () => await openPostgresStore(url, options)))
    try {
      const versions = await sql<{ version: number }>(url, 'SELECT version FROM schema_version ORDER BY version')
      // Each feature has its own version; on a fresh database every one is applied, in order.
      expect(versions.map((row) => row.version)).toEqual(migrations.map((migration) => migration.version))
      const client = new pg.Client({ connectionString: url })
      await client.connect()
      try {
        expect(await migrate(client)).toBe(schemaVersionLatest)
      } finally {
        await client.end()
      }
      const tables = await sql<{ tablename: string }>(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
      expect(tables.map((row) => row.tablename)).toEqual(['account_refs', 'accounts', 'credentials', 'entries', 'holds', 'idempotency', 'meta', 'outbox', 'schema_version'])
    } finally {
      for (const each of stores) await each.close()
    }
  })
})
