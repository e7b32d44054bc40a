// Low-balance thresholds, refs, and the webhooks' state for operators: PATCH /alert, PATCH /ref,
// GET /webhooks, POST /webhooks/retry, POST /webhooks/enable.
import type { FastifyPluginAsync } from 'fastify'
import { z } from 'zod'
import { credentialKeyOf, type AccountState, type CredentialKey, type Ledger } from '../../ledger/index.js'
import type { Deliverer } from '../../webhooks/deliverer.js'
import type { Authenticate } from '../auth.js'
import { ApiError } from '../errors.js'
import { answersOf } from '../openapi.js'
import { security, transportErrors } from './answers.js'
import { accountSettingsBody, alertQuery, refQuery, webhooksBody, webhookUrlQuery } from '../schemas.js'
import type { ZodTypeProvider } from '../validation.js'

export interface WebhookRoutesOptions {
  authenticate: Authenticate | undefined
  /** undefined: webhooks are off (no ACCMAN_WEBHOOK_URL). */
  deliverer: Deliverer | undefined
}

const settingsAnswer = {
  200: { description: "The account's balance and settings.", content: { 'application/json': { schema: accountSettingsBody } } },
}

const alertSchema = {
  summary: "Set an account's low-balance threshold",
  description:
    'A change that takes the balance from at or above the threshold to below it sends a `balance.low` webhook (once per crossing). No history entry is written.',
  tags: ['webhooks'],
  security,
  querystring: alertQuery,
  response: answersOf(settingsAnswer, [...transportErrors, 'ACCMAN_INVALID_CRED', 'ACCMAN_INVALID_QUERY',
    'ACCMAN_BAD_REQUEST', 'ACCMAN_FORBIDDEN', 'ACCMAN_NO_ACCOUNT', 'ACCMAN_QUEUE_FULL']),
}

const refSchema = {
  summary: "Set an account's ref",
  description:
    'The operator\'s own reference for the account (a customer id, say), echoed in every event; /tot and /past take `ref=` instead of `cred`. A ref names one account. No history entry is written.',
  tags: ['webhooks'],
  security,
  querystring: refQuery,
  response: answersOf(settingsAnswer, [
    ...transportErrors,
    'ACCMAN_INVALID_CRED',
    'ACCMAN_INVALID_QUERY',
    'ACCMAN_BAD_REQUEST',
    'ACCMAN_FORBIDDEN',
    'ACCMAN_NO_ACCOUNT',
    'ACCMAN_REF_TAKEN',
    'ACCMAN_QUEUE_FULL',
  ]),
}

const webhooksSchema = {
  summary: 'The webhook endpoints and their deliveries',
  tags: ['webhooks'],
  security,
  response: answersOf({ 200: { description: 'Per endpoint.', content: { 'application/json': { schema: webhooksBody } } } }, transportErrors),
}

const retrySchema = {
  summary: 'Send failed webhook events again',
  description: 'Every delivery marked failed becomes pending, due now, with a fresh retry window.',
  tags: ['webhooks'],
  security,
  response: answersOf(
    { 200: { description: 'How many.', content: { 'application/json': { schema: z.strictObject({ retried: z.int().min(0) }) } } } },
    [...transportErrors, 'ACCMAN_FORBIDDEN'],
  ),
}

const enableSchema = {
  summary: 'Re-enable a webhook endpoint a 410 disabled',
  tags: ['webhooks'],
  security,
  querystring: webhookUrlQuery,
  response: answersOf(
    { 200: { description: 'Enabled.', content: { 'application/json': { schema: z.strictObject({ enabled: z.string() }) } } } },
    [...transportErrors, 'ACCMAN_INVALID_QUERY',
    'ACCMAN_BAD_REQUEST', 'ACCMAN_FORBIDDEN', 'ACCMAN_NOT_FOUND'],
  ),
}

/** /tot's JSON (held and avail as of now) with the threshold in force and the ref. */
async function settingsBody(ledger: Ledger, credentialKey: CredentialKey, account: AccountState): Promise<z.input<typeof accountSettingsBody>> {
  const balance = (await ledger.tot(credentialKey)) ?? account
  const held = balance.held ?? 0n
  const body: z.input<typeof accountSettingsBody> = { tot: balance.tot.toString(), seq: balance.seq, held: held.toString(), avail: (balance.tot - held).toString() }
  if (account.expiresMs !== undefined) body.expires = new Date(account.expiresMs).toISOString()
  const alertBelow = ledger.alertBelowOf(account)
  if (alertBelow !== undefined) body.alertBelow = alertBelow.toString()
  if (account.ref !== undefined) body.ref = account.ref
  return body
}

export const webhookRoutes: FastifyPluginAsync<WebhookRoutesOptions> = async (plugin, { authenticate, deliverer }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  app.patch('/alert', { schema: alertSchema, config: { access: 'write' } }, async (request, reply) => {
    const credentialKey = credentialKeyOf(request.query.cred)
    const account = await app.ledger.updateAccount(credentialKey, { alertBelow: request.query.below })
    reply.header('cache-control', 'no-store')
    return await settingsBody(app.ledger, credentialKey, account)
  })

  app.patch('/ref', { schema: refSchema, config: { access: 'write' } }, async (request, reply) => {
    const credentialKey = credentialKeyOf(request.query.cred)
    const account = await app.ledger.updateAccount(credentialKey, { ref: request.query.ref })
    reply.header('cache-control', 'no-store')
    return await settingsBody(app.ledger, credentialKey, account)
  })

  app.get('/webhooks', { schema: webhooksSchema, config: { access: 'read' } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    if (deliverer === undefined) return { endpoints: [], outbox: 0 }
    const [endpoints, outbox] = await Promise.all([deliverer.status(), deliverer.outboxDepth()])
    return { endpoints, outbox }
  })

  app.post('/webhooks/retry', { schema: retrySchema, config: { access: 'write' } }, async () => {
    return { retried: deliverer === undefined ? 0 : await deliverer.retryFailed() }
  })

  app.post('/webhooks/enable', { schema: enableSchema, config: { access: 'write' } }, async (request) => {
    const endpoint = await deliverer?.enable(request.query.url)
    if (endpoint === undefined) throw new ApiError('ACCMAN_NOT_FOUND', 'no configured webhook endpoint has this URL')
    return { enabled: endpoint.printable }
  })
}
