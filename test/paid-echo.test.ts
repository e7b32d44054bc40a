// The paid-echo example end to end: a real AccMan process on a temporary LevelDB and the example
// service on 127.0.0.1, the plugin imported as a user imports it (accman/fastify, built in dist/
// by test/global-build.ts).
import { request as httpRequest } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { AccManClient } from '../src/client/index.js'
import { newCredential } from '../src/cli/credential.js'
import { buildPaidEcho } from '../examples/paid-echo/app.js'
import { Client, listenOnLoopback, logSink, ServerProcess, temporaryDirectories, type Reply } from './support.js'

const directory = temporaryDirectories('accman-echo-')
const bodyLimitBytes = 64
const logLines: string[] = []
const credentials: string[] = []
let server: ServerProcess
let ledger: AccManClient
let echo: FastifyInstance
let echoUrl: URL
let http: Client

beforeAll(async () => {
  server = new ServerProcess({ ACCMAN_DB: directory(), ACCMAN_SYNC: 'false' })
  const accmanUrl = await server.url()
  ledger = new AccManClient({ url: accmanUrl })
  echo = await buildPaidEcho({ accman: { url: accmanUrl }, logger: pino({ level: 'trace' }, logSink(logLines)), bodyLimitBytes })
  const url = await listenOnLoopback(echo)
  echoUrl = new URL(url)
  http = new Client(echoUrl.href, 200)
})

afterAll(async () => {
  http.close()
  await echo.close()
  await server.kill('SIGTERM')
})

async function account(balance: bigint): Promise<string> {
  const cred = newCredential()
  credentials.push(cred)
  await ledger.mod(cred, balance)
  return cred
}

const echoText = (text: string, cred?: string): Promise<Reply> =>
  http.send('GET', `/echo?${new URLSearchParams({ text }).toString()}`, cred === undefined ? {} : { accman: cred })

/** POST /echo with `body`, sent with a Content-Length or chunked. */
function post(body: string, cred: string, framing: 'length' | 'chunked'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accman: cred, 'content-type': 'text/plain' }
    if (framing === 'length') headers['content-length'] = String(Buffer.byteLength(body))
    const req = httpRequest({ host: echoUrl.hostname, port: echoUrl.port, method: 'POST', path: '/echo', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    // Two writes without a length: Node sends them chunked.
    const middle = Math.floor(body.length / 2)
    req.write(body.slice(0, middle))
    req.end(body.slice(middle))
  })
}

async function movements(cred: string): Promise<[string, string | undefined][]> {
  const { entries } = await ledger.past(cred, { limit: 1000 })
  return entries.slice(1).map((entry) => [entry.by.toString(), entry.note])
}

test('GET /echo charges a unit per byte; the accman header falls until a 402', async () => {
  const cred = await account(12n)
  const replies = [await echoText('hello', cred), await echoText('world', cred), await echoText('again', cred)]
  expect(replies.map((reply) => [reply.status, reply.headers.accman])).toEqual([
    [200, '7'],
    [200, '2'],
    [402, '2'],
  ])
  expect(replies[0]?.body).toBe('hello')
  expect(JSON.parse(replies[2]?.body ?? '')).toEqual({
    statusCode: 402,
    code: 'ACCMAN_INSUFFICIENT_FUNDS',
    error: 'Payment Required',
    message: 'insufficient funds: the balance is 2, the price is 5',
    tot: '2',
    price: '5',
    avail: '2',
  })
  // A multi-byte character costs its UTF-8 bytes.
  const euro = await echoText('€', cred)
  expect([euro.status, euro.headers.accman]).toEqual([402, '2'])
  expect((await echoText('hi', cred)).headers.accman).toBe('0')
  // Each request holds its price, then settles the bytes echoed from the hold.
  expect(await movements(cred)).toEqual([
    ['0', 'GET /echo'],
    ['-5', 'GET /echo (settle)'],
    ['0', 'GET /echo'],
    ['-5', 'GET /echo (settle)'],
    ['0', 'GET /echo'],
    ['-2', 'GET /echo (settle)'],
  ])
})

test('a missing, malformed or unknown credential: the same 401, no balance header', async () => {
  const unknown = newCredential()
  credentials.push(unknown)
  const replies = [await echoText('hi'), await echoText('hi', 'abc'), await echoText('hi', 'a b c d'), await echoText('hi', unknown)]
  for (const reply of replies) {
    expect(reply.status).toBe(401)
    expect(reply.headers.accman).toBeUndefined()
    expect(reply.body).toBe(
      '{"statusCode":401,"code":"ACCMAN_CREDENTIAL_REQUIRED","error":"Unauthorized","message":"a valid credential is required in the accman header"}',
    )
  }
  await expect(ledger.tot(unknown)).rejects.toThrow('no account for this credential')
})

test('200 concurrent requests on a balance that covers 50: exactly 50 served, the balance ends at 0', async () => {
  const cred = await account(50n)
  const replies = await Promise.all(Array.from({ length: 200 }, () => echoText('x', cred)))
  const served = replies.filter((reply) => reply.status === 200)
  expect(served).toHaveLength(50)
  expect(replies.filter((reply) => reply.status === 402)).toHaveLength(150)
  // Each served request saw its own balance: no two spent the same unit.
  expect(new Set(served.map((reply) => reply.headers.accman))).toEqual(new Set(Array.from({ length: 50 }, (_, tot) => String(tot))))
  expect(await ledger.tot(cred)).toEqual({ tot: 0n, seq: 101 })
  const debits = (await movements(cred)).filter(([by]) => by !== '0')
  expect(debits).toHaveLength(50)
  expect(debits.every(([by, note]) => by === '-1' && note === 'GET /echo (settle)')).toBe(true)
})

test('POST /echo: Content-Length is the price; a chunked body reserves the limit and is settled down', async () => {
  const cred = await account(100n)
  const sized = await post('abc', cred, 'length')
  expect([sized.status, sized.body, sized.headers.accman]).toEqual([200, 'abc', '97'])
  const chunked = await post('abcdef', cred, 'chunked')
  expect([chunked.status, chunked.body, chunked.headers.accman]).toEqual([200, 'abcdef', '91'])
  expect(await movements(cred)).toEqual([
    ['0', 'POST /echo'],
    ['-3', 'POST /echo (settle)'],
    ['0', 'POST /echo'],
    ['-6', 'POST /echo (settle)'],
  ])
  // The chunked body held the limit until it was settled down to what was echoed.
  expect((await ledger.past(cred)).entries[3]?.heldBy).toBe(BigInt(bodyLimitBytes))
})

test('a body over the limit is refused (413) and its reservation refunded: nothing echoed, nothing paid', async () => {
  const cred = await account(100n)
  const reply = await post('y'.repeat(bodyLimitBytes + 1), cred, 'length')
  expect([reply.status, reply.headers.accman]).toEqual([413, '100'])
  expect(await movements(cred)).toEqual([
    ['0', 'POST /echo'],
    ['0', 'POST /echo (void)'],
  ])
})

test('/healthz is free; unknown paths and HEAD are not metered', async () => {
  const health = await http.send('GET', '/healthz')
  expect([health.status, health.body, health.headers.accman]).toEqual([200, '{"status":"ok"}', undefined])
  const cred = await account(5n)
  const missing = await http.send('GET', '/nowhere', { accman: cred })
  expect([missing.status, missing.headers.accman]).toEqual([404, undefined])
  // HEAD would pay for an echo it never receives, so the example does not serve it.
  const head = await http.send('HEAD', '/echo?text=hello', { accman: cred })
  expect([head.status, head.headers.accman]).toEqual([404, undefined])
  expect(await movements(cred)).toEqual([])
})

test('no log line of the service, at trace level, carries a credential', () => {
  expect(credentials.length).toBeGreaterThanOrEqual(6)
  expect(logLines.length).toBeGreaterThan(400)
  for (const line of logLines) for (const cred of credentials) expect(line).not.toContain(cred)
})

test('GET /stream is billed through a hold by the bytes actually sent, once the stream is written', async () => {
  const cred = await account(100n)
  const reply = await http.send('GET', `/stream?${new URLSearchParams({ text: 'abcd', times: '5' }).toString()}`, { accman: cred })
  expect([reply.status, reply.body]).toEqual([200, 'abcd'.repeat(5)])
  // Settled after the last byte: wait for it, bounded.
  const deadline = Date.now() + 5000
  while ((await ledger.past(cred)).entries.at(-1)?.kind !== 'settle') {
    expect(Date.now()).toBeLessThan(deadline)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const [hold, settle] = (await ledger.past(cred)).entries.slice(1)
  expect([hold?.kind, hold?.heldBy, settle?.kind, settle?.by, settle?.hold]).toEqual(['hold', 20n, 'settle', -20n, hold?.hold])
  expect(await ledger.tot(cred)).toEqual({ tot: 80n, seq: 3 })
  // A stream priced above the balance is refused before it starts.
  const refused = await http.send('GET', `/stream?${new URLSearchParams({ text: 'abcd', times: '25' }).toString()}`, { accman: cred })
  expect(refused.status).toBe(402)
  expect(JSON.parse(refused.body)).toMatchObject({ tot: '80', avail: '80', price: '100' })
})
