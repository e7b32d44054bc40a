// The commands that open the store itself (ACCMAN_DB or --db): verify, export and import. On
// LevelDB, its lock lets only one process open the directory, so they run while the server is
// stopped.
import { once } from 'node:events'
import { createReadStream, createWriteStream, existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { ConfigError, limits } from '../config.js'
import { ArchiveError, exportStore, importStore, type ArchiveCounts } from '../ledger/archive.js'
import { isStoreUrl, openStoreFor, printableLocation } from '../ledger/open-store.js'
import type { LedgerStore } from '../ledger/store.js'
import type { AccountKey } from '../ledger/types.js'
import { verifyStore } from '../ledger/verify.js'
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { verifyReportText } from './format.js'
import { progressBar } from './progress.js'

/**
 * What an offline command may open at `dbPath`. An existing store always; for import (`create`),
 * also a directory that does not exist yet in one that does, or an empty directory. Anything else
 * is refused before LevelDB opens it, since opening makes the directory (and a LOCK file) even
 * when it is not to create a store: a mistyped path must not leave a new directory behind.
 */
function checkStorePath(dbPath: string, create: boolean): 'store' | 'new' {
  const isDirectory = (path: string) => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true
  if (existsSync(join(dbPath, 'CURRENT'))) return 'store'
  if (!create) throw new CliError(`no database at ${dbPath}`, exitCodes.databaseUnavailable)
  if (!existsSync(dbPath)) {
    if (isDirectory(dirname(resolve(dbPath)))) return 'new'
    throw new CliError(`cannot import into ${dbPath}: its parent directory does not exist`, exitCodes.usage)
  }
  if (isDirectory(dbPath) && readdirSync(dbPath).length === 0) return 'new'
  throw new CliError(`cannot import into ${dbPath}: it is not a database nor an empty directory`, exitCodes.usage)
}

/** Opens the store for an offline command; a running server holds a LevelDB directory's lock. */
async function openStore(dbPath: string, createIfMissing: boolean): Promise<LedgerStore> {
  // A URL is the other engine's: it checks its own location.
  if (!isStoreUrl(dbPath)) createIfMissing = checkStorePath(dbPath, createIfMissing) === 'new'
  try {
    // Every write of an import is made durable before it returns.
    return await openStoreFor(dbPath, { sync: true, createIfMissing })
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(error.message, exitCodes.usage)
    dbPath = printableLocation(dbPath)
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new CliError(`the database ${dbPath} is in use; stop the server first`, exitCodes.databaseUnavailable)
    }
    if (!createIfMissing && /does not exist/.test(cause?.message ?? '')) {
      throw new CliError(`no database at ${dbPath}`, exitCodes.databaseUnavailable)
    }
    throw new CliError(`cannot open the database ${dbPath}: ${cause?.message ?? String(error)}`, exitCodes.other)
  }
}

/** The account count, for a progress bar's total; only worth a pass when someone watches. */
async function accountCount(context: CliContext, store: LedgerStore): Promise<number | undefined> {
  if (context.io.stderr.isTTY !== true) return undefined
  const snapshot = await store.snapshot()
  try {
    let count = 0
    for (let after: AccountKey | undefined; ; ) {
      const page = await snapshot.accounts(after, limits.scanPageMax)
      if (page.length === 0) return count
      count += page.length
      after = page.at(-1)?.[0]
    }
  } finally {
    await snapshot.close()
  }
}

export async function verify(context: CliContext, options: { db?: string }): Promise<void> {
  const { dbPath: configuredPath, idempotencyTtlMs } = context.config()
  const dbPath = options.db ?? configuredPath
  const store = await openStore(dbPath, false)
  try {
    const progress = progressBar('verify', await accountCount(context, store), 'accounts', context.io.stderr)
    const report = await verifyStore(store, {
      idempotencyTtlMs,
      onProgress: (counts) => progress.update(counts.accounts, `${counts.entries} entries`),
    })
    progress.finish()
    context.io.stdout.write(verifyReportText(report, printableLocation(dbPath)))
    if (report.faultCount > 0) context.exitCode = exitCodes.faults
  } finally {
    await store.close()
  }
}

/** `accman export [file]`: JSON Lines to the file, or to stdout when there is none. */
export async function exportTo(context: CliContext, file: string | undefined, options: { db?: string }): Promise<void> {
  const dbPath = options.db ?? context.config().dbPath
  const store = await openStore(dbPath, false)
  // A file is written under a temporary name and renamed at the end: a failed export never
  // leaves a partial file that looks complete.
  const partial = file === undefined ? undefined : `${file}.partial-${process.pid}`
  const out = partial === undefined ? context.io.stdout : createWriteStream(partial, { flags: 'wx' })
  try {
    const counts: ArchiveCounts = { accounts: 0, entries: 0 }
    const progress = progressBar('export', await accountCount(context, store), 'accounts', context.io.stderr)
    const snapshot = await store.snapshot()
    let chunk = ''
    try {
      for await (const line of exportStore(snapshot, counts)) {
        chunk += `${line}\n`
        if (chunk.length < limits.exportChunkLengthMax) continue
        if (!out.write(chunk)) await once(out, 'drain')
        chunk = ''
        progress.update(counts.accounts, `${counts.entries} entries`)
      }
    } finally {
      await snapshot.close()
    }
    out.write(chunk)
    progress.finish()
    if (partial !== undefined && file !== undefined) {
      out.end()
      await once(out, 'finish')
      renameSync(partial, file)
      context.io.stderr.write(`exported ${counts.accounts} accounts, ${counts.entries} entries to ${file}\n`)
    }
  } catch (error) {
    if (partial !== undefined) rmSync(partial, { force: true })
    if (error instanceof ArchiveError) throw new CliError(error.message, exitCodes.faults)
    throw error
  } finally {
    await store.close()
  }
}

/** `accman import <file>`: restores an export into an empty store, then verifies it. */
export async function importFrom(context: CliContext, file: string, options: { db?: string }): Promise<void> {
  const { dbPath: configuredPath, idempotencyTtlMs } = context.config()
  const dbPath = options.db ?? configuredPath
  let sizeBytes: number
  try {
    sizeBytes = statSync(file).size
  } catch {
    throw new CliError(`cannot read ${file}`, exitCodes.usage)
  }
  const store = await openStore(dbPath, true)
  try {
    const progress = progressBar('import', sizeBytes, 'bytes', context.io.stderr)
    let readBytes = 0
    const lines = async function* () {
      readBytes = 0
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        readBytes += Buffer.byteLength(line) + 1
        yield line
      }
    }
    const counts = await importStore(store, lines, {
      idempotencyTtlMs,
      onProgress: (counts) => progress.update(readBytes, `${counts.entries} entries`),
    })
    progress.finish()
    const location = printableLocation(dbPath)
    context.io.stderr.write(`imported ${counts.accounts} accounts, ${counts.entries} entries into ${location}\n`)
    const report = await verifyStore(store, { idempotencyTtlMs })
    context.io.stdout.write(verifyReportText(report, location))
    if (report.faultCount > 0) context.exitCode = exitCodes.faults
  } catch (error) {
    if (error instanceof ArchiveError) throw new CliError(`import refused: ${error.message}`, exitCodes.usage)
    throw error
  } finally {
    await store.close()
  }
}
