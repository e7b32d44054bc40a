// The process: read the configuration, open the store, serve, and stop cleanly on a signal.
// Every start-up failure is one line on stderr and a non-zero exit, never a stack trace.
import { closeSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import closeWithGrace from 'close-with-grace'
import type { FastifyInstance } from 'fastify'
import { ConfigError, loadDotEnv, parseConfig, type Config } from './config.js'
import { buildApp } from './http/app.js'
import type { LedgerStore } from './ledger/index.js'
import { isStoreUrl, openStoreFor, printableLocation } from './ledger/open-store.js'
import { createLogger } from './log.js'

function fail(line: string): never {
  process.stderr.write(`accman: ${line}\n`)
  process.exit(1)
}

function startupProblem(error: unknown, config: Config): string {
  const location = printableLocation(config.dbPath)
  const code = (error as { code?: string; cause?: { code?: string } }).code
  const causeCode = (error as { cause?: { code?: string } }).cause?.code
  if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
    return `the database ${location} is in use by another process (LevelDB lock held); stop it first`
  }
  if (error instanceof ConfigError) return `invalid configuration: ${error.message}`
  if (code === 'EADDRINUSE') return `${config.host}:${config.port} is already in use`
  if (code === 'EADDRNOTAVAIL') return `cannot listen on ${config.host}: no such local address`
  if (code === 'LEVEL_DATABASE_NOT_OPEN' || code === 'LEVEL_IO_ERROR') {
    return `cannot open the database ${location}: ${(error as { cause?: Error }).cause?.message ?? code}`
  }
  return `cannot start: ${error instanceof Error ? error.message : String(error)}`
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : 'unknown error'
}

/**
 * Why the database directory cannot be used, or undefined once it exists and can be written.
 * LevelDB would create it with a recursive mkdir, which never returns for some paths (under /proc,
 * say) until Fastify gives up on the plugin: so it is made here, one level at a time.
 */
function databasePathProblem(dbPath: string): string | undefined {
  const problem = (detail: string) => `cannot open the database ${dbPath}: ${detail}`
  const missing: string[] = []
  for (let path = resolve(dbPath); ; ) {
    try {
      if (!statSync(path).isDirectory()) return problem(`ENOTDIR: ${path} is not a directory`)
      break
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') return problem(errorCode(error))
      missing.unshift(path)
      if (dirname(path) === path) break
      path = dirname(path)
    }
  }
  for (const directory of missing) {
    try {
      mkdirSync(directory)
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') return problem(`${errorCode(error)}: cannot create ${directory}`)
    }
  }
  try {
    // LevelDB's own lock file: opening it for append changes nothing, and proves we can write.
    closeSync(openSync(join(resolve(dbPath), 'LOCK'), 'a'))
  } catch (error) {
    return problem(`${errorCode(error)}: cannot write in it`)
  }
  return undefined
}

/** Runs the server until a signal stops it; what `npm start` and `accman serve` run. */
export async function serve(): Promise<void> {
  let config: Config
  try {
    loadDotEnv()
    config = parseConfig(process.env)
  } catch (error) {
    fail(error instanceof ConfigError ? `invalid configuration: ${error.message}` : `cannot read .env: ${String(error)}`)
  }
  if (!isStoreUrl(config.dbPath)) {
    const pathProblem = databasePathProblem(config.dbPath)
    if (pathProblem !== undefined) fail(pathProblem)
  }
  const log = createLogger(config.logLevel)
  let store: LedgerStore | undefined
  let app: FastifyInstance | undefined
  try {
    store = await openStoreFor(config.dbPath, { sync: config.sync, timeoutMs: config.dbTimeoutMs })
    app = await buildApp(config, {
      store,
      logger: log,
      onFatal: (error) => {
        // Crash rather than corrupt: the writer has stopped, so nothing more is written. Let the
        // refusals reach their clients, then exit for the supervisor to restart us.
        log.fatal({ err: error }, 'ledger writer stopped')
        setTimeout(() => process.exit(1), config.shutdownGraceMs).unref()
        void app?.close().finally(() => process.exit(1))
      },
    })
    await app.listen({ host: config.host, port: config.port })
  } catch (error) {
    // One line on stderr, as documented; not also a log line on stdout.
    const line = startupProblem(error, config)
    // The app owns the store once built; before that, it is closed here.
    await (app === undefined ? store?.close() : app.close())?.catch(() => {})
    fail(line)
  }
  // Handlers first, so a signal right after the 'listening' line still stops cleanly.
  closeWithGrace({ delay: config.shutdownGraceMs }, async ({ signal, err }) => {
    if (err !== undefined) log.fatal({ err }, 'stopping after an uncaught error')
    else log.info({ signal }, 'stopping')
    await app.close()
    log.info('stopped')
  })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.port
  log.info({ host: config.host, port, db: printableLocation(config.dbPath), sync: config.sync }, 'listening')
}

