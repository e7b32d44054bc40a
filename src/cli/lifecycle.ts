// accman move, freeze, unfreeze: the account lifecycle's commands, over HTTP like mod.
import { randomUUID } from 'node:crypto'
import { checkBy, checkCred } from './arguments.js'
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { call, OutcomeUnknownError } from './http.js'

/** `accman move <cred> <to> <by>`: prints the sender's balance, or the server JSON with --json. */
export async function move(context: CliContext, cred: string, to: string, by: string, options: { json: boolean; note?: string; key?: string }): Promise<void> {
  if (checkBy(by) <= 0n) throw new CliError('by must be a positive integer: the amount moved', exitCodes.usage)
  checkCred(context, to, 'to')
  // Always a key, so a retry moves once.
  const key = options.key ?? `cli-${randomUUID()}`
  let body: string
  try {
    body = await call(context.server(), 'PATCH', '/move', { cred: checkCred(context, cred), to, by, note: options.note }, { accept: 'application/json', 'idempotency-key': key })
  } catch (error) {
    if (!(error instanceof OutcomeUnknownError)) throw error
    throw new CliError(`${error.message}; the move may have been applied: run it again with --key ${key} to apply it once`, error.exitCode)
  }
  context.io.stdout.write(options.json ? `${body}\n` : `${(JSON.parse(body) as { tot: string }).tot}\n`)
}

/** `accman freeze|unfreeze <cred>`: prints frozen or unfrozen, or the server JSON with --json. */
export async function setFrozen(context: CliContext, cred: string, frozen: boolean, options: { json: boolean }): Promise<void> {
  const path = frozen ? '/freeze' : '/unfreeze'
  const body = await call(context.server(), 'PATCH', path, { cred: checkCred(context, cred) }, { accept: 'application/json' })
  context.io.stdout.write(options.json ? `${body}\n` : `${(JSON.parse(body) as { frozen: boolean }).frozen ? 'frozen' : 'unfrozen'}\n`)
}
