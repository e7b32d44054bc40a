// tot, mod and past: parse (done by the route schemas), negotiate, call the ledger, answer.
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { z } from 'zod'
import { credentialKeyOf, type Balance, type Entry } from '../../ledger/index.js'
import type { Authenticate } from '../auth.js'
import { ApiError } from '../errors.js'
import { accountOfQuery, sendNoAccount } from './accounts.js'
import { representationOf, requireJson, type Representation } from '../negotiate.js'
import { answersOf } from '../openapi.js'
import { readErrors, security } from './answers.js'
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


function sendBalance(reply: FastifyReply, representation: Representation, balance: Balance & { expiresMs?: number | undefined }): FastifyReply {
  if (representation === 'json') {
    const held = balance.held ?? 0n
    const expires = balance.expiresMs === undefined ? '' : `,"expires":"${new Date(balance.expiresMs).toISOString()}"`
    return reply
      .type('application/json; charset=utf-8')
      .send(`{"tot":"${balance.tot}","seq":${balance.seq},"held":"${held}","avail":"${balance.tot - held}"${expires}}`)
  }
  return reply.type('text/plain; charset=utf-8').send(balance.tot.toString())
}

export function entryBody(entry: Entry): EntryBody {
  const body: EntryBody = {
    seq: entry.seq,
    kind: entry.kind ?? 'mod',
    by: entry.by.toString(),
    tot: entry.tot.toString(),
    held: (entry.held ?? 0n).toString(),
    at: new Date(entry.atMs).toISOString(),
  }
  if (entry.hold !== undefined) body.hold = entry.hold
  if (entry.heldBy !== undefined) body.heldBy = entry.heldBy.toString()
  if (entry.note !== undefined) body.note = entry.note
  if (entry.idempotencyKey !== undefined) body.key = entry.idempotencyKey
  if (entry.move !== undefined) body.move = entry.move
  if (entry.actor !== undefined) body.actor = entry.actor
  return body
}

type EntryBody = z.input<typeof entrySchema>

const balance = {
  'application/json': { schema: balanceBody },
  'text/plain': { schema: balanceText },
}

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
      'ACCMAN_EXPIRED',
      'ACCMAN_FROZEN',
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

/** The account a read names: by its credential, or by its ref (undefined: no account has it). */
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
    const accountKey = await accountOfQuery(app.ledger, request.query)
    const balance = accountKey === undefined ? undefined : await app.ledger.totOf(accountKey)
    reply.header('cache-control', 'no-store')
    if (balance === undefined) return sendNoAccount(reply, request.query)
    return sendBalance(reply, representation, balance)
  })

  app.patch('/mod', { schema: modSchema, config: { access: 'write' } }, async (request, reply) => {
    const representation = representationOf(request.headers.accept)
    const { cred, by, note, ttl } = request.query
    if (ttl !== undefined && by < 0n) throw new ApiError('ACCMAN_INVALID_QUERY', 'ttl is for credits only (a positive by)')
    const idempotencyKey = request.headers['idempotency-key']
    const result = await app.ledger.mod(credentialKeyOf(cred), {
      by,
      ...(note === undefined || note === '' ? {} : { note }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
      ...(request.actor === undefined ? {} : { actor: request.actor }),
    })
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    reply.header('cache-control', 'no-store')
    return sendBalance(reply, representation, result)
  })

  app.get('/past', { schema: pastSchema, config: { access: 'read' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { limit, order, after, before, from, to, key } = request.query
    const accountKey = await accountOfQuery(app.ledger, request.query)
    if (accountKey === undefined) return sendNoAccount(reply.header('cache-control', 'no-store'), request.query)
    if (key !== undefined) {
      const found = await app.ledger.pastByKeyOf(accountKey, key)
      reply.header('cache-control', 'no-store')
      return { tot: found.tot.toString(), seq: found.seq, held: (found.held ?? 0n).toString(), entries: found.entries.map(entryBody) }
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
    return { tot: page.tot.toString(), seq: page.seq, held: (page.held ?? 0n).toString(), entries: page.entries.map(entryBody) }
  })
}
