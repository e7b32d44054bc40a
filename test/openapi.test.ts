// The OpenAPI document: valid OpenAPI 3.1, every route in it, and every answer the server gives
// here matching the schema the document has for its route, status and media type.
import { Validator } from '@seriousme/openapi-schema-validator'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { Client, listenOnLoopback, query, testApp } from './support.js'
import { batchBodyBytesMax } from '../src/config.js'

interface MediaDoc {
  schema: object
}
interface AnswerDoc {
  headers?: Record<string, unknown>
  content?: Record<string, MediaDoc>
}
interface OperationDoc {
  parameters?: Array<{ name: string; in: string }>
  responses: Record<string, AnswerDoc>
}
interface OpenapiDoc {
  openapi: string
  paths: Record<string, Record<string, OperationDoc>>
}

const writeToken = 'write-token-0123456789abcdef'
const readToken = 'read-token-0123456789abcdef'
const cred = 'b3BlbmFwaS1hY2NvdW50LTAwMQ=='
const poor = 'cG9vci1hY2NvdW50LTAwMQ=='
const unknown = 'dW5rbm93bi1hY2NvdW50'
const write = { authorization: `Bearer ${writeToken}` }
const read = { authorization: `Bearer ${readToken}` }

let open: FastifyInstance
let guarded: FastifyInstance
let doc: OpenapiDoc

beforeAll(async () => {
  // Compiling the validators below holds the event loop for a whole sample interval, which
  // under-pressure reads as an infinite delay (a 503): 0 turns that check off here.
  const patient = { eventLoopDelayMsMax: 0 }
  open = await testApp({ config: patient })
  guarded = await testApp({ config: { ...patient, tokens: [writeToken], readTokens: [readToken] } })
  const reply = await open.inject('/openapi.json')
  expect(reply.statusCode).toBe(200)
  doc = JSON.parse(reply.body) as OpenapiDoc
})

afterAll(async () => {
  await open.close()
  await guarded.close()
})

test('/openapi.json is a valid OpenAPI 3.1 document', async () => {
  const validator = new Validator()
  const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>)
  expect(result.errors).toBeUndefined()
  expect(result.valid).toBe(true)
  expect(validator.version).toBe('3.1')
})

test('every route of the server is in the document, and nothing else', () => {
  const routes = new Map<string, string[]>()
  // printRoutes lists every route with its methods; the docs page's own routes are not API.
  for (const line of open.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^[├└]── (\/\S*) \(([A-Z, ]+)\)$/.exec(line)
    if (match?.[1] === undefined || match[2] === undefined || match[1].startsWith('/docs')) continue
    // The console's script, stylesheet and icon are files of the page, not API.
    if (match[1] === '/openapi.json' || match[1].startsWith('/console/')) continue
    const methods = match[2].split(', ').filter((method) => method !== 'HEAD').map((method) => method.toLowerCase())
    routes.set(match[1], methods.sort())
  }
  const documented = new Map(Object.entries(doc.paths).map(([path, operations]) => [path, Object.keys(operations).sort()]))
  expect(documented).toEqual(routes)
  expect([...documented.keys()].sort()).toEqual(['/acct', '/backup', '/batch', '/console', '/healthz', '/metrics', '/mod', '/past', '/readyz', '/rotate', '/tot', '/whoami'])
})

test('every parameter of the contract is documented', () => {
  const names = (path: string, method: string) =>
    (doc.paths[path]?.[method]?.parameters ?? []).map((parameter) => `${parameter.in}:${parameter.name}`)
  expect(names('/tot', 'get')).toEqual(['query:cred'])
  expect(names('/mod', 'patch')).toEqual(['query:cred', 'query:by', 'query:note', 'header:idempotency-key'])
  expect(names('/acct', 'get')).toEqual(['query:cred', 'query:id'])
  expect(names('/rotate', 'patch')).toEqual(['query:cred', 'query:new', 'query:grace', 'header:idempotency-key'])
  expect(names('/past', 'get')).toEqual([
    'query:cred',
    'query:id',
    'query:limit',
    'query:after',
    'query:before',
    'query:order',
    'query:from',
    'query:to',
  ])
})

describe('answers match the document', () => {
  // Formats (date-time) are checked by the patterns zod writes beside them.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
  /** Documented answers seen so far, as `method path status`. */
  const seen = new Set<string>()

  /** The same request over a real connection, for a server that no longer takes injections. */
  async function sent(client: Client, request: { url: string; method: string; headers: Record<string, string> }) {
    const reply = await client.send(request.method, request.url, request.headers)
    return { statusCode: reply.status, headers: reply.headers, body: reply.body }
  }

  async function check(app: FastifyInstance | Client, request: InjectOptions & { url: string; method: string; headers: Record<string, string> }): Promise<number> {
    const reply = app instanceof Client ? await sent(app, request) : await app.inject(request)
    const path = request.url.split('?', 1)[0] ?? ''
    const method = request.method.toLowerCase()
    const answer = doc.paths[path]?.[method]?.responses[String(reply.statusCode)]
    expect(answer, `${method} ${request.url} answered ${reply.statusCode}, which is not documented`).toBeDefined()
    const mediaType = String(reply.headers['content-type']).split(';', 1)[0] ?? ''
    const media = answer?.content?.[mediaType]
    expect(media, `${method} ${path} ${reply.statusCode} answered ${mediaType}, which is not documented`).toBeDefined()
    const body: unknown = mediaType === 'application/json' ? JSON.parse(reply.body) : reply.body
    const validate = ajv.compile(media?.schema ?? {})
    expect(validate(body) ? [] : validate.errors, `${method} ${path} ${reply.statusCode}: ${reply.body}`).toEqual([])
    for (const header of Object.keys(answer?.headers ?? {})) {
      if (header === 'x-request-id' || header === 'www-authenticate' || header === 'retry-after') {
        expect(reply.headers[header], `${method} ${path} ${reply.statusCode} lacks ${header}`).toBeDefined()
      }
    }
    seen.add(`${method} ${path} ${reply.statusCode}`)
    return reply.statusCode
  }

  const json = { accept: 'application/json' }
  const get = (url: string, headers: Record<string, string> = {}) => ({ method: 'GET', url, headers })
  const patch = (url: string, headers: Record<string, string> = {}) => ({ method: 'PATCH', url, headers })

  test('on every route, for every status the tests can provoke', async () => {
    expect(await check(open, patch(`/mod?${query({ cred, by: '1000', note: 'invoice 42' })}`))).toBe(200)
    expect(await check(open, patch(`/mod?${query({ cred, by: '-1' })}`, { ...json, 'idempotency-key': 'k-1' }))).toBe(200)
    expect(await check(open, patch(`/mod?${query({ cred: poor, by: '1' })}`))).toBe(200)

    for (const headers of [{}, json]) {
      expect(await check(open, get(`/tot?${query({ cred })}`, headers))).toBe(200)
    }
    expect(await check(open, get(`/past?${query({ cred })}`))).toBe(200)
    expect(await check(open, get(`/past?${query({ cred, order: 'desc', limit: '1', from: '2000-01-01' })}`))).toBe(200)
    expect(await check(open, get('/healthz'))).toBe(200)
    expect(await check(open, get('/readyz'))).toBe(200)
    expect(await check(open, get('/metrics'))).toBe(200)
    expect(await check(open, get('/backup'))).toBe(200)
    expect(await check(open, get('/backup?cred=abcd'))).toBe(400)
    expect(await check(open, get('/whoami'))).toBe(200)
    expect(await check(guarded, get('/whoami', read))).toBe(200)
    expect(await check(open, get('/console'))).toBe(200)

    // 400s: a bad credential, a missing parameter, a bad amount, a bad key.
    expect(await check(open, get('/tot?cred=*'))).toBe(400)
    expect(await check(open, get('/past?limit=5'))).toBe(400)
    expect(await check(open, patch(`/mod?${query({ cred, by: '1.5' })}`))).toBe(400)
    expect(await check(open, patch(`/mod?${query({ cred, by: '1' })}`, { 'idempotency-key': 'é' }))).toBe(400)
    // 402, 404, 406, 413, 414, 422, 431.
    const tooManyHeaders = Object.fromEntries(Array.from({ length: 150 }, (_, index) => [`x-filler-${index}`, '1']))
    expect(await check(open, patch(`/mod?${query({ cred: poor, by: '-5' })}`))).toBe(402)
    for (const route of ['/tot', '/past']) expect(await check(open, get(`${route}?${query({ cred: unknown })}`))).toBe(404)
    expect(await check(open, patch(`/mod?${query({ cred: unknown, by: '-1' })}`))).toBe(404)
    expect(await check(open, get(`/tot?${query({ cred })}`, { accept: 'image/png' }))).toBe(406)
    expect(await check(open, get(`/past?${query({ cred })}`, { accept: 'text/plain' }))).toBe(406)
    expect(await check(open, patch(`/mod?${query({ cred, by: '1' })}`, { accept: 'image/png' }))).toBe(406)
    for (const request of [get(`/tot?${query({ cred })}`), get(`/past?${query({ cred })}`), patch(`/mod?${query({ cred, by: '1' })}`), get('/whoami?x'), get('/console?x'), get('/backup?x')]) {
      expect(await check(open, { ...request, payload: 'x', headers: { 'content-type': 'text/plain' } })).toBe(413)
      expect(await check(open, { ...request, url: `${request.url}&${'x'.repeat(5000)}` })).toBe(414)
      expect(await check(open, { ...request, headers: tooManyHeaders })).toBe(431)
    }
    expect(await check(open, patch(`/mod?${query({ cred, by: '-2' })}`, { 'idempotency-key': 'k-1' }))).toBe(422)
    expect(await check(open, patch(`/mod?${query({ cred, by: '170141183460469231731687303715884105727' })}`))).toBe(422)

    // /batch: results, a bad body, another media type, a body past the limit, no token.
    const batch = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => ({
      method: 'POST',
      url: '/batch',
      headers,
      payload: body,
    })
    const ops = JSON.stringify({ ops: [{ op: 'mod', cred, by: '1', key: 'b-1' }, { op: 'mod', cred, by: '1', key: 'b-1' }, { op: 'tot', cred: unknown }, { op: 'mod', cred: poor, by: '-99' }] })
    expect(await check(open, batch(ops))).toBe(200)
    expect(await check(open, batch('{"ops":[]}'))).toBe(400)
    expect(await check(open, batch(ops, { 'content-type': 'text/plain' }))).toBe(415)
    expect(await check(open, batch(`{"ops":[${'"x",'.repeat(batchBodyBytesMax / 4)}]}`))).toBe(413)
    expect(await check(guarded, batch(ops))).toBe(401)
    expect(await check(guarded, batch(ops, { 'content-type': 'application/json', ...read }))).toBe(200)
    const tight = await testApp({ config: { writerQueueMax: 1, writerBatchMax: 1 } })
    expect(await check(tight, batch(ops))).toBe(503)
    await tight.close()

    // /acct and /rotate: by credential and by public id; refusals.
    const older = 'YWNjdC1vbGQ='
    const newer = 'YWNjdC1uZXc='
    expect(await check(open, patch(`/mod?${query({ cred: older, by: '5' })}`))).toBe(200)
    expect(await check(open, get(`/acct?${query({ cred: older })}`))).toBe(200)
    const { account } = JSON.parse((await open.inject(get(`/acct?${query({ cred: older })}`))).body) as { account: string }
    expect(await check(open, get(`/acct?${query({ id: account })}`))).toBe(200)
    expect(await check(open, get(`/past?${query({ id: account })}`))).toBe(200)
    expect(await check(open, get(`/acct?${query({ cred: older, id: account })}`))).toBe(400)
    expect(await check(open, get(`/acct?${query({ cred: unknown })}`))).toBe(404)
    expect(await check(open, get(`/acct?${query({ cred: older })}`, { accept: 'text/plain' }))).toBe(406)
    expect(await check(open, patch(`/rotate?${query({ cred: older, new: older })}`))).toBe(400)
    expect(await check(open, patch(`/rotate?${query({ cred: unknown, new: newer })}`))).toBe(404)
    expect(await check(open, patch(`/rotate?${query({ cred: older, new: cred })}`))).toBe(409)
    expect(await check(open, patch(`/rotate?${query({ cred: older, new: newer })}`, { 'idempotency-key': 'r-1' }))).toBe(200)
    // The same key with other parameters: refused, even with the retired credential.
    expect(await check(open, patch(`/rotate?${query({ cred: older, new: 'YWNjdC1vdGhlcg==' })}`, { 'idempotency-key': 'r-1' }))).toBe(422)
    expect(await check(open, patch(`/rotate?${query({ cred: newer, new: older })}`, { accept: 'image/png' }))).toBe(406)
    for (const request of [get(`/acct?${query({ cred })}`), patch(`/rotate?${query({ cred, new: older })}`)]) {
      expect(await check(open, { ...request, payload: 'x', headers: { 'content-type': 'text/plain' } })).toBe(413)
      expect(await check(open, { ...request, url: `${request.url}&${'x'.repeat(5000)}` })).toBe(414)
      expect(await check(open, { ...request, headers: tooManyHeaders })).toBe(431)
      expect(await check(guarded, request)).toBe(401)
    }
    expect(await check(guarded, patch(`/rotate?${query({ cred, new: older })}`, read))).toBe(403)

    // 401 and 403 where tokens are configured.
    for (const request of [get(`/tot?${query({ cred })}`), get(`/past?${query({ cred })}`), patch(`/mod?${query({ cred, by: '1' })}`), get('/metrics'), get('/whoami')]) {
      expect(await check(guarded, request)).toBe(401)
    }
    expect(await check(guarded, patch(`/mod?${query({ cred, by: '1' })}`, read))).toBe(403)
    expect(await check(guarded, get('/backup'))).toBe(401)
    expect(await check(guarded, get('/backup', read))).toBe(403)
    expect(await check(guarded, patch(`/mod?${query({ cred, by: '1' })}`, write))).toBe(200)

    // 503 on every route while the server shuts down.
    let release = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const closing = await testApp()
    closing.addHook('preClose', () => held)
    const url = await listenOnLoopback(closing)
    const client = new Client(url, 1)
    expect(await check(client, get('/readyz'))).toBe(200)
    const closed = closing.close()
    for (const request of [
      get(`/tot?${query({ cred })}`),
      get(`/past?${query({ cred })}`),
      patch(`/mod?${query({ cred, by: '1' })}`),
      get(`/acct?${query({ cred })}`),
      patch(`/rotate?${query({ cred, new: 'YWNjdC1jbG9zZWQ=' })}`),
      { method: 'POST', url: '/batch', headers: {} },
      get('/healthz'),
      get('/readyz'),
      get('/metrics'),
      get('/backup'),
      get('/whoami'),
      get('/console'),
    ]) {
      expect(await check(client, request)).toBe(503)
    }
    client.close()
    release()
    await closed

    // Every documented answer was seen, except the internal error, which no request provokes.
    const documented = Object.entries(doc.paths).flatMap(([path, operations]) =>
      Object.entries(operations).flatMap(([method, operation]) =>
        Object.keys(operation.responses).map((status) => `${method} ${path} ${status}`),
      ),
    )
    const unseen = documented.filter((answer) => !seen.has(answer) && !answer.endsWith(' 500'))
    expect(unseen).toEqual([])
  })
})
