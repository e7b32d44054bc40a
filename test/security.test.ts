// Access and secrecy: tokens, the loopback rule, and nothing secret in answers or logs.
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { ConfigError, isLoopback, parseConfig } from '../src/config.js'
import { scrubSecrets } from '../src/log.js'
import { classicCred, logSink, query, testApp } from './support.js'

const writeToken = 'w-token-0123456789abcdef'
const readToken = 'r-token-0123456789abcdef'
const logLines: string[] = []
let app: FastifyInstance

beforeEach(async () => {
  logLines.length = 0
  const sink = logSink(logLines)
  app = await testApp({ config: { tokens: [writeToken], readTokens: [readToken] }, logger: pino({ level: 'trace' }, sink) })
})
afterEach(async () => {
  await app.close()
})

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const mod = (by: string, headers: Record<string, string>, cred = classicCred) =>
  app.inject({ method: 'PATCH', url: `/mod?${query({ cred, by })}`, headers })
const tot = (headers: Record<string, string>, cred = classicCred) =>
  app.inject({ method: 'GET', url: `/tot?${query({ cred })}`, headers })

describe('bearer tokens', () => {
  test('a write token may mod and read; a read token may only read', async () => {
    expect((await mod('100', bearer(writeToken))).body).toBe('100')
    expect((await tot(bearer(writeToken))).body).toBe('100')
    expect((await tot(bearer(readToken))).body).toBe('100')
    const past = await app.inject({ method: 'GET', url: `/past?${query({ cred: classicCred })}`, headers: bearer(readToken) })
    expect(past.statusCode).toBe(200)
    const forbidden = await mod('100', bearer(readToken))
    expect(forbidden.statusCode).toBe(403)
    expect(forbidden.json()).toMatchObject({ code: 'ACCMAN_FORBIDDEN', error: 'Forbidden' })
    expect((await tot(bearer(writeToken))).body).toBe('100')
  })

  test.each([
    ['no header', {}],
    ['an empty header', { authorization: '' }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`x:${writeToken}`).toString('base64')}` }],
    ['the bare token', { authorization: writeToken }],
    ['Bearer and nothing', { authorization: 'Bearer ' }],
    ['a wrong token', bearer('w-token-0123456789abcdeX')],
    ['a prefix of the token', bearer(writeToken.slice(0, -1))],
    ['the token and more', bearer(`${writeToken}0`)],
    ['the token with other case', bearer(writeToken.toUpperCase())],
    ['two tokens', { authorization: `Bearer ${readToken} ${writeToken}` }],
  ])('%s: 401 before anything else, nothing written or revealed', async (_name, headers) => {
    await mod('100', bearer(writeToken))
    const answers = [
      await mod('5', headers),
      await mod('5', headers, 'bm9ib2R5LWhlcmU='), // unknown account: same answer
      await mod('oops', headers, 'bad'), // malformed input: still 401, not 400
      await tot(headers),
      await tot(headers, 'bm9ib2R5LWhlcmU='),
    ]
    for (const answer of answers) {
      expect(answer.statusCode).toBe(401)
      expect(answer.headers['www-authenticate']).toBe('Bearer realm="accman"')
      expect(answer.json()).toEqual({
        statusCode: 401,
        code: 'ACCMAN_UNAUTHORIZED',
        error: 'Unauthorized',
        message: 'a valid bearer token is required: Authorization: Bearer <token>',
      })
    }
    expect((await tot(bearer(readToken))).body).toBe('100')
  })

  test('the scheme is case-insensitive; /healthz needs no token', async () => {
    expect((await mod('1', { authorization: `bearer ${writeToken}` })).statusCode).toBe(200)
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
  })

  test('no token or credential reaches a log line, at trace level', async () => {
    await mod('1', bearer(writeToken))
    await mod('1', bearer(readToken))
    await mod('1', bearer('w-token-0123456789abcdeX'))
    await app.inject({ method: 'GET', url: `/nope?${query({ cred: classicCred })}`, headers: bearer(writeToken) })
    // The routes that carry a second credential (new=, to=), answered and refused.
    const fresh = 'bmV3LWNyZWRlbnRpYWwtbG9n'
    const other = 'b3RoZXItY3JlZGVudGlhbC1sb2c='
    await mod('5', bearer(writeToken), other)
    const patch = (path: string, parameters: Record<string, string>) =>
      app.inject({ method: 'PATCH', url: `${path}?${query(parameters)}`, headers: bearer(writeToken) })
    await patch('/move', { cred: classicCred, to: other, by: '1' })
    await patch('/move', { cred: classicCred, to: other, by: '1000' })
    await patch('/rotate', { cred: classicCred, new: other })
    await patch('/rotate', { cred: classicCred, new: fresh, grace: '60' })
    await patch('/rotate', { cred: classicCred, new: `${fresh}x` })
    await app.inject({ method: 'GET', url: `/acct?${query({ cred: fresh })}`, headers: bearer(readToken) })
    expect(logLines.length).toBeGreaterThan(0)
    for (const line of logLines) {
      for (const secret of [writeToken, readToken, 'w-token-0123456789abcdeX', classicCred, fresh, other]) expect(line).not.toContain(secret)
    }
  })
})

describe('configuration', () => {
  test.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])('%s is loopback', (host) => {
    expect(isLoopback(host)).toBe(true)
  })
  test.each(['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1'])('%s is not loopback', (host) => {
    expect(isLoopback(host)).toBe(false)
  })

  test('off loopback, no tokens is refused with a line that says how to set one', () => {
    expect(() => parseConfig({ ACCMAN_HOST: '0.0.0.0' })).toThrow(ConfigError)
    expect(() => parseConfig({ ACCMAN_HOST: '0.0.0.0' })).toThrow(/ACCMAN_TOKENS.*openssl rand -hex 32/)
    expect(parseConfig({ ACCMAN_HOST: '0.0.0.0', ACCMAN_TOKENS: writeToken }).tokens).toEqual([writeToken])
    expect(parseConfig({ ACCMAN_HOST: '0.0.0.0', ACCMAN_READ_TOKENS: readToken }).readTokens).toEqual([readToken])
  })

  test('token lists: commas, spaces around them, length and roles', () => {
    expect(parseConfig({ ACCMAN_TOKENS: ` ${writeToken} , ${readToken},` }).tokens).toEqual([writeToken, readToken])
    expect(() => parseConfig({ ACCMAN_TOKENS: 'short' })).toThrow(/ACCMAN_TOKENS each token must be 16 to 256/)
    expect(() => parseConfig({ ACCMAN_TOKENS: `${writeToken} x` })).toThrow(/ACCMAN_TOKENS tokens must be visible ASCII/)
    expect(() => parseConfig({ ACCMAN_TOKENS: writeToken, ACCMAN_READ_TOKENS: writeToken })).toThrow(/one role/)
    // A token never appears in a configuration error.
    try {
      parseConfig({ ACCMAN_TOKENS: 'short-secret' })
    } catch (error) {
      expect(String(error)).not.toContain('short-secret')
    }
  })
})

test('the log scrubber blanks credentials and bearer tokens in any text', () => {
  expect(scrubSecrets(`GET /tot?cred=${classicCred}&x=1 failed`)).toBe('GET /tot?cred=[redacted]&x=1 failed')
  expect(scrubSecrets(`header was Bearer ${writeToken}.`)).toBe('header was Bearer [redacted]')
  expect(scrubSecrets('nothing secret here')).toBe('nothing secret here')
})
