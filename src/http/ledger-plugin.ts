// Shares one ledger across the app (hence fastify-plugin) and closes it, with its database,
// when the app closes: tests and shutdown release the LevelDB lock.
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { openLedger, type Ledger, type LedgerOptions, type RootDb } from '../ledger/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export interface LedgerPluginOptions extends LedgerOptions {
  db: RootDb
}

const ledgerPlugin: FastifyPluginAsync<LedgerPluginOptions> = async (app, { db, ...options }) => {
  const ledger = await openLedger(db, options)
  app.decorate('ledger', ledger)
  app.addHook('onClose', async () => {
    await ledger.close()
  })
}

export default fp(ledgerPlugin, { name: 'accman-ledger', fastify: '5.x' })
