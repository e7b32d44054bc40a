// tot, mod and past: parse (done by the route schemas), negotiate, call the ledger, answer.
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { z } from 'zod'
import { credentialKeyOf, type Balance, type Entry } from '../../ledger/index.js'
import type { Authenticate } from '../auth.js'
import { errorBody } from '../errors.js'
import { accountOfQuery } from './accounts.js'
import { representationOf, requireJson, type Representation } from '../negotiate.js'
import { answersOf } from '../openapi.js'
import {
  balanceBody,
  balanceText,
  modHeaders,
  modQuery,
  pastBody,
  pastQuery,
  totQuery,
  type entryBody as entrySchema,
} from '../schemas.js'
import type { ZodTypeProvider } from '../validation.js'

const noAccountMessage = 'no account for this credential'
// The commonest refusal of a read, sent as is: no exception, no error handler, no serialising.
const noAccountBody = JSON.stringify(errorBody('ACCMAN_NO_ACCOUNT', noAccountMessage))

function sendNoAccount(reply: FastifyReply): FastifyReply {
  return reply.code(404).type('application/json; charset=utf-8').send(noAccountBody)
}

function sendBalance(reply: FastifyReply, representation: Representation, balance: Balance): FastifyReply {
  if (representation === 'json') {
    return reply.type('application/json; charset=utf-8').send(`{"tot":"${balance.tot}","seq":${balance.seq}}`)
  }
  return reply.type('text/plain; charset=utf-8').send(balance.tot.toString())
}

function entryBody(entry: Entry): EntryBody {
  const body: EntryBody = {
    seq: entry.seq,
    kind: entry.kind ?? 'mod',
    by: entry.by.toString(),
    tot: entry.tot.toString(),
    at: new Date(entry.atMs).toISOString(),
  }
  if (entry.note !== undefined) body.note = entry.note
  if (entry.idempotencyKey !== undefined) body.key = entry.idempotencyKey
  return body
}

type EntryBody = z.input<typeof entrySchema>

const balance = {
  'application/json': { schema: balanceBody },
  'text/plain': { schema: balanceText },
}
const security = [{}, { bearer: [] }]
const readErrors = [
  'ACCMAN_INVALID_CRED',
  'ACCMAN_INVALID_QUERY',
  'ACCMAN_UNAUTHORIZED',
  'ACCMAN_NO_ACCOUNT',
  'ACCMAN_NOT_ACCEPTABLE',
  'ACCMAN_BAD_REQUEST',
  'ACCMAN_PAYLOAD_TOO_LARGE',
  'ACCMAN_URL_TOO_LONG',
  'ACCMAN_HEADERS_TOO_LARGE',
  'ACCMAN_INTERNAL',
  'ACCMAN_OVERLOADED',
  'ACCMAN_CLOSED',
  'ACCMAN_STORE_UNAVAILABLE',
] as const

const totSchema = {
  summary: 'The balance of an account',
  description: 'Answers text/plain (the bare number) unless Accept prefers application/json.',
  tags: ['ledger'],
  security,
  querystring: totQuery,
  response: answersOf({ 200: { description: 'The balance.', content: balance } }, readErrors),
}

const modSchema = {
  summary: 'Credit or debit an account',
  description:
    'Adds `by` to the balance and appends one history entry, atomically. A credit creates the account; a debit never takes the balance below zero. Answers like /tot.',
  tags: ['ledger'],
  security,
  querystring: modQuery,
  headers: modHeaders,
  response: answersOf(
    {
      200: {
        description: 'The balance after the mod.',
        headers: { 'idempotent-replayed': { type: 'string', description: '"true" when this answers a repeat of a keyed mod.' } },
        content: balance,
      },
    },
    [
      ...readErrors,
      'ACCMAN_INVALID_AMOUNT',
      'ACCMAN_FORBIDDEN',
      'ACCMAN_INSUFFICIENT_FUNDS',
      'ACCMAN_OVERFLOW',
      'ACCMAN_IDEMPOTENCY_MISMATCH',
      'ACCMAN_QUEUE_FULL',
    ],
  ),
}

const pastSchema = {
  summary: 'A page of the history of an account',
  description: 'Entries in seq order, filtered by seq (after, before) and time (from, to). JSON only.',
  tags: ['ledger'],
  security,
  querystring: pastQuery,
  response: answersOf(
    { 200: { description: 'The balance and one page of entries.', content: { 'application/json': { schema: pastBody } } } },
    readErrors,
  ),
}

export interface LedgerRoutesOptions {
  /** The bearer-token check, when tokens are configured; encapsulated to these routes. */
  authenticate: Authenticate | undefined
}

export const ledgerRoutes: FastifyPluginAsync<LedgerRoutesOptions> = async (plugin, { authenticate }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  // Balances and histories are account data: no browser or proxy may keep a copy.
  app.get('/tot', { schema: totSchema, config: { access: 'read' } }, async (request, reply) => {
    const representation = representationOf(request.headers.accept)
    const balance = await app.ledger.tot(credentialKeyOf(request.query.cred))
    reply.header('cache-control', 'no-store')
    if (balance === undefined) return sendNoAccount(reply)
    return sendBalance(reply, representation, balance)
  })

  app.patch('/mod', { schema: modSchema, config: { access: 'write' } }, async (request, reply) => {
    const representation = representationOf(request.headers.accept)
    const { cred, by, note } = request.query
    const idempotencyKey = request.headers['idempotency-key']
    const result = await app.ledger.mod(credentialKeyOf(cred), {
      by,
      ...(note === undefined || note === '' ? {} : { note }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    })
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    reply.header('cache-control', 'no-store')
    return sendBalance(reply, representation, result)
  })

  app.get('/past', { schema: pastSchema, config: { access: 'read' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { limit, order, after, before, from, to } = request.query
    const accountKey = await accountOfQuery(app.ledger, request.query)
    if (accountKey === undefined) {
      reply.header('cache-control', 'no-store')
      return sendNoAccount(reply)
    }
    const page = await app.ledger.pastOf(accountKey, {
      limit,
      order,
      ...(after === undefined ? {} : { afterSeq: after }),
      ...(before === undefined ? {} : { beforeSeq: before }),
      ...(from === undefined ? {} : { fromMs: from }),
      ...(to === undefined ? {} : { toMs: to }),
    })
    reply.header('cache-control', 'no-store')
    return { tot: page.tot.toString(), seq: page.seq, entries: page.entries.map(entryBody) }
  })
}
