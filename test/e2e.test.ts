// Through a real listening server on 127.0.0.1: concurrency as a service's connection pool
// produces it, and the logs of all of it.
import type { FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeEach, expect, test } from 'vitest'
import { classicCred, Client, listenOnLoopback, logSink, query, readHistory, testApp } from './support.js'

let app: FastifyInstance
let client: Client
const logLines: string[] = []

beforeEach(async () => {
  logLines.length = 0
  const sink = logSink(logLines)
  app = await testApp({ logger: pino({ level: 'trace' }, sink) })
  const url = await listenOnLoopback(app)
  client = new Client(url, 100)
})

afterEach(async () => {
  client.close()
  await app.close()
})

const modPath = (cred: string, by: string) => `/mod?${query({ cred, by })}`

/** The whole history, every page of it answered 200. */
const history = (cred: string) => readHistory(client, cred, { missingIs: 'error' })

function expectChain(entries: { seq: number; by: string; tot: string }[]): void {
  let tot = 0n
  for (const [index, entry] of entries.entries()) {
    expect(entry.seq).toBe(index + 1)
    tot += BigInt(entry.by)
    expect(BigInt(entry.tot)).toBe(tot)
  }
}

test('2,000 concurrent +1 over 100 connections end at exactly 2,000 with 2,000 contiguous entries', async () => {
  const replies = await Promise.all(Array.from({ length: 2000 }, () => client.send('PATCH', modPath(classicCred, '1'))))
  expect(replies.filter((reply) => reply.status === 200), JSON.stringify(replies.filter((reply) => reply.status !== 200).slice(0, 2))).toHaveLength(2000)
  // Every answer is a distinct balance: no two requests saw the same one.
  expect(new Set(replies.map((reply) => reply.body)).size).toBe(2000)
  expect((await client.send('GET', `/tot?${query({ cred: classicCred })}`)).body).toBe('2000')
  const entries = await history(classicCred)
  expect(entries).toHaveLength(2000)
  expectChain(entries)
})

test('500 concurrent -1 on a balance of 100: exactly 100 succeed and the balance ends at 0', async () => {
  expect((await client.send('PATCH', modPath(classicCred, '100'))).status).toBe(200)
  const replies = await Promise.all(Array.from({ length: 500 }, () => client.send('PATCH', modPath(classicCred, '-1'))))
  expect(replies.filter((reply) => reply.status === 200)).toHaveLength(100)
  expect(replies.filter((reply) => reply.status === 402)).toHaveLength(400)
  expect((await client.send('GET', `/tot?${query({ cred: classicCred })}`)).body).toBe('0')
  const entries = await history(classicCred)
  expect(entries).toHaveLength(101)
  expectChain(entries)
})

test('200 concurrent retries of one keyed debit charge once', async () => {
  await client.send('PATCH', modPath(classicCred, '1000'))
  const replies = await Promise.all(
    Array.from({ length: 200 }, () =>
      client.send('PATCH', modPath(classicCred, '-250'), { 'idempotency-key': 'order-7', accept: 'application/json' }),
    ),
  )
  for (const reply of replies) expect(reply.body).toBe('{"tot":"750","seq":2,"held":"0","avail":"750"}')
  expect(replies.filter((reply) => reply.headers['idempotent-replayed'] === 'true')).toHaveLength(199)
  expect(await history(classicCred)).toHaveLength(2)
})

test('no log line, at trace level, carries a credential or a URL', async () => {
  const secret = 'c2VjcmV0LWNyZWRlbnRpYWwtZm9yLWxvZy10ZXN0'
  await client.send('PATCH', modPath(secret, '10'))
  await client.send('PATCH', modPath(secret, '-11'))
  await client.send('PATCH', modPath(secret, '1.5'))
  await client.send('GET', `/tot?${query({ cred: secret })}`, { accept: 'application/json' })
  await client.send('GET', `/tot?cred=${secret}&cred=${secret}`)
  await client.send('GET', `/past?${query({ cred: secret, limit: '0' })}`)
  await client.send('GET', `/missing?${query({ cred: secret })}`)
  await client.send('GET', `/%E0%A4%A?${query({ cred: secret })}`)
  await client.send('PATCH', modPath(secret, '1'), { authorization: 'Bearer t0ken-value', 'content-type': 'text/plain' })
  expect(logLines.length).toBeGreaterThanOrEqual(9)
  const requestLines = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.msg === 'request')
  expect(requestLines.map((line) => line.statusCode)).toEqual([200, 402, 400, 200, 400, 400, 404, 400, 415])
  expect(requestLines[0]).toMatchObject({ method: 'PATCH', route: '/mod' })
  for (const line of logLines) {
    expect(line).not.toContain(secret)
    expect(line).not.toContain('t0ken-value')
    expect(line).not.toContain('cred=')
  }
})
