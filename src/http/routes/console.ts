// The operator console: one page and its assets, built by `npm run build` into dist/console and
// read once at start, and GET /whoami, which tells the page what the presented token may do.
// The page holds no data of its own: it calls /tot, /past and /mod like any client.
import { readFile } from 'node:fs/promises'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { z } from 'zod'
import type { ScopeOf } from '../auth.js'
import { ApiError } from '../errors.js'
import { answersOf } from '../openapi.js'
import { whoamiBody } from '../schemas.js'

/** The built files, by the path that serves them. Read once; they never change while serving. */
export const consoleAssets = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/console/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/console/icon.svg': { file: 'icon.svg', type: 'image/svg+xml' },
} as const

/** Where `npm run build` writes the console: dist/console, from src/ (tsx) as from dist/. */
export const consoleDirectory = new URL('../../../dist/console/', import.meta.url)

/**
 * Every console answer: nothing runs but our own script, nothing is framed, no Referer leaves
 * the page, and no cache keeps what it showed.
 */
export const consoleHeaders = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'; require-trusted-types-for 'script'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
} as const

const guardErrors = [
  'ACCMAN_PAYLOAD_TOO_LARGE',
  'ACCMAN_URL_TOO_LONG',
  'ACCMAN_HEADERS_TOO_LARGE',
  'ACCMAN_OVERLOADED',
  'ACCMAN_CLOSED',
] as const

const consoleSchema = {
  summary: 'The operator console',
  description:
    'A page to look up an account by its credential, read its history and balance over time, export it as CSV, and credit or debit it. Open without a token: it asks for one when tokens are configured, then calls the API with it.',
  tags: ['operations'],
  response: answersOf(
    { 200: { description: 'The page.', content: { 'text/html': { schema: z.string() } } } },
    guardErrors,
  ),
}

const whoamiSchema = {
  summary: 'What the presented token may do',
  description:
    'For the console: `write`, `read`, or `open` when the server has no tokens; 401 when it has tokens and none valid is presented.',
  tags: ['operations'],
  security: [{}, { bearer: [] }],
  response: answersOf(
    { 200: { description: 'The scope of the token.', content: { 'application/json': { schema: whoamiBody } } } },
    ['ACCMAN_UNAUTHORIZED', ...guardErrors],
  ),
}

export interface ConsoleRoutesOptions {
  /** The scope of a request's bearer token, from the configured token sets. */
  scopeOf: ScopeOf
}

type Asset = { body: Buffer; type: string }

/** The built files, or undefined when the console has not been built. */
async function readAssets(): Promise<Map<string, Asset> | undefined> {
  const assets = new Map<string, Asset>()
  for (const [path, { file, type }] of Object.entries(consoleAssets)) {
    try {
      assets.set(path, { body: await readFile(new URL(file, consoleDirectory)), type })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw error
    }
  }
  return assets
}

export const consoleRoutes: FastifyPluginAsync<ConsoleRoutesOptions> = async (app, { scopeOf }) => {
  app.addHook('onSend', async (_request, reply: FastifyReply) => {
    reply.headers(consoleHeaders)
  })

  app.get('/whoami', { schema: whoamiSchema }, async (request, reply) => {
    const scope = scopeOf(request.headers.authorization)
    if (scope === undefined) throw new ApiError('ACCMAN_UNAUTHORIZED', 'a valid bearer token is required: Authorization: Bearer <token>')
    return reply.type('application/json; charset=utf-8').send(JSON.stringify({ scope }))
  })

  const assets = await readAssets()
  if (assets === undefined) {
    app.log.warn('the console is not built (run npm run build); /console is not served')
    return
  }
  // A typed trailing slash still finds the page.
  app.get('/console/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/console', 301))
  for (const [path, asset] of assets) {
    // The page is documented; its script, stylesheet and icon are not API.
    const schema = path === '/console' ? consoleSchema : { hide: true }
    app.get(path, { schema }, async (_request, reply) => reply.type(asset.type).send(asset.body))
  }
}
