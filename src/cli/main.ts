#!/usr/bin/env node
// accman: the operators' command line. Online commands talk to the running server over HTTP;
// offline commands open the database directory, which only works while the server is stopped.
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createReadStream, createWriteStream, existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { ClassicLevel } from 'classic-level'
import { Command, CommanderError } from 'commander'
import { serverUrlProblem, tokenProblem } from '../client/connection.js'
import { ConfigError, limits, loadDotEnv, parseCliConfig, type CliConfig } from '../config.js'
import { credentialSyntax, isCredential, parseAmount } from '../contract/syntax.js'
import { ArchiveError, exportStore, importStore, type ArchiveCounts } from '../ledger/archive.js'
import { noteLengthMax, pageSizeDefault, pageSizeMax } from '../ledger/limits.js'
import { tablesOf } from '../ledger/ledger.js'
import { verifyStore, type VerifyReport } from '../ledger/verify.js'
import { backupToFile } from './backup.js'
import { newCredential } from './credential.js'
import { CliError, exitCodes } from './exit-codes.js'
import { call, OutcomeUnknownError, type Server } from './http.js'
import { progressBar } from './progress.js'

function config(): CliConfig {
  try {
    loadDotEnv()
    return parseCliConfig(process.env)
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`invalid configuration: ${error.message}`, exitCodes.usage)
    throw new CliError(`cannot read .env: ${String(error)}`, exitCodes.usage)
  }
}

/** Secrets this run knows of (credentials, the token): no line it prints may contain them. */
const secrets = new Set<string>()

const server = (): Server => {
  const { url, token, timeoutMs } = config()
  // Checked before anything is sent: fetch would quote a URL with a password, or a bad token, in its error.
  const problem = serverUrlProblem(url) ?? (token === undefined ? undefined : tokenProblem(token))
  if (token !== undefined) secrets.add(token)
  if (problem !== undefined) {
    const variable = problem.includes('token') ? 'ACCMAN_TOKEN' : 'ACCMAN_URL'
    throw new CliError(`invalid configuration: ${variable}: ${problem}`, exitCodes.usage)
  }
  return { url, token, timeoutMs }
}

/** Checks a credential before it leaves the machine; the message never repeats it. */
function checkCred(cred: string): string {
  secrets.add(cred)
  if (!isCredential(cred)) throw new CliError(`cred must be ${credentialSyntax}`, exitCodes.usage)
  return cred
}

function checkBy(by: string): bigint {
  const parsed = parseAmount(by)
  if (parsed === undefined) throw new CliError('by must be a nonzero integer, at most 2^127 - 1 in magnitude', exitCodes.usage)
  return parsed
}

function positiveInteger(name: string, max: number) {
  return (text: string): number => {
    if (!/^[0-9]{1,16}$/.test(text) || Number(text) > max) {
      throw new CliError(`${name} must be an integer from 0 to ${max}`, exitCodes.usage)
    }
    return Number(text)
  }
}

const accept = (json: boolean) => ({ accept: json ? 'application/json' : 'text/plain' })

async function tot(cred: string, options: { json: boolean }): Promise<void> {
  const body = await call(server(), 'GET', '/tot', { cred: checkCred(cred) }, accept(options.json))
  process.stdout.write(`${body}\n`)
}

async function mod(cred: string, by: string, options: { json: boolean; note?: string; key?: string }): Promise<void> {
  checkBy(by)
  // Always a key, so the retries here, and the operator's with --key, are applied once.
  const key = options.key ?? `cli-${randomUUID()}`
  const headers = { ...accept(options.json), 'idempotency-key': key }
  let body: string
  try {
    body = await call(server(), 'PATCH', '/mod', { cred: checkCred(cred), by, note: options.note }, headers)
  } catch (error) {
    if (!(error instanceof OutcomeUnknownError)) throw error
    throw new CliError(`${error.message}; the mod may have been applied: run it again with --key ${key} to apply it once`, error.exitCode)
  }
  process.stdout.write(`${body}\n`)
}

interface PastEntry {
  seq: number
  at: string
  by: string
  tot: string
  note?: string
}

/** Control characters in a note would drive the terminal; show them as '?'. */
const printable = (text: string) => text.replace(/[\p{Cc}\p{Cf}]/gu, '?')

function table(entries: PastEntry[]): string {
  const rows = [['seq', 'at', 'by', 'tot', 'note'], ...entries.map((e) => [String(e.seq), e.at, e.by, e.tot, printable(e.note ?? '')])]
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  const rightAligned = new Set([0, 2, 3])
  return rows
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0
          if (column === 4) return cell
          return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width)
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

async function past(cred: string, options: { json: boolean; limit?: number; after?: number; desc: boolean }): Promise<void> {
  const parameters = {
    cred: checkCred(cred),
    limit: options.limit?.toString(),
    after: options.after?.toString(),
    order: options.desc ? 'desc' : undefined,
  }
  const body = await call(server(), 'GET', '/past', parameters, { accept: 'application/json' })
  if (options.json) {
    process.stdout.write(`${body}\n`)
    return
  }
  const page = JSON.parse(body) as { tot: string; seq: number; entries: PastEntry[] }
  process.stdout.write(`${table(page.entries)}\n`)
}

async function createAccount(by: string, options: { note?: string }): Promise<void> {
  if (!/^(0|[1-9][0-9]*)$/.test(by)) throw new CliError('by must be 0 or a positive integer', exitCodes.usage)
  const cred = newCredential()
  if (by !== '0') {
    checkBy(by)
    // A fresh key, so a retried credit is applied once.
    const headers = { 'idempotency-key': `new-${randomUUID()}` }
    try {
      await call(server(), 'PATCH', '/mod', { cred, by, note: options.note }, headers)
    } catch (error) {
      if (!(error instanceof OutcomeUnknownError)) throw error
      // The credential is never printed on failure, so a credit that did land is out of reach.
      throw new CliError(`${error.message}; the opening credit may have landed on a credential not shown: run accman new again`, error.exitCode)
    }
  }
  process.stdout.write(`${cred}\n`)
}

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

/** Opens the store for an offline command; a running server holds its lock. */
async function openStore(dbPath: string, createIfMissing: boolean): Promise<ClassicLevel<string, string>> {
  createIfMissing = checkStorePath(dbPath, createIfMissing) === 'new'
  const db = new ClassicLevel<string, string>(dbPath, { createIfMissing })
  try {
    await db.open()
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    if (cause?.code === 'LEVEL_LOCKED') {
      throw new CliError(`the database ${dbPath} is in use; stop the server first`, exitCodes.databaseUnavailable)
    }
    if (!createIfMissing && /does not exist/.test(cause?.message ?? '')) {
      throw new CliError(`no database at ${dbPath}`, exitCodes.databaseUnavailable)
    }
    throw new CliError(`cannot open the database ${dbPath}: ${cause?.message ?? String(error)}`, exitCodes.other)
  }
  return db
}

/** The account count, for a progress bar's total; only worth a pass when someone watches. */
async function accountCount(db: ClassicLevel<string, string>): Promise<number | undefined> {
  if (!process.stderr.isTTY) return undefined
  let count = 0
  for await (const key of tablesOf(db).accounts.keys()) {
    void key
    count++
  }
  return count
}

function printReport(report: VerifyReport, dbPath: string): void {
  for (const fault of report.faults) process.stdout.write(`fault: ${fault}\n`)
  if (report.faultCount > report.faults.length) {
    process.stdout.write(`… and ${report.faultCount - report.faults.length} more faults\n`)
  }
  const counts = `${report.accounts} accounts, ${report.entries} entries, ${report.idempotencyKeys} idempotency keys`
  const verdict = report.faultCount === 0 ? 'ok' : `${report.faultCount} faults`
  process.stdout.write(`verify ${dbPath}: ${counts}: ${verdict}\n`)
}

async function verify(options: { db?: string }): Promise<void> {
  const { dbPath: configuredPath, idempotencyTtlMs } = config()
  const dbPath = options.db ?? configuredPath
  const db = await openStore(dbPath, false)
  try {
    const progress = progressBar('verify', await accountCount(db), 'accounts')
    const report = await verifyStore(db, {
      idempotencyTtlMs,
      onProgress: (counts) => progress.update(counts.accounts, `${counts.entries} entries`),
    })
    progress.finish()
    printReport(report, dbPath)
    if (report.faultCount > 0) process.exitCode = exitCodes.faults
  } finally {
    await db.close()
  }
}

async function exportCommand(file: string | undefined, options: { db?: string }): Promise<void> {
  const dbPath = options.db ?? config().dbPath
  const db = await openStore(dbPath, false)
  // A file is written under a temporary name and renamed at the end: a failed export never
  // leaves a partial file that looks complete.
  const partial = file === undefined ? undefined : `${file}.partial-${process.pid}`
  const out = partial === undefined ? process.stdout : createWriteStream(partial, { flags: 'wx' })
  try {
    const counts: ArchiveCounts = { accounts: 0, entries: 0 }
    const progress = progressBar('export', await accountCount(db), 'accounts')
    let chunk = ''
    for await (const line of exportStore(db, counts)) {
      chunk += `${line}\n`
      if (chunk.length < limits.exportChunkLengthMax) continue
      if (!out.write(chunk)) await once(out, 'drain')
      chunk = ''
      progress.update(counts.accounts, `${counts.entries} entries`)
    }
    out.write(chunk)
    progress.finish()
    if (partial !== undefined && file !== undefined) {
      out.end()
      await once(out, 'finish')
      renameSync(partial, file)
      process.stderr.write(`exported ${counts.accounts} accounts, ${counts.entries} entries to ${file}\n`)
    }
  } catch (error) {
    if (partial !== undefined) rmSync(partial, { force: true })
    if (error instanceof ArchiveError) throw new CliError(error.message, exitCodes.faults)
    throw error
  } finally {
    await db.close()
  }
}

async function importCommand(file: string, options: { db?: string }): Promise<void> {
  const { dbPath: configuredPath, idempotencyTtlMs } = config()
  const dbPath = options.db ?? configuredPath
  let sizeBytes: number
  try {
    sizeBytes = statSync(file).size
  } catch {
    throw new CliError(`cannot read ${file}`, exitCodes.usage)
  }
  const db = await openStore(dbPath, true)
  try {
    const progress = progressBar('import', sizeBytes, 'bytes')
    let readBytes = 0
    const lines = async function* () {
      readBytes = 0
      for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
        readBytes += Buffer.byteLength(line) + 1
        yield line
      }
    }
    const counts = await importStore(db, lines, {
      idempotencyTtlMs,
      onProgress: (counts) => progress.update(readBytes, `${counts.entries} entries`),
    })
    progress.finish()
    process.stderr.write(`imported ${counts.accounts} accounts, ${counts.entries} entries into ${dbPath}\n`)
    const report = await verifyStore(db, { idempotencyTtlMs })
    printReport(report, dbPath)
    if (report.faultCount > 0) process.exitCode = exitCodes.faults
  } catch (error) {
    if (error instanceof ArchiveError) throw new CliError(`import refused: ${error.message}`, exitCodes.usage)
    throw error
  } finally {
    await db.close()
  }
}

async function backupCommand(file: string): Promise<void> {
  const counts = await backupToFile(server(), file)
  process.stderr.write(`backed up ${counts.accounts} accounts, ${counts.entries} entries to ${file}\n`)
}

async function serveCommand(): Promise<void> {
  const { serve } = await import('../serve.js')
  await serve()
}

export function program(): Command {
  const root = new Command('accman')
    .description('AccMan: prepaid accounts for metered APIs. Online commands use ACCMAN_URL; offline ones ACCMAN_DB.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: () => {} })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 other error, 2 usage, 3 no account, 4 insufficient funds,
5 server unreachable, 6 database in use or missing, 7 verify found faults,
8 idempotency key reused with another amount.
A credential that starts with '-' goes after '--': accman tot -- -abc`,
    )

  root
    .command('serve')
    .description('start the server (what npm start runs), configured by the ACCMAN_* variables')
    .addHelpText('after', '\nExample:\n  ACCMAN_PORT=8080 accman serve')
    .action(serveCommand)

  root
    .command('tot')
    .description('print the balance of an account')
    .argument('<cred>', 'the account credential')
    .option('--json', 'print the server JSON {"tot","seq"}', false)
    .addHelpText('after', '\nExample:\n  accman tot abcdefghijklmnopqrstuvwxyz0123456789-_==')
    .action(tot)

  root
    .command('mod')
    .description('add an amount to a balance (negative to debit) and print the new balance')
    .argument('<cred>', 'the account credential')
    .argument('<by>', 'a nonzero integer; a credit creates the account')
    .option('--note <text>', `kept with the history entry (at most ${noteLengthMax} characters)`)
    .option('--key <idempotency-key>', 'retries with the same key are applied once')
    .option('--json', 'print the server JSON {"tot","seq"}', false)
    .addHelpText('after', '\nExamples:\n  accman mod abcdefghijklmnopqrstuvwxyz0123456789-_== 1000 --note "invoice 42"\n  accman mod abcdefghijklmnopqrstuvwxyz0123456789-_== -1 --key req-7f3a')
    .action(mod)

  root
    .command('past')
    .description('print the history of an account as a table: seq, time, by, tot, note')
    .argument('<cred>', 'the account credential')
    .option('--limit <n>', `entries to show, 1 to ${pageSizeMax} (default ${pageSizeDefault})`, positiveInteger('limit', pageSizeMax))
    .option('--after <seq>', 'only entries after this seq', positiveInteger('after', Number.MAX_SAFE_INTEGER))
    .option('--desc', 'newest first', false)
    .option('--json', 'print the server JSON', false)
    .addHelpText('after', '\nExamples:\n  accman past abcdefghijklmnopqrstuvwxyz0123456789-_== --desc --limit 10\n  accman past abcdefghijklmnopqrstuvwxyz0123456789-_== --after 100')
    .action(past)

  root
    .command('new')
    .description('make a fresh credential (32 random bytes), credit it with <by> when given, and print it')
    .argument('[by]', 'the opening credit; 0 makes the credential only', '0')
    .option('--note <text>', 'kept with the opening credit')
    .addHelpText('after', '\nExample:\n  cred=$(accman new 1000)')
    .action(createAccount)

  const dbOption = '--db <dir>'
  const dbHelp = 'the database directory (default: ACCMAN_DB, or ./data)'
  root
    .command('verify')
    .description('check every account offline (server stopped): contiguous history, chained balances, no orphans')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExample:\n  accman verify --db ./data')
    .action(verify)

  root
    .command('export')
    .description('write every account and its history as JSON Lines, to <file> or stdout (server stopped)')
    .argument('[file]', 'the output file; stdout when omitted')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExamples:\n  accman export backup.jsonl\n  accman export | gzip > backup.jsonl.gz')
    .action(exportCommand)

  root
    .command('backup')
    .description('write a consistent backup of the running server to <file> (export format; mods go on meanwhile)')
    .argument('<file>', 'the output file, written under a temporary name and renamed when complete')
    .addHelpText('after', '\nExamples:\n  accman backup backup.jsonl\n  accman import backup.jsonl --db ./restored')
    .action(backupCommand)

  root
    .command('import')
    .description('restore an export into an empty database, then verify it (server stopped)')
    .argument('<file>', 'a file written by accman export')
    .option(dbOption, dbHelp)
    .addHelpText('after', '\nExample:\n  accman import backup.jsonl --db ./restored')
    .action(importCommand)

  return root
}

const unknownOptionHint = "unknown option; put '--' before a credential or amount that starts with '-'"

/** The version of the package this CLI ships in (src/cli and dist/cli are both two levels down). */
function packageVersion(): string {
  const manifest = createRequire(import.meta.url)('../../package.json') as { version: string }
  return manifest.version
}

/** Any secret this run knows of, replaced: a last guard on every line written on failure. */
function redacted(line: string): string {
  let text = line
  for (const secret of secrets) if (secret !== '') text = text.replaceAll(secret, '[redacted]').replaceAll(encodeURIComponent(secret), '[redacted]')
  return text
}

/** Commander quotes what it did not understand, which may be a credential: say it without it. */
function commanderMessage(error: CommanderError): string {
  if (error.code === 'commander.unknownOption') return unknownOptionHint
  if (error.code === 'commander.unknownCommand') return 'unknown command'
  return error.message.replace(/^error: /, '')
}

/** One line whatever the message holds: a server's or a library's text may carry line breaks. */
const oneLine = (text: string) => printable(text.replace(/\s*[\r\n]+\s*/g, ' '))

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv)
    return Number(process.exitCode ?? exitCodes.ok)
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version') {
        return exitCodes.ok
      }
      process.stderr.write(`accman: ${redacted(commanderMessage(error))} (see accman --help)\n`)
      return exitCodes.usage
    }
    if (error instanceof CliError) {
      process.stderr.write(`accman: ${redacted(oneLine(error.message))}\n`)
      return error.exitCode
    }
    process.stderr.write(`accman: ${redacted(oneLine(error instanceof Error ? error.message : String(error)))}\n`)
    return exitCodes.other
  }
}

process.exitCode = await main(process.argv)
