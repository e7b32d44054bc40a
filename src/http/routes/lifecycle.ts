// move, freeze and unfreeze: the account lifecycle's writes. Parse (done by the route schemas),
// call the ledger, answer JSON. A move answers for FROM; neither answer names the other account.
import type { FastifyPluginAsync } from 'fastify'
import { credentialKeyOf } from '../../ledger/index.js'
import type { Authenticate } from '../auth.js'
import { ApiError } from '../errors.js'
import { requireJson } from '../negotiate.js'
import { answersOf } from '../openapi.js'
import { security, writeErrors } from './answers.js'
import { freezeBody, freezeQuery, modHeaders, moveBody, moveQuery } from '../schemas.js'
import type { ZodTypeProvider } from '../validation.js'


const moveSchema = {
  summary: 'Move an amount from one account to another',
  description:
    'Takes `by` from the account of `cred` (FROM) and gives it to the account of `to` (TO) in one atomic write: both change or neither does. Both histories get an entry of kind `move` with the same id. Answers for FROM. The `Idempotency-Key` is in FROM\'s key space.',
  tags: ['ledger'],
  security,
  querystring: moveQuery,
  headers: modHeaders,
  response: answersOf(
    {
      200: {
        description: "FROM's balance after the move, and the move's id.",
        headers: { 'idempotent-replayed': { type: 'string', description: '"true" when this answers a repeat of a keyed move.' } },
        content: { 'application/json': { schema: moveBody } },
      },
    },
    [...writeErrors, 'ACCMAN_INVALID_AMOUNT', 'ACCMAN_INSUFFICIENT_FUNDS', 'ACCMAN_EXPIRED', 'ACCMAN_FROZEN', 'ACCMAN_OVERFLOW', 'ACCMAN_IDEMPOTENCY_MISMATCH'],
  ),
}

const freezeSchemaOf = (frozen: boolean) => ({
  summary: frozen ? 'Freeze an account' : 'Unfreeze an account',
  description: frozen
    ? 'A frozen account refuses debits and moves out (423 ACCMAN_FROZEN), accepts credits and moves in, and answers reads. Appends an entry of kind `freeze` with by "0"; freezing a frozen account answers 200 and appends nothing.'
    : 'Lifts a freeze. Appends an entry of kind `unfreeze` with by "0"; unfreezing an account that is not frozen answers 200 and appends nothing.',
  tags: ['ledger'],
  security,
  querystring: freezeQuery,
  response: answersOf(
    { 200: { description: 'The balance and the account\'s state.', content: { 'application/json': { schema: freezeBody } } } },
    writeErrors,
  ),
})

const expiresOf = (expiresMs: number | undefined) => (expiresMs === undefined ? '' : `,"expires":"${new Date(expiresMs).toISOString()}"`)

export interface LifecycleRoutesOptions {
  authenticate: Authenticate | undefined
}

export const lifecycleRoutes: FastifyPluginAsync<LifecycleRoutesOptions> = async (plugin, { authenticate }) => {
  const app = plugin.withTypeProvider<ZodTypeProvider>()
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)

  app.patch('/move', { schema: moveSchema, config: { access: 'write' } }, async (request, reply) => {
    requireJson(request.headers.accept)
    const { cred, to, by, note } = request.query
    if (by <= 0n) throw new ApiError('ACCMAN_INVALID_AMOUNT', 'by must be a positive integer: the amount moved')
    const fromKey = credentialKeyOf(cred)
    const toKey = credentialKeyOf(to)
    if (fromKey === toKey) throw new ApiError('ACCMAN_INVALID_QUERY', 'to must be another account than cred')
    const idempotencyKey = request.headers['idempotency-key']
    const result = await app.ledger.move(fromKey, {
      by,
      toCredentialKey: toKey,
      ...(note === undefined || note === '' ? {} : { note }),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      ...(request.actor === undefined ? {} : { actor: request.actor }),
    })
    if (result.replayed) reply.header('idempotent-replayed', 'true')
    reply.header('cache-control', 'no-store')
    const held = result.held ?? 0n
    return reply
      .type('application/json; charset=utf-8')
      .send(`{"move":"${result.move}","tot":"${result.tot}","held":"${held}","avail":"${result.tot - held}","seq":${result.seq}${expiresOf(result.expiresMs)}}`)
  })

  for (const frozen of [true, false]) {
    app.patch(frozen ? '/freeze' : '/unfreeze', { schema: freezeSchemaOf(frozen), config: { access: 'write' } }, async (request, reply) => {
      requireJson(request.headers.accept)
      const result = await app.ledger.freeze(credentialKeyOf(request.query.cred), {
        frozen,
        ...(request.actor === undefined ? {} : { actor: request.actor }),
      })
      reply.header('cache-control', 'no-store')
      return reply
        .type('application/json; charset=utf-8')
        .send(`{"tot":"${result.tot}","seq":${result.seq},"frozen":${result.frozen}${expiresOf(result.expiresMs)}}`)
    })
  }
}
