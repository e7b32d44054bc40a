// The commands that talk to the running server over HTTP (ACCMAN_URL, ACCMAN_TOKEN).
import { randomUUID } from 'node:crypto'
import { checkBy, checkCred, checkOpeningCredit } from './arguments.js'
import { backupToFile } from './backup.js'
import type { CliContext } from './context.js'
import { newCredential } from './credential.js'
import { CliError } from './exit-codes.js'
import { historyTable, type PastEntry } from './format.js'
import { call, OutcomeUnknownError } from './http.js'

const accept = (json: boolean) => ({ accept: json ? 'application/json' : 'text/plain' })

export async function tot(context: CliContext, cred: string, options: { json: boolean }): Promise<void> {
  const body = await call(context.server(), 'GET', '/tot', { cred: checkCred(context, cred) }, accept(options.json))
  context.io.stdout.write(`${body}\n`)
}

export async function mod(context: CliContext, cred: string, by: string, options: { json: boolean; note?: string; key?: string }): Promise<void> {
  checkBy(by)
  // Always a key, so the retries here, and the operator's with --key, are applied once.
  const key = options.key ?? `cli-${randomUUID()}`
  const headers = { ...accept(options.json), 'idempotency-key': key }
  let body: string
  try {
    body = await call(context.server(), 'PATCH', '/mod', { cred: checkCred(context, cred), by, note: options.note }, headers)
  } catch (error) {
    if (!(error instanceof OutcomeUnknownError)) throw error
    throw new CliError(`${error.message}; the mod may have been applied: run it again with --key ${key} to apply it once`, error.exitCode)
  }
  context.io.stdout.write(`${body}\n`)
}

export async function past(
  context: CliContext,
  cred: string,
  options: { json: boolean; limit?: number; after?: number; desc: boolean },
): Promise<void> {
  const parameters = {
    cred: checkCred(context, cred),
    limit: options.limit?.toString(),
    after: options.after?.toString(),
    order: options.desc ? 'desc' : undefined,
  }
  const body = await call(context.server(), 'GET', '/past', parameters, { accept: 'application/json' })
  if (options.json) {
    context.io.stdout.write(`${body}\n`)
    return
  }
  const page = JSON.parse(body) as { tot: string; seq: number; entries: PastEntry[] }
  context.io.stdout.write(`${historyTable(page.entries)}\n`)
}

/** `accman new`: a fresh credential, credited when `by` is not zero, printed only on success. */
export async function createAccount(context: CliContext, by: string, options: { note?: string; json?: boolean }): Promise<void> {
  checkOpeningCredit(by)
  const cred = newCredential()
  if (by !== '0') {
    // A fresh key, so a retried credit is applied once.
    const headers = { 'idempotency-key': `new-${randomUUID()}` }
    try {
      await call(context.server(), 'PATCH', '/mod', { cred, by, note: options.note }, headers)
    } catch (error) {
      if (!(error instanceof OutcomeUnknownError)) throw error
      // The credential is never printed on failure, so a credit that did land is out of reach.
      throw new CliError(`${error.message}; the opening credit may have landed on a credential not shown: run accman new again`, error.exitCode)
    }
  }
  if (options.json === true) {
    // The account's public id, asked of the server: there is an account only after a credit.
    const account = by === '0' ? null : (JSON.parse(await call(context.server(), 'GET', '/acct', { cred }, { accept: 'application/json' })) as { account: string }).account
    context.io.stdout.write(`${JSON.stringify({ cred, account })}\n`)
    return
  }
  context.io.stdout.write(`${cred}\n`)
}

export async function backup(context: CliContext, file: string): Promise<void> {
  const counts = await backupToFile(context.server(), file)
  context.io.stderr.write(`backed up ${counts.accounts} accounts, ${counts.entries} entries to ${file}\n`)
}
