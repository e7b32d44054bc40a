// buildApp: the HTTP face of the ledger. It takes its config and store and never listens, so
// tests can inject requests or listen on a port of their choosing.
import { randomUUID } from 'node:crypto'
import { STATUS_CODES, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import underPressure from '@fastify/under-pressure'
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyHttpOptions,
} from 'fastify'
import type { Logger } from 'pino'
import { limits, type Config } from '../config.js'
import { idempotencyTtlSecondsDefault, isLedgerError, type LedgerStore } from '../ledger/index.js'
import { authenticator, scoper } from './auth.js'
import { lifecycleRoutes } from './routes/lifecycle.js'
import {
  hasBody,
  headerBytesOf,
  pathHasPercent,
  requestIdGenerator,
  serverHeadersCountOf,
  tooManyHeaderLines,
} from './edge.js'
import { ApiError, errorBody, retryAfterText, statusOf, type ApiErrorCode } from './errors.js'
import ledgerPlugin from './ledger-plugin.js'
import { Metrics } from './metrics.js'
import { openapiOptionsFor } from './openapi.js'
import { parseQuery } from './query.js'
import { consoleRoutes } from './routes/console.js'
import { ledgerRoutes } from './routes/ledger.js'
import { holdRoutes } from './routes/holds.js'
import { accountRoutes } from './routes/accounts.js'
import { batchRoutes } from './routes/batch.js'
import { backupRoutes } from './routes/backup.js'
import { operationsRoutes } from './routes/operations.js'
import { zodValidatorCompiler } from './validation.js'
import { webhookRoutes } from './routes/webhooks.js'
import { Deliverer, type DelivererLimits } from '../webhooks/deliverer.js'

export type AppConfig = Pick<
  Config,
  | 'writerBatchMax'
  | 'writerQueueMax'
  | 'writerRoundsInFlightMax'
  | 'writerLookAheadBatchesMax'
  | 'accountCacheMax'
  | 'bodyBytesMax'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'headersTimeoutMs'
  | 'connectionTimeoutMs'
  | 'urlLengthMax'
  | 'headerSizeBytesMax'
  | 'headerLinesMax'
  | 'eventLoopDelayMsMax'
  | 'eventLoopSampleMs'
  | 'connectionsCheckIntervalMs'
  | 'tokens'
  | 'readTokens'
  | 'metricsPublic'
> &
  Partial<Pick<Config, 'idempotencyTtlMs' | 'idempotencyPruneIntervalMs' | 'idempotencyPruneBatchMax' | 'tokenNames' | 'readTokenNames'>> &
  Partial<Pick<Config, 'alertBelowDefault' | 'webhookUrls' | 'webhookSecrets' | 'webhookRetryBaseMs' | keyof DelivererLimits>>

export interface AppDeps {
  /** The ledger's store, open; the app owns it (closes it when it closes). */
  store: LedgerStore
  logger?: Logger
  now?: () => number
  /** Called if the ledger's writer stops on a storage fault or broken invariant. */
  onFatal?: (error: Error) => void
}

/** The methods each known path answers, for 405 instead of 404 on a wrong method. */
const routeMethods: Readonly<Record<string, string>> = {
  '/tot': 'GET, HEAD',
  '/mod': 'PATCH',
  '/hold': 'PATCH',
  '/settle': 'PATCH',
  '/void': 'PATCH',
  '/holds': 'GET, HEAD',
  '/move': 'PATCH',
  '/freeze': 'PATCH',
  '/unfreeze': 'PATCH',
  '/batch': 'POST',
  '/past': 'GET, HEAD',
  '/healthz': 'GET, HEAD',
  '/readyz': 'GET, HEAD',
  '/metrics': 'GET, HEAD',
  '/openapi.json': 'GET, HEAD',
  '/backup': 'GET, HEAD',
  '/whoami': 'GET, HEAD',
  '/console': 'GET, HEAD',
  '/alert': 'PATCH',
  '/ref': 'PATCH',
  '/webhooks': 'GET, HEAD',
  '/webhooks/retry': 'POST',
  '/webhooks/enable': 'POST',
}

export async function buildApp(config: AppConfig, deps: AppDeps): Promise<FastifyInstance> {
  const options: FastifyHttpOptions<Server> = {
    logger: false,
    // Fastify's own request lines would log the URL, which carries the credential.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyBytesMax,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionTimeout: config.connectionTimeoutMs,
    http: {
      maxHeaderSize: config.headerSizeBytesMax,
      headersTimeout: config.headersTimeoutMs,
      // Node checks those timeouts on this interval (30 s by default), so check often enough.
      connectionsCheckingInterval: Math.min(config.connectionsCheckIntervalMs, config.headersTimeoutMs),
      // Node's refusal of a request without Host is a bare 400; the guard below answers in our shape.
      requireHostHeader: false,
    },
    routerOptions: { querystringParser: parseQuery },
    // Refused in the guard below instead, with our error shape; Fastify's own 503 has no code.
    return503OnClosing: false,
    frameworkErrors: (error, request, reply) => {
      // Bad URL encoding and the like, before routing (so no onResponse hook): answer in our
      // shape without echoing the URL, and log the request line here.
      request.log.debug({ method: request.method, statusCode: 400, code: error.code }, 'request')
      void (reply as FastifyReply).code(400).header('x-request-id', request.id).send(errorBody('ACCMAN_BAD_REQUEST', `malformed request (${error.code})`))
    },
    clientErrorHandler: answerClientError,
    requestIdHeader: false,
    genReqId: requestIdGenerator([...config.tokens, ...config.readTokens]),
  }
  if (deps.logger !== undefined) {
    delete options.logger
    options.loggerInstance = deps.logger
  }
  const app = Fastify(options)
  // Not a createServer option: set on the server itself.
  app.server.maxHeadersCount = serverHeadersCountOf(config.headerLinesMax)
  // An Expect other than 100-continue would get Node's bare 417; RFC 9110 lets a server ignore
  // it, so the request is served as if it had none, with our answers and request id.
  app.server.on('checkExpectation', (request, response) => app.server.emit('request', request, response))
  app.setValidatorCompiler(zodValidatorCompiler)
  // Response schemas document the answers (OpenAPI); the routes build the bodies themselves.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data))
  // No endpoint takes a body (the guard refuses one); no parsers, in case one gets past it.
  app.removeAllContentTypeParsers()
  app.setErrorHandler(handleError)
  app.setNotFoundHandler(handleNotFound)

  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  // One hook for the cheap refusals every request may get, before anything reads the query.
  // A callback hook, not an async one: every request passes here, and most pass straight on.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    const raw = request.raw
    if (closing) {
      reply.header('connection', 'close').header('retry-after', retryAfterText)
      done(new ApiError('ACCMAN_CLOSED', 'the server is shutting down; retry shortly'))
    } else if (tooManyHeaderLines(raw, config.headerLinesMax)) {
      reply.header('connection', 'close')
      done(new ApiError('ACCMAN_HEADERS_TOO_LARGE', `the request has more than ${config.headerLinesMax} header lines`))
    } else if (headerBytesOf(raw) > config.headerSizeBytesMax) {
      reply.header('connection', 'close')
      done(new ApiError('ACCMAN_HEADERS_TOO_LARGE', `the request line and headers are larger than ${config.headerSizeBytesMax} bytes`))
    } else if (raw.httpVersion === '1.1' && request.headers.host === undefined) {
      reply.header('connection', 'close')
      done(new ApiError('ACCMAN_BAD_REQUEST', 'an HTTP/1.1 request needs a Host header'))
    } else if (request.url.length > config.urlLengthMax) {
      done(new ApiError('ACCMAN_URL_TOO_LONG', `the URL is longer than ${config.urlLengthMax} characters`))
    } else if (pathHasPercent(request.url)) {
      done(new ApiError('ACCMAN_BAD_REQUEST', 'the path must not be percent-encoded'))
    } else if (request.method === 'POST' && request.routeOptions.url === '/batch') {
      done()
    } else if (hasBody(raw)) {
      done(new ApiError('ACCMAN_PAYLOAD_TOO_LARGE', 'no endpoint takes a request body'))
    } else {
      // `Content-Length: 00` is no body too, but Fastify looks for a body unless it reads '0'.
      if (raw.headers['content-length'] !== undefined) raw.headers['content-length'] = '0'
      done()
    }
  })
  await app.register(underPressure, {
    maxEventLoopDelay: config.eventLoopDelayMsMax,
    sampleInterval: config.eventLoopSampleMs,
    retryAfter: limits.retryAfterSeconds,
  })

  if (deps.logger?.isLevelEnabled('debug') === true) {
    // Registered only when it will print: the hot path pays nothing at the default level.
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug(
        { method: request.method, route: request.routeOptions.url, statusCode: reply.statusCode, ms: reply.elapsedTime },
        'request',
      )
    })
  }

  const poolStats = deps.store.poolStats?.bind(deps.store)
  const metrics = new Metrics(() => app.ledger.writerQueueDepth, poolStats)
  const webhookUrls = config.webhookUrls ?? []
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(request, reply)
    done()
  })

  // Before the routes: @fastify/swagger collects them as they are added.
  await app.register(swagger, openapiOptionsFor(config.idempotencyTtlMs ?? idempotencyTtlSecondsDefault * 1000))
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { url: '/openapi.json' } })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())

  await app.register(ledgerPlugin, {
    store: deps.store,
    writerBatchMax: config.writerBatchMax,
    writerQueueMax: config.writerQueueMax,
    writerRoundsInFlightMax: config.writerRoundsInFlightMax,
    writerLookAheadBatchesMax: config.writerLookAheadBatchesMax,
    accountCacheMax: config.accountCacheMax,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.onFatal === undefined ? {} : { onFatal: deps.onFatal }),
    onRound: (report) => metrics.observeRound(report),
    outboxEnabled: webhookUrls.length > 0,
    ...(config.alertBelowDefault === undefined ? {} : { alertBelowDefault: config.alertBelowDefault }),
    ...(config.idempotencyTtlMs === undefined ? {} : { idempotencyTtlMs: config.idempotencyTtlMs }),
    ...(config.idempotencyPruneIntervalMs === undefined || config.idempotencyPruneBatchMax === undefined
      ? {}
      : { idempotencyPrune: { intervalMs: config.idempotencyPruneIntervalMs, batchMax: config.idempotencyPruneBatchMax } }),
  })
  const authenticate = authenticator(config)
  await app.register(operationsRoutes, {
    authenticate,
    metrics,
    metricsPublic: config.metricsPublic,
    isClosing: () => closing,
  })
  await app.register(ledgerRoutes, { authenticate })
  await app.register(holdRoutes, { authenticate })
  await app.register(lifecycleRoutes, { authenticate })
  await app.register(accountRoutes, { authenticate })
  await app.register(batchRoutes, { authenticate, scopeOf: scoper(config), metrics, writerQueueMax: config.writerQueueMax })
  await app.register(backupRoutes, { authenticate, store: deps.store })
  await app.register(consoleRoutes, { scopeOf: scoper(config) })
  const deliverer =
    webhookUrls.length === 0
      ? undefined
      : new Deliverer({
          store: deps.store,
          urls: webhookUrls,
          secrets: config.webhookSecrets ?? [],
          retryBaseMs: config.webhookRetryBaseMs ?? 2000,
          limits: { ...limits, ...pickDefined(config) },
          log: deps.logger?.child({ module: 'webhooks' }),
          observer: metrics.webhookObserver(),
        })
  await app.register(webhookRoutes, { authenticate, deliverer })
  if (deliverer !== undefined) {
    // Off the writer's path: the deliverer reads the outbox the writer's rounds fill.
    app.addHook('onReady', async () => deliverer.start())
    app.addHook('preClose', async () => await deliverer.stop())
  }
  return app
}

/** The deliverer's limits given in the config (tests shorten them), over the declared ones. */
function pickDefined(config: AppConfig): Partial<DelivererLimits> {
  const names = [
    'outboxMax',
    'webhookAttemptTimeoutMs',
    'webhookConcurrencyMax',
    'webhookClaimBatchMax',
    'webhookPollIntervalMs',
    'webhookRetryDelayMsMax',
    'webhookRetryWindowMs',
    'webhookRetryAfterMsMax',
    'webhookDisabledRecheckMs',
  ] as const
  return Object.fromEntries(names.filter((name) => config[name] !== undefined).map((name) => [name, config[name]]))
}

function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof ApiError) {
    if (error.code === 'ACCMAN_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="accman"')
    return reply.code(error.statusCode).send(errorBody(error.code, error.message))
  }
  if (isLedgerError(error)) {
    const statusCode = statusOf(error.code)
    if (statusCode === 503) reply.header('retry-after', retryAfterText)
    return reply.code(statusCode).send(errorBody(error.code, error.message, error.tot, error.avail))
  }
  if (error.code === 'FST_UNDER_PRESSURE') {
    reply.header('retry-after', retryAfterText)
    return reply.code(503).send(errorBody('ACCMAN_OVERLOADED', 'the server is overloaded; retry shortly'))
  }
  const statusCode = error.statusCode ?? 500
  if (statusCode >= 400 && statusCode < 500) {
    const code: ApiErrorCode =
      statusCode === 413
        ? 'ACCMAN_PAYLOAD_TOO_LARGE'
        : statusCode === 415
          ? 'ACCMAN_UNSUPPORTED_MEDIA_TYPE'
          : 'ACCMAN_BAD_REQUEST'
    // Fastify's own messages may quote request data, so only its code is kept.
    const message = `${STATUS_CODES[statusOf(code)] ?? 'Bad Request'} (${error.code ?? 'unknown'})`
    return reply.code(statusOf(code)).send(errorBody(code, message))
  }
  request.log.error({ err: error }, 'request failed')
  return reply.code(500).send(errorBody('ACCMAN_INTERNAL', `internal error, request id ${request.id}`))
}

function handleNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?', 1)[0] ?? ''
  const allowed = routeMethods[path]
  if (allowed !== undefined) {
    return reply
      .code(405)
      .header('allow', allowed)
      .send(errorBody('ACCMAN_METHOD_NOT_ALLOWED', `this path answers ${allowed}`))
  }
  return reply.code(404).send(errorBody('ACCMAN_NOT_FOUND', 'no such route'))
}

/**
 * Requests Node's parser refuses (a malformed request, headers too large, a timeout): our shape,
 * with a request id like every answer, then close. Written only when no answer is under way on
 * the socket (the previous answer of a keep-alive connection is done), else the bytes would
 * corrupt it: then the socket is just closed.
 */
function answerClientError(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const code: ApiErrorCode =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'ACCMAN_HEADERS_TOO_LARGE'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'ACCMAN_REQUEST_TIMEOUT'
        : 'ACCMAN_BAD_REQUEST'
  const messages: Partial<Record<ApiErrorCode, string>> = {
    ACCMAN_HEADERS_TOO_LARGE: 'the request line and headers are too large',
    ACCMAN_REQUEST_TIMEOUT: 'the request did not arrive in time',
  }
  const requestId = randomUUID()
  const status = statusOf(code)
  this.log.debug({ reqId: requestId, statusCode: status, code: error.code }, 'client error')
  // Node's own field for the answer in progress on this socket; null once it has finished.
  const answering = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
  if (!socket.writable || (answering !== null && answering !== undefined)) {
    socket.destroy()
    return
  }
  const body = JSON.stringify(errorBody(code, messages[code] ?? 'malformed HTTP request'))
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n\r\n${body}`,
  )
}
