// accman backup: streams GET /backup of the running server into a file, atomically: the lines
// go to a temporary file beside it, which is fsynced and renamed only once the whole answer has
// arrived and ends where an export ends. A failed backup leaves no file that looks complete.
import { once } from 'node:events'
import { closeSync, createWriteStream, fsyncSync, openSync, renameSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { cliLimits } from '../config.js'
import { archiveHeader, type ArchiveCounts } from '../ledger/archive.js'
import { CliError, exitCodes } from './exit-codes.js'
import type { Server } from './http.js'

/** The server's origin without user info: safe to print. */
function printableOrigin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'the configured ACCMAN_URL'
  }
}

async function requestBackup(server: Server): Promise<Response> {
  const url = new URL('/backup', server.url)
  const headers: Record<string, string> = { accept: 'application/x-ndjson' }
  if (server.token !== undefined) headers.authorization = `Bearer ${server.token}`
  const started = new AbortController()
  const timer = setTimeout(() => started.abort(), cliLimits.backupStartTimeoutMs)
  try {
    return await fetch(url, { headers, signal: started.signal })
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause
    const reason = cause?.code ?? (started.signal.aborted ? 'timed out' : 'network error')
    throw new CliError(`cannot reach AccMan at ${printableOrigin(server.url)} (${reason})`, exitCodes.unreachable)
  } finally {
    clearTimeout(timer)
  }
}

async function refusalOf(response: Response): Promise<CliError> {
  let parsed: { code?: unknown; message?: unknown } = {}
  try {
    parsed = JSON.parse(await response.text()) as typeof parsed
  } catch {
    // not our error shape
  }
  const message = typeof parsed.message === 'string' ? parsed.message : `HTTP ${response.status}`
  const code = typeof parsed.code === 'string' ? ` (${parsed.code})` : ''
  return new CliError(`backup refused: ${message}${code}`, exitCodes.other)
}

/** Writes the server's backup to `file`; answers what it holds. */
export async function backupToFile(server: Server, file: string): Promise<ArchiveCounts> {
  const response = await requestBackup(server)
  if (!response.ok || response.body === null) throw await refusalOf(response)
  const partial = `${file}.partial-${process.pid}`
  const out = createWriteStream(partial, { flags: 'wx' })
  const counts: ArchiveCounts = { accounts: 0, entries: 0 }
  try {
    const lines = createInterface({ input: Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), crlfDelay: Infinity })
    let first = true
    for await (const line of lines) {
      if (first && line !== archiveHeader) throw new CliError('the server did not answer with an AccMan export', exitCodes.other)
      first = false
      if (line.startsWith('{"account"')) counts.accounts++
      else if (line.startsWith('{"seq"')) counts.entries++
      if (!out.write(`${line}\n`)) await once(out, 'drain')
    }
    if (first) throw new CliError('the server sent an empty backup', exitCodes.other)
    out.end()
    await once(out, 'finish')
    syncFile(partial)
    renameSync(partial, file)
    syncFile(dirname(file))
    return counts
  } catch (error) {
    out.destroy()
    rmSync(partial, { force: true })
    if (error instanceof CliError) throw error
    // A body cut short (the server stopped, the connection dropped): nothing is kept.
    throw new CliError(`the backup was cut short; nothing was written to ${file}`, exitCodes.other)
  }
}

function syncFile(path: string): void {
  const descriptor = openSync(path, 'r')
  try {
    fsyncSync(descriptor)
  } finally {
    closeSync(descriptor)
  }
}
