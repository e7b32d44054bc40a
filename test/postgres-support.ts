// Helpers for the tests of the PostgreSQL engine: one new empty database per test file or suite.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { inject } from 'vitest'

/** The URL of the test run's server (its `postgres` database). */
export function serverUrl(): string {
  return inject('pgUrl')
}

/** Creates a new empty database on the test server and returns its URL. */
export async function freshDatabase(): Promise<string> {
  const name = `accman_${randomBytes(8).toString('hex')}`
  const client = new pg.Client({ connectionString: serverUrl(), connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = new URL(serverUrl())
  url.pathname = `/${name}`
  return url.toString()
}
