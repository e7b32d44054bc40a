// accman hold, settle, void and holds: the hold endpoints over HTTP, printing the server's JSON.
import { randomUUID } from 'node:crypto'
import { checkBy, checkCred } from './arguments.js'
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { call, OutcomeUnknownError } from './http.js'

export interface WriteOptions {
  note?: string
  key?: string
}

const json = { accept: 'application/json' }

/** A write with a key (the operator's or a fresh one), so the retries here are applied once. */
async function write(context: CliContext, path: string, parameters: Record<string, string | undefined>, options: WriteOptions): Promise<void> {
  const key = options.key ?? `cli-${randomUUID()}`
  let body: string
  try {
    body = await call(context.server(), 'PATCH', path, { ...parameters, note: options.note }, { ...json, 'idempotency-key': key })
  } catch (error) {
    if (!(error instanceof OutcomeUnknownError)) throw error
    throw new CliError(`${error.message}; it may have been applied: run it again with --key ${key} to apply it once`, error.exitCode)
  }
  context.io.stdout.write(`${body}\n`)
}

function checkPositive(by: string): string {
  if (checkBy(by) <= 0n) throw new CliError('by must be a positive integer', exitCodes.usage)
  return by
}

export async function hold(context: CliContext, cred: string, by: string, options: WriteOptions & { ttl?: string }): Promise<void> {
  if (options.ttl !== undefined && !/^[1-9][0-9]{0,5}$/.test(options.ttl)) throw new CliError('ttl must be a whole number of seconds', exitCodes.usage)
  await write(context, '/hold', { cred: checkCred(context, cred), by: checkPositive(by), ttl: options.ttl }, options)
}

export async function settle(context: CliContext, cred: string, holdId: string, options: WriteOptions & { by?: string }): Promise<void> {
  await write(context, '/settle', { cred: checkCred(context, cred), hold: holdId, by: options.by === undefined ? undefined : checkPositive(options.by) }, options)
}

export async function voidHold(context: CliContext, cred: string, holdId: string, options: WriteOptions): Promise<void> {
  await write(context, '/void', { cred: checkCred(context, cred), hold: holdId }, options)
}

export async function holds(context: CliContext, cred: string): Promise<void> {
  const body = await call(context.server(), 'GET', '/holds', { cred: checkCred(context, cred) }, json)
  context.io.stdout.write(`${body}\n`)
}
