// The PostgreSQL engine: a shared store that several nodes write at once (see ../store.ts). A
// round is one transaction that locks its accounts in key order, so nodes never deadlock, and is
// run again on a serialization failure, a deadlock or a concurrent creation of the same account.
// Every query is bounded by timeoutMs; an unreachable store is ACCMAN_STORE_UNAVAILABLE, never a
// hang. The connection string carries a password: only host, port and database name ever leave
// this file.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import type { Logger } from 'pino'
import { limits } from '../../config.js'
import { publicAccountId } from '../account-id.js'
import { eventTypes, type EventType } from '../alerts.js'
import {
  decodeAccount,
  decodeEntry,
  decodeIdempotency,
  encodeAccount,
  encodeEntry,
  encodeIdempotency,
  historyKeyOf,
  idempotencyKeyOf,
  parseIdempotencyKey,
  type AccountState,
  type CredentialState,
  type IdempotencyState,
} from '../codec.js'
import { LedgerError } from '../errors.js'
import type {
  HistoryRange,
  Holding,
  RoundHolds,
  LedgerStore,
  RoundOutcome,
  RoundStates,
  RoundTransaction,
  RoundWrites,
  StorePoolStats,
  StoreSnapshot,
} from '../store.js'
import type { AccountKey, CredentialKey, Entry, EntryKind, HoldState } from '../types.js'
import { migrate } from './migrations.js'
import type { OutboxRecord } from '../outbox.js'

// int8 and numeric arrive as text; the engine converts them itself (BigInt for money).
export interface PostgresStoreOptions {
  /** false: synchronous_commit off per transaction (a crash of the server may lose the last rounds). */
  sync: boolean
  poolMax: number
  /** Bound of every connection attempt and query. */
  timeoutMs: number
  log?: Logger
}

const watchedClients = new WeakSet<pg.PoolClient>()
/** The server process behind each pooled connection (pid and start time), for the commit lookup. */
const backendsOf = new WeakMap<pg.PoolClient, { pid: number; startedAt: string }>()

/** What a round's body threw (not the store): passed on to the caller unchanged, never retried. */
class RoundBodyFailure extends Error {
  constructor(readonly failure: unknown) {
    super('the round body failed')
  }
}

/** SQLSTATEs after which the whole round runs again. */
const retryableCodes = new Set(['40001', '40P01', '23505'])

/** Where the store is, for messages: host, port and database, never the credentials. */
export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}${parsed.port === '' ? '' : `:${parsed.port}`}${parsed.pathname}`
  } catch {
    return 'the configured database'
  }
}

function passwordOf(url: string): string | undefined {
  try {
    const password = decodeURIComponent(new URL(url).password)
    return password === '' ? undefined : password
  } catch {
    return undefined
  }
}

interface DriverError {
  code?: string
  message?: string
}

function driverError(error: unknown): DriverError {
  return typeof error === 'object' && error !== null ? error : {}
}

/**
 * Whether the error says the connection or the server failed (rather than the statement): no
 * SQLSTATE (a socket error or a driver timeout), or classes 08 (connection), 57 (operator
 * intervention: shutdown, terminated, statement timeout), 53 (out of resources), 28 (auth),
 * 55P03 (lock timeout).
 */
function isConnectionFault(error: unknown): boolean {
  if (error instanceof LedgerError) return error.code === 'ACCMAN_STORE_UNAVAILABLE'
  const { code } = driverError(error)
  if (code === undefined || !/^[0-9A-Z]{5}$/.test(code)) return true
  return ['08', '57', '53', '28'].includes(code.slice(0, 2)) || code === '55P03'
}

export class PostgresStore implements LedgerStore {
  readonly sharing = 'shared' as const
  readonly #pool: pg.Pool
  readonly #options: PostgresStoreOptions
  readonly #target: string
  readonly #password: string | undefined
  /** The schema version of the database once opened (migrated up to at least this code's). */
  schemaVersion = 0

  private constructor(url: string, options: PostgresStoreOptions) {
    this.#options = options
    this.#target = describeTarget(url)
    this.#password = passwordOf(url)
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.poolMax,
      connectionTimeoutMillis: options.timeoutMs,
      query_timeout: options.timeoutMs,
      statement_timeout: options.timeoutMs,
      lock_timeout: options.timeoutMs,
      application_name: 'accman',
    })
    // An idle connection that breaks is dropped by the pool; without a listener it would crash the process.
    this.#pool.on('error', (error) => {
      options.log?.warn({ err: this.#unavailable(error) }, 'PostgreSQL connection lost')
    })
  }

  static async open(url: string, options: PostgresStoreOptions): Promise<PostgresStore> {
    const store = new PostgresStore(url, options)
    try {
      store.schemaVersion = await store.#withClient(async (client) => await migrate(client))
    } catch (error) {
      await store.close()
      throw error
    }
    return store
  }

  /** Connections open, idle, and callers waiting for one. */
  poolStats(): StorePoolStats {
    return { total: this.#pool.totalCount, idle: this.#pool.idleCount, waiting: this.#pool.waitingCount }
  }

  /** A LedgerError ACCMAN_STORE_UNAVAILABLE naming the store and the cause, without credentials. */
  #unavailable(error: unknown): LedgerError {
    if (error instanceof LedgerError) return error
    const { code, message } = driverError(error)
    let reason = message ?? 'unknown failure'
    if (this.#password !== undefined) reason = reason.split(this.#password).join('***')
    reason = reason.replace(/postgres(ql)?:\/\/\S*/gi, 'the configured database')
    return new LedgerError('ACCMAN_STORE_UNAVAILABLE', `PostgreSQL at ${this.#target} is unavailable: ${reason}${code === undefined ? '' : ` (${code})`}`)
  }

  #fail(error: unknown): never {
    if (isConnectionFault(error)) throw this.#unavailable(error)
    throw error
  }

  async #connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient
    try {
      client = await this.#pool.connect()
    } catch (error) {
      throw this.#unavailable(error)
    }
    // A connection that ends while checked out reports it to its query, then again as an event;
    // the event must not crash the process (the query's caller handles the fault).
    if (!watchedClients.has(client)) {
      watchedClients.add(client)
      client.on('error', () => undefined)
    }
    return client
  }

  async #withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#connect()
    let broken = false
    try {
      return await work(client)
    } catch (error) {
      broken = isConnectionFault(error)
      this.#fail(error)
    } finally {
      client.release(broken)
    }
  }

  async #query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.#pool.query<R>(text, values)).rows
    } catch (error) {
      this.#fail(error)
    }
  }

  async readAccount(accountKey: AccountKey): Promise<AccountState | undefined> {
    const rows = await this.#query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE account_key = $1`, [accountKey])
    return rows[0] === undefined ? undefined : accountOf(rows[0])
  }

  async readCredential(credentialKey: CredentialKey): Promise<{ state: CredentialState | undefined; nowMs: number }> {
    const rows = await this.#query<CredentialRow & { now_ms: string }>(
      `SELECT (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms, c.credential_key, c.account_key, c.retires
       FROM (SELECT 1) AS one LEFT JOIN credentials c ON c.credential_key = $1`,
      [credentialKey],
    )
    const row = rows[0]
    assert.ok(row !== undefined)
    return { state: row.account_key === null ? undefined : credentialOf(row), nowMs: Number(row.now_ms) }
  }

  async accountOfPublicId(publicId: string): Promise<AccountKey | undefined> {
    const rows = await this.#query<{ account_key: string }>('SELECT account_key FROM accounts WHERE public_id = $1', [publicId])
    return rows[0]?.account_key as AccountKey | undefined
  }

  async runRound<T>(body: (transaction: RoundTransaction) => Promise<RoundOutcome<T>>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#runRoundOnce(body)
      } catch (error) {
        if (error instanceof RoundBodyFailure) throw error.failure
        const { code } = driverError(error)
        if (code === undefined || !retryableCodes.has(code) || attempt >= limits.storeRoundAttemptsMax) this.#fail(error)
        this.#options.log?.debug({ code, attempt }, 'round runs again')
        const backoffMs = Math.min(limits.storeRetryBackoffMsMax, 2 ** Math.min(attempt, 10))
        await sleep(Math.random() * backoffMs)
      }
    }
  }

  async #runRoundOnce<T>(body: (transaction: RoundTransaction) => Promise<RoundOutcome<T>>): Promise<T> {
    const client = await this.#connect()
    const roundId = randomUUID()
    let committing = false
    let backend: { pid: number; startedAt: string } | undefined
    let wroteEntries = false
    let value: T | undefined
    let released = false
    try {
      await client.query('BEGIN')
      if (!this.#options.sync) await client.query('SET LOCAL synchronous_commit = off')
      // A connection's server process does not change: it is asked for once, the clock every round.
      const known = backendsOf.get(client)
      const clock = await client.query<{ now_ms: string; pid?: number; backend_start?: string }>(
        known === undefined
          ? `SELECT (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms, pg_backend_pid() AS pid,
                (SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()) AS backend_start`
          : 'SELECT (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms',
      )
      const row = clock.rows[0]
      assert.ok(row !== undefined)
      if (known === undefined) {
        assert.ok(row.pid !== undefined && row.backend_start !== undefined)
        backend = { pid: row.pid, startedAt: row.backend_start }
        backendsOf.set(client, backend)
      } else {
        backend = known
      }
      const existing = new Set<AccountKey>()
      const existingCredentials = new Set<CredentialKey>()
      const storeErrors = new WeakSet<object>()
      const transaction: RoundTransaction = {
        nowMs: Number(row.now_ms),
        readRound: async (accountKeys, idempotencyKeys, credentialKeys) => {
          try {
            return await readRound(client, { accounts: existing, credentials: existingCredentials }, accountKeys, idempotencyKeys, credentialKeys ?? [])
          } catch (error) {
            if (typeof error === 'object' && error !== null) storeErrors.add(error)
            throw error
          }
        },
        readHolds: async (openOf, byId) => {
          try {
            return await readHolds(client, openOf, byId)
          } catch (error) {
            if (typeof error === 'object' && error !== null) storeErrors.add(error)
            throw error
          }
        },
        readRefs: async (refs) => {
          try {
            return await readRefs(client, refs)
          } catch (error) {
            if (typeof error === 'object' && error !== null) storeErrors.add(error)
            throw error
          }
        },
      }
      let outcome: RoundOutcome<T>
      try {
        outcome = await body(transaction)
      } catch (error) {
        // The body's own failure (a refusal, a broken invariant) is the round's answer as it is.
        if (typeof error === 'object' && error !== null && storeErrors.has(error)) throw error
        throw new RoundBodyFailure(error)
      }
      // What LevelDB refuses on its round-trip check, PostgreSQL's columns would take (a balance below zero): refused here too.
      if (outcome.writes !== undefined) checkWrites(outcome.writes)
      value = outcome.value
      if (outcome.writes !== undefined) {
        await writeRound(client, { accounts: existing, credentials: existingCredentials }, roundId, outcome.writes)
        wroteEntries = outcome.writes.entries.length > 0
      }
      committing = true
      await client.query('COMMIT')
      return outcome.value
    } catch (error) {
      const broken = !(error instanceof RoundBodyFailure) && isConnectionFault(error)
      if (!broken) await client.query('ROLLBACK').catch(() => undefined)
      client.release(broken)
      released = true
      // The connection dropped during COMMIT: the round may be stored. Find out before settling.
      if (committing && broken) {
        const stored = wroteEntries ? await this.#roundStored(roundId, backend) : true
        if (stored) return value as T
        throw this.#unavailable(error)
      }
      throw error
    } finally {
      if (!released) client.release()
    }
  }

  /**
   * Whether the round whose COMMIT lost its connection was stored: once its server process is
   * gone (so the transaction is settled), its entries exist or not. Asks until it gets an answer,
   * within storeCommitLookupMsMax; then the outcome stays unknown and the ledger must stop.
   */
  async #roundStored(roundId: string, backend: { pid: number; startedAt: string } | undefined): Promise<boolean> {
    const deadline = Date.now() + limits.storeCommitLookupMsMax
    for (let attempt = 1; ; attempt += 1) {
      try {
        if (backend !== undefined) {
          const alive = await this.#pool.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2',
            [backend.pid, backend.startedAt],
          )
          if (alive.rowCount !== 0) throw new Error('the round’s server process is still ending')
        }
        const found = await this.#pool.query('SELECT 1 FROM entries WHERE round_id = $1 LIMIT 1', [roundId])
        return found.rowCount !== 0
      } catch (error) {
        if (Date.now() >= deadline) {
          assert.fail(`the outcome of round ${roundId} on PostgreSQL at ${this.#target} is unknown: ${this.#unavailable(error).message}`)
        }
        await sleep(Math.min(limits.storeRetryBackoffMsMax * attempt, 1000))
      }
    }
  }

  async pageHistory(accountKey: AccountKey, range: HistoryRange): Promise<Entry[]> {
    const order = range.order === 'asc' ? 'ASC' : 'DESC'
    const rows = await this.#query<EntryRow>(
      `SELECT ${entryColumns} FROM entries
       WHERE account_key = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq ${order} LIMIT $4`,
      [accountKey, range.seqLow, range.seqHigh, range.limit],
    )
    return rows.map(entryOf)
  }

  async entriesWithKey(accountKey: AccountKey, idempotencyKey: string, limit: number): Promise<Entry[]> {
    const rows = await this.#query<EntryRow>(
      `SELECT ${entryColumns} FROM entries
       WHERE account_key = $1 AND idempotency_key = $2 ORDER BY seq LIMIT $3`,
      [accountKey, idempotencyKey, limit],
    )
    return rows.map(entryOf)
  }

  async firstSeqAtOrAfter(accountKey: AccountKey, atMs: number, seqLow: number, seqHigh: number): Promise<number> {
    const rows = await this.#query<{ seq: string }>(
      `SELECT seq FROM entries WHERE account_key = $1 AND at >= $2 AND seq BETWEEN $3 AND $4
       ORDER BY at, seq LIMIT 1`,
      [accountKey, atMs, seqLow, seqHigh],
    )
    return rows[0] === undefined ? seqHigh + 1 : Number(rows[0].seq)
  }

  async readHolding(accountKey: AccountKey): Promise<Holding> {
    return await this.#withClient(async (client) => {
      // One snapshot for the account, its holds and the clock.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      try {
        const clock = await client.query<{ now_ms: string }>('SELECT (extract(epoch FROM now()) * 1000)::bigint::text AS now_ms')
        const rows = await client.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE account_key = $1`, [accountKey])
        const account = rows.rows[0] === undefined ? undefined : accountOf(rows.rows[0])
        const open = account?.holdCount === undefined ? [] : ((await readHolds(client, [accountKey], [])).open[0] ?? [])
        await client.query('COMMIT')
        return { account, open, nowMs: Number(clock.rows[0]?.now_ms) }
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      }
    })
  }

  async dueHoldAccounts(_nowMs: number, limit: number): Promise<AccountKey[]> {
    // The database's clock, as the rounds that write the expiries use.
    const rows = await this.#query<{ account_key: string }>(
      `SELECT account_key FROM (SELECT account_key, expires FROM holds
         WHERE closed IS NULL AND expires <= (extract(epoch FROM now()) * 1000)::bigint ORDER BY expires LIMIT $1) AS due
       GROUP BY account_key ORDER BY min(expires)`,
      [limit],
    )
    return rows.map((row) => row.account_key as AccountKey)
  }

  async snapshot(): Promise<StoreSnapshot> {
    const client = await this.#connect()
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
      // The snapshot is taken at the first query of the transaction.
      await client.query('SELECT 1')
    } catch (error) {
      client.release(true)
      this.#fail(error)
    }
    let closed = false
    const run = async <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> => {
      assert.ok(!closed, 'snapshot used after close')
      try {
        return (await client.query<R>(text, values)).rows
      } catch (error) {
        this.#fail(error)
      }
    }
    return {
      accounts: async (after, limit) => {
        const rows = await run<AccountRow>(
          `SELECT ${accountColumns} FROM accounts WHERE account_key > $1 ORDER BY account_key LIMIT $2`,
          [after ?? '', limit],
        )
        return rows.map((row) => [row.account_key as AccountKey, accountOf(row)])
      },
      history: async (accountKey, seqLow, limit) => {
        const rows = await run<EntryRow>(
          `SELECT ${entryColumns} FROM entries
           WHERE account_key = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
          [accountKey, seqLow, limit],
        )
        return rows.map(entryOf)
      },
      idempotency: async (after, limit) => {
        const parsed = after === undefined ? undefined : parseIdempotencyKey(after)
        const rows = await run<IdempotencyRow>(
          `SELECT ${idempotencyColumns} FROM idempotency
           WHERE (account_key, key) > ($1, $2) ORDER BY account_key, key LIMIT $3`,
          [parsed?.accountKey ?? '', parsed?.idempotencyKey ?? '', limit],
        )
        return rows.map((row) => [idempotencyKeyOf(row.account_key as AccountKey, row.key), idempotencyOf(row)])
      },
      holds: async (accountKey, after, limit) => {
        const rows = await run<HoldRow>(
          `SELECT ${holdColumns} FROM holds WHERE account_key = $1 AND hold_id > $2 ORDER BY hold_id LIMIT $3`,
          [accountKey, after ?? '', limit],
        )
        return rows.map(holdOf)
      },
      credentials: async (after, limit) => {
        const rows = await run<CredentialRow>(
          'SELECT credential_key, account_key, retires FROM credentials WHERE credential_key > $1 ORDER BY credential_key LIMIT $2',
          [after ?? '', limit],
        )
        return rows.map((row) => [row.credential_key as CredentialKey, credentialOf(row)])
      },
      close: async () => {
        if (closed) return
        closed = true
        let broken = false
        try {
          await client.query('COMMIT')
        } catch {
          broken = true
        } finally {
          client.release(broken)
        }
      },
    }
  }

  async readMeta(name: string): Promise<string | undefined> {
    const rows = await this.#query<{ value: string }>('SELECT value FROM meta WHERE name = $1', [name])
    return rows[0]?.value
  }

  async writeMeta(records: Array<[name: string, value: string | undefined]>): Promise<void> {
    await this.#withClient(async (client) => {
      await client.query('BEGIN')
      try {
        for (const [name, value] of records) {
          if (value === undefined) await client.query('DELETE FROM meta WHERE name = $1', [name])
          else
            await client.query('INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', [
              name,
              value,
            ])
        }
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined)
        throw error
      }
    })
  }

  async readRef(ref: string): Promise<AccountKey | undefined> {
    const rows = await this.#query<{ account_key: string }>('SELECT account_key FROM account_refs WHERE ref = $1', [ref])
    return rows[0]?.account_key as AccountKey | undefined
  }

  async claimOutbox(nowMs: number, limit: number, leaseMs: number): Promise<OutboxRecord[]> {
    // SKIP LOCKED and the lease: a node never waits for, nor sends, what another node holds.
    const rows = await this.#query<OutboxRow>(
      `WITH due AS (
         SELECT id FROM outbox WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
       UPDATE outbox SET lease_until = $1 + $3 FROM due WHERE outbox.id = due.id
       RETURNING outbox.id, outbox.type, outbox.at, outbox.body, outbox.deliveries, outbox.due_at`,
      [nowMs, limit, leaseMs],
    )
    return rows.map(outboxRecordOf).sort((a, b) => (a.dueAtMs ?? 0) - (b.dueAtMs ?? 0))
  }

  async updateOutbox(saves: OutboxRecord[], deletes: OutboxRecord[]): Promise<void> {
    if (saves.length > 0) {
      await this.#query(
        `UPDATE outbox SET deliveries = new.deliveries, due_at = new.due_at, lease_until = NULL
         FROM unnest($1::text[], $2::jsonb[], $3::bigint[]) AS new (id, deliveries, due_at) WHERE outbox.id = new.id`,
        [saves.map((record) => record.id), saves.map((record) => JSON.stringify(record.deliveries)), saves.map((record) => record.dueAtMs ?? null)],
      )
    }
    if (deletes.length > 0) await this.#query('DELETE FROM outbox WHERE id = ANY($1::text[])', [deletes.map((record) => record.id)])
  }

  async pageOutbox(after: OutboxRecord | undefined, limit: number): Promise<OutboxRecord[]> {
    const rows = await this.#query<OutboxRow>(
      `SELECT id, type, at, body, deliveries, due_at FROM outbox WHERE (at, id) > ($1, $2) ORDER BY at, id LIMIT $3`,
      [after?.atMs ?? -1, after?.id ?? '', limit],
    )
    return rows.map(outboxRecordOf)
  }

  async trimOutbox(max: number): Promise<number> {
    const rows = await this.#query<{ dropped: string }>(
      `WITH oldest AS (
         SELECT id FROM outbox ORDER BY at, id
         LIMIT GREATEST((SELECT count(*) FROM outbox) - $1, 0) FOR UPDATE SKIP LOCKED),
       gone AS (DELETE FROM outbox USING oldest WHERE outbox.id = oldest.id RETURNING 1)
       SELECT count(*)::text AS dropped FROM gone`,
      [max],
    )
    return Number(rows[0]?.dropped ?? 0)
  }

  async countOutbox(): Promise<number> {
    const rows = await this.#query<{ count: string }>('SELECT count(*)::text AS count FROM outbox', [])
    return Number(rows[0]?.count ?? 0)
  }

  async ping(): Promise<boolean> {
    try {
      await this.#pool.query('SELECT 1')
      return true
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    await this.#pool.end()
  }
}

/** Opens (and migrates) the PostgreSQL store at `url`. */
export async function openPostgresStore(url: string, options: PostgresStoreOptions): Promise<PostgresStore> {
  return await PostgresStore.open(url, options)
}

const accountColumns = 'account_key, tot::text, seq, at, held::text, hold_count, next_expiry, expires, frozen, alert_below::text, ref, created'
const entryColumns = 'seq, by::text, tot::text, at, note, idempotency_key, kind, hold, held_by::text, held::text, move, peer, peer_seq, actor'
// Written without a leading table name: readRound prefixes each with its alias.
const idempotencyColumns = 'account_key, key, by::text, tot::text, seq, at, op, fingerprint, answer'
const holdColumns = 'hold_id, by::text, at, expires, note, closed'

interface AccountRow {
  account_key: string
  tot: string
  seq: string
  at: string
  held: string | null
  hold_count: number | null
  next_expiry: string | null
  expires: string | null
  frozen: boolean | null
  alert_below: string | null
  ref: string | null
  created: string | null
}

interface CredentialRow {
  credential_key: string
  account_key: string | null
  retires: string | null
}


interface OutboxRow {
  id: string
  type: string
  at: string
  body: string
  deliveries: OutboxRecord['deliveries']
  due_at: string | null
}

function outboxRecordOf(row: OutboxRow): OutboxRecord {
  assert.ok((eventTypes as readonly string[]).includes(row.type), 'an outbox row of an unknown type')
  return {
    id: row.id,
    type: row.type as EventType,
    atMs: Number(row.at),
    body: row.body,
    deliveries: row.deliveries,
    dueAtMs: row.due_at === null ? undefined : Number(row.due_at),
  }
}

interface EntryRow {
  seq: string
  by: string
  tot: string
  at: string
  note: string | null
  idempotency_key: string | null
  kind: string | null
  hold: string | null
  held_by: string | null
  held: string | null
  move: string | null
  peer: string | null
  peer_seq: string | null
  actor: string | null
}

interface IdempotencyRow {
  account_key: string
  key: string
  by: string
  tot: string
  seq: string
  at: string | null
  op: string | null
  fingerprint: string | null
  answer: string | null
}

interface HoldRow {
  hold_id: string
  by: string
  at: string
  expires: string
  note: string | null
  closed: string | null
}

function accountOf(row: AccountRow): AccountState {
  const state: AccountState = { tot: BigInt(row.tot), seq: Number(row.seq), atMs: Number(row.at) }
  if (row.held !== null) state.held = BigInt(row.held)
  if (row.hold_count !== null) state.holdCount = row.hold_count
  if (row.next_expiry !== null) state.nextExpiryMs = Number(row.next_expiry)
  if (row.expires !== null) state.expiresMs = Number(row.expires)
  if (row.frozen === true) state.frozen = true
  if (row.alert_below !== null) state.alertBelow = BigInt(row.alert_below)
  if (row.ref !== null) state.ref = row.ref
  if (row.created !== null) state.createdMs = Number(row.created)
  return state
}

/** The owners of refs, locked until the round ends (a ref set meanwhile elsewhere is a 23505: the round runs again). */
async function readRefs(client: pg.ClientBase, refs: string[]): Promise<Array<AccountKey | undefined>> {
  if (refs.length === 0) return []
  const rows = await client.query<{ ref: string; account_key: string }>(
    'SELECT ref, account_key FROM account_refs WHERE ref = ANY($1::text[]) ORDER BY ref FOR UPDATE',
    [refs],
  )
  const owners = new Map(rows.rows.map((row) => [row.ref, row.account_key as AccountKey]))
  return refs.map((ref) => owners.get(ref))
}

function credentialOf(row: CredentialRow): CredentialState {
  assert.ok(row.account_key !== null)
  const state: CredentialState = { accountKey: row.account_key as AccountKey }
  if (row.retires !== null) state.retiresMs = Number(row.retires)
  return state
}

function entryOf(row: EntryRow): Entry {
  const entry: Entry = { seq: Number(row.seq), by: BigInt(row.by), tot: BigInt(row.tot), atMs: Number(row.at) }
  if (row.note !== null) entry.note = row.note
  if (row.idempotency_key !== null) entry.idempotencyKey = row.idempotency_key
  if (row.kind !== null) entry.kind = row.kind as EntryKind
  if (row.hold !== null) entry.hold = row.hold
  if (row.held_by !== null) entry.heldBy = BigInt(row.held_by)
  if (row.held !== null) entry.held = BigInt(row.held)
  if (row.move !== null) entry.move = row.move
  if (row.peer !== null && row.peer_seq !== null) entry.peer = { accountKey: row.peer as AccountKey, seq: Number(row.peer_seq) }
  if (row.actor !== null) entry.actor = row.actor
  return entry
}

function idempotencyOf(row: IdempotencyRow): IdempotencyState {
  const state: IdempotencyState = { by: BigInt(row.by), tot: BigInt(row.tot), seq: Number(row.seq), atMs: row.at === null ? undefined : Number(row.at) }
  if (row.op !== null) state.op = row.op
  if (row.fingerprint !== null) state.fingerprint = row.fingerprint
  if (row.answer !== null) state.answer = row.answer
  return state
}

function holdOf(row: HoldRow): HoldState {
  const hold: HoldState = { id: row.hold_id, by: BigInt(row.by), atMs: Number(row.at), expiresMs: Number(row.expires) }
  if (row.note !== null) hold.note = row.note
  if (row.closed !== null) hold.closed = row.closed as NonNullable<HoldState['closed']>
  return hold
}

/** The open holds of the given accounts, oldest first, and the given holds by id. */
async function readHolds(client: pg.ClientBase, openOf: AccountKey[], byId: Array<[AccountKey, string]>): Promise<RoundHolds> {
  const open = new Map<string, HoldState[]>(openOf.map((key) => [key, []]))
  if (openOf.length > 0) {
    const rows = await client.query<HoldRow & { account_key: string }>(
      `SELECT account_key, ${holdColumns} FROM holds WHERE account_key = ANY($1::text[]) AND closed IS NULL ORDER BY account_key, at, hold_id`,
      [openOf],
    )
    for (const row of rows.rows) open.get(row.account_key)?.push(holdOf(row))
  }
  const found = new Map<string, HoldState>()
  if (byId.length > 0) {
    const rows = await client.query<HoldRow & { account_key: string }>(
      `SELECT h.account_key, ${holdColumns.replace(/(^|, )/g, '$1h.')} FROM holds h
       JOIN unnest($1::text[], $2::text[]) AS wanted (account_key, hold_id) USING (account_key, hold_id)`,
      [byId.map(([key]) => key), byId.map(([, id]) => id)],
    )
    for (const row of rows.rows) found.set(`${row.account_key}!${row.hold_id}`, holdOf(row))
  }
  return { open: openOf.map((key) => open.get(key) ?? []), byId: byId.map(([key, id]) => found.get(`${key}!${id}`)) }
}

function splitIdempotencyKey(storeKey: string): { accountKey: AccountKey; idempotencyKey: string } {
  const parsed = parseIdempotencyKey(storeKey)
  assert.ok(parsed !== undefined, 'malformed idempotency store key')
  return parsed
}

/**
 * Asserts that every record of a round is one the ledger could read back, with the codec's checks
 * (balances within 0 and the maximum, seqs and times whole): a round that fails is a bug, and is
 * refused before anything is stored.
 */
function checkWrites(writes: RoundWrites): void {
  for (const [key, state] of writes.accounts) decodeAccount(key, encodeAccount(state))
  for (const [key, entry] of writes.entries) decodeEntry(historyKeyOf(key, entry.seq), encodeEntry(entry))
  for (const [key, state] of writes.idempotency) decodeIdempotency(key, encodeIdempotency(state))
}

interface Existing {
  accounts: Set<AccountKey>
  credentials: Set<CredentialKey>
}

/**
 * Locks the credentials that exist, then the accounts that exist, each in key order, and reads
 * them and the idempotency records. Every round takes credentials before accounts, so two
 * rounds never wait for each other in a cycle.
 */
async function readRound(
  client: pg.ClientBase,
  existing: Existing,
  accountKeys: AccountKey[],
  idempotencyKeys: string[],
  credentialKeys: CredentialKey[],
): Promise<RoundStates> {
  const credentials = new Map<string, CredentialState>()
  if (credentialKeys.length > 0) {
    const rows = await client.query<CredentialRow>(
      'SELECT credential_key, account_key, retires FROM credentials WHERE credential_key = ANY($1::text[]) ORDER BY credential_key FOR UPDATE',
      [[...new Set(credentialKeys)].sort()],
    )
    for (const row of rows.rows) {
      credentials.set(row.credential_key, credentialOf(row))
      existing.credentials.add(row.credential_key as CredentialKey)
    }
  }
  const sortedKeys = [...new Set(accountKeys)].sort()
  const accountRows =
    sortedKeys.length === 0
      ? { rows: [] as AccountRow[] }
      : await client.query<AccountRow>(`SELECT ${accountColumns} FROM accounts WHERE account_key = ANY($1::text[]) ORDER BY account_key FOR UPDATE`, [
          sortedKeys,
        ])
  const accounts = new Map(accountRows.rows.map((row) => [row.account_key, accountOf(row)]))
  for (const key of accounts.keys()) existing.accounts.add(key as AccountKey)
  const idempotency = new Map<string, IdempotencyState>()
  if (idempotencyKeys.length > 0) {
    const parts = idempotencyKeys.map(splitIdempotencyKey)
    const rows = await client.query<IdempotencyRow>(
      `SELECT ${idempotencyColumns.replace(/(^|, )/g, '$1i.')} FROM idempotency i
       JOIN unnest($1::text[], $2::text[]) AS wanted (account_key, key) USING (account_key, key)`,
      [parts.map((part) => part.accountKey), parts.map((part) => part.idempotencyKey)],
    )
    for (const row of rows.rows) idempotency.set(idempotencyKeyOf(row.account_key as AccountKey, row.key), idempotencyOf(row))
  }
  return {
    accounts: accountKeys.map((key) => accounts.get(key)),
    idempotency: idempotencyKeys.map((key) => idempotency.get(key)),
    credentials: credentialKeys.map((key) => credentials.get(key)),
  }
}

/**
 * Stores a round's writes with one statement per table. Accounts read as existing are updated;
 * the others are inserted without ON CONFLICT, so an account another node created meanwhile is a
 * unique violation (23505) and the round runs again against it.
 */
async function writeRound(client: pg.ClientBase, existing: Existing, roundId: string, writes: RoundWrites): Promise<void> {
  const updated = writes.accounts.filter(([key]) => existing.accounts.has(key))
  const created = writes.accounts.filter(([key]) => !existing.accounts.has(key))
  const columns = (rows: Array<[AccountKey, AccountState]>): unknown[] => [
    rows.map(([key]) => key),
    rows.map(([, state]) => state.tot.toString()),
    rows.map(([, state]) => state.seq),
    rows.map(([, state]) => state.atMs),
    rows.map(([, state]) => state.held?.toString() ?? null),
    rows.map(([, state]) => state.holdCount ?? null),
    rows.map(([, state]) => state.nextExpiryMs ?? null),
    rows.map(([, state]) => state.expiresMs ?? null),
    rows.map(([, state]) => (state.frozen === true ? true : null)),
    rows.map(([, state]) => state.alertBelow?.toString() ?? null),
    rows.map(([, state]) => state.ref ?? null),
  ]
  if (created.length > 0) {
    await client.query(
      `INSERT INTO accounts (account_key, tot, seq, at, held, hold_count, next_expiry, expires, frozen, alert_below, ref, created, public_id)
       SELECT * FROM unnest($1::text[], $2::numeric[], $3::bigint[], $4::bigint[], $5::numeric[], $6::integer[], $7::bigint[], $8::bigint[], $9::boolean[],
                            $10::numeric[], $11::text[], $12::bigint[], $13::text[])`,
      [...columns(created), created.map(([, state]) => state.createdMs ?? null), created.map(([key]) => publicAccountId(key))],
    )
  }
  if (updated.length > 0) {
    await client.query(
      `UPDATE accounts SET tot = new.tot, seq = new.seq, at = new.at, held = new.held, hold_count = new.hold_count, next_expiry = new.next_expiry,
         expires = new.expires, frozen = new.frozen, alert_below = new.alert_below, ref = new.ref
       FROM unnest($1::text[], $2::numeric[], $3::bigint[], $4::bigint[], $5::numeric[], $6::integer[], $7::bigint[], $8::bigint[], $9::boolean[],
                   $10::numeric[], $11::text[])
         AS new (account_key, tot, seq, at, held, hold_count, next_expiry, expires, frozen, alert_below, ref)
       WHERE accounts.account_key = new.account_key`,
      columns(updated),
    )
  }
  const refs = writes.refs ?? []
  const released = refs.filter(([, accountKey]) => accountKey === undefined).map(([ref]) => ref)
  if (released.length > 0) await client.query('DELETE FROM account_refs WHERE ref = ANY($1::text[])', [released])
  const claimed = refs.filter((pair): pair is [string, AccountKey] => pair[1] !== undefined)
  if (claimed.length > 0) {
    await client.query('INSERT INTO account_refs (ref, account_key) SELECT * FROM unnest($1::text[], $2::text[])', [
      claimed.map(([ref]) => ref),
      claimed.map(([, accountKey]) => accountKey),
    ])
  }
  const outbox = writes.outbox ?? []
  if (outbox.length > 0) {
    // ON CONFLICT: a round whose COMMIT was lost and that is decided again gives the same ids.
    await client.query(
      `INSERT INTO outbox (id, type, at, body, due_at) SELECT id, type, at, body, at
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[]) AS new (id, type, at, body) ON CONFLICT (id) DO NOTHING`,
      [outbox.map((event) => event.id), outbox.map((event) => event.type), outbox.map((event) => event.atMs), outbox.map((event) => event.body)],
    )
  }
  if (writes.entries.length > 0) {
    const entries = writes.entries
    await client.query(
      `INSERT INTO entries (account_key, seq, by, tot, at, note, idempotency_key, round_id, kind, hold, held_by, held, move, peer, peer_seq, actor)
       SELECT account_key, seq, by, tot, at, note, idempotency_key, $8::uuid, kind, hold, held_by, held, move, peer, peer_seq, actor
       FROM unnest($1::text[], $2::bigint[], $3::numeric[], $4::numeric[], $5::bigint[], $6::text[], $7::text[],
                   $9::text[], $10::text[], $11::numeric[], $12::numeric[], $13::text[], $14::text[], $15::bigint[], $16::text[])
         AS new (account_key, seq, by, tot, at, note, idempotency_key, kind, hold, held_by, held, move, peer, peer_seq, actor)`,
      [
        entries.map(([key]) => key),
        entries.map(([, entry]) => entry.seq),
        entries.map(([, entry]) => entry.by.toString()),
        entries.map(([, entry]) => entry.tot.toString()),
        entries.map(([, entry]) => entry.atMs),
        entries.map(([, entry]) => entry.note ?? null),
        entries.map(([, entry]) => entry.idempotencyKey ?? null),
        roundId,
        entries.map(([, entry]) => entry.kind ?? null),
        entries.map(([, entry]) => entry.hold ?? null),
        entries.map(([, entry]) => entry.heldBy?.toString() ?? null),
        entries.map(([, entry]) => entry.held?.toString() ?? null),
        entries.map(([, entry]) => entry.move ?? null),
        entries.map(([, entry]) => entry.peer?.accountKey ?? null),
        entries.map(([, entry]) => entry.peer?.seq ?? null),
        entries.map(([, entry]) => entry.actor ?? null),
      ],
    )
  }
  if (writes.idempotency.length > 0) {
    const parts = writes.idempotency.map(([key, state]) => ({ ...splitIdempotencyKey(key), state }))
    await client.query(
      `INSERT INTO idempotency (account_key, key, by, tot, seq, at, op, fingerprint, answer)
       SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[])
       ON CONFLICT (account_key, key) DO UPDATE SET by = excluded.by, tot = excluded.tot, seq = excluded.seq, at = excluded.at,
         op = excluded.op, fingerprint = excluded.fingerprint, answer = excluded.answer`,
      [
        parts.map((part) => part.accountKey),
        parts.map((part) => part.idempotencyKey),
        parts.map((part) => part.state.by.toString()),
        parts.map((part) => part.state.tot.toString()),
        parts.map((part) => part.state.seq),
        parts.map((part) => part.state.atMs ?? null),
        parts.map((part) => part.state.op ?? null),
        parts.map((part) => part.state.fingerprint ?? null),
        parts.map((part) => part.state.answer ?? null),
      ],
    )
  }
  const holds = writes.holds ?? []
  if (holds.length > 0) {
    // A hold is inserted open and later closed: only `closed` ever changes.
    await client.query(
      `INSERT INTO holds (account_key, hold_id, by, at, expires, note, closed)
       SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
       ON CONFLICT (account_key, hold_id) DO UPDATE SET closed = excluded.closed`,
      [
        holds.map(([key]) => key),
        holds.map(([, hold]) => hold.id),
        holds.map(([, hold]) => hold.by.toString()),
        holds.map(([, hold]) => hold.atMs),
        holds.map(([, hold]) => hold.expiresMs),
        holds.map(([, hold]) => hold.note ?? null),
        holds.map(([, hold]) => hold.closed ?? null),
      ],
    )
  }
  await writeCredentials(client, existing, writes.credentials ?? [])
  if (writes.idempotencyDeletes.length > 0) {
    const parts = writes.idempotencyDeletes.map(splitIdempotencyKey)
    await client.query(
      `DELETE FROM idempotency USING unnest($1::text[], $2::text[]) AS gone (account_key, key)
       WHERE idempotency.account_key = gone.account_key AND idempotency.key = gone.key`,
      [parts.map((part) => part.accountKey), parts.map((part) => part.idempotencyKey)],
    )
  }
}

/**
 * Credentials read as existing are updated; the others are inserted without ON CONFLICT, so a
 * credential another node pointed at an account meanwhile is a unique violation (23505) and the
 * round runs again against it: one credential never addresses two accounts.
 */
async function writeCredentials(client: pg.ClientBase, existing: Existing, credentials: Array<[CredentialKey, CredentialState]>): Promise<void> {
  if (credentials.length === 0) return
  const columns = (rows: Array<[CredentialKey, CredentialState]>): unknown[] => [
    rows.map(([key]) => key),
    rows.map(([, state]) => state.accountKey),
    rows.map(([, state]) => state.retiresMs ?? null),
  ]
  const created = credentials.filter(([key]) => !existing.credentials.has(key))
  const updated = credentials.filter(([key]) => existing.credentials.has(key))
  if (created.length > 0) {
    await client.query(
      'INSERT INTO credentials (credential_key, account_key, retires) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])',
      columns(created),
    )
  }
  if (updated.length > 0) {
    await client.query(
      `UPDATE credentials SET account_key = new.account_key, retires = new.retires
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS new (credential_key, account_key, retires)
       WHERE credentials.credential_key = new.credential_key`,
      columns(updated),
    )
  }
}
