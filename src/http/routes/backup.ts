// GET /backup: the export format, streamed from a snapshot of the running store. The writer
// keeps writing meanwhile; the snapshot holds every account as of the moment the request arrived.
import { Readable } from 'node:stream'
import type { FastifyPluginAsync } from 'fastify'
import { z } from 'zod'
import { backupChunks } from '../../ledger/backup.js'
import type { LedgerStore } from '../../ledger/index.js'
import type { Authenticate } from '../auth.js'
import { answersOf } from '../openapi.js'

export interface BackupRoutesOptions {
  authenticate: Authenticate | undefined
  /** The ledger's store: the backup reads it through a snapshot, beside the writer. */
  store: LedgerStore
}

export const backupMediaType = 'application/x-ndjson; charset=utf-8'

const backupSchema = {
  summary: 'A consistent backup of the whole store',
  description: [
    'The export format (JSON Lines: a header line, then each account followed by its entries in seq order),',
    'read from a snapshot taken when the request arrives: every account as of that instant, with its whole history up to it.',
    'Mods go on meanwhile. Needs a write token when tokens are configured. Restore with `accman import`.',
    'A backup cut short ends the connection without the final chunk, so a truncated body is detectable.',
  ].join(' '),
  tags: ['operations'],
  security: [{}, { bearer: [] }],
  querystring: z.strictObject({}),
  response: answersOf(
    { 200: { description: 'The backup, streamed.', content: { 'application/x-ndjson': { schema: z.string() } } } },
    [
      'ACCMAN_INVALID_QUERY',
      'ACCMAN_BAD_REQUEST',
      'ACCMAN_UNAUTHORIZED',
      'ACCMAN_FORBIDDEN',
      'ACCMAN_PAYLOAD_TOO_LARGE',
      'ACCMAN_URL_TOO_LONG',
      'ACCMAN_HEADERS_TOO_LARGE',
      'ACCMAN_OVERLOADED',
      'ACCMAN_CLOSED',
      'ACCMAN_STORE_UNAVAILABLE',
    ],
  ),
}

export const backupRoutes: FastifyPluginAsync<BackupRoutesOptions> = async (app, { authenticate, store }) => {
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)
  app.get('/backup', { schema: backupSchema, config: { access: 'write' } }, async (_request, reply) => {
    // Taken here, before the answer starts: what was acknowledged before this request is in it.
    const chunks = await backupChunks(store)
    return reply
      .type(backupMediaType)
      .header('content-disposition', 'attachment; filename="accman-backup.jsonl"')
      .header('cache-control', 'no-store')
      .send(Readable.from(chunks, { objectMode: false }))
  })
}
