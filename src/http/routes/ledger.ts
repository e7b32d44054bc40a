// tot, mod and past: parse (done by the route schemas), negotiate, call the ledger, answer.
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { accountKeyOf, type Balance, type Entry } from '../../ledger/index.js'
import type { Authenticate } from '../auth.js'
import { errorBody } from '../errors.js'
import { representationOf, requireJson, type Representation } from '../negotiate.js'
import { modHeaders, modQuery, pastQuery, totQuery } from '../schemas.js'
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

interface EntryBody {
  seq: number
  by: string
  tot: string
  at: string
  note?: string
  key?: string
}

function entryBody(entry: Entry): EntryBody {
  const body: EntryBody = {
    seq: entry.seq,
    by: entry.by.toString(),
    tot: entry.tot.toString(),
    at: new Date(entry.atMs).toISOString(),
  }
  if (entry.note !== undefined) body.note = entry.note
  if (entry.idempotencyKey !== undefined) body.key = entry.idempotencyKey
  return body
}

export interface LedgerRoutesOptions {
  /** The bearer-token check, when tokens are configured; encapsulated to these routes. */
  authenticate: Authenticate | undefined
}

export const ledgerRoutes: FastifyPluginAsync<LedgerRoutesOptions> = async (plugin, { authenticate }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  app.get('/tot', { schema: { querystring: totQuery }, config: { access: 'read' } }, async (request, reply) => {
    const representation = representationOf(request.headers.accept)
    const balance = await app.ledger.tot(accountKeyOf(request.query.cred))
    if (balance === undefined) return sendNoAccount(reply)
    return sendBalance(reply, representation, balance)
  })

  app.patch('/mod', { schema: { querystring: modQuery, headers: modHeaders }, config: { access: 'write' } }, async (request, reply) => {
    const representation = representationOf(request.headers.accept)
    const { cred, by, note } = request.query
    const idempotencyKey = request.headers['idempotency-key']
    const result = await app.ledger.mod(accountKeyOf(cred), {
      by,
      ...(note === undefined || note === '' ? {} : { note }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    })
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    return sendBalance(reply, representation, result)
  })

  app.get('/past', { schema: { querystring: pastQuery }, config: { access: 'read' } }, async (request) => {
    requireJson(request.headers.accept)
    const { cred, limit, order, after, before, from, to } = request.query
    const page = await app.ledger.past(accountKeyOf(cred), {
      limit,
      order,
      ...(after === undefined ? {} : { afterSeq: after }),
      ...(before === undefined ? {} : { beforeSeq: before }),
      ...(from === undefined ? {} : { fromMs: from }),
      ...(to === undefined ? {} : { toMs: to }),
    })
    return { tot: page.tot.toString(), seq: page.seq, entries: page.entries.map(entryBody) }
  })
}
