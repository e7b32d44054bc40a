// The one place that picks the engine for a store location (ACCMAN_DB): a PostgreSQL URL, or a
// LevelDB directory. Everything above it takes a LedgerStore and never learns which engine runs.
import { ClassicLevel } from 'classic-level'
import { limits } from '../config.js'
import { openLevelStore } from './level/store.js'
import { openPostgresStore } from './postgres/store.js'
import type { LedgerStore } from './store.js'

export interface OpenStoreOptions {
  /** fsync (LevelDB) or a synchronous commit (PostgreSQL) before a round resolves. */
  sync: boolean
  /** LevelDB: create the directory's database if there is none (import); never for serve's checks. */
  createIfMissing?: boolean
  /** PostgreSQL: bound of every connection attempt and query (ACCMAN_DB_TIMEOUT_MS). */
  timeoutMs?: number
}

/** A `postgres://` or `postgresql://` URL; anything else is a LevelDB directory. */
export function isStoreUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location)
}

/**
 * The location as it may be printed or logged: a URL without its user, password and parameters
 * (a connection string holds a password), a directory as it is.
 */
export function printableLocation(location: string): string {
  if (!isStoreUrl(location)) return location
  try {
    const url = new URL(location)
    return `${url.protocol}//${url.host}${url.pathname}`
  } catch {
    return 'the configured PostgreSQL URL'
  }
}

/** Opens the store at `location`; the caller owns it (close it, or hand it to openLedger). */
export async function openStoreFor(location: string, options: OpenStoreOptions): Promise<LedgerStore> {
  if (isStoreUrl(location)) {
    // The location holds a password: the engine never quotes it.
    return await openPostgresStore(location, {
      sync: options.sync,
      poolMax: limits.storePoolMax,
      timeoutMs: options.timeoutMs ?? limits.storeTimeoutMsDefault,
    })
  }
  const db = new ClassicLevel<string, string>(location, { createIfMissing: options.createIfMissing ?? true })
  return openLevelStore(db, { sync: options.sync })
}
