// Shares one ledger across the app (hence fastify-plugin) and closes it, with its store, when the
// app closes: tests and shutdown release the LevelDB lock or the PostgreSQL connections.
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { openLedger, type Ledger, type LedgerOptions, type LedgerStore } from '../ledger/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    ledger: Ledger
  }
}

export interface LedgerPluginOptions extends LedgerOptions {
  store: LedgerStore
}

const ledgerPlugin: FastifyPluginAsync<LedgerPluginOptions> = async (app, { store, ...options }) => {
  const ledger = await openLedger(store, options)
  app.decorate('ledger', ledger)
  app.addHook('onClose', async () => {
    await ledger.close()
  })
}

export default fp(ledgerPlugin, { name: 'accman-ledger', fastify: '5.x' })
