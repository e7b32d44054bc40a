// For whoever runs AccMan: liveness, readiness and metrics.
import type { FastifyPluginAsync } from 'fastify'
import { z } from 'zod'
import type { Authenticate } from '../auth.js'
import { errorBody, retryAfterText } from '../errors.js'
import type { Metrics } from '../metrics.js'
import { answersOf } from '../openapi.js'
import { healthBody } from '../schemas.js'

export interface OperationsRoutesOptions {
  authenticate: Authenticate | undefined
  metrics: Metrics
  /** Serve /metrics without a token even when tokens are configured. */
  metricsPublic: boolean
  isClosing: () => boolean
}

const ok = { description: 'Yes.', content: { 'application/json': { schema: healthBody } } }

const healthzSchema = {
  summary: 'Liveness',
  description: 'Open without a token, and answered even when the server is overloaded or the store does not answer (the process is alive).',
  tags: ['operations'],
  response: answersOf({ 200: ok }, ['ACCMAN_CLOSED']),
}

const readyzSchema = {
  summary: 'Readiness',
  description:
    'Ready while the database is open, the writer is healthy and the store answers; 503 while shutting down, after a storage fault, or while the store does not answer.',
  tags: ['operations'],
  response: answersOf({ 200: ok }, ['ACCMAN_OVERLOADED', 'ACCMAN_CLOSED', 'ACCMAN_STORE_UNAVAILABLE']),
}

const metricsSchema = {
  summary: 'Prometheus metrics',
  description: 'Prometheus text format. Needs a token when tokens are configured, unless ACCMAN_METRICS_PUBLIC=true.',
  tags: ['operations'],
  security: [{}, { bearer: [] }],
  response: answersOf(
    { 200: { description: 'The metrics.', content: { 'text/plain': { schema: z.string() } } } },
    ['ACCMAN_UNAUTHORIZED', 'ACCMAN_OVERLOADED', 'ACCMAN_CLOSED'],
  ),
}

export const operationsRoutes: FastifyPluginAsync<OperationsRoutesOptions> = async (
  app,
  { authenticate, metrics, metricsPublic, isClosing },
) => {
  app.get('/healthz', { schema: healthzSchema, config: { pressureHandler: () => undefined } }, async (_request, reply) => {
    if (!app.ledger.isOpen) return reply.code(503).send(errorBody('ACCMAN_CLOSED', 'the database is not open'))
    return { status: 'ok' }
  })

  app.get('/readyz', { schema: readyzSchema }, async (_request, reply) => {
    let reason: string | undefined
    if (isClosing()) reason = 'the server is shutting down'
    else if (!app.ledger.isOpen) reason = 'the database is not open'
    else if (!app.ledger.writerHealthy) reason = 'the writer stopped after a storage fault'
    else if (!(await app.ledger.ready())) {
      const body = errorBody('ACCMAN_STORE_UNAVAILABLE', 'the store does not answer')
      return reply.code(503).header('retry-after', retryAfterText).send(body)
    }
    if (reason === undefined) return { status: 'ok' }
    return reply.code(503).header('retry-after', retryAfterText).send(errorBody('ACCMAN_CLOSED', reason))
  })

  await app.register(async (guarded) => {
    if (authenticate !== undefined && !metricsPublic) guarded.addHook('onRequest', authenticate)
    guarded.get('/metrics', { schema: metricsSchema, config: { access: 'read' } }, async (_request, reply) => {
      return reply.type(metrics.contentType).send(await metrics.text())
    })
  })
}
