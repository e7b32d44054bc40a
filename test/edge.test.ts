// The HTTP edge through a real listening server, with raw sockets sending exactly the bytes: header
// lines and bytes past the limits, request ids that could carry a secret, percent-encoded paths and
// malformed query values, empty Accept, zero Content-Length, a missing Host, and the parser's own
// answers.
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { limits } from '../src/config.js'
import type { AppConfig } from '../src/http/app.js'
import { classicCred, Client, listenOnLoopback, logSink, query, RawConnection, rawExchange, testApp } from './support.js'

const writeToken = 'w-token-0123456789abcdef'
const readToken = 'r-token-0123456789abcdef'
/** A credential that is also a well-formed request id: base64url without padding. */
const cred = 'c2VjcmV0LWNyZWRlbnRpYWwtMDEyMzQ1Njc4OWFi'
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

let app: FastifyInstance
let port: number
let client: Client
const logLines: string[] = []

async function start(config: Partial<AppConfig> = {}): Promise<void> {
  // Overload has its own tests (limits.test.ts); here a loop lagging on a busy machine is noise,
  // so under-pressure's delay check is off (0).
  app = await testApp({ config: { eventLoopDelayMsMax: 0, ...config }, logger: pino({ level: 'trace' }, logSink(logLines)) })
  const url = await listenOnLoopback(app)
  port = Number(new URL(url).port)
  client = new Client(url, 4)
}

beforeEach(() => {
  logLines.length = 0
})
afterEach(async () => {
  client.close()
  await app.close()
})

/** A request as raw bytes: the request line, `Host`, `Connection: close`, then `lines` as given. */
function request(method: string, target: string, lines: string[] = []): string {
  return `${method} ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`
}

async function balance(account = classicCred, headers: Record<string, string> = {}): Promise<string> {
  const reply = await client.send('GET', `/tot?${query({ cred: account })}`, headers)
  return reply.status === 404 ? 'none' : reply.body
}

const messageOf = (answer: { body: string }) => (JSON.parse(answer.body) as { message: string }).message

/** Every error answer: its status, our JSON with the code, a request id, nothing of the credential. */
function expectRefusal(answer: { status: number; headers: Record<string, string>; body: string }, status: number, code: string) {
  expect(answer.status).toBe(status)
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8')
  expect(JSON.parse(answer.body)).toMatchObject({ statusCode: status, code })
  expect(answer.headers['x-request-id']).toMatch(uuidPattern)
  expect(answer.body).not.toContain(classicCred)
}

describe('header lines and bytes: 431 before anything is decided', () => {
  test('a keyed mod with 1,100 header lines is refused, twice, and never applied', async () => {
    await start()
    expect(await balance()).toBe('none')
    // Short lines: 1,100 of them stay well under Node's own byte count, and Node drops the ones
    // past its line count, the Idempotency-Key last among them.
    const lines = [...Array.from({ length: 1_100 }, (_, index) => `x${index}:1`), 'Idempotency-Key: charge-1']
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await rawExchange(port, request('PATCH', `/mod?${query({ cred: classicCred, by: '5' })}`, lines))
      expectRefusal(answer, 431, 'ACCMAN_HEADERS_TOO_LARGE')
      expect(messageOf(answer)).toContain(`more than ${limits.headerLinesMax} header lines`)
      expect(answer.headers.connection).toBe('close')
    }
    expect(await balance()).toBe('none')
  })

  test(`${limits.headerLinesMax} header lines are taken, one more is refused`, async () => {
    await start()
    // Host and Connection are two of them.
    const filler = (count: number) => Array.from({ length: count }, (_, index) => `x-filler-${index}: 1`)
    const target = `/mod?${query({ cred: classicCred, by: '1' })}`
    const atLimit = await rawExchange(port, request('PATCH', target, [...filler(limits.headerLinesMax - 3), 'Idempotency-Key: k-1']))
    expect(atLimit.status).toBe(200)
    const pastLimit = await rawExchange(port, request('PATCH', target, [...filler(limits.headerLinesMax - 2), 'Idempotency-Key: k-2']))
    expectRefusal(pastLimit, 431, 'ACCMAN_HEADERS_TOO_LARGE')
    expect(await balance()).toBe('1')
  })

  test('32 KB of empty header lines are refused, though Node counts them as 8,000 bytes', async () => {
    await start()
    await client.send('PATCH', `/mod?${query({ cred: classicCred, by: '50' })}`)
    // Node's own limit counts a name and its value only: 8,000 lines of `X:` are 8,000 bytes to
    // it, and 32 KB on the wire.
    const answer = await rawExchange(port, request('PATCH', `/mod?${query({ cred: classicCred, by: '5' })}`, Array<string>(8_000).fill('X:')))
    expectRefusal(answer, 431, 'ACCMAN_HEADERS_TOO_LARGE')
    expect(await balance()).toBe('50')
  })

  test('8 KiB of request line and headers are taken, one byte more is refused', async () => {
    await start()
    const target = `/mod?${query({ cred: classicCred, by: '1' })}`
    // No optional space after the colons (it is not counted), so every byte sent is counted.
    const sized = (bytes: number) => {
      const head = `PATCH ${target} HTTP/1.1\r\nHost:a\r\nConnection:close\r\nX-Pad:`
      return `${head}${'p'.repeat(bytes - head.length - 4)}\r\n\r\n`
    }
    expect(sized(limits.headerSizeBytesMax)).toHaveLength(limits.headerSizeBytesMax)
    expect((await rawExchange(port, sized(limits.headerSizeBytesMax))).status).toBe(200)
    expectRefusal(await rawExchange(port, sized(limits.headerSizeBytesMax + 1)), 431, 'ACCMAN_HEADERS_TOO_LARGE')
    expect(await balance()).toBe('1')
  })
})

describe('request ids that could carry a secret are replaced, in the answer and in the log', () => {
  beforeEach(async () => {
    await start({ tokens: [writeToken], readTokens: [readToken] })
  })

  /** Sends a mod and answers the request id it got; the log then holds that id and not `secret`. */
  async function idOf(target: string, headers: string[], secret: string): Promise<string> {
    const answer = await rawExchange(port, request('PATCH', target, headers))
    const id = answer.headers['x-request-id'] ?? ''
    expect(id).not.toBe('')
    expect(logLines.some((line) => line.includes(id))).toBe(true)
    for (const line of logLines) expect(line).not.toContain(secret)
    expect(answer.body).not.toContain(secret)
    return id
  }

  // `c` percent-encoded: the credential is not in the URL as written, only once decoded.
  const encodedTarget = `/mod?cred=%63${cred.slice(1)}&by=5`

  test('the credential, with one character of it percent-encoded in the URL', async () => {
    expect(await idOf(encodedTarget, [`Authorization: Bearer ${writeToken}`, `X-Request-Id: ${cred}`], cred)).toMatch(uuidPattern)
    expect(await idOf(encodedTarget, [`Authorization: Bearer ${writeToken}`, `X-Request-Id: trace-${cred}`], cred)).toMatch(uuidPattern)
    // A part of the decoded credential is a secret too.
    const part = cred.slice(0, 24)
    expect(await idOf(encodedTarget, [`Authorization: Bearer ${writeToken}`, `X-Request-Id: ${part}`], part)).toMatch(uuidPattern)
    expect(await balance(cred, { authorization: `Bearer ${readToken}` })).toBe('15')
  })

  test.each([
    ['a read token, with the write token in Authorization', readToken, [`Authorization: Bearer ${writeToken}`]],
    ['the write token, with a read token in Authorization', writeToken, [`Authorization: Bearer ${readToken}`]],
    ['the write token, with no Authorization', writeToken, []],
    ['a read token, with no Authorization', readToken, []],
  ])('%s', async (_name, token, authorization) => {
    const target = `/mod?${query({ cred: classicCred, by: '5' })}`
    expect(await idOf(target, [...authorization, `X-Request-Id: ${token}`], token)).toMatch(uuidPattern)
    expect(await idOf(target, [...authorization, `X-Request-Id: id.${token}.1`], token)).toMatch(uuidPattern)
  })

  test('a token that is not configured, presented and inside the id', async () => {
    const stranger = 'x-token-from-elsewhere-0123'
    const target = `/mod?${query({ cred: classicCred, by: '5' })}`
    const id = await idOf(target, [`Authorization: Bearer ${stranger}`, `X-Request-Id: id.${stranger}`], stranger)
    expect(id).toMatch(uuidPattern)
  })

  test('an id with no secret in it is echoed and logged as sent', async () => {
    const target = `/mod?${query({ cred: classicCred, by: '5' })}`
    expect(await idOf(target, [`Authorization: Bearer ${writeToken}`, 'X-Request-Id: order-42.try:1'], cred)).toBe('order-42.try:1')
    // Part of a configured token: echoed, or the echo would tell which strings a token contains.
    expect(await idOf(target, [`X-Request-Id: ${writeToken.slice(0, 8)}`], writeToken)).toBe(writeToken.slice(0, 8))
  })
})

describe('percent-encoding', () => {
  test.each([
    ['PATCH', `/%6dod?cred=${classicCred}&by=5`],
    ['PATCH', `/m%6Fd?cred=${classicCred}&by=5`],
    ['GET', `/%74ot?cred=${classicCred}`],
    ['GET', `/past%3Fcred=${classicCred}`],
    ['GET', `/%6eowhere?cred=${classicCred}`],
  ])('%s %s: a path with % is 400 ACCMAN_BAD_REQUEST, nothing written', async (method, target) => {
    await start()
    await client.send('PATCH', `/mod?${query({ cred: classicCred, by: '50' })}`)
    const answer = await rawExchange(port, request(method, target))
    expectRefusal(answer, 400, 'ACCMAN_BAD_REQUEST')
    expect(messageOf(answer)).toBe('the path must not be percent-encoded')
    expect(await balance()).toBe('50')
  })

  test.each([
    ['PATCH', `/mod?cred=${classicCred}&by=5&note=%FF`, 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=5&note=a%zzb`, 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=5&note=%ED%A0%80`, 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=5&note=%E2%82`, 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=5&note=%`, 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=%zz5`, 'by'],
    ['GET', `/past?cred=${classicCred}&from=%FF`, 'from'],
    ['GET', `/past?cred=${classicCred}&limit=1&limit=%zz`, 'limit'],
  ])('%s %s: 400 ACCMAN_INVALID_QUERY naming the parameter, nothing written', async (method, target, name) => {
    await start()
    await client.send('PATCH', `/mod?${query({ cred: classicCred, by: '50' })}`)
    const before = (await client.send('GET', `/past?${query({ cred: classicCred })}`)).body
    const answer = await rawExchange(port, request(method, target))
    expectRefusal(answer, 400, 'ACCMAN_INVALID_QUERY')
    expect(messageOf(answer)).toContain(name)
    expect((await client.send('GET', `/past?${query({ cred: classicCred })}`)).body).toBe(before)
  })

  test('a malformed credential keeps its own code', async () => {
    await start()
    expectRefusal(await rawExchange(port, request('GET', '/tot?cred=%FFAA')), 400, 'ACCMAN_INVALID_CRED')
  })

  test('well-formed encodings still decode: UTF-8, %25, + as a space, an encoded name', async () => {
    await start()
    const answer = await rawExchange(port, request('PATCH', `/mod?cred=${classicCred}&by=5&n%6Fte=%F0%9F%99%82+100%25`))
    expect(answer.status).toBe(200)
    const past = JSON.parse((await client.send('GET', `/past?${query({ cred: classicCred })}`)).body) as { entries: { note: string }[] }
    expect(past.entries.map((entry) => entry.note)).toEqual(['🙂 100%'])
  })
})

describe('smaller holes', () => {
  test('an empty Accept counts as no Accept on every endpoint', async () => {
    await start()
    const mod = await rawExchange(port, request('PATCH', `/mod?${query({ cred: classicCred, by: '7' })}`, ['Accept:']))
    expect([mod.status, mod.body]).toEqual([200, '7'])
    const tot = await rawExchange(port, request('GET', `/tot?${query({ cred: classicCred })}`, ['Accept:']))
    expect([tot.status, tot.body]).toEqual([200, '7'])
    const past = await rawExchange(port, request('GET', `/past?${query({ cred: classicCred })}`, ['Accept:']))
    expect(past.status).toBe(200)
    expect(JSON.parse(past.body)).toMatchObject({ tot: '7', seq: 1 })
  })

  test.each(['0', '00', '000'])('Content-Length: %s is no body: the mod is applied once', async (length) => {
    await start()
    const answer = await rawExchange(port, request('PATCH', `/mod?${query({ cred: classicCred, by: '3' })}`, [`Content-Length: ${length}`]))
    expect([answer.status, answer.body]).toEqual([200, '3'])
    expect((await rawExchange(port, request('GET', `/tot?${query({ cred: classicCred })}`, [`Content-Length: ${length}`]))).body).toBe('3')
  })

  test('Content-Length: 01 is a body: 413, nothing written', async () => {
    await start()
    const answer = await rawExchange(port, `${request('PATCH', `/mod?${query({ cred: classicCred, by: '3' })}`, ['Content-Length: 01'])}x`)
    expectRefusal(answer, 413, 'ACCMAN_PAYLOAD_TOO_LARGE')
    expect(await balance()).toBe('none')
  })

  test('HTTP/1.1 without Host: JSON 400 with a code, nothing written; HTTP/1.0 needs none', async () => {
    await start()
    const target = `/mod?${query({ cred: classicCred, by: '4' })}`
    const answer = await rawExchange(port, `PATCH ${target} HTTP/1.1\r\nConnection: close\r\n\r\n`)
    expectRefusal(answer, 400, 'ACCMAN_BAD_REQUEST')
    expect(messageOf(answer)).toContain('Host')
    expect(await balance()).toBe('none')
    const old = await rawExchange(port, `PATCH ${target} HTTP/1.0\r\n\r\n`)
    expect([old.status, old.body]).toEqual([200, '4'])
  })

  test.each([
    ['garbage', `\x16\x03\x01 hello ${classicCred}\r\n\r\n`, 400, 'ACCMAN_BAD_REQUEST'],
    ['a header line without a colon', request('GET', `/tot?cred=${classicCred}`, ['Nonsense']), 400, 'ACCMAN_BAD_REQUEST'],
    ['Content-Length and Transfer-Encoding', request('PATCH', `/mod?cred=${classicCred}&by=1`, ['Content-Length: 1', 'Transfer-Encoding: chunked']), 400, 'ACCMAN_BAD_REQUEST'],
    ['a header past Node\'s own count', request('GET', `/tot?cred=${classicCred}`, [`X-Big: ${'y'.repeat(9_000)}`]), 431, 'ACCMAN_HEADERS_TOO_LARGE'],
  ])('the parser refuses %s: JSON with a code and an x-request-id', async (_name, bytes, status, code) => {
    await start()
    const answer = await rawExchange(port, bytes)
    expectRefusal(answer, status, code)
    expect(answer.headers.connection).toBe('close')
    expect(logLines.some((line) => line.includes(answer.headers['x-request-id'] ?? '?'))).toBe(true)
  })

  test('an Expect other than 100-continue is ignored: the request is served as usual', async () => {
    await start()
    const answer = await rawExchange(port, request('PATCH', `/mod?${query({ cred: classicCred, by: '6' })}`, ['Expect: something-else']))
    expect([answer.status, answer.body]).toEqual([200, '6'])
    expect(answer.headers['x-request-id']).toMatch(uuidPattern)
  })

  test('a bad request after an answered one on a keep-alive connection still gets its answer', async () => {
    await start()
    const connection = new RawConnection(port)
    try {
      connection.send(`GET /tot?cred=${classicCred} HTTP/1.1\r\nHost: a\r\n\r\n`)
      const [first] = await connection.answers(1)
      expect(first?.status).toBe(404)
      connection.send(`GET /tot?cred=${classicCred} HTTP/1.1\r\nHost: a\r\nX-Big: ${'y'.repeat(9_000)}\r\n\r\n`)
      const [, second] = await connection.answers(2)
      expectRefusal(second ?? { status: 0, headers: {}, body: '' }, 431, 'ACCMAN_HEADERS_TOO_LARGE')
      await connection.closed()
    } finally {
      connection.destroy()
    }
  })
})
