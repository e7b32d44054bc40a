// Holds over HTTP: PATCH /hold, /settle, /void and GET /holds. The ledger builds the JSON answer
// of a write (a replay must give back the first answer's body exactly), so the routes send it as is.
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { z } from 'zod'
import { credentialKeyOf } from '../../ledger/index.js'
import { accountOfQuery, sendNoAccount } from './accounts.js'
import type { HoldOpResult } from '../../ledger/holds.js'
import type { Authenticate } from '../auth.js'
import { requireJson } from '../negotiate.js'
import { answersOf } from '../openapi.js'
import { readErrors, security } from './answers.js'
import { holdBody, holdQuery, holdsBody, holdsQuery, modHeaders, settleBody, settleQuery, voidBody, voidQuery } from '../schemas.js'
import type { ZodTypeProvider } from '../validation.js'

const writeErrors = [...readErrors, 'ACCMAN_FORBIDDEN', 'ACCMAN_IDEMPOTENCY_MISMATCH', 'ACCMAN_QUEUE_FULL'] as const
const releaseErrors = [...writeErrors, 'ACCMAN_NO_HOLD', 'ACCMAN_HOLD_CLOSED', 'ACCMAN_HOLD_EXPIRED'] as const
const replayedHeader = { 'idempotent-replayed': { type: 'string' as const, description: '"true" when this answers a repeat of a keyed request.' } }
const json = (schema: z.ZodType) => ({ 'application/json': { schema } })

const holdSchema = {
  summary: 'Reserve part of the balance for a while',
  description:
    'Reserves `by` for `ttl` seconds: `avail` (= tot - held) shrinks, `tot` does not. Checked against `avail`; a frozen account (423) or an expired one (410) takes no new hold, but settles and voids the ones it has. A retry with the same Idempotency-Key answers the first answer, same hold id.',
  tags: ['holds'],
  security,
  querystring: holdQuery,
  headers: modHeaders,
  response: answersOf({ 200: { description: 'The hold.', headers: replayedHeader, content: json(holdBody) } }, [
    ...writeErrors,
    'ACCMAN_INVALID_AMOUNT',
    'ACCMAN_INSUFFICIENT_FUNDS',
    'ACCMAN_TOO_MANY_HOLDS',
    'ACCMAN_EXPIRED',
    'ACCMAN_FROZEN',
  ]),
}

const settleSchema = {
  summary: 'Post part or all of a hold as a debit, releasing the rest',
  description: 'When several refusals apply, the first of 404, 409, 410, 422 answers.',
  tags: ['holds'],
  security,
  querystring: settleQuery,
  headers: modHeaders,
  response: answersOf({ 200: { description: 'The settled hold.', headers: replayedHeader, content: json(settleBody) } }, [
    ...releaseErrors,
    'ACCMAN_INVALID_AMOUNT',
    'ACCMAN_HOLD_EXCEEDED',
  ]),
}

const voidSchema = {
  summary: 'Release a whole hold',
  description: 'When several refusals apply, the first of 404, 409, 410 answers.',
  tags: ['holds'],
  security,
  querystring: voidQuery,
  headers: modHeaders,
  response: answersOf({ 200: { description: 'The voided hold.', headers: replayedHeader, content: json(voidBody) } }, releaseErrors),
}

const holdsSchema = {
  summary: 'The active holds of an account',
  description: 'Oldest first, as of now: a hold past its expiry is not listed, whether or not its expiry is written yet.',
  tags: ['holds'],
  security,
  querystring: holdsQuery,
  response: answersOf({ 200: { description: 'The active holds and their sum.', content: json(holdsBody) } }, readErrors),
}

function sendAnswer(reply: FastifyReply, result: HoldOpResult): FastifyReply {
  if (result.replayed) reply.header('idempotent-replayed', 'true')
  return reply.header('cache-control', 'no-store').type('application/json; charset=utf-8').send(result.answer)
}

/** Optional fields of an op: present only when given (an empty note is no note). */
function optional(
  note: string | undefined,
  idempotencyKey: string | undefined,
  actor: string | undefined,
): { note?: string; idempotencyKey?: string; actor?: string } {
  return {
    ...(note === undefined || note === '' ? {} : { note }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    ...(actor === undefined ? {} : { actor }),
  }
}

export interface HoldRoutesOptions {
  authenticate: Authenticate | undefined
}

export const holdRoutes: FastifyPluginAsync<HoldRoutesOptions> = async (plugin, { authenticate }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  app.patch('/hold', { schema: holdSchema, config: { access: 'write' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { cred, by, ttl, note } = request.query
    const result = await app.ledger.hold(credentialKeyOf(cred), { by, ttlMs: ttl * 1000, ...optional(note, request.headers['idempotency-key'], request.actor) })
    return sendAnswer(reply, result)
  })

  app.patch('/settle', { schema: settleSchema, config: { access: 'write' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { cred, hold, by, note } = request.query
    const result = await app.ledger.settle(credentialKeyOf(cred), {
      holdId: hold,
      ...(by === undefined ? {} : { by }),
      ...optional(note, request.headers['idempotency-key'], request.actor),
    })
    return sendAnswer(reply, result)
  })

  app.patch('/void', { schema: voidSchema, config: { access: 'write' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { cred, hold, note } = request.query
    const result = await app.ledger.void(credentialKeyOf(cred), { holdId: hold, ...optional(note, request.headers['idempotency-key'], request.actor) })
    return sendAnswer(reply, result)
  })

  app.get('/holds', { schema: holdsSchema, config: { access: 'read' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const accountKey = await accountOfQuery(app.ledger, request.query)
    if (accountKey === undefined) return sendNoAccount(reply.header('cache-control', 'no-store'), request.query)
    const list = await app.ledger.holdsOf(accountKey)
    reply.header('cache-control', 'no-store')
    return {
      held: list.held.toString(),
      holds: list.holds.map((hold) => ({
        hold: hold.id,
        by: hold.by.toString(),
        at: new Date(hold.atMs).toISOString(),
        expires: new Date(hold.expiresMs).toISOString(),
        ...(hold.note === undefined ? {} : { note: hold.note }),
      })),
    }
  })
}
