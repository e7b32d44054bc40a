// Configuration: the environment (and .env) parsed once at start-up into a frozen Config. Every
// limit of the service is declared here; the core receives what it needs as arguments.
import { z } from 'zod'

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const booleanText = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false (1/0 and yes/no also work)' })
  .transform((text) => text === 'true' || text === '1' || text === 'yes')

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
})

export interface Limits {
  /** Mods written in one LevelDB batch at most (one fsync each). */
  writerBatchMax: number
  /** Mods waiting for the writer at most; past this a mod answers 503. */
  writerQueueMax: number
  /** Request bodies are never needed; anything larger than this is refused outright. */
  bodyLimitBytes: number
  requestTimeoutMs: number
  keepAliveTimeoutMs: number
  /** How long a graceful stop waits for in-flight requests before giving up. */
  shutdownGraceMs: number
}

export const limits: Readonly<Limits> = Object.freeze({
  writerBatchMax: 2_000,
  writerQueueMax: 100_000,
  bodyLimitBytes: 1024,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  shutdownGraceMs: 10_000,
})

if (limits.writerBatchMax > limits.writerQueueMax) throw new Error('writerBatchMax must not exceed writerQueueMax')

export interface Config extends Limits {
  host: string
  port: number
  dbPath: string
  logLevel: (typeof logLevels)[number]
  sync: boolean
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

/** Parses the environment; a bad value throws a ConfigError naming the variable. */
export function parseConfig(env: NodeJS.ProcessEnv): Readonly<Config> {
  const env_ = parseEnv(envSchema, env)
  return Object.freeze({
    ...limits,
    host: env_.ACCMAN_HOST,
    port: env_.ACCMAN_PORT,
    dbPath: env_.ACCMAN_DB,
    logLevel: env_.ACCMAN_LOG_LEVEL,
    sync: env_.ACCMAN_SYNC,
  })
}

const cliEnvSchema = z.object({
  ACCMAN_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .default('http://127.0.0.1:22262'),
  ACCMAN_TOKEN: z.string().optional(),
  ACCMAN_DB: envSchema.shape.ACCMAN_DB,
})

export interface CliConfig {
  /** The running server the online commands talk to. */
  url: string
  /** Sent as a bearer token when set. */
  token: string | undefined
  /** The database directory of the offline commands. */
  dbPath: string
}

/** The CLI's variables; a bad value throws a ConfigError naming the variable. */
export function parseCliConfig(env: NodeJS.ProcessEnv): Readonly<CliConfig> {
  const env_ = parseEnv(cliEnvSchema, env)
  return Object.freeze({ url: env_.ACCMAN_URL, token: env_.ACCMAN_TOKEN, dbPath: env_.ACCMAN_DB })
}

/** Reads .env into process.env when the file exists; variables already set win. */
export function loadDotEnv(path = '.env'): void {
  try {
    process.loadEnvFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}
