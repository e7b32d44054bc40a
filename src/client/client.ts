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
  /** The sum of the active holds; present when some of the balance is held. */
  held?: bigint
  /** tot - held, what a debit or a new hold may take; present when some of the balance is held. */
  avail?: bigint
}

/** The figures a hold, settle or void answers with (as they were then, on a replay). */
export interface HoldFigures {
  hold: string
  tot: bigint
  held: bigint
  avail: bigint
  seq: number
  /** True when AccMan answered from an earlier request with the same idempotency key. */
  replayed: boolean
}

export interface HoldResult extends HoldFigures {
  by: bigint
  /** The hold counts in held until this instant, not after. */
  expires: Date
}

export interface SettleResult extends HoldFigures {
  settled: bigint
}

export interface HoldOptions extends ModOptions {
  /** Seconds the hold lasts, 1 to 604800; AccMan's default is 300. */
  ttlSeconds?: number | undefined
}

export interface SettleOptions extends ModOptions {
  /** The amount to post, 1 to the hold's amount; the whole hold when not given. */
  by?: bigint | undefined
}

export interface ActiveHold {
  hold: string
  by: bigint
  at: Date
  expires: Date
  note?: string
}

export interface HoldList {
  held: bigint
  holds: ActiveHold[]
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
  /** On a credit: the account expires no earlier than this many seconds from now (1 to 315360000). */
  ttlSeconds?: number | undefined
}

export interface MoveOptions {
  /** Free text kept with both history entries, at most 256 characters. */
  note?: string | undefined
  /** In the sending account's key space; a random UUID when not given. */
  idempotencyKey?: string | undefined
}

export interface MoveResult extends ModResult {
  /** The move's id, on both history entries. */
  move: string
}

export interface FreezeResult extends Balance {
  frozen: boolean
}

export interface HistoryEntry {
  seq: number
  /** mod, hold, settle, void, expire, rotate, move, freeze, unfreeze (and the kinds newer servers add). */
  kind: string
  by: bigint
  tot: bigint
  at: Date
  note?: string
  idempotencyKey?: string
  hold?: string
  /** The signed change of held: +A for a hold of A, -A for its settle, void or expire. */
  heldBy?: bigint
  /** The account's held after the entry. */
  held?: bigint
  /** The move's id, on both of its entries. */
  move?: string
  /** The name of the named token that wrote the entry. */
  actor?: string
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
  /** When the account expires; absent: never. */
  expires?: Date | undefined
  /** True while the account is frozen; absent otherwise. */
  frozen?: boolean | undefined
  /** The account's own low-balance threshold, when set. */
  alertBelow?: bigint | undefined
  /** The account's ref, when set. */
  ref?: string | undefined
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
const balanceBody = z.object({ tot: balanceText, seq, held: balanceText.optional(), avail: balanceText.optional() })
const changeText = z.union([amountText, z.literal('0').transform(() => 0n)])
const entryBody = z.object({
  seq: seq.min(1),
  by: changeText,
  tot: balanceText,
  at: z.iso.datetime().transform((text) => new Date(text)),
  note: z.string().optional(),
  key: z.string().optional(),
  kind: z.string().optional(),
  hold: z.string().optional(),
  heldBy: amountText.optional(),
  held: balanceText.optional(),
  move: z.string().optional(),
  actor: z.string().optional(),
})
const pastBody = z.object({ tot: balanceText, seq, held: balanceText.optional(), entries: z.array(entryBody) })
const errorBody = z.object({ code: z.string(), message: z.string(), tot: balanceText.optional(), avail: balanceText.optional() })
const holdFiguresBody = { hold: z.string(), tot: balanceText, held: balanceText, avail: balanceText, seq }
const holdBody = z.object({ ...holdFiguresBody, by: balanceText, expires: z.iso.datetime().transform((text) => new Date(text)) })
const settleBody = z.object({ ...holdFiguresBody, settled: balanceText })
const voidBody = z.object(holdFiguresBody)
const holdsBody = z.object({
  held: balanceText,
  holds: z.array(
    z.object({
      hold: z.string(),
      by: balanceText,
      at: z.iso.datetime().transform((text) => new Date(text)),
      expires: z.iso.datetime().transform((text) => new Date(text)),
      note: z.string().optional(),
    }),
  ),
})

/** held and avail when some of the balance is held, as the Balance type says. */
function balanceOf(body: z.infer<typeof balanceBody>): Balance {
  const balance: Balance = { tot: body.tot, seq: body.seq }
  if (body.held !== undefined && body.held > 0n) {
    balance.held = body.held
    balance.avail = body.avail ?? body.tot - body.held
  }
  return balance
}
const moveBody = z.object({ move: z.string(), tot: balanceText, seq })
const freezeBody = z.object({ tot: balanceText, seq, frozen: z.boolean() })
const accountBody = z.object({
  account: z.string(),
  tot: balanceText,
  held: balanceText,
  avail: balanceText,
  seq,
  created: z.iso.datetime().transform((text) => new Date(text)),
  updated: z.iso.datetime().transform((text) => new Date(text)),
  expires: z.iso.datetime().transform((text) => new Date(text)).optional(),
  frozen: z.boolean().optional(),
  alertBelow: balanceText.optional(),
  ref: z.string().optional(),
})

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
  path: 'tot' | 'mod' | 'past' | 'batch' | 'hold' | 'settle' | 'void' | 'holds' | 'move' | 'freeze' | 'unfreeze' | 'acct' | 'rotate'
  /** A JSON body (POST /batch only). */
  body?: string
  parameters: Record<string, string | undefined>
  headers?: Record<string, string>
  /** The credential, to keep it out of every message. */
  credential: string
  /** A move's other credential, kept out of every message too. */
  otherCredential?: string
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
    return balanceOf(parse(balanceBody, answer))
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
    const call: Call = {
      method: 'PATCH',
      path: 'mod',
      parameters: { cred: credential, by: by.toString(), note: options.note, ttl: options.ttlSeconds?.toString() },
      headers: { 'idempotency-key': idempotencyKey },
      credential,
      by,
    }
    // /batch takes no ttl: a credit with one goes alone.
    const answer = options.ttlSeconds === undefined ? await this.#submit(call, op) : await this.#send(call)
    return { ...balanceOf(parse(balanceBody, answer)), replayed: answer.headers.get('idempotent-replayed') === 'true' }
  }

  /**
   * Reserves `by` (positive) for a while: avail shrinks, tot does not. Always sent with an
   * idempotency key, so a retry after a lost answer opens one hold, and answers its id.
   */
  async hold(credential: string, by: bigint, options: HoldOptions = {}): Promise<HoldResult> {
    if (typeof by !== 'bigint') throw new TypeError('by must be a bigint')
    const answer = await this.#send({
      method: 'PATCH',
      path: 'hold',
      parameters: { cred: credential, by: by.toString(), ttl: options.ttlSeconds?.toString(), note: options.note },
      headers: { 'idempotency-key': options.idempotencyKey ?? randomUUID() },
      credential,
      by: -by,
    })
    return { ...parse(holdBody, answer), replayed: isReplay(answer) }
  }

  /** Posts `options.by` of a hold (all of it by default) as a debit and releases the rest. */
  async settle(credential: string, holdId: string, options: SettleOptions = {}): Promise<SettleResult> {
    if (options.by !== undefined && typeof options.by !== 'bigint') throw new TypeError('by must be a bigint')
    const answer = await this.#send({
      method: 'PATCH',
      path: 'settle',
      parameters: { cred: credential, hold: holdId, by: options.by?.toString(), note: options.note },
      headers: { 'idempotency-key': options.idempotencyKey ?? randomUUID() },
      credential,
    })
    return { ...parse(settleBody, answer), replayed: isReplay(answer) }
  }

  /** Releases a whole hold. */
  async void(credential: string, holdId: string, options: ModOptions = {}): Promise<HoldFigures> {
    const answer = await this.#send({
      method: 'PATCH',
      path: 'void',
      parameters: { cred: credential, hold: holdId, note: options.note },
      headers: { 'idempotency-key': options.idempotencyKey ?? randomUUID() },
      credential,
    })
    return { ...parse(voidBody, answer), replayed: isReplay(answer) }
  }

  /** The active holds of the account, oldest first, and their sum. */
  async holds(credential: string): Promise<HoldList> {
    const answer = await this.#send({ method: 'GET', path: 'holds', parameters: { cred: credential }, credential })
    const body = parse(holdsBody, answer)
    return {
      held: body.held,
      holds: body.holds.map(({ note, ...hold }) => (note === undefined ? hold : { ...hold, note })),
    }
  }

  /**
   * Moves `by` (positive) from the account of `credential` to the account of `to`, both in one
   * atomic write; returns the sender's balance and the move's id. Always sent with an idempotency
   * key (in the sender's key space), so a retry after a lost answer moves once.
   */
  async move(credential: string, to: string, by: bigint, options: MoveOptions = {}): Promise<MoveResult> {
    if (typeof by !== 'bigint') throw new TypeError('by must be a bigint')
    const idempotencyKey = options.idempotencyKey ?? randomUUID()
    const answer = await this.#send({
      method: 'PATCH',
      path: 'move',
      parameters: { cred: credential, to, by: by.toString(), note: options.note },
      headers: { 'idempotency-key': idempotencyKey },
      credential,
      otherCredential: to,
      by: -by,
    })
    const { move, tot, seq } = parse(moveBody, answer)
    return { move, tot, seq, replayed: answer.headers.get('idempotent-replayed') === 'true' }
  }

  /** Freezes the account: debits and moves out are refused (an AccManError with code ACCMAN_FROZEN) until unfreeze. */
  async freeze(credential: string): Promise<FreezeResult> {
    return this.#freeze(credential, 'freeze')
  }

  async unfreeze(credential: string): Promise<FreezeResult> {
    return this.#freeze(credential, 'unfreeze')
  }

  async #freeze(credential: string, path: 'freeze' | 'unfreeze'): Promise<FreezeResult> {
    const answer = await this.#send({ method: 'PATCH', path, parameters: { cred: credential }, credential })
    const { tot, seq, frozen } = parse(freezeBody, answer)
    return { tot, seq, frozen }
  }

  /** The entries that carry `idempotencyKey` ("was request X charged?"), oldest first. */
  async pastByKey(credential: string, idempotencyKey: string): Promise<HistoryPage> {
    const answer = await this.#send({ method: 'GET', path: 'past', parameters: { cred: credential, key: idempotencyKey }, credential })
    const body = parse(pastBody, answer)
    return { tot: body.tot, seq: body.seq, entries: body.entries.map(historyEntry) }
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
    const history: HistoryPage = { tot: body.tot, seq: body.seq, entries: body.entries.map(historyEntry) }
    if (body.held !== undefined && body.held > 0n) {
      history.held = body.held
      history.avail = body.tot - body.held
    }
    return history
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
      throw refusal(answer, call, [call.credential, call.otherCredential, call.newCredential, this.#token])
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
  const entry: HistoryEntry = { seq: body.seq, kind: body.kind ?? 'mod', by: body.by, tot: body.tot, at: body.at }
  if (body.note !== undefined) entry.note = body.note
  if (body.key !== undefined) entry.idempotencyKey = body.key
  if (body.hold !== undefined) entry.hold = body.hold
  if (body.heldBy !== undefined) entry.heldBy = body.heldBy
  if (body.held !== undefined && body.held > 0n) entry.held = body.held
  if (body.move !== undefined) entry.move = body.move
  if (body.actor !== undefined) entry.actor = body.actor
  return entry
}

function isReplay(answer: Answer): boolean {
  return answer.headers.get('idempotent-replayed') === 'true'
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
    const error = new InsufficientFundsError(status, message, parsed.data.tot ?? 0n, call.by ?? 0n)
    if (parsed.data.avail !== undefined) error.avail = parsed.data.avail
    return error
  }
  if (className === 'AccManError' && status === 503) return new UnavailableError(code, status, message)
  const ErrorClass = plainErrorClasses[className as keyof typeof plainErrorClasses]
  return new ErrorClass(code, status, message)
}
