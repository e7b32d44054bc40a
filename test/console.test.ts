// The console's routes without a browser: the page and its files with their security headers,
// and /whoami's answer for each kind of token.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { consoleAssets, consoleHeaders } from '../src/http/routes/console.js'
import { createLogger } from '../src/log.js'
import { logSink, testApp } from './support.js'

const writeToken = 'console-write-token-0123456789'
const readToken = 'console-read-token-0123456789'

let open: FastifyInstance
let guarded: FastifyInstance
const logLines: string[] = []

beforeAll(async () => {
  open = await testApp()
  guarded = await testApp({
    config: { tokens: [writeToken], readTokens: [readToken] },
    logger: createLogger('trace', logSink(logLines)),
  })
})

afterAll(async () => {
  await open.close()
  await guarded.close()
})

describe('GET /whoami', () => {
  test('answers open when the server has no tokens, whatever is presented', async () => {
    for (const headers of [{}, { authorization: `Bearer ${writeToken}` }, { authorization: 'Bearer nonsense' }]) {
      const reply = await open.inject({ url: '/whoami', headers })
      expect(reply.statusCode).toBe(200)
      expect(reply.json()).toEqual({ scope: 'open' })
    }
  })

  test.each([
    ['a write token', `Bearer ${writeToken}`, 'write'],
    ['a read token', `Bearer ${readToken}`, 'read'],
    ['a lower-case scheme', `bearer ${readToken}`, 'read'],
  ])('answers the scope of %s', async (_name, authorization, scope) => {
    const reply = await guarded.inject({ url: '/whoami', headers: { authorization } })
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(reply.json()).toEqual({ scope })
  })

  test.each([
    ['no token', undefined],
    ['an unknown token', 'Bearer console-unknown-token-0123456789'],
    ['a token without its scheme', writeToken],
  ])('refuses %s with 401 when tokens are configured, without echoing it', async (_name, authorization) => {
    const reply = await guarded.inject({ url: '/whoami', headers: authorization === undefined ? {} : { authorization } })
    expect(reply.statusCode).toBe(401)
    expect(reply.headers['www-authenticate']).toBe('Bearer realm="accman"')
    expect(reply.json()).toMatchObject({ statusCode: 401, code: 'ACCMAN_UNAUTHORIZED' })
    expect(reply.body).not.toContain('console-unknown-token')
    expect(reply.body).not.toContain(writeToken)
  })

  test('is not cached, and tokens never reach the log at trace level', async () => {
    const reply = await guarded.inject({ url: '/whoami', headers: { authorization: `Bearer ${writeToken}` } })
    expect(reply.headers['cache-control']).toBe('no-store')
    expect(logLines.length).toBeGreaterThan(0)
    const log = logLines.join('\n')
    expect(log).not.toContain(writeToken)
    expect(log).not.toContain(readToken)
  })
})

describe('GET /console', () => {
  test('serves the page without a token, even when tokens are configured', async () => {
    const reply = await guarded.inject('/console')
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(reply.body).toContain('<title>AccMan console</title>')
  })

  test.each(Object.entries(consoleAssets))('%s has its type and the security headers', async (path, { type }) => {
    const reply = await open.inject(path)
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['content-type']).toBe(type)
    expect(reply.body.length).toBeGreaterThan(0)
    for (const [name, value] of Object.entries(consoleHeaders)) expect(reply.headers[name], name).toBe(value)
  })

  test('the policy allows only this origin, no inline script and no framing', () => {
    const policy = consoleHeaders['content-security-policy']
    expect(policy).toContain("default-src 'self'")
    expect(policy).toContain("script-src 'self';")
    expect(policy).not.toContain('unsafe-inline')
    expect(policy).not.toContain('unsafe-eval')
    expect(policy).toContain("frame-ancestors 'none'")
    expect(consoleHeaders['referrer-policy']).toBe('no-referrer')
    expect(consoleHeaders['x-content-type-options']).toBe('nosniff')
    expect(consoleHeaders['cache-control']).toBe('no-store')
  })

  test('the page loads only its own files: no inline script or style, nothing from another origin', async () => {
    const html = (await open.inject('/console')).body
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
    expect(scripts).toHaveLength(1)
    expect(scripts[0]?.[1]).toContain('src="/console/app.js"')
    expect(scripts[0]?.[2]).toBe('')
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
    const references = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((match) => match[1])
    expect(references.sort()).toEqual(['/console/app.css', '/console/app.js', '/console/icon.svg'])
    const script = (await open.inject('/console/app.js')).body
    expect(script).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z0-9.-]+\.[a-z]{2,}\//i)
  })

  test('HEAD answers the headers without the body; other paths under /console are 404', async () => {
    const head = await open.inject({ method: 'HEAD', url: '/console' })
    expect(head.statusCode).toBe(200)
    expect(head.body).toBe('')
    expect(head.headers['content-security-policy']).toBe(consoleHeaders['content-security-policy'])
    const missing = await open.inject('/console/../package.json')
    expect(missing.statusCode).toBe(404)
    expect((await open.inject('/console/secret.txt')).statusCode).toBe(404)
    const slash = await open.inject('/console/')
    expect(slash.statusCode).toBe(301)
    expect(slash.headers.location).toBe('/console')
  })
})

describe('other methods', () => {
  test.each([
    ['POST', '/whoami'],
    ['PATCH', '/console'],
    ['DELETE', '/backup'],
  ] as const)('%s %s is 405 with the methods the path answers', async (method, url) => {
    const reply = await open.inject({ method, url })
    expect(reply.statusCode).toBe(405)
    expect(reply.headers.allow).toBe('GET, HEAD')
    expect(reply.json()).toMatchObject({ code: 'ACCMAN_METHOD_NOT_ALLOWED' })
  })
})

test('answers with account data are never cached: /tot, /mod and /past say no-store', async () => {
  const cred = 'bm8tc3RvcmUtYWNjb3VudA=='
  const answers = [
    await open.inject({ method: 'PATCH', url: `/mod?cred=${cred}&by=5` }),
    await open.inject(`/tot?cred=${cred}`),
    await open.inject(`/past?cred=${cred}`),
  ]
  for (const reply of answers) {
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['cache-control']).toBe('no-store')
  }
})
