// `accman migrate`: brings a PostgreSQL store's schema up to date (the server does it at start
// too, under the same lock); a LevelDB directory has no schema to migrate.
import type { CliContext } from './context.js'
import { CliError, exitCodes } from './exit-codes.js'
import { isLedgerError } from '../ledger/errors.js'
import { openPostgresStore } from '../ledger/postgres/store.js'

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db)
}

export async function migrateStore(context: CliContext, options: { db?: string }): Promise<void> {
  const { dbPath, dbTimeoutMs } = context.config()
  const db = options.db ?? dbPath
  if (!isPostgresUrl(db)) {
    context.io.stdout.write(`${db} is a LevelDB directory: nothing to migrate\n`)
    return
  }
  let version: number
  try {
    const store = await openPostgresStore(db, { sync: true, poolMax: 1, timeoutMs: dbTimeoutMs })
    version = store.schemaVersion
    await store.close()
  } catch (error) {
    // The store's own errors name the host and database only, never the credentials.
    if (isLedgerError(error)) throw new CliError(error.message, exitCodes.databaseUnavailable)
    throw new CliError('the migration failed', exitCodes.other)
  }
  context.io.stdout.write(`schema version ${version}\n`)
}
