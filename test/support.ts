// Shared test helpers: an app on memory-level, a real HTTP client over a bounded socket pool,
// and the real server as a child process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Agent, request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { MemoryLevel } from 'memory-level'
import pg from 'pg'
import type { FastifyInstance } from 'fastify'
import { afterAll, expect } from 'vitest'
import type { Logger } from 'pino'
import { limits } from '../src/config.js'
import { buildApp, type AppConfig } from '../src/http/app.js'
import type { LedgerStore, RootDb } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { run as runProgram } from '../src/cli/program.js'

export const classicCred = 'abcdefghijklmnopqrstuvwxyz0123456789-_=='

/**
 * The engine of the apps testApp builds when given neither a store nor a db: LevelDB on
 * memory-level, or a new database on the test run's PostgreSQL server. A test file that runs
 * another file's tests on PostgreSQL sets it before importing that file.
 */
export const testEngine: { name: 'leveldb' | 'postgres' } = { name: 'leveldb' }

/** The PostgreSQL database of this test file, made once: creating one per app would take longer than most tests. */
let fileDatabase: Promise<string> | undefined

async function defaultStore(): Promise<LedgerStore> {
  if (testEngine.name === 'postgres') {
    fileDatabase ??= freshDatabase()
    const store = await openPostgresStore(await fileDatabase, { sync: true, poolMax: limits.storePoolMax, timeoutMs: 30_000 })
    // The file's tests run one after another, each on an empty ledger: every table but the schema's version.
    await emptyTables(await fileDatabase)
    return store
  }
  return await openLevelStore(new MemoryLevel<string, string>(), { sync: false })
}

async function emptyTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const tables = await client.query<{ name: string }>(
      "SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_version'",
    )
    await client.query(`TRUNCATE ${tables.rows.map((row) => row.name).join(', ')}`)
  } finally {
    await client.end()
  }
}

export async function testApp(
  options: { db?: RootDb; store?: LedgerStore; logger?: Logger; now?: () => number; config?: Partial<AppConfig> } = {},
): Promise<FastifyInstance> {
  // A store given is used as it is; else a LevelDB engine on `db`; else the file's engine.
  const store =
    options.store ?? (options.db === undefined ? await defaultStore() : await openLevelStore(options.db, { sync: false }))
  return buildApp(
    { ...limits, tokens: [], readTokens: [], metricsPublic: false, ...options.config },
    {
      store,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.now === undefined ? {} : { now: options.now }),
    },
  )
}

/** Listens on a free port of 127.0.0.1 and answers the base URL, e.g. `http://127.0.0.1:40123`. */
export async function listenOnLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  if (typeof address !== 'object' || address === null) throw new Error('no address')
  return `http://127.0.0.1:${address.port}`
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** A keep-alive HTTP client with at most `sockets` connections, like a service's pool. */
export class Client {
  readonly #agent: Agent
  readonly #base: URL

  constructor(base: string, sockets = 100) {
    this.#base = new URL(base)
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets })
  }

  send(method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          agent: this.#agent,
          host: this.#base.hostname,
          port: this.#base.port,
          method,
          path,
          headers,
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (chunk: Buffer) => chunks.push(chunk))
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
          )
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error('request timed out')))
      req.on('error', reject)
      req.end()
    })
  }

  close(): void {
    this.#agent.destroy()
  }
}

/**
 * Polls `condition` every 10 ms until it holds; throws, naming `what`, if it still does not after
 * `timeoutMs`.
 */
export async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** One answer read off a raw connection. */
export interface RawAnswer {
  status: number
  /** Lower-case names. */
  headers: Record<string, string>
  body: string
}

/** The answers in `text`, in order; a trailing incomplete one is left out. */
export function parseAnswers(text: string): RawAnswer[] {
  const answers: RawAnswer[] = []
  let rest = text
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) return answers
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? '0')
    if (rest.length < end + 4 + length) return answers
    answers.push({ status: Number(statusLine.slice(9, 12)), headers, body: rest.slice(end + 4, end + 4 + length) })
    rest = rest.slice(end + 4 + length)
  }
}

/** A TCP connection that sends exactly the bytes given, for what an HTTP client would not send. */
export class RawConnection {
  readonly #socket: Socket
  #received = ''
  #closed = false

  constructor(port: number) {
    this.#socket = connect(port, '127.0.0.1')
    this.#socket.on('data', (chunk: Buffer) => (this.#received += chunk.toString('latin1')))
    this.#socket.on('close', () => (this.#closed = true))
    // A reset after the server answered and closed is the end of the exchange, not a failure.
    this.#socket.on('error', () => {})
  }

  send(bytes: string): void {
    this.#socket.write(bytes, 'latin1')
  }

  get received(): string {
    return this.#received
  }

  /** The answers received once there are `count` of them; throws after `timeoutMs`. */
  async answers(count: number, timeoutMs = 5_000): Promise<RawAnswer[]> {
    await waitFor(`${count} answers`, () => parseAnswers(this.#received).length >= count, timeoutMs)
    return parseAnswers(this.#received)
  }

  /** Everything received once the server closed the connection; throws after `timeoutMs`. */
  async closed(timeoutMs = 5_000): Promise<string> {
    await waitFor('the server to close the connection', () => this.#closed, timeoutMs)
    return this.#received
  }

  destroy(): void {
    this.#socket.destroy()
  }
}

/** Sends `bytes` on a new connection and answers its one answer, once the server has closed it. */
export async function rawExchange(port: number, bytes: string, timeoutMs = 5_000): Promise<RawAnswer> {
  const connection = new RawConnection(port)
  try {
    connection.send(bytes)
    const answers = parseAnswers(await connection.closed(timeoutMs))
    if (answers.length !== 1) throw new Error(`expected one answer, got ${answers.length}: ${connection.received.slice(0, 200)}`)
    return answers[0] as RawAnswer
  } finally {
    connection.destroy()
  }
}

/** A pino destination that keeps every line, for tests that read the logs. */
export function logSink(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
}

/** Temporary directories that are removed after the file's tests. */
export function temporaryDirectories(prefix: string): () => string {
  const made: string[] = []
  afterAll(() => {
    for (const directory of made) rmSync(directory, { recursive: true, force: true })
  })
  return () => {
    const directory = mkdtempSync(join(tmpdir(), prefix))
    made.push(directory)
    return directory
  }
}

export interface HistoryEntry {
  seq: number
  by: string
  tot: string
}

/**
 * An account's whole history through /past, page by page. An unknown account is an empty history,
 * or a failure with `missingIs: 'error'`; any other answer than 200 or 404 is a failure.
 */
export async function readHistory(
  client: Client,
  cred: string,
  options: { missingIs: 'empty' | 'error' } = { missingIs: 'empty' },
): Promise<HistoryEntry[]> {
  const entries: HistoryEntry[] = []
  for (;;) {
    const reply = await client.send('GET', `/past?${query({ cred, limit: '1000', after: String(entries.length) })}`)
    if (reply.status === 404 && options.missingIs === 'empty') return entries
    expect(reply.status, reply.body).toBe(200)
    const page = JSON.parse(reply.body) as { entries: HistoryEntry[] }
    if (page.entries.length === 0) return entries
    entries.push(...page.entries)
  }
}

export function query(parameters: Record<string, string>): string {
  return new URLSearchParams(parameters).toString()
}

/**
 * The accman bin as `npm run build` leaves it: production runs `node dist/cli/main.js serve`, and
 * operators the same file as `accman`. test/global-build.ts builds it before the tests run.
 */
export const builtCli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the built accman CLI, as an operator would, with only the given environment. */
export function runCli(args: string[], env: Record<string, string> = {}, cwd = process.cwd()): Promise<CliRun> {
  return runProcess(process.execPath, [builtCli, ...args], env, cwd)
}

/** Runs a command to its end with only PATH and `env`, collecting its output. */
export function runProcess(command: string, args: string[], env: Record<string, string>, cwd = process.cwd()): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Servers started and not yet exited, so that a failed test does not leave one running. */
const runningServers = new Set<ServerProcess>()

/** Kills, each by its own pid, the servers a test started and did not stop (after a failure). */
export async function killLeftoverServers(): Promise<void> {
  await Promise.all([...runningServers].map((server) => server.kill('SIGKILL')))
}

/** The server as production runs it, `node dist/cli/main.js serve`, in its own process; `args` replace `dist/cli/main.js serve`. */
export class ServerProcess {
  readonly child: ChildProcessWithoutNullStreams
  readonly lines: string[] = []
  readonly stderr: string[] = []
  readonly exited: Promise<number | null>
  readonly port: Promise<number>

  constructor(env: Record<string, string>, cwd = process.cwd(), args = [builtCli, 'serve']) {
    this.child = spawn(process.execPath, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', ACCMAN_HOST: '127.0.0.1', ACCMAN_PORT: '0', ...env },
      stdio: 'pipe',
    })
    runningServers.add(this)
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code) => {
        runningServers.delete(this)
        resolve(code)
      }),
    )
    createInterface({ input: this.child.stderr }).on('line', (line) => this.stderr.push(line))
    this.port = new Promise((resolve, reject) => {
      createInterface({ input: this.child.stdout }).on('line', (line) => {
        this.lines.push(line)
        if (!line.startsWith('{')) return
        const record = JSON.parse(line) as { msg?: string; port?: number }
        if (record.msg === 'listening' && record.port !== undefined) resolve(record.port)
      })
      void this.exited.then((code) => reject(new Error(`server exited with ${code}: ${this.stderr.join('\n')}`)))
    })
    // A server expected to fail is awaited through `exited`, not `port`.
    this.port.catch(() => {})
  }

  async url(): Promise<string> {
    return `http://127.0.0.1:${await this.port}`
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    this.child.kill(signal)
    return this.exited
  }
}

/** Runs one command line in this process (not a child), collecting what it writes. */
export async function runHere(args: string[]): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const collect = (append: (text: string) => void) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        append(chunk.toString('utf8'))
        done()
      },
    })
  const io = { stdout: collect((text) => (stdout += text)), stderr: collect((text) => (stderr += text)) }
  const code = await runProgram(['node', 'accman', ...args], io)
  return { code, stdout, stderr }
}
