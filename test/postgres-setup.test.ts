import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { freshDatabase } from './postgres-support.js'

describe('PostgreSQL test server', () => {
  it('gives each caller its own empty database', async () => {
    const first = await freshDatabase()
    const second = await freshDatabase()
    expect(first).not.toBe(second)
    const client = new pg.Client({ connectionString: first })
    await client.connect()
    try {
      await client.query('CREATE TABLE t (x int)')
      await client.query('INSERT INTO t VALUES (7)')
      const rows = await client.query<{ x: number }>('SELECT x FROM t')
      expect(rows.rows).toEqual([{ x: 7 }])
    } finally {
      await client.end()
    }
    const other = new pg.Client({ connectionString: second })
    await other.connect()
    try {
      const tables = await other.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")
      expect(tables.rows).toEqual([{ n: 0 }])
    } finally {
      await other.end()
    }
  })
})
