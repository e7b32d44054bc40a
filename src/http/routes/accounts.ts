// Accounts that outlive their credentials: /acct (an account's details, by credential or by public
// id) and /rotate (a new credential for the account, the old one working on for a grace).
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { Ledger } from '../../ledger/index.js'
import { credentialKeyOf } from '../../ledger/index.js'
import type { AccountKey } from '../../ledger/types.js'
import type { Authenticate } from '../auth.js'
import { ApiError, errorBody } from '../errors.js'
import { requireJson } from '../negotiate.js'
import { answersOf } from '../openapi.js'
import { readErrors, security } from './answers.js'
import { accountBodySchema, acctQuery, modHeaders, rotateQuery } from '../schemas.js'
import type { ZodTypeProvider } from '../validation.js'

type ReadQuery = { cred?: string | undefined; id?: string | undefined; ref?: string | undefined }

// The commonest refusal of a read, sent as is (no exception, no error handler, no serialising),
// naming the parameter that found nothing.
const noAccountBodies = {
  cred: JSON.stringify(errorBody('ACCMAN_NO_ACCOUNT', 'no account for this credential')),
  id: JSON.stringify(errorBody('ACCMAN_NO_ACCOUNT', 'no account with this id')),
  ref: JSON.stringify(errorBody('ACCMAN_NO_ACCOUNT', 'no account with this ref')),
}

/** Answers 404 ACCMAN_NO_ACCOUNT for a read that named no account (see accountOfQuery). */
export function sendNoAccount(reply: FastifyReply, query: ReadQuery): FastifyReply {
  const body = query.id !== undefined ? noAccountBodies.id : query.ref !== undefined ? noAccountBodies.ref : noAccountBodies.cred
  return reply.code(404).type('application/json; charset=utf-8').send(body)
}

/**
 * The account a read names: by `cred` or by `id` (its public id), exactly one of them; undefined
 * when none is there. Writes always take the credential.
 */
export async function accountOfQuery(ledger: Ledger, query: ReadQuery): Promise<AccountKey | undefined> {
  const given = (['cred', 'id', 'ref'] as const).filter((name) => query[name] !== undefined)
  if (given.length > 1) throw new ApiError('ACCMAN_INVALID_QUERY', `give one of cred, id and ref, not both: parameter ${given[1]}`)
  if (query.cred !== undefined) return await ledger.resolve(credentialKeyOf(query.cred))
  if (query.id !== undefined) return await ledger.accountOfPublicId(query.id)
  if (query.ref !== undefined) return await ledger.accountKeyOfRef(query.ref)
  throw new ApiError('ACCMAN_INVALID_QUERY', 'missing parameter cred (or id, or ref)')
}

const account = { 'application/json': { schema: accountBodySchema } }

const acctSchema = {
  summary: 'The details of an account',
  description: 'By credential (`cred`) or by public id (`id`), exactly one. JSON only.',
  tags: ['accounts'],
  security,
  querystring: acctQuery,
  response: answersOf({ 200: { description: 'The account.', content: account } }, readErrors),
}

const rotateSchema = {
  summary: 'Rotate the credential of an account',
  description:
    'From now on `new` addresses the account: balance, history (seq continues), idempotency keys. `cred` stops working at once, or after `grace` seconds. Appends one entry of kind `rotate` (by "0", no credential in it). A retry with the same Idempotency-Key replays the first answer. Answers like /acct.',
  tags: ['accounts'],
  security,
  querystring: rotateQuery,
  headers: modHeaders,
  response: answersOf(
    {
      200: {
        description: 'The account, now addressed by `new`.',
        headers: { 'idempotent-replayed': { type: 'string', description: '"true" when this answers a repeat of a keyed rotation.' } },
        content: account,
      },
    },
    [...readErrors, 'ACCMAN_FORBIDDEN', 'ACCMAN_CRED_IN_USE', 'ACCMAN_IDEMPOTENCY_MISMATCH', 'ACCMAN_QUEUE_FULL'],
  ),
}

export interface AccountRoutesOptions {
  authenticate: Authenticate | undefined
}

export const accountRoutes: FastifyPluginAsync<AccountRoutesOptions> = async (plugin, { authenticate }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  app.get('/acct', { schema: acctSchema, config: { access: 'read' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    reply.header('cache-control', 'no-store')
    const accountKey = await accountOfQuery(app.ledger, request.query)
    const view = accountKey === undefined ? undefined : await app.ledger.acctOf(accountKey)
    if (view === undefined) return sendNoAccount(reply, request.query)
    return reply.type('application/json; charset=utf-8').send(app.ledger.accountBody(view))
  })

  app.patch('/rotate', { schema: rotateSchema, config: { access: 'write' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { cred, new: fresh, grace } = request.query
    if (fresh === cred) throw new ApiError('ACCMAN_INVALID_CRED', 'new must differ from cred')
    const idempotencyKey = request.headers['idempotency-key']
    const result = await app.ledger.rotate(credentialKeyOf(cred), {
      newCredentialKey: credentialKeyOf(fresh),
      graceMs: grace * 1000,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      ...(request.actor === undefined ? {} : { actor: request.actor }),
    })
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    reply.header('cache-control', 'no-store')
    return reply.type('application/json; charset=utf-8').send(result.body)
  })
}
