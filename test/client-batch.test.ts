// The client's own batching, against a real listening server: many concurrent callers share few
// requests, each gets its own answer or error, and a retried batch applies each mod once.
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { AccManClient, InsufficientFundsError, InvalidInputError } from '../src/client/index.js'
import { newCredential } from '../src/cli/credential.js'
import { FaultProxy } from './fault-proxy.js'
import { listenOnLoopback, testApp } from './support.js'

let app: FastifyInstance
let url: string

beforeAll(async () => {
  app = await testApp()
  url = await listenOnLoopback(app)
})

afterAll(async () => {
  await app.close()
})

/** Requests the server answered on a route, from its own metrics. */
async function requestsOf(route: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  let total = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('accman_http_request_duration_seconds_count{') && line.includes(`route="${route}"`)) {
      total += Number(line.split(' ').at(-1))
    }
  }
  return total
}

describe('the client batches concurrent calls', () => {
  test('500 concurrent callers share far fewer requests, each with its own result', async () => {
    const client = new AccManClient({ url })
    const creds = Array.from({ length: 50 }, () => newCredential())
    const before = (await requestsOf('/batch')) + (await requestsOf('/mod'))
    const results = await Promise.all(Array.from({ length: 500 }, (_, index) => client.mod(creds[index % 50] ?? '', BigInt(index + 1))))
    const requests = (await requestsOf('/batch')) + (await requestsOf('/mod')) - before
    expect(requests).toBeGreaterThan(0)
    expect(requests).toBeLessThan(50)
    // Each caller's own answer: the balance right after its own mod, in the account's order.
    for (const [index, cred] of creds.entries()) {
      const mine = results.filter((_, call) => call % 50 === index)
      expect(mine.map((result) => result.seq)).toEqual(Array.from({ length: 10 }, (_, n) => n + 1))
      const expected = Array.from({ length: 10 }, (_, n) => BigInt(index + 1 + 50 * n))
      let sum = 0n
      expect(mine.map((result) => result.tot)).toEqual(expected.map((by) => (sum += by)))
      expect((await client.tot(cred)).tot).toBe(sum)
    }
  })

  test('an error reaches its caller only', async () => {
    const client = new AccManClient({ url })
    const rich = newCredential()
    const poor = newCredential()
    await client.mod(rich, 100n)
    await client.mod(poor, 1n)
    const calls = [client.mod(rich, -10n), client.mod(poor, -5n), client.tot(rich), client.mod('*bad*', 1n)]
    const settled = await Promise.allSettled(calls)
    expect(settled[0]).toEqual({ status: 'fulfilled', value: { tot: 90n, seq: 2, replayed: false } })
    expect(settled[1]?.status).toBe('rejected')
    const funds = (settled[1] as PromiseRejectedResult).reason as InsufficientFundsError
    expect(funds).toBeInstanceOf(InsufficientFundsError)
    expect(funds.tot).toBe(1n)
    expect(settled[2]).toEqual({ status: 'fulfilled', value: { tot: 90n, seq: 2 } })
    expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError)
    expect(await requestsOf('/batch')).toBeGreaterThan(0)
  })

  test('a retried batch whose first answer was lost applies each mod once', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      const client = new AccManClient({ url: proxy.url, retries: 2, retryDelayMs: 10 })
      const cred = newCredential()
      await client.mod(cred, 1000n)
      // The next connection carries a batch (the calls of one tick) and loses its answer.
      proxy.plans.push('drop-answer')
      const results = await Promise.all(Array.from({ length: 20 }, () => client.mod(cred, -1n)))
      expect(proxy.seen).toContain('drop-answer')
      expect(results.filter((result) => result.replayed)).toHaveLength(20)
      expect(await client.tot(cred)).toEqual({ tot: 980n, seq: 21 })
    } finally {
      await proxy.close()
    }
  })

  test('batch: false sends every call on its own', async () => {
    const client = new AccManClient({ url, batch: false })
    const cred = newCredential()
    const before = await requestsOf('/batch')
    const mods = await requestsOf('/mod')
    await Promise.all(Array.from({ length: 10 }, () => client.mod(cred, 1n)))
    expect(await requestsOf('/batch')).toBe(before)
    expect((await requestsOf('/mod')) - mods).toBe(10)
  })
})
