// accman/fastify: meters the routes of a Fastify service. Before the handler, one AccMan mod debits
// the price (check and charge in one step, so concurrent requests cannot spend the last unit twice);
// a route with a settlement instead opens a hold for the price, and after the handler settles the
// actual cost from it in one step (a cost above the hold: the hold in full plus a debit of the
// rest), or voids it. A failed request (5xx) is refunded or voided, and so is a debit or hold whose
// answer was lost when the request is answered 503; a hold of a request that never finishes
// expires by itself. The credential is never logged nor echoed.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import {
  AccManClient,
  AccManError,
  HoldExpiredError,
  InsufficientFundsError,
  NoAccountError,
  UnavailableError,
  UnreachableError,
  isCredential,
  type AccManClientOptions,
  type Balance,
} from '../client/index.js'
import { clientLimits } from '../config.js'
import { amountMax, characterCount, holdTtlSecondsDefault, holdTtlSecondsMax, holdTtlSecondsMin, noteLengthMax } from '../ledger/limits.js'

/**
 * What a metered request has cost; `request.accman` in handlers and later hooks. A read-only view:
 * the plugin keeps the amounts it refunds and settles against out of the handler's reach.
 */
export interface AccManCharge {
  /** The price debited before the handler ran. */
  readonly price: bigint
  /** The net amount charged so far: the price, the actual cost once settled, 0 once refunded. */
  readonly charged: bigint
  /** The balance after the last charge or refund; what the response header reports. */
  readonly tot: bigint
  /** The account's history length at that balance. */
  readonly seq: number
  /** The hold opened for the price, on a route with a settlement (undefined: a plain debit). */
  readonly hold: string | undefined
}

/** The price of a request, before its handler runs: a bigint of at least 0. */
export type PriceFunction = (request: FastifyRequest) => bigint | Promise<bigint>

/**
 * The actual cost of a request, after its handler: the difference to the price is charged or
 * refunded. For a streamed answer on a route with a hold it runs once the stream has been written
 * (payload null then), so it can count what was sent.
 */
export type SettleFunction = (request: FastifyRequest, reply: FastifyReply, payload: unknown) => bigint | Promise<bigint>

/** Route `config.accman`: `false` to serve the route free and unmetered, or overrides for it. */
export interface AccManRouteConfig {
  price?: bigint | PriceFunction
  /** `false` turns the plugin's settlement off for this route. */
  settle?: SettleFunction | false
  /** Meter HEAD requests of this route (and of the HEAD route Fastify adds to a GET). Default false. */
  meterHead?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig {
    accman?: false | AccManRouteConfig
  }
  interface FastifyRequest {
    /** Set on a metered request once its price is charged; null otherwise. Read-only. */
    readonly accman: AccManCharge | null
  }
}

export interface AccManMeteringOptions {
  /** The request header with the consumer's credential, and the response header with the balance. */
  header?: string
  price: PriceFunction
  settle?: SettleFunction
  /** Refund the price (or void the hold) when the response status is 500 or more. Default true. */
  refundOnError?: boolean
  /** How long the hold of a settled route lasts, in seconds (1 to 604800): a request that never finishes is released after it. Default 300. */
  holdTtl?: number
  /** Settle at most the hold (the price), never an extra debit for a cost above it. Default false. */
  capAtHold?: boolean
  /** Where a consumer tops up their account: the 402 answer carries it as `topUp`. */
  topUpUrl?: string
  /** The note of the history entries; by default the method and route pattern, never the URL. */
  note?: (request: FastifyRequest) => string | undefined
}

export type AccManPluginOptions = AccManMeteringOptions &
  ({ client: AccManClient } | (AccManClientOptions & { client?: undefined }))

/** Stable codes of the plugin's own answers; `ACCMAN_INSUFFICIENT_FUNDS` is AccMan's. */
export type AccManReplyCode = 'ACCMAN_CREDENTIAL_REQUIRED' | 'ACCMAN_INSUFFICIENT_FUNDS' | 'ACCMAN_UNAVAILABLE'

export interface AccManReplyBody {
  statusCode: number
  code: AccManReplyCode
  error: string
  message: string
  /** On 402: the balance, the price and what the balance less its holds allows, as decimal strings. */
  tot?: string
  price?: string
  avail?: string
  /** On 402, when the topUpUrl option is set: where to top up. */
  topUp?: string
}

/** What the plugin keeps of a charged request, out of the handler's reach. */
interface Metered {
  /** The registration that charged it; only that one settles or refunds it. */
  owner: symbol
  price: bigint
  charged: bigint
  tot: bigint
  seq: number
  credential: string
  key: string
  note: string | undefined
  settle: SettleFunction | undefined
  /** The hold opened for the price (a route with a settlement and a price above 0). */
  hold: string | undefined
  /** `settling` while settle runs: a re-entry then is the error answer of a failed settlement. */
  phase: 'charged' | 'settling' | 'streaming' | 'done'
}

const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** A request id that may go into an idempotency key: visible ASCII, short. */
const requestIdPattern = /^[\x21-\x7e]{1,64}$/
const noteBaseLengthMax = noteLengthMax - 16
/** Re-sendings of a debit whose answer was lost (see clientLimits.outcomeChecksMax). */
const { outcomeChecksMax } = clientLimits
/** Marks a context where the plugin is registered, so a second registration over it is refused. */
const registeredMark = Symbol.for('accman.fastify.registered')
/** Charged requests of every registration: one request is charged once, whatever is registered. */
const meteredRequests = new WeakMap<FastifyRequest, Metered>()

/** A read-only window on the plugin's record of a charge. */
function chargeView(state: Metered): AccManCharge {
  return Object.freeze({
    get price() {
      return state.price
    },
    get charged() {
      return state.charged
    },
    get tot() {
      return state.tot
    },
    get seq() {
      return state.seq
    },
    get hold() {
      return state.hold
    },
  })
}
const chargeViews = new WeakMap<FastifyRequest, AccManCharge>()

const accmanPlugin = async (app: FastifyInstance, options: AccManPluginOptions): Promise<void> => {
  // Hooks of two registrations over one route would charge each request twice.
  if (app.hasDecorator(registeredMark)) {
    throw new Error('accman: the plugin is already registered in this context or a parent of it; register it once')
  }
  app.decorate(registeredMark, true)
  const owner = Symbol('accman registration')
  const client = options.client !== undefined ? options.client : new AccManClient(options)
  const header = options.header ?? 'accman'
  if (!headerNamePattern.test(header)) throw new TypeError(`accman: ${JSON.stringify(header)} is not a header name`)
  const headerKey = header.toLowerCase()
  const refundOnError = options.refundOnError ?? true
  const holdTtl = options.holdTtl ?? holdTtlSecondsDefault
  if (!Number.isInteger(holdTtl) || holdTtl < holdTtlSecondsMin || holdTtl > holdTtlSecondsMax) {
    throw new TypeError(`accman: holdTtl must be a whole number of seconds from ${holdTtlSecondsMin} to ${holdTtlSecondsMax}`)
  }
  const capAtHold = options.capAtHold ?? false
  const topUp = options.topUpUrl
  const paymentRequiredBody = (tot: bigint, price: bigint, avail: bigint): AccManReplyBody => {
    const message = avail === tot ? `insufficient funds: the balance is ${tot}, the price is ${price}` : `insufficient funds: avail is ${avail} (the balance ${tot} less its holds), the price is ${price}`
    return {
      ...replyBody(402, 'ACCMAN_INSUFFICIENT_FUNDS', message),
      tot: tot.toString(),
      price: price.toString(),
      avail: avail.toString(),
      ...(topUp === undefined ? {} : { topUp }),
    }
  }
  /** Replaces an answer already made by a 402, in onSend. */
  const paymentRequired = (reply: FastifyReply, tot: bigint, price: bigint, avail: bigint, payload: unknown): string => {
    if (typeof (payload as { destroy?: unknown } | null)?.destroy === 'function') (payload as { destroy: () => void }).destroy()
    reply.code(402).type('application/json; charset=utf-8')
    reply.removeHeader('content-length')
    reply.removeHeader('content-encoding')
    return JSON.stringify(paymentRequiredBody(tot, price, avail))
  }
  const noteOf = options.note ?? defaultNote
  const unauthorizedBody = replyBody(401, 'ACCMAN_CREDENTIAL_REQUIRED', `a valid credential is required in the ${header} header`)
  const unavailableBody = replyBody(503, 'ACCMAN_UNAVAILABLE', 'the account service is unavailable; retry shortly')

  // AccMan keeps idempotency keys per account for good, and request ids repeat after a restart (or
  // come from the consumer when requestIdHeader is set): a key built on the request id alone would
  // let a consumer replay an old charge and be served free. A random nonce per registration plus a
  // counter makes every key new; the request id is appended, when it is plain, to trace an entry.
  const nonce = randomBytes(12).toString('base64url')
  let requestCount = 0
  const keyOf = (request: FastifyRequest): string => {
    requestCount += 1
    const id = String(request.id)
    return requestIdPattern.test(id) ? `${nonce}.${requestCount}.${id}` : `${nonce}.${requestCount}`
  }

  if (!app.hasRequestDecorator('accman')) {
    // A getter with no setter: a handler can read its charge but not change what is refunded.
    app.decorateRequest('accman', {
      getter(this: FastifyRequest) {
        return chargeViews.get(this) ?? null
      },
    })
  }

  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.config.accman
    if (route === false || request.is404 || meteredRequests.has(request)) return
    // A HEAD answer has no body: the consumer would pay for what they never receive.
    if (request.method === 'HEAD' && route?.meterHead !== true) return
    const credential = request.headers[headerKey]
    if (!isCredential(credential)) return reply.code(401).header('www-authenticate', `AccMan header="${header}"`).send(unauthorizedBody)
    const price = checkedAmount(await priceOf(route?.price ?? options.price, request), 'price')
    const note = boundedNote(noteOf(request))
    const key = keyOf(request)
    const settle = route?.settle === false ? undefined : (route?.settle ?? options.settle)
    // A route with a settlement reserves the price; it is settled or released after the handler.
    const holding = settle !== undefined && price > 0n
    let balance: Balance
    let hold: string | undefined
    try {
      // A price of 0 still needs an account, and reports its balance.
      if (holding) {
        const opened = await client.hold(credential, price, { ttlSeconds: holdTtl, idempotencyKey: key, note })
        balance = opened
        hold = opened.hold
      } else {
        balance = price === 0n ? await client.tot(credential) : await client.mod(credential, -price, { idempotencyKey: key, note })
      }
    } catch (error) {
      if (error instanceof NoAccountError) {
        // The same answer as a missing credential: nobody learns which credentials exist.
        return reply.code(401).header('www-authenticate', `AccMan header="${header}"`).send(unauthorizedBody)
      }
      if (error instanceof InsufficientFundsError) {
        return reply.code(402).header(header, error.tot.toString()).send(paymentRequiredBody(error.tot, price, error.avail))
      }
      if (isUnavailable(error)) {
        request.log.warn({ code: error.code }, 'accman: the account service is unavailable')
        if (holding) await undoLostHold(request, { credential, price, key, note })
        else if (price !== 0n) await undoLostDebit(request, { credential, price, key, note })
        return reply.code(503).header('retry-after', '1').send(unavailableBody)
      }
      throw error
    }
    const state: Metered = { owner, price, charged: price, tot: balance.tot, seq: balance.seq, credential, key, note, settle, hold, phase: 'charged' }
    meteredRequests.set(request, state)
    chargeViews.set(request, chargeView(state))
  })

  app.addHook('onSend', async (request, reply, payload) => {
    const state = meteredRequests.get(request)
    if (state === undefined || state.owner !== owner || state.phase === 'done') return payload
    if (state.phase === 'settling') {
      // Settlement threw and this is the error answer: refund it like any failed request.
      state.phase = 'done'
      if (reply.statusCode >= 500 && refundOnError) await (state.hold === undefined ? refund(request, state) : release(request, state))
      reply.header(header, state.tot.toString())
      return payload
    }
    if (state.hold !== undefined && isStream(payload) && !(reply.statusCode >= 500 && refundOnError)) {
      // A streamed answer is settled once its last byte is written (onResponse): only then does
      // the settlement know what was sent. It is settled at most at the hold, since the answer
      // can no longer become a 402; a stream that never finishes leaves its hold to expire.
      state.phase = 'streaming'
      reply.header(header, state.tot.toString())
      return payload
    }
    state.phase = 'settling'
    let answer = payload
    if (reply.statusCode >= 500 && refundOnError) await (state.hold === undefined ? refund(request, state) : release(request, state))
    else if (state.hold !== undefined) answer = await settleHold(request, reply, payload, state, state.hold)
    else if (state.settle !== undefined) answer = await settle(request, reply, payload, state)
    state.phase = 'done'
    reply.header(header, state.tot.toString())
    return answer
  })

  app.addHook('onResponse', async (request, reply) => {
    const state = meteredRequests.get(request)
    if (state === undefined || state.owner !== owner || state.phase !== 'streaming' || state.hold === undefined) return
    state.phase = 'done'
    try {
      const measured = checkedAmount(await state.settle?.(request, reply, null), 'settle')
      const cost = measured > state.price ? state.price : measured
      if (cost === 0n) return await release(request, state)
      const note = state.note === undefined ? undefined : `${state.note} (settle)`
      const settled = await client.settle(state.credential, state.hold, { by: cost, idempotencyKey: `${state.key}.settle`, note })
      Object.assign(state, { charged: cost, tot: settled.tot, seq: settled.seq })
    } catch (error) {
      // The answer is gone: log, and leave the hold to expire (the consumer pays nothing).
      request.log.error({ code: error instanceof AccManError ? error.code : 'unknown', key: state.key }, 'accman: settlement failed')
    }
  })

  /**
   * Settles the actual cost from the hold: up to the price from the hold itself, in one step; a
   * cost above it (unless capAtHold) is first debited from what the consumer has besides the hold,
   * and if they cannot pay it the hold is voided and the answer becomes the 402.
   */
  async function settleHold(request: FastifyRequest, reply: FastifyReply, payload: unknown, state: Metered, hold: string): Promise<unknown> {
    const measured = checkedAmount(await state.settle?.(request, reply, payload), 'settle')
    const cost = capAtHold && measured > state.price ? state.price : measured
    const note = state.note === undefined ? undefined : `${state.note} (settle)`
    try {
      if (cost > state.price) {
        const extra = await client.mod(state.credential, state.price - cost, { idempotencyKey: `${state.key}.extra`, note })
        Object.assign(state, { tot: extra.tot, seq: extra.seq })
      }
      if (cost === 0n) return (await release(request, state), payload)
      const settled = await client.settle(state.credential, hold, { by: cost < state.price ? cost : state.price, idempotencyKey: `${state.key}.settle`, note })
      Object.assign(state, { charged: cost, tot: settled.tot, seq: settled.seq })
    } catch (error) {
      if (error instanceof InsufficientFundsError) {
        // The consumer cannot pay for what was made: they get nothing and pay nothing.
        await release(request, state)
        return paymentRequired(reply, error.tot, cost, error.avail, payload)
      }
      if (!isUnavailable(error) && !(error instanceof HoldExpiredError)) throw error
      // Unavailable: the hold expires by itself unless a retry of the settle lands; expired: the
      // request outlived holdTtl. Either way the operator reconciles from the log.
      request.log.error({ code: error.code, price: state.price.toString(), cost: cost.toString(), key: state.key }, 'accman: settlement failed')
    }
    return payload
  }

  /** Voids the hold, with a key of its own derived from the hold's: applied once. */
  async function release(request: FastifyRequest, state: Metered): Promise<void> {
    if (state.hold === undefined) return
    const note = state.note === undefined ? undefined : `${state.note} (void)`
    try {
      const result = await client.void(state.credential, state.hold, { idempotencyKey: `${state.key}.void`, note })
      Object.assign(state, { charged: 0n, tot: result.tot, seq: result.seq })
    } catch (error) {
      // Never thrown on; an unvoided hold expires by itself after holdTtl.
      request.log.error({ code: error instanceof AccManError ? error.code : 'unknown', key: state.key }, 'accman: void failed, the hold expires by itself')
    }
  }

  /** A hold whose answer never came: re-sending it with its key answers its id (or refuses), then it is voided. */
  async function undoLostHold(request: FastifyRequest, lost: Pick<Metered, 'credential' | 'price' | 'key' | 'note'>): Promise<void> {
    for (let check = 1; check <= outcomeChecksMax; check += 1) {
      let hold: string
      try {
        hold = (await client.hold(lost.credential, lost.price, { ttlSeconds: holdTtl, idempotencyKey: lost.key, note: lost.note })).hold
      } catch (error) {
        if (isUnavailable(error)) continue
        return
      }
      await release(request, { ...lost, owner, charged: 0n, tot: 0n, seq: 0, settle: undefined, hold, phase: 'done' })
      return
    }
    request.log.error({ key: lost.key }, 'accman: the outcome of a hold is unknown; it expires by itself')
  }

  /** Charges or refunds the difference between the actual cost and the price. */
  async function settle(request: FastifyRequest, reply: FastifyReply, payload: unknown, state: Metered): Promise<unknown> {
    const cost = checkedAmount(await state.settle?.(request, reply, payload), 'settle')
    const difference = cost - state.price
    if (difference === 0n) return payload
    const note = state.note === undefined ? undefined : `${state.note} (settle)`
    try {
      const result = await client.mod(state.credential, -difference, { idempotencyKey: `${state.key}.settle`, note })
      Object.assign(state, { charged: cost, tot: result.tot, seq: result.seq })
    } catch (error) {
      if (error instanceof InsufficientFundsError) {
        // The consumer cannot pay for what was made: they get nothing and pay nothing.
        state.tot = error.tot
        await refund(request, state)
        return paymentRequired(reply, state.tot, cost, error.avail, payload)
      }
      if (!isUnavailable(error)) throw error
      // The work is done and the price was paid; the operator reconciles the difference.
      request.log.error(
        { code: error.code, price: state.price.toString(), cost: cost.toString() },
        'accman: settlement failed, the price stands',
      )
    }
    return payload
  }

  /** Credits the price back, with a key of its own derived from the debit's: applied once. */
  async function refund(request: FastifyRequest, state: Pick<Metered, 'credential' | 'price' | 'key' | 'note'> & Partial<Metered>): Promise<boolean> {
    if (state.price === 0n) return true
    const note = state.note === undefined ? undefined : `${state.note} (refund)`
    try {
      const result = await client.mod(state.credential, state.price, { idempotencyKey: `${state.key}.refund`, note })
      Object.assign(state, { charged: 0n, tot: result.tot, seq: result.seq })
      return true
    } catch (error) {
      // Never thrown on: this runs while answering, often an error already.
      request.log.error(
        { code: error instanceof AccManError ? error.code : 'unknown', price: state.price.toString(), key: state.key },
        'accman: refund failed, the price stands',
      )
      return false
    }
  }

  /**
   * The debit's answer never came, so it may have been applied; the consumer is about to get 503
   * and must not pay for it. Re-sending it with its key tells: AccMan replays it if it was applied
   * (or applies it now), and then it is refunded; a refusal means it was never applied.
   */
  async function undoLostDebit(request: FastifyRequest, debit: Pick<Metered, 'credential' | 'price' | 'key' | 'note'>): Promise<void> {
    for (let check = 1; check <= outcomeChecksMax; check += 1) {
      try {
        await client.mod(debit.credential, -debit.price, { idempotencyKey: debit.key, note: debit.note })
      } catch (error) {
        if (isUnavailable(error)) continue
        // Refused (no funds, no account): the earlier attempts were not applied either.
        return
      }
      if (await refund(request, debit)) request.log.warn({ key: debit.key }, 'accman: a debit whose answer was lost is refunded')
      return
    }
    // Every check failed: the operator can tell from the key whether it was applied.
    request.log.error({ key: debit.key, price: debit.price.toString() }, 'accman: the outcome of a debit is unknown')
  }
}

function priceOf(price: bigint | PriceFunction, request: FastifyRequest): bigint | Promise<bigint> {
  return typeof price === 'function' ? price(request) : price
}

/** A price or cost must be a bigint from 0 to 2^127-1; anything else is a bug in the service. */
function checkedAmount(amount: unknown, what: 'price' | 'settle'): bigint {
  if (typeof amount !== 'bigint' || amount < 0n || amount > amountMax) {
    const shown = typeof amount === 'bigint' ? amount.toString() : typeof amount
    throw new TypeError(`accman: ${what} must give a bigint from 0 to ${amountMax}, not ${shown}`)
  }
  return amount
}

function defaultNote(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? ''}`
}

/** Leaves room for the settle and refund suffixes within AccMan's note limit. */
function boundedNote(note: string | undefined): string | undefined {
  if (note === undefined || note === '') return undefined
  return characterCount(note) <= noteBaseLengthMax ? note : Array.from(note).slice(0, noteBaseLengthMax).join('')
}

function isStream(payload: unknown): boolean {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function'
}

function isUnavailable(error: unknown): error is UnavailableError | UnreachableError {
  return error instanceof UnavailableError || error instanceof UnreachableError
}

function replyBody(statusCode: number, code: AccManReplyCode, message: string): AccManReplyBody {
  const error = { 401: 'Unauthorized', 402: 'Payment Required', 503: 'Service Unavailable' }[statusCode] ?? 'Error'
  return { statusCode, code, error, message }
}


/** Register on an app or an encapsulated context: its hooks meter that context's routes. */
const accman = fp(accmanPlugin, { name: 'accman', fastify: '5.x' })
export default accman
export { accman }
