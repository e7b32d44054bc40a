// Configuration: the environment (and .env) parsed once at start-up into a frozen Config. Every
// limit of the service is declared here; the core receives what it needs as arguments.
import { isIP } from 'node:net'
import { z } from 'zod'
import { credentialLengthMax } from './contract/syntax.js'
import {
  amountMax,
  amountDigitsMax,
  idempotencyKeyLengthMax,
  idempotencyTtlSecondsDefault,
  idempotencyTtlSecondsMax,
  idempotencyTtlSecondsMin,
  noteLengthMax,
} from './ledger/limits.js'

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false (1/0 and yes/no also work)' })
  .transform((text) => text === 'true' || text === '1' || text === 'yes')

/** Bearer tokens: long, visible ASCII, no commas (the list separator) and no spaces. */
export const tokenLengthMin = 16
export const tokenLengthMax = 256
/** A token's name, as it appears in history entries (`actor`): never the token itself. */
export const tokenNamePattern = /^[A-Za-z0-9_.-]{1,64}$/
/** `name:token`: a list item with a name before its first ':' is a named token. */
const namedTokenPattern = /^([A-Za-z0-9_.-]{1,64}):(.+)$/

export interface NamedToken {
  token: string
  /** Absent: an unnamed token (its entries carry no actor). */
  name?: string
}

/** Splits `name:token` items; the rest are unnamed tokens. */
function namedTokensOf(items: string[]): NamedToken[] {
  return items.map((item) => {
    const match = namedTokenPattern.exec(item)
    return match === null ? { token: item } : { token: match[2] ?? '', name: match[1] ?? '' }
  })
}

const tokenList = z
  .string()
  .transform((text) => namedTokensOf(text.split(',').map((token) => token.trim()).filter((token) => token !== '')))
  .transform((named) => named.map((entry) => entry.token))
  .refine(
    (tokens) => tokens.every((token) => /^[\x21-\x2b\x2d-\x7e]+$/.test(token)),
    'tokens must be visible ASCII without spaces, separated by commas',
  )
  .refine(
    (tokens) => tokens.every((token) => token.length >= tokenLengthMin && token.length <= tokenLengthMax),
    `each token must be ${tokenLengthMin} to ${tokenLengthMax} characters; make them with: openssl rand -hex 32`,
  )

/** Webhook endpoints: http(s) URLs, comma-separated. A bad one is reported without echoing it (it may carry a password). */
const webhookUrlList = z
  .string()
  .transform((text) => text.split(',').map((url) => url.trim()).filter((url) => url !== ''))
  .refine(
    (urls) => urls.every((url) => URL.canParse(url) && ['http:', 'https:'].includes(new URL(url).protocol)),
    'must be one or more http:// or https:// URLs, separated by commas',
  )

/** Standard Webhooks secrets: `whsec_` and base64 (24 to 64 bytes), comma-separated; all sign. */
const webhookSecretList = z
  .string()
  .transform((text) => text.split(',').map((secret) => secret.trim()).filter((secret) => secret !== ''))
  .refine(
    (secrets) =>
      secrets.every((secret) => {
        const key = secret.slice('whsec_'.length)
        const bytes = Buffer.from(key, 'base64').length
        return secret.startsWith('whsec_') && /^[A-Za-z0-9+/]+={0,2}$/.test(key) && bytes >= 24 && bytes <= 64
      }),
    'must be one or more whsec_ secrets (whsec_ then 24 to 64 bytes in base64), separated by commas',
  )

const idempotencyTtlText = z
  .string()
  .regex(/^[0-9]{1,10}$/, `must be a whole number of seconds from ${idempotencyTtlSecondsMin} to ${idempotencyTtlSecondsMax} (30 days)`)
  .transform(Number)
  .refine(
    (seconds) => seconds >= idempotencyTtlSecondsMin && seconds <= idempotencyTtlSecondsMax,
    `must be a whole number of seconds from ${idempotencyTtlSecondsMin} to ${idempotencyTtlSecondsMax} (30 days)`,
  )
  .default(idempotencyTtlSecondsDefault)

const envSchema = z.object({
  ACCMAN_HOST: z.string().trim().min(1, 'must not be empty').default('127.0.0.1'),
  ACCMAN_PORT: z
    .string()
    .regex(/^[0-9]{1,5}$/, 'must be a port number from 0 to 65535')
    .transform(Number)
    .refine((port) => port <= 65535, 'must be a port number from 0 to 65535')
    .default(22262),
  ACCMAN_DB: z.string().trim().min(1, 'must not be empty').default('./data'),
  ACCMAN_LOG_LEVEL: z.enum(logLevels, { error: `must be one of ${logLevels.join(', ')}` }).default('info'),
  ACCMAN_SYNC: booleanText.default(true),
  ACCMAN_TOKENS: tokenList.default([]),
  ACCMAN_READ_TOKENS: tokenList.default([]),
  ACCMAN_METRICS_PUBLIC: booleanText.default(false),
  ACCMAN_IDEMPOTENCY_TTL: idempotencyTtlText,
  ACCMAN_DB_TIMEOUT_MS: z.coerce
    .number({ error: 'must be a whole number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(1, 'must be at least 1')
    .max(600_000, 'must be at most 600000')
    .default(5000), // limits.storeTimeoutMsDefault: declared below, checked equal there
  ACCMAN_ALERT_BELOW: z
    .string()
    .regex(new RegExp(`^(0|[1-9][0-9]{0,${amountDigitsMax - 1}})$`), 'must be a whole number of units, 0 or more')
    .transform((text) => BigInt(text))
    .refine((units) => units <= amountMax, 'must be at most 2^127-1')
    .optional(),
  ACCMAN_WEBHOOK_URL: webhookUrlList.default([]),
  ACCMAN_WEBHOOK_SECRET: webhookSecretList.default([]),
  ACCMAN_WEBHOOK_RETRY_BASE_MS: z.coerce
    .number({ error: 'must be a whole number of milliseconds' })
    .int('must be a whole number of milliseconds')
    .min(1, 'must be at least 1')
    .max(5000, 'must be at most 5000 (the first retry comes within 5 s)')
    .default(2000),
})

/**
 * The service's limits, declared here once. Names carry the unit first and the qualifier last
 * (`requestTimeoutMs`, `headerSizeBytesMax`); a count has no unit (`writerBatchMax`). The ranges
 * that are part of the HTTP contract live in src/ledger/limits.ts instead.
 */
export interface Limits {
  /** Mods written in one LevelDB batch at most (one fsync each). */
  writerBatchMax: number
  /** Mods waiting for the writer at most; past this a mod answers 503. */
  writerQueueMax: number
  /** Rounds written at once at most, on disjoint accounts (2: measured best of 1, 2 and 4). */
  writerRoundsInFlightMax: number
  /**
   * How far down the queue a round looks for mods of free accounts, in batches (of writerBatchMax
   * mods), so a long queue for one busy account costs little per round.
   */
  writerLookAheadBatchesMax: number
  /** Account states kept in memory at most (exact: the writer keeps them current). About 200 bytes each. */
  accountCacheMax: number
  /** Credential -> account mappings kept in memory at most (exclusive engine; exact: only the writer changes them). About 250 bytes each. */
  credentialCacheMax: number
  /** Accounts per batch of a store-format upgrade (see src/ledger/upgrade.ts). */
  upgradeBatchMax: number
  /** Keys read per page when the ledger scans a table at start-up. */
  scanPageMax: number
  /** Accounts and idempotency records checked against kept filters at start, at least. */
  filterSampleMax: number
  /** Records written per fsynced batch by an import. */
  importBatchMax: number
  /** Faults verify lists one by one; past them it only counts. */
  verifyFaultsListedMax: number
  /** Accounts verify reads between two progress reports. */
  verifyProgressAccounts: number
  /** Export lines are joined into text chunks of about this many characters (one write each). */
  exportChunkLengthMax: number
  /** Request bodies are never needed (but by /batch); anything larger than this is refused outright. */
  bodyBytesMax: number
  /** Operations in one POST /batch at most (the HTTP contract). */
  batchOpsMax: number
  /** Operations the client sends in one /batch request at most. */
  clientBatchOpsMax: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  /** How long a graceful stop waits for in-flight requests before giving up. */
  shutdownGraceMs: number
  /** Request line and headers must arrive within this. */
  headersTimeoutMs: number
  /** A socket with no traffic for this long is closed. */
  connectionTimeoutMs: number
  /** Longest URL (path and query); the longest valid one is well under 4 KiB. */
  urlLengthMax: number
  /**
   * Request line plus headers, in bytes. Node's parser counts only names, values and the URL, so
   * the server counts the lines themselves too (src/http/edge.ts).
   */
  headerSizeBytesMax: number
  /** Header lines in one request at most; past Node's own count it drops lines silently. */
  headerLinesMax: number
  /** Event loop delay past which requests get 503 instead of queueing behind it. */
  eventLoopDelayMsMax: number
  /** How often the event loop delay is sampled. */
  eventLoopSampleMs: number
  /** The Retry-After of every 503 AccMan sends: a refusal that a retry soon may not meet. */
  retryAfterSeconds: number
  /** How often a pass of pruning deletes expired idempotency records. */
  idempotencyPruneIntervalMs: number
  /**
   * Idempotency records read per pruning pass at most (a sweep of the table takes records / this
   * passes). Keyed mods arriving faster than this per interval would outrun the sweep.
   */
  idempotencyPruneBatchMax: number
  /** How often Node checks the connections' header and request timeouts, at most (its own default is 30 s). */
  connectionsCheckIntervalMs: number
  /** A round on a shared store runs this many times at most (serialization failure, deadlock, concurrent creation). */
  storeRoundAttemptsMax: number
  /** Connections each node keeps to a shared store at most. */
  storePoolMax: number
  /** The longest pause between two attempts of a round (jittered, growing from 1 ms). */
  storeRetryBackoffMsMax: number
  /** How long a store whose connection dropped during COMMIT keeps asking whether the round was stored. */
  storeCommitLookupMsMax: number
  /** Default bound of every query and connection attempt to a shared store (ACCMAN_DB_TIMEOUT_MS). */
  storeTimeoutMsDefault: number
  /** How often the expiry pass writes due hold expiries (each is recorded within 5 s of its expiry). */
  holdExpiryIntervalMs: number
  /** Due holds one expiry pass looks at, at most. */
  holdExpiryBatchMax: number
  /** Events kept in the outbox at most; past it the oldest undelivered are dropped (logged, counted). */
  outboxMax: number
  /** One webhook attempt (connect, send, answer) takes at most this long. */
  webhookAttemptTimeoutMs: number
  /** Webhook attempts in flight at once, per node. */
  webhookConcurrencyMax: number
  /** Events a node takes from the outbox per pass. */
  webhookClaimBatchMax: number
  /** How often a node looks for due events. */
  webhookPollIntervalMs: number
  /** The longest pause between two attempts (exponential growth from the base stops here). */
  webhookRetryDelayMsMax: number
  /** An event an endpoint keeps refusing is marked failed once this long has passed since its first attempt. */
  webhookRetryWindowMs: number
  /** A receiver's Retry-After is honoured up to this. */
  webhookRetryAfterMsMax: number
  /** Events waiting for a disabled endpoint are looked at again this often (to see it re-enabled). */
  webhookDisabledRecheckMs: number
}

export const limits: Readonly<Limits> = Object.freeze({
  writerBatchMax: 2_000,
  writerQueueMax: 100_000,
  writerRoundsInFlightMax: 2,
  writerLookAheadBatchesMax: 4,
  accountCacheMax: 100_000,
  credentialCacheMax: 100_000,
  upgradeBatchMax: 10_000,
  scanPageMax: 10_000,
  filterSampleMax: 10_000,
  importBatchMax: 10_000,
  verifyFaultsListedMax: 100,
  verifyProgressAccounts: 1000,
  exportChunkLengthMax: 65_536,
  bodyBytesMax: 1024,
  batchOpsMax: 1000,
  clientBatchOpsMax: 1000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  shutdownGraceMs: 10_000,
  headersTimeoutMs: 10_000,
  connectionTimeoutMs: 120_000,
  urlLengthMax: 4096,
  headerSizeBytesMax: 8192,
  headerLinesMax: 100,
  eventLoopDelayMsMax: 1000,
  eventLoopSampleMs: 250,
  retryAfterSeconds: 1,
  idempotencyPruneIntervalMs: 1000,
  idempotencyPruneBatchMax: 10_000,
  connectionsCheckIntervalMs: 1000,
  storeRoundAttemptsMax: 50,
  storePoolMax: 20,
  storeRetryBackoffMsMax: 50,
  storeCommitLookupMsMax: 30_000,
  storeTimeoutMsDefault: 5000,
  holdExpiryIntervalMs: 500,
  holdExpiryBatchMax: 1000,
  outboxMax: 100_000,
  webhookAttemptTimeoutMs: 10_000,
  webhookConcurrencyMax: 8,
  webhookClaimBatchMax: 64,
  webhookPollIntervalMs: 200,
  webhookRetryDelayMsMax: 3_600_000,
  webhookRetryWindowMs: 90_000_000,
  webhookRetryAfterMsMax: 3_600_000,
  webhookDisabledRecheckMs: 600_000,
})

/**
 * What is wrong with a set of limits, or undefined: the relationships between them, checked once
 * at start-up (below), the way TigerBeetle asserts its constants.
 */
export function limitsProblem(candidate: Readonly<Limits>): string | undefined {
  const counts = [
    'writerBatchMax',
    'writerQueueMax',
    'writerRoundsInFlightMax',
    'writerLookAheadBatchesMax',
    'accountCacheMax',
    'credentialCacheMax',
    'upgradeBatchMax',
    'scanPageMax',
    'filterSampleMax',
    'importBatchMax',
    'idempotencyPruneBatchMax',
    'holdExpiryBatchMax',
    'storeRoundAttemptsMax',
    'outboxMax',
    'webhookConcurrencyMax',
    'webhookClaimBatchMax',
  ] as const
  const notPositive = counts.find((name) => !Number.isInteger(candidate[name]) || candidate[name] < 1)
  if (notPositive !== undefined) return `${notPositive} must be a whole number of at least 1`
  if (candidate.writerBatchMax > candidate.writerQueueMax) return 'writerBatchMax must not exceed writerQueueMax'
  if (candidate.batchOpsMax > candidate.writerQueueMax) return 'batchOpsMax must not exceed writerQueueMax'
  if (candidate.clientBatchOpsMax > candidate.batchOpsMax) return 'clientBatchOpsMax must not exceed batchOpsMax'
  if (candidate.urlLengthMax >= candidate.headerSizeBytesMax) return 'urlLengthMax must fit in headerSizeBytesMax'
  if (candidate.headersTimeoutMs > candidate.requestTimeoutMs) return 'headersTimeoutMs must not exceed requestTimeoutMs'
  // Expiries are recorded within 5 s: the pass runs at least once a second.
  if (!(candidate.holdExpiryIntervalMs >= 1 && candidate.holdExpiryIntervalMs <= 1000)) return 'holdExpiryIntervalMs must be 1 to 1000'
  // "Over at least a day": the window must outlast a day of retries.
  if (candidate.webhookRetryWindowMs < 86_400_000) return 'webhookRetryWindowMs must be at least a day'
  return undefined
}

/** JSON's longest spelling of one character: `\\uXXXX`. */
const escapedCharacterBytesMax = 6
/** `{"op":"mod","cred":"","by":"","note":"","key":""},` and some room for spaces. */
const operationFrameBytes = 128
/**
 * The longest /batch body: batchOpsMax mods at their longest, every character escaped (a note's
 * character outside the BMP is two escapes), so no valid batch is ever refused for its size.
 */
export const batchBodyBytesMax =
  limits.batchOpsMax *
    (operationFrameBytes +
      escapedCharacterBytesMax * (credentialLengthMax + 1 + amountDigitsMax + idempotencyKeyLengthMax + 2 * noteLengthMax)) +
  operationFrameBytes

const problem = limitsProblem(limits)
if (problem !== undefined) throw new Error(problem)
if (limits.storeTimeoutMsDefault !== 5000) throw new Error('ACCMAN_DB_TIMEOUT_MS defaults to 5000: keep limits.storeTimeoutMsDefault equal')

export interface Config extends Limits {
  host: string
  port: number
  dbPath: string
  logLevel: (typeof logLevels)[number]
  sync: boolean
  /** Bearer tokens allowed to read and write. */
  tokens: readonly string[]
  /** Bearer tokens allowed tot and past only. */
  readTokens: readonly string[]
  /** The name of each token of `tokens` (same order), where ACCMAN_TOKENS gave one as name:token. */
  tokenNames?: readonly (string | undefined)[]
  /** The same for `readTokens`. */
  readTokenNames?: readonly (string | undefined)[]
  /** /metrics without a token even when tokens are configured. */
  metricsPublic: boolean
  /** How long an idempotency key is replayed; past it, the key counts as new. */
  idempotencyTtlMs: number
  /** Bound of every connection attempt and query to a PostgreSQL store (ACCMAN_DB_TIMEOUT_MS). */
  dbTimeoutMs: number
  /** The low-balance threshold of accounts without their own (ACCMAN_ALERT_BELOW). */
  alertBelowDefault: bigint | undefined
  /** Webhook endpoints (ACCMAN_WEBHOOK_URL); empty: webhooks are off. Never logged. */
  webhookUrls: readonly string[]
  /** Signing secrets (ACCMAN_WEBHOOK_SECRET), every one signs. Never logged. */
  webhookSecrets: readonly string[]
  /** The first retry's delay; each next one doubles, with jitter (ACCMAN_WEBHOOK_RETRY_BASE_MS). */
  webhookRetryBaseMs: number
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Parses variables with `schema`; empty values count as unset; a bad one names itself. */
function parseEnv<T>(schema: z.ZodType<T>, env: NodeJS.ProcessEnv): T {
  const present = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value !== ''))
  const result = schema.safeParse(present)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  throw new ConfigError(`${String(issue?.path[0] ?? 'environment')} ${issue?.message ?? 'is invalid'}`)
}

/** The names of a token list's items, in order (undefined for unnamed ones); the list is valid by now. */
function namesOf(text: string | undefined): (string | undefined)[] {
  const items = (text ?? '').split(',').map((token) => token.trim()).filter((token) => token !== '')
  return namedTokensOf(items).map((entry) => entry.name)
}

/** Parses the environment; a bad value throws a ConfigError naming the variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const env_ = parseEnv(envSchema, env)
  if (env_.ACCMAN_READ_TOKENS.some((token) => env_.ACCMAN_TOKENS.includes(token))) {
    throw new ConfigError('ACCMAN_READ_TOKENS repeats a token of ACCMAN_TOKENS; give each token one role')
  }
  if (env_.ACCMAN_WEBHOOK_URL.length > 0 && env_.ACCMAN_WEBHOOK_SECRET.length === 0) {
    throw new ConfigError('ACCMAN_WEBHOOK_SECRET is required when ACCMAN_WEBHOOK_URL is set (every delivery is signed)')
  }
  const open = env_.ACCMAN_TOKENS.length === 0 && env_.ACCMAN_READ_TOKENS.length === 0
  if (open && !isLoopback(env_.ACCMAN_HOST)) {
    // Whoever reaches /mod can mint balance: off the loopback interface, tokens are required.
    throw new ConfigError(
      `ACCMAN_HOST ${env_.ACCMAN_HOST} is not a loopback address, so AccMan needs tokens: set ACCMAN_TOKENS to one or more long random strings (e.g. openssl rand -hex 32), or listen on 127.0.0.1`,
    )
  }
  return Object.freeze({
    ...limits,
    host: env_.ACCMAN_HOST,
    port: env_.ACCMAN_PORT,
    dbPath: env_.ACCMAN_DB,
    logLevel: env_.ACCMAN_LOG_LEVEL,
    sync: env_.ACCMAN_SYNC,
    tokens: Object.freeze(env_.ACCMAN_TOKENS),
    readTokens: Object.freeze(env_.ACCMAN_READ_TOKENS),
    tokenNames: Object.freeze(namesOf(env.ACCMAN_TOKENS)),
    readTokenNames: Object.freeze(namesOf(env.ACCMAN_READ_TOKENS)),
    metricsPublic: env_.ACCMAN_METRICS_PUBLIC,
    idempotencyTtlMs: env_.ACCMAN_IDEMPOTENCY_TTL * 1000,
    dbTimeoutMs: env_.ACCMAN_DB_TIMEOUT_MS,
    alertBelowDefault: env_.ACCMAN_ALERT_BELOW,
    webhookUrls: Object.freeze(env_.ACCMAN_WEBHOOK_URL),
    webhookSecrets: Object.freeze(env_.ACCMAN_WEBHOOK_SECRET),
    webhookRetryBaseMs: env_.ACCMAN_WEBHOOK_RETRY_BASE_MS,
  })
}

/**
 * The CLI's limits. Its retries of network failures and 503s (same request, same idempotency
 * key) are bounded in count and in total time; a Retry-After is honoured up to its own bound.
 */
export const cliLimits = Object.freeze({
  /** Per request attempt of the online commands (ACCMAN_CLI_TIMEOUT_MS), and its range. */
  timeoutMsDefault: 30_000,
  timeoutMsMin: 100,
  timeoutMsMax: 600_000,
  attemptsMax: 4,
  retryTotalMsMax: 60_000,
  retryAfterMsMax: 10_000,
  backoffBaseMs: 200,
  /** How long `accman backup` waits for the answer to start; the body may take as long as it needs. */
  backupStartTimeoutMs: 30_000,
})

if (cliLimits.timeoutMsDefault < cliLimits.timeoutMsMin || cliLimits.timeoutMsDefault > cliLimits.timeoutMsMax) {
  throw new Error('cliLimits.timeoutMsDefault must be within its range')
}
if (cliLimits.retryAfterMsMax > cliLimits.retryTotalMsMax) throw new Error('retryAfterMsMax must not exceed retryTotalMsMax')

/** The typed client's defaults and bounds (accman/client); its options keep their published names. */
export const clientLimits = Object.freeze({
  timeoutMsDefault: 5000,
  retriesDefault: 2,
  retriesMax: 10,
  retryDelayMsDefault: 50,
  /** The default and the largest `retryAfterMaxMs`: how long a 503's Retry-After may make it wait. */
  retryAfterWaitMsDefault: 5000,
  retryAfterWaitMsMax: 60_000,
  /**
   * Re-sendings of a debit whose answer was lost, by the Fastify plugin, to learn whether it was
   * applied before answering 503 (each one is a client call with its own retries).
   */
  outcomeChecksMax: 2,
})

if (clientLimits.retriesDefault > clientLimits.retriesMax) throw new Error('clientLimits.retriesDefault must not exceed retriesMax')
if (clientLimits.retryAfterWaitMsDefault > clientLimits.retryAfterWaitMsMax) {
  throw new Error('clientLimits.retryAfterWaitMsDefault must not exceed retryAfterWaitMsMax')
}

const cliEnvSchema = z.object({
  ACCMAN_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .default('http://127.0.0.1:22262'),
  ACCMAN_TOKEN: z.string().optional(),
  ACCMAN_DB: envSchema.shape.ACCMAN_DB,
  ACCMAN_DB_TIMEOUT_MS: envSchema.shape.ACCMAN_DB_TIMEOUT_MS,
  ACCMAN_IDEMPOTENCY_TTL: idempotencyTtlText,
  ACCMAN_CLI_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(cliLimits.timeoutMsMin)
    .max(cliLimits.timeoutMsMax)
    .default(cliLimits.timeoutMsDefault),
})

export interface CliConfig {
  /** The running server the online commands talk to. */
  url: string
  /** Sent as a bearer token when set. */
  token: string | undefined
  /** The database directory of the offline commands. */
  dbPath: string
  /** The retention window verify and import check idempotency keys against. */
  idempotencyTtlMs: number
  /** Per request attempt of the online commands. */
  timeoutMs: number
  /** Bound of every query to a PostgreSQL store (ACCMAN_DB=postgres://...). */
  dbTimeoutMs: number
}

/** The CLI's variables; a bad value throws a ConfigError naming the variable. */
export function parseCliConfig(env: NodeJS.ProcessEnv): Readonly<CliConfig> {
  const env_ = parseEnv(cliEnvSchema, env)
  return Object.freeze({
    url: env_.ACCMAN_URL,
    token: env_.ACCMAN_TOKEN,
    dbPath: env_.ACCMAN_DB,
    idempotencyTtlMs: env_.ACCMAN_IDEMPOTENCY_TTL * 1000,
    timeoutMs: env_.ACCMAN_CLI_TIMEOUT_MS,
    dbTimeoutMs: env_.ACCMAN_DB_TIMEOUT_MS,
  })
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (bare === 'localhost') return true
  if (isIP(bare) === 4) return bare.startsWith('127.')
  if (isIP(bare) === 6) return bare === '::1' || bare === '0:0:0:0:0:0:0:1' || bare.startsWith('::ffff:127.')
  return false
}

/** Reads .env into process.env when the file exists; variables already set win. */
export function loadDotEnv(path = '.env'): void {
  try {
    process.loadEnvFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
