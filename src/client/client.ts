// A typed client of AccMan's HTTP API, for paid services: bigint amounts, typed errors, bounded
// retries that never charge twice. Uses Node's fetch, whose global agent keeps connections alive.
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { clientLimits, limits } from '../config.js'
import { apiErrorOf, isApiErrorCode } from '../contract/errors.js'
import { amountPattern, balancePattern } from '../contract/syntax.js'
import {
  AccManError,
  ConfigurationError,
  InsufficientFundsError,
  plainErrorClasses,
  UnavailableError,
  UnreachableError,
  type AccManErrorCode,
} from './errors.js'
import { failureReason, retryAfterMs, serverUrlProblem, tokenProblem } from './connection.js'

export interface AccManClientOptions {
  /** Where AccMan listens, e.g. http://127.0.0.1:22262 (a path prefix is kept). */
  url: string | URL
  /** Sent as `Authorization: Bearer <token>` when AccMan has tokens configured. */
  token?: string | undefined
  /** Per attempt, headers and body included. Default 5000. */
  timeoutMs?: number | undefined
  /** Further attempts after a network error or a 503, 0 to 10. Default 2. */
  retries?: number | undefined
  /** Base of the exponential backoff between attempts. Default 50. */
  retryDelayMs?: number | undefined
  /** The longest wait a 503's Retry-After may ask for before a retry, 0 to 60000. Default 5000. */
  retryAfterMaxMs?: number | undefined
  /**
   * Calls of `mod` and `tot` made while a request is in flight, or in the same tick, go together
   * as one POST /batch (each caller still gets its own answer or error). Default true.
   */
  batch?: boolean | undefined
}

export interface Balance {
  tot: bigint
  /** Entries in the account's history; `tot` is the balance after entry `seq`. */
  seq: number
}

export interface ModResult extends Balance {
  /** True when AccMan answered from an earlier mod with the same idempotency key. */
  replayed: boolean
}

export interface ModOptions {
  /** Free text kept with the history entry, at most 256 characters. */
  note?: string | undefined
  /** 1 to 255 visible ASCII characters; a random UUID when not given. */
  idempotencyKey?: string | undefined
}

export interface HistoryEntry {
  seq: number
  /** What the entry records: 'mod', or 'rotate' (by 0) for a rotation of the credential. */
  kind: string
  by: bigint
  tot: bigint
  at: Date
  note?: string
  idempotencyKey?: string
}

export interface HistoryPage extends Balance {
  entries: HistoryEntry[]
}

/** An account as GET /acct describes it; never a credential. */
export interface AccountDetails extends Balance {
  /** The public id: stable across rotations, reveals no credential. */
  account: string
  held: bigint
  avail: bigint
  created: Date
  updated: Date
}

export interface RotateResult extends AccountDetails {
  /** True when AccMan answered from an earlier rotation with the same idempotency key. */
  replayed: boolean
}

export interface RotateOptions {
  /** Seconds (0 to 86400) during which the old credential keeps working too; 0 when not given. */
  graceSeconds?: number | undefined
  /** 1 to 255 visible ASCII characters; a random UUID when not given. */
  idempotencyKey?: string | undefined
}

export interface PastOptions {
  /** 1 to 1000; AccMan's default is 100. */
  limit?: number | undefined
  after?: number | undefined
  before?: number | undefined
  order?: 'asc' | 'desc' | undefined
  /** Inclusive; a Date, or an ISO 8601 date or date-time string. */
  from?: Date | string | undefined
  to?: Date | string | undefined
}

const { clientBatchOpsMax } = limits
const { timeoutMsDefault, retriesDefault, retriesMax, retryDelayMsDefault, retryAfterWaitMsDefault, retryAfterWaitMsMax } = clientLimits

const balanceText = z
  .string()
  .regex(balancePattern)
  .transform((text) => BigInt(text))
const amountText = z
  .string()
  .regex(amountPattern)
  .transform((text) => BigInt(text))
const seq = z.number().int().min(0)

// Loose objects: fields a newer AccMan adds do not break this client.
const balanceBody = z.object({ tot: balanceText, seq })
const entryBody = z.object({
  seq: seq.min(1),
  kind: z.string().default('mod'),
  by: z.union([z.literal('0').transform(() => 0n), amountText]),
  tot: balanceText,
  at: z.iso.datetime().transform((text) => new Date(text)),
  note: z.string().optional(),
  key: z.string().optional(),
})
const accountBody = z.object({
  account: z.string(),
  tot: balanceText,
  held: balanceText,
  avail: balanceText,
  seq,
  created: z.iso.datetime().transform((text) => new Date(text)),
  updated: z.iso.datetime().transform((text) => new Date(text)),
})
const pastBody = z.object({ tot: balanceText, seq, entries: z.array(entryBody) })
const errorBody = z.object({ code: z.string(), message: z.string(), tot: balanceText.optional() })

type Method = 'GET' | 'PATCH' | 'POST'

const batchResultsBody = z.object({ results: z.array(z.looseObject({ status: z.number().int() })) })

/** A call waiting to go out in a batch. */
interface Queued {
  call: Call
  /** The operation as /batch takes it. */
  op: Record<string, string>
  resolve: (answer: Answer) => void
  reject: (error: unknown) => void
}

/** What one call needs to build its request and explain its failure. */
interface Call {
  method: Method
  path: 'tot' | 'mod' | 'past' | 'batch' | 'acct' | 'rotate'
  /** A JSON body (POST /batch only). */
  body?: string
  parameters: Record<string, string | undefined>
  headers?: Record<string, string>
  /** The credential, to keep it out of every message. */
  credential: string
  /** A rotation's new credential, kept out of every message too. */
  newCredential?: string
  /** The amount of a mod, for InsufficientFundsError. */
  by?: bigint
}

interface Answer {
  status: number
  headers: Headers
  body: string
}

export class AccManClient {
  readonly #base: URL
  readonly #token: string | undefined
  readonly #timeoutMs: number
  readonly #retries: number
  readonly #retryDelayMs: number
  readonly #retryAfterMaxMs: number
  readonly #batch: boolean
  readonly #queued: Queued[] = []
  #requestsInFlight = 0
  #flushScheduled = false

  /** Throws ConfigurationError for options that cannot work; nothing is sent before they pass. */
  constructor(options: AccManClientOptions) {
    const urlProblem = serverUrlProblem(options.url)
    if (urlProblem !== undefined) throw new ConfigurationError(urlProblem)
    if (options.token !== undefined) {
      const problem = typeof options.token === 'string' ? tokenProblem(options.token) : 'the token must be a string'
      if (problem !== undefined) throw new ConfigurationError(problem)
    }
    const base = new URL(options.url)
    if (!base.pathname.endsWith('/')) base.pathname += '/'
    base.search = ''
    base.hash = ''
    this.#base = base
    this.#token = options.token
    this.#timeoutMs = integerIn(options.timeoutMs ?? timeoutMsDefault, 'timeoutMs', 1, Number.MAX_SAFE_INTEGER)
    this.#retries = integerIn(options.retries ?? retriesDefault, 'retries', 0, retriesMax)
    this.#retryDelayMs = integerIn(options.retryDelayMs ?? retryDelayMsDefault, 'retryDelayMs', 1, Number.MAX_SAFE_INTEGER)
    this.#batch = options.batch ?? true
    this.#retryAfterMaxMs = integerIn(options.retryAfterMaxMs ?? retryAfterWaitMsDefault, 'retryAfterMaxMs', 0, retryAfterWaitMsMax)
  }

  /** The balance of the account of `credential`; NoAccountError if no credit created it. */
  async tot(credential: string): Promise<Balance> {
    const answer = await this.#submit({ method: 'GET', path: 'tot', parameters: { cred: credential }, credential }, { op: 'tot', cred: credential })
    const { tot, seq } = parse(balanceBody, answer)
    return { tot, seq }
  }

  /**
   * Adds `by` (a credit if positive, a debit if negative) and returns the new balance. Always sent
   * with an idempotency key, so a retry after a lost answer is applied once.
   */
  async mod(credential: string, by: bigint, options: ModOptions = {}): Promise<ModResult> {
    if (typeof by !== 'bigint') throw new TypeError('by must be a bigint')
    const idempotencyKey = options.idempotencyKey ?? randomUUID()
    const op: Record<string, string> = { op: 'mod', cred: credential, by: by.toString(), key: idempotencyKey }
    if (options.note !== undefined) op.note = options.note
    const answer = await this.#submit(
      {
        method: 'PATCH',
        path: 'mod',
        parameters: { cred: credential, by: by.toString(), note: options.note },
        headers: { 'idempotency-key': idempotencyKey },
        credential,
        by,
      },
      op,
    )
    const { tot, seq } = parse(balanceBody, answer)
    return { tot, seq, replayed: answer.headers.get('idempotent-replayed') === 'true' }
  }

  /** The account of `credential`: its public id, balance, held and available amounts, times. */
  async acct(credential: string): Promise<AccountDetails> {
    const answer = await this.#send({ method: 'GET', path: 'acct', parameters: { cred: credential }, credential })
    return parse(accountBody, answer)
  }

  /** An account by its public id (as acct gives it), without its credential. */
  async acctById(publicId: string): Promise<AccountDetails> {
    const answer = await this.#send({ method: 'GET', path: 'acct', parameters: { id: publicId }, credential: '' })
    return parse(accountBody, answer)
  }

  /**
   * Points `newCredential` at the account of `credential` (balance, history and keys stay); the
   * old one stops at once or after `graceSeconds`. Always sent with an idempotency key.
   */
  async rotate(credential: string, newCredential: string, options: RotateOptions = {}): Promise<RotateResult> {
    const idempotencyKey = options.idempotencyKey ?? randomUUID()
    const answer = await this.#send({
      method: 'PATCH',
      path: 'rotate',
      parameters: { cred: credential, new: newCredential, grace: options.graceSeconds?.toString() },
      headers: { 'idempotency-key': idempotencyKey },
      credential,
      newCredential,
    })
    return { ...parse(accountBody, answer), replayed: answer.headers.get('idempotent-replayed') === 'true' }
  }

  /** One page of the account's history; page forward with `after` set to the last `seq`. */
  async past(credential: string, page: PastOptions = {}): Promise<HistoryPage> {
    const answer = await this.#send({
      method: 'GET',
      path: 'past',
      parameters: {
        cred: credential,
        limit: page.limit?.toString(),
        after: page.after?.toString(),
        before: page.before?.toString(),
        order: page.order,
        from: instantText(page.from),
        to: instantText(page.to),
      },
      credential,
    })
    const body = parse(pastBody, answer)
    return { tot: body.tot, seq: body.seq, entries: body.entries.map(historyEntry) }
  }

  /**
   * Sends a call at once when nothing is in flight; else queues it to go with the others in one
   * POST /batch when the request in flight ends. Calls of the same tick go together.
   */
  #submit(call: Call, op: Record<string, string>): Promise<Answer> {
    if (!this.#batch) return this.#send(call)
    return new Promise<Answer>((resolve, reject) => {
      this.#queued.push({ call, op, resolve, reject })
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        queueMicrotask(() => {
          this.#flushScheduled = false
          this.#flush()
        })
      }
    })
  }

  #flush(): void {
    if (this.#requestsInFlight > 0 || this.#queued.length === 0) return
    const group = this.#queued.splice(0, clientBatchOpsMax)
    this.#requestsInFlight += 1
    const sent = group.length === 1 && group[0] !== undefined ? this.#sendOne(group[0]) : this.#sendBatch(group)
    void sent.finally(() => {
      this.#requestsInFlight -= 1
      this.#flush()
    })
  }

  async #sendOne(queued: Queued): Promise<void> {
    try {
      queued.resolve(await this.#send(queued.call))
    } catch (error) {
      queued.reject(error)
    }
  }

  /** One POST /batch for the group, retried whole (each mod keeps its key, so none applies twice). */
  async #sendBatch(group: Queued[]): Promise<void> {
    try {
      const answer = await this.#send({
        method: 'POST',
        path: 'batch',
        parameters: {},
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ops: group.map((queued) => queued.op) }),
        credential: '',
      })
      const { results } = parse(batchResultsBody, answer)
      if (results.length !== group.length) {
        throw new AccManError('ACCMAN_UNEXPECTED_RESPONSE', answer.status, `AccMan answered ${results.length} results for ${group.length} operations`)
      }
      for (const [index, queued] of group.entries()) {
        const result = results[index] ?? { status: 0 }
        const own: Answer = { status: result.status, headers: new Headers(), body: JSON.stringify(result) }
        if (result.status >= 200 && result.status < 300) {
          if ((result as { replayed?: unknown }).replayed === true) own.headers.set('idempotent-replayed', 'true')
          queued.resolve(own)
        } else {
          queued.reject(refusal(own, queued.call, [queued.call.credential, this.#token]))
        }
      }
    } catch (error) {
      // The whole batch failed (no answer, or a refusal of the whole request): each caller gets it.
      for (const queued of group) queued.reject(error)
    }
  }

  /** Sends one call, retrying network failures and 503s; throws the typed error of any refusal. */
  async #send(call: Call): Promise<Answer> {
    const url = new URL(call.path, this.#base)
    for (const [name, value] of Object.entries(call.parameters)) if (value !== undefined) url.searchParams.set(name, value)
    const headers: Record<string, string> = { accept: 'application/json', ...call.headers }
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    for (let attempt = 1; ; attempt += 1) {
      let answer: Answer
      try {
        const response = await fetch(url, {
          method: call.method,
          headers,
          ...(call.body === undefined ? {} : { body: call.body }),
          signal: AbortSignal.timeout(this.#timeoutMs),
        })
        answer = { status: response.status, headers: response.headers, body: await response.text() }
      } catch (error) {
        if (attempt <= this.#retries) {
          await this.#backoff(attempt)
          continue
        }
        const reason = failureReason(error)
        throw new UnreachableError(`cannot reach AccMan at ${this.#base.origin} (${reason}) after ${attempt} attempts`, reason)
      }
      if (answer.status === 503 && attempt <= this.#retries) {
        // AccMan says when its queue will have room; a proxy's 503 may say nothing.
        const askedMs = retryAfterMs(answer.headers.get('retry-after'), this.#retryAfterMaxMs)
        await this.#backoff(attempt, askedMs)
        continue
      }
      if (answer.status >= 200 && answer.status < 300) return answer
      throw refusal(answer, call, [call.credential, call.newCredential, this.#token])
    }
  }

  /**
   * Exponential with jitter, so the callers of a stalled AccMan do not come back in step; never
   * shorter than what a Retry-After asked for (already bounded by retryAfterMaxMs).
   */
  #backoff(attempt: number, askedMs = 0): Promise<void> {
    const ceilingMs = this.#retryDelayMs * 2 ** (attempt - 1)
    return sleep(Math.max(askedMs, ceilingMs / 2 + Math.random() * (ceilingMs / 2)))
  }
}

function integerIn(value: number, name: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `an integer of at least ${min}`) : `an integer from ${min} to ${max}`
    throw new ConfigurationError(`${name} must be ${range}`)
  }
  return value
}

function instantText(instant: Date | string | undefined): string | undefined {
  return instant instanceof Date ? instant.toISOString() : instant
}

function historyEntry(body: z.infer<typeof entryBody>): HistoryEntry {
  const entry: HistoryEntry = { seq: body.seq, kind: body.kind, by: body.by, tot: body.tot, at: body.at }
  if (body.note !== undefined) entry.note = body.note
  if (body.key !== undefined) entry.idempotencyKey = body.key
  return entry
}

/** The body as JSON, or undefined when it is not JSON (a proxy's page, say). */
function jsonOf(body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

function parse<T extends z.ZodType>(schema: T, answer: Answer): z.infer<T> {
  const result = schema.safeParse(jsonOf(answer.body))
  if (!result.success) {
    throw new AccManError('ACCMAN_UNEXPECTED_RESPONSE', answer.status, `AccMan answered ${answer.status} with a body not in its JSON shape`)
  }
  return result.data
}

/** AccMan's messages never quote secrets; this keeps it so even behind a proxy that would. */
function scrub(message: string, secrets: (string | undefined)[]): string {
  let scrubbed = message
  for (const secret of secrets) {
    if (secret === undefined || secret === '') continue
    scrubbed = scrubbed.replaceAll(secret, '[redacted]').replaceAll(encodeURIComponent(secret), '[redacted]')
  }
  return scrubbed
}

function refusal(answer: Answer, call: Call, secrets: (string | undefined)[]): AccManError {
  const parsed = errorBody.safeParse(jsonOf(answer.body))
  if (!parsed.success) {
    if (answer.status === 503) return new UnavailableError('ACCMAN_UNAVAILABLE', 503, 'AccMan is unavailable (HTTP 503)')
    return new AccManError('ACCMAN_UNEXPECTED_RESPONSE', answer.status, `AccMan answered ${answer.status} without its error body`)
  }
  const code = parsed.data.code as AccManErrorCode
  const message = `${scrub(parsed.data.message, secrets)} (${code})`
  const { status } = answer
  // The class comes from the table of codes; a code this client does not know is a plain
  // AccManError, or an UnavailableError on a 503.
  const className = isApiErrorCode(code) ? apiErrorOf[code].clientClass : 'AccManError'
  if (className === 'InsufficientFundsError') {
    return new InsufficientFundsError(status, message, parsed.data.tot ?? 0n, call.by ?? 0n)
  }
  if (className === 'AccManError' && status === 503) return new UnavailableError(code, status, message)
  const ErrorClass = plainErrorClasses[className as keyof typeof plainErrorClasses]
  return new ErrorClass(code, status, message)
}
