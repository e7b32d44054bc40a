// buildApp: the HTTP face of the ledger. It takes its config and database and never listens, so
// tests can inject requests or listen on a port of their choosing.
import { STATUS_CODES } from 'node:http'
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { isLedgerError, type RootDb } from '../ledger/index.js'
import { ApiError, errorBody, statusOf, type ApiErrorCode } from './errors.js'
import ledgerPlugin from './ledger-plugin.js'
import { ledgerRoutes } from './routes/ledger.js'
import { zodValidatorCompiler } from './validation.js'

export type AppConfig = Pick<
  Config,
  'sync' | 'writerBatchMax' | 'writerQueueMax' | 'bodyLimitBytes' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'
>

export interface AppDeps {
  db: RootDb
  logger?: Logger
  now?: () => number
  /** Called if the ledger's writer stops on a storage fault or broken invariant. */
  onFatal?: (error: Error) => void
}

/** The methods each known path answers, for 405 instead of 404 on a wrong method. */
const routeMethods: Readonly<Record<string, string>> = {
  '/tot': 'GET, HEAD',
  '/mod': 'PATCH',
  '/past': 'GET, HEAD',
  '/healthz': 'GET, HEAD',
}

export async function buildApp(config: AppConfig, deps: AppDeps): Promise<FastifyInstance> {
  const options: FastifyServerOptions = {
    logger: false,
    // Fastify's own request lines would log the URL, which carries the credential.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Refused below instead, with our error shape; Fastify's own 503 body has no code.
    return503OnClosing: false,
    frameworkErrors: (error, request, reply) => {
      // Bad URL encoding and the like, before routing (so no onResponse hook): answer in our
      // shape without echoing the URL, and log the request line here.
      request.log.debug({ method: request.method, statusCode: 400, code: error.code }, 'request')
      void (reply as FastifyReply).code(400).send(errorBody('ACCMAN_BAD_REQUEST', `malformed request (${error.code})`))
    },
  }
  if (deps.logger !== undefined) {
    delete options.logger
    options.loggerInstance = deps.logger
  }
  const app = Fastify(options)
  app.setValidatorCompiler(zodValidatorCompiler)
  // No endpoint takes a body: with no parsers, any body with a content type is refused (415).
  app.removeAllContentTypeParsers()
  app.setErrorHandler(handleError)
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return
    reply.header('connection', 'close').header('retry-after', '1')
    return reply.code(503).send(errorBody('ACCMAN_CLOSED', 'the server is shutting down; retry shortly'))
  })
  app.setNotFoundHandler(handleNotFound)
  if (deps.logger?.isLevelEnabled('debug') === true) {
    // Registered only when it will print: the hot path pays nothing at the default level.
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug(
        { method: request.method, route: request.routeOptions.url, statusCode: reply.statusCode, ms: reply.elapsedTime },
        'request',
      )
    })
  }

  await app.register(ledgerPlugin, {
    db: deps.db,
    sync: config.sync,
    writerBatchMax: config.writerBatchMax,
    writerQueueMax: config.writerQueueMax,
    ...(deps.now === undefined ? {} : { now: deps.now }),
    ...(deps.onFatal === undefined ? {} : { onFatal: deps.onFatal }),
  })
  app.get('/healthz', async (_request, reply) => {
    if (!app.ledger.isOpen) return reply.code(503).send(errorBody('ACCMAN_CLOSED', 'the database is not open'))
    return { status: 'ok' }
  })
  await app.register(ledgerRoutes)
  return app
}

function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof ApiError) return reply.code(error.statusCode).send(errorBody(error.code, error.message))
  if (isLedgerError(error)) {
    const statusCode = statusOf(error.code)
    if (statusCode === 503) reply.header('retry-after', '1')
    return reply.code(statusCode).send(errorBody(error.code, error.message, error.tot))
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
