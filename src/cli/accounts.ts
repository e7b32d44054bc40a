// `accman acct` and `accman rotate`: an account's details (by credential or public id) and the
// rotation of its credential, through the running server. Neither prints a credential.
import { randomUUID } from 'node:crypto'
import { rotationGraceSecondsMax } from '../ledger/limits.js'
import { checkCred } from './arguments.js'
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { call, OutcomeUnknownError } from './http.js'

const json = { accept: 'application/json' }

export async function acct(context: CliContext, cred: string | undefined, options: { id?: string }): Promise<void> {
  if ((cred === undefined) === (options.id === undefined)) throw new CliError('give a credential or --id <public id>, not both', exitCodes.usage)
  const parameters = cred === undefined ? { id: options.id } : { cred: checkCred(context, cred) }
  const body = await call(context.server(), 'GET', '/acct', parameters, json)
  context.io.stdout.write(`${body}\n`)
}

export async function rotate(context: CliContext, cred: string, fresh: string, options: { grace?: number; key?: string }): Promise<void> {
  const parameters = { cred: checkCred(context, cred), new: checkCred(context, fresh, 'new'), grace: options.grace?.toString() }
  if (fresh === cred) throw new CliError('the new credential must differ from the old one', exitCodes.usage)
  // Always a key, so the retries here, and the operator's with --key, rotate once.
  const key = options.key ?? `cli-${randomUUID()}`
  let body: string
  try {
    body = await call(context.server(), 'PATCH', '/rotate', parameters, { ...json, 'idempotency-key': key })
  } catch (error) {
    if (!(error instanceof OutcomeUnknownError)) throw error
    throw new CliError(`${error.message}; the rotation may have been applied: run it again with --key ${key} to apply it once`, error.exitCode)
  }
  context.io.stdout.write(`${body}\n`)
}

export const graceSecondsMax = rotationGraceSecondsMax
