// accman/fastify in Fastify services listening on 127.0.0.1, metered by a real AccMan process on a
// temporary LevelDB: the charge, settlement, refunds, opting out, AccMan's faults, and the logs.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { AccManClient } from '../src/client/index.js'
import { newCredential } from '../src/cli/credential.js'
import accman, { type AccManMeteringOptions } from '../src/fastify/index.js'
import { closedPort, FaultProxy } from './fault-proxy.js'
import { Client, listenOnLoopback, logSink, ServerProcess, temporaryDirectories, type Reply } from './support.js'

const directory = temporaryDirectories('accman-plugin-')
let server: ServerProcess
let accmanUrl: string
let ledger: AccManClient
const logLines: string[] = []
const credentials: string[] = []

interface Service {
  app: FastifyInstance
  http: Client
}
const services: Service[] = []

beforeAll(async () => {
  server = new ServerProcess({ ACCMAN_DB: directory(), ACCMAN_SYNC: 'false' })
  accmanUrl = await server.url()
  ledger = new AccManClient({ url: accmanUrl })
})

afterEach(async () => {
  for (const service of services.splice(0)) {
    service.http.close()
    await service.app.close()
  }
})

afterAll(async () => {
  await server.kill('SIGTERM')
})

type ServiceOptions = Partial<AccManMeteringOptions> & { url?: string; client?: AccManClient; retries?: number }

/** A Fastify service with the plugin registered at its root, listening on a free port. */
async function service(
  options: ServiceOptions,
  routes: (app: FastifyInstance) => void,
  requestIdHeader: string | false = false,
): Promise<Client> {
  const logger: FastifyBaseLogger = pino({ level: 'trace' }, logSink(logLines))
  const app = Fastify({ requestIdHeader, loggerInstance: logger })
  const { client, url, retries, ...metering } = options
  const connection = client === undefined ? { url: url ?? accmanUrl, retries: retries ?? 0, retryDelayMs: 10 } : { client }
  await app.register(accman, { price: () => 1n, ...metering, ...connection })
  routes(app)
  const http = new Client(await listenOnLoopback(app), 10)
  services.push({ app, http })
  return http
}

/** A new account with `balance`, its credential remembered for the log check. */
async function account(balance: bigint): Promise<string> {
  const cred = newCredential()
  credentials.push(cred)
  await ledger.mod(cred, balance)
  return cred
}

/** The account's history as [by, note] pairs, after the opening credit. */
async function movements(cred: string): Promise<[string, string | undefined][]> {
  const { entries } = await ledger.past(cred)
  return entries.slice(1).map((entry) => [entry.by.toString(), entry.note])
}

const get = (http: Client, path: string, cred?: string, headers: Record<string, string> = {}): Promise<Reply> =>
  http.send('GET', path, cred === undefined ? headers : { accman: cred, ...headers })

const json = (reply: Reply): unknown => JSON.parse(reply.body)

describe('the charge', () => {
  test('the price is debited before the handler, which sees it; the header reports the balance', async () => {
    const http = await service({ price: () => 7n }, (app) => {
      app.get('/work', async (request) => ({ seen: String(request.accman?.tot), price: String(request.accman?.price) }))
    })
    const cred = await account(100n)
    const reply = await get(http, '/work', cred)
    expect(reply.status).toBe(200)
    expect(json(reply)).toEqual({ seen: '93', price: '7' })
    expect(reply.headers.accman).toBe('93')
    expect(await movements(cred)).toEqual([['-7', 'GET /work']])
    expect(await ledger.tot(cred)).toEqual({ tot: 93n, seq: 2 })
  })

  test('the price may be async and depend on the request', async () => {
    const http = await service({ price: async (request) => BigInt((request.query as { n: string }).n) }, (app) => {
      app.get('/n', async () => 'done')
    })
    const cred = await account(100n)
    expect((await get(http, '/n?n=30', cred)).headers.accman).toBe('70')
    expect((await get(http, '/n?n=45', cred)).headers.accman).toBe('25')
    expect(await movements(cred)).toEqual([
      ['-30', 'GET /n'],
      ['-45', 'GET /n'],
    ])
  })

  test('missing, malformed and unknown credentials get one and the same 401; nothing runs', async () => {
    let ran = 0
    const http = await service({}, (app) => {
      app.get('/work', async () => {
        ran += 1
        return 'done'
      })
    })
    const unknown = newCredential()
    credentials.push(unknown)
    const replies = [
      await get(http, '/work'),
      await get(http, '/work', 'not base64url!'),
      await get(http, '/work', 'abc'),
      await get(http, '/work', unknown),
    ]
    for (const reply of replies) {
      expect(reply.status).toBe(401)
      expect(reply.body).toBe(replies[0]?.body)
      expect(reply.headers.accman).toBeUndefined()
      expect(reply.headers['www-authenticate']).toBe('AccMan header="accman"')
    }
    expect(json(replies[0] as Reply)).toEqual({
      statusCode: 401,
      code: 'ACCMAN_CREDENTIAL_REQUIRED',
      error: 'Unauthorized',
      message: 'a valid credential is required in the accman header',
    })
    expect(ran).toBe(0)
  })

  test('a balance short of the price: 402 with both, the handler never runs, nothing written', async () => {
    let ran = 0
    const http = await service({ price: () => 8n }, (app) => {
      app.get('/work', async () => {
        ran += 1
        return 'done'
      })
    })
    const cred = await account(5n)
    const reply = await get(http, '/work', cred)
    expect(reply.status).toBe(402)
    expect(reply.headers.accman).toBe('5')
    expect(json(reply)).toEqual({
      statusCode: 402,
      code: 'ACCMAN_INSUFFICIENT_FUNDS',
      error: 'Payment Required',
      message: 'insufficient funds: the balance is 5, the price is 8',
      tot: '5',
      price: '8',
      avail: '5',
    })
    expect(ran).toBe(0)
    expect(await movements(cred)).toEqual([])
  })

  test('a price of 0 still needs an account, writes nothing and reports the balance', async () => {
    const http = await service({ price: () => 0n }, (app) => app.get('/free-call', async () => 'done'))
    const cred = await account(12n)
    const reply = await get(http, '/free-call', cred)
    expect([reply.status, reply.headers.accman]).toEqual([200, '12'])
    expect(await movements(cred)).toEqual([])
    const unknown = newCredential()
    expect((await get(http, '/free-call', unknown)).status).toBe(401)
  })

  test('a negative price, or one not a bigint, is a 500 of the service and charges nothing', async () => {
    const http = await service({ price: (request) => (request.url === '/minus' ? -1n : (3 as unknown as bigint)) }, (app) => {
      app.get('/minus', async () => 'done')
      app.get('/number', async () => 'done')
    })
    const cred = await account(10n)
    for (const path of ['/minus', '/number']) {
      const reply = await get(http, path, cred)
      expect(reply.status).toBe(500)
      expect(reply.headers.accman).toBeUndefined()
    }
    expect(await movements(cred)).toEqual([])
    expect(logLines.some((line) => line.includes('accman: price must give a bigint from 0 to'))).toBe(true)
  })
})

describe('settlement and refunds', () => {
  test('settle up: the hold is settled in full and the rest debited, each with its own key', async () => {
    const http = await service({ price: () => 2n, settle: () => 5n }, (app) => app.get('/work', async () => 'done'))
    const cred = await account(100n)
    const reply = await get(http, '/work', cred)
    expect([reply.status, reply.body, reply.headers.accman]).toEqual([200, 'done', '95'])
    expect(await movements(cred)).toEqual([
      ['0', 'GET /work'],
      ['-3', 'GET /work (settle)'],
      ['-2', 'GET /work (settle)'],
    ])
    const [hold, extra, settlement] = (await ledger.past(cred)).entries.slice(1)
    expect([hold?.kind, extra?.kind, settlement?.kind]).toEqual(['hold', 'mod', 'settle'])
    expect(settlement?.hold).toBe(hold?.hold)
    expect(extra?.idempotencyKey).toBe(`${hold?.idempotencyKey}.extra`)
    expect(settlement?.idempotencyKey).toBe(`${hold?.idempotencyKey}.settle`)
  })

  test('capAtHold settles at most the hold; the handler sees its hold', async () => {
    let seen: string | undefined
    const http = await service({ price: () => 2n, settle: () => 5n, capAtHold: true }, (app) =>
      app.get('/work', async (request) => {
        seen = request.accman?.hold
        return 'done'
      }),
    )
    const cred = await account(100n)
    expect((await get(http, '/work', cred)).headers.accman).toBe('98')
    expect(await movements(cred)).toEqual([
      ['0', 'GET /work'],
      ['-2', 'GET /work (settle)'],
    ])
    expect(seen).toBe((await ledger.past(cred)).entries[1]?.hold)
  })

  test('a request in flight holds its price: avail is the balance less it, and a second request is refused', async () => {
    let release = () => {}
    const started = new Promise<void>((resolve) => (release = resolve))
    let finish = () => {}
    const finished = new Promise<void>((resolve) => (finish = resolve))
    const http = await service({ price: () => 6n, settle: () => 1n, topUpUrl: 'https://example.com/top-up' }, (app) =>
      app.get('/slow', async () => {
        release()
        await finished
        return 'done'
      }),
    )
    const cred = await account(10n)
    const slow = get(http, '/slow', cred)
    await started
    expect(await ledger.tot(cred)).toMatchObject({ tot: 10n, held: 6n, avail: 4n })
    const refused = await get(http, '/slow', cred)
    expect(refused.status).toBe(402)
    expect(json(refused)).toEqual({
      statusCode: 402,
      code: 'ACCMAN_INSUFFICIENT_FUNDS',
      error: 'Payment Required',
      message: 'insufficient funds: avail is 4 (the balance 10 less its holds), the price is 6',
      tot: '10',
      price: '6',
      avail: '4',
      topUp: 'https://example.com/top-up',
    })
    finish()
    expect((await slow).headers.accman).toBe('9')
  })

  test('settle down: the difference is refunded; the handler sees the settled charge in onResponse', async () => {
    let seen = ''
    const http = await service({ price: () => 10n, settle: () => 4n }, (app) => {
      app.get('/work', async () => 'done')
      app.addHook('onResponse', async (request) => {
        seen = `${request.accman?.charged}/${request.accman?.tot}`
      })
    })
    const cred = await account(100n)
    expect((await get(http, '/work', cred)).headers.accman).toBe('96')
    expect(await movements(cred)).toEqual([
      ['0', 'GET /work'],
      ['-4', 'GET /work (settle)'],
    ])
    expect(seen).toBe('4/96')
  })

  test('settle up the consumer cannot pay: 402 instead of the payload, and the hold voided', async () => {
    const http = await service({ price: () => 2n, settle: () => 9n }, (app) => app.get('/work', async () => 'the goods'))
    const cred = await account(5n)
    const reply = await get(http, '/work', cred)
    expect(reply.status).toBe(402)
    expect(reply.body).not.toContain('the goods')
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(reply.headers.accman).toBe('5')
    expect(json(reply)).toMatchObject({ code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: '5', price: '9', avail: '3' })
    expect(await movements(cred)).toEqual([
      ['0', 'GET /work'],
      ['0', 'GET /work (void)'],
    ])
  })

  test('a handler error (5xx) is refunded and the header reports the refunded balance', async () => {
    const http = await service({ price: () => 3n }, (app) => {
      app.get('/throws', async () => {
        throw new Error('broken handler')
      })
      app.get('/unavailable', async (_request, reply) => reply.code(503).send('later'))
    })
    const cred = await account(100n)
    const thrown = await get(http, '/throws', cred)
    expect([thrown.status, thrown.headers.accman]).toEqual([500, '100'])
    const unavailable = await get(http, '/unavailable', cred)
    expect([unavailable.status, unavailable.headers.accman]).toEqual([503, '100'])
    expect(await movements(cred)).toEqual([
      ['-3', 'GET /throws'],
      ['3', 'GET /throws (refund)'],
      ['-3', 'GET /unavailable'],
      ['3', 'GET /unavailable (refund)'],
    ])
  })

  test('refundOnError false keeps the charge on a 5xx; a 4xx is never refunded', async () => {
    const http = await service({ price: () => 3n, refundOnError: false }, (app) => {
      app.get('/throws', async () => {
        throw new Error('broken handler')
      })
      app.get('/bad', async (_request, reply) => reply.code(400).send('bad input'))
    })
    const cred = await account(100n)
    expect((await get(http, '/throws', cred)).headers.accman).toBe('97')
    const bad = await get(http, '/bad', cred)
    expect([bad.status, bad.headers.accman]).toEqual([400, '94'])
    expect(await movements(cred)).toEqual([
      ['-3', 'GET /throws'],
      ['-3', 'GET /bad'],
    ])
  })

  test('a settle function that throws is a 500, its hold voided', async () => {
    const http = await service(
      {
        price: () => 4n,
        settle: () => {
          throw new Error('settle bug')
        },
      },
      (app) => app.get('/work', async () => 'the goods'),
    )
    const cred = await account(50n)
    const reply = await get(http, '/work', cred)
    expect([reply.status, reply.headers.accman]).toEqual([500, '50'])
    expect(reply.body).not.toContain('the goods')
    expect(await movements(cred)).toEqual([
      ['0', 'GET /work'],
      ['0', 'GET /work (void)'],
    ])
  })

  test('AccMan gone before settlement: the payload is delivered, the hold is left to expire, an error is logged', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    const cred = await account(50n)
    const http = await service(
      {
        url: proxy.url,
        price: () => 4n,
        settle: async () => {
          await proxy.close()
          return 1n
        },
      },
      (app) => app.get('/work', async () => 'the goods'),
    )
    const reply = await get(http, '/work', cred)
    expect([reply.status, reply.body, reply.headers.accman]).toEqual([200, 'the goods', '50'])
    expect(await movements(cred)).toEqual([['0', 'GET /work']])
    const failure = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'accman: settlement failed')
    expect(failure).toMatchObject({ level: 50, code: 'ACCMAN_UNREACHABLE', price: '4', cost: '1' })
  })

  test('AccMan gone before a refund: the 5xx stands with the charge, an error is logged', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    const cred = await account(50n)
    const http = await service({ url: proxy.url, price: () => 4n }, (app) =>
      app.get('/throws', async () => {
        await proxy.close()
        throw new Error('broken handler')
      }),
    )
    const reply = await get(http, '/throws', cred)
    expect([reply.status, reply.headers.accman]).toEqual([500, '46'])
    expect(await movements(cred)).toEqual([['-4', 'GET /throws']])
    expect(logLines.some((line) => line.includes('accman: refund failed, the price stands'))).toBe(true)
  })
})

describe('what is metered', () => {
  test('config.accman false opts a route out, a route price overrides, unmatched routes are not metered', async () => {
    const http = await service({ price: () => 1n }, (app) => {
      app.get('/free', { config: { accman: false } }, async (request) => ({ accman: request.accman }))
      app.get('/fixed', { config: { accman: { price: 4n } } }, async () => 'done')
      app.get('/priced', { config: { accman: { price: () => 6n } } }, async () => 'done')
    })
    const cred = await account(100n)
    const free = await get(http, '/free')
    expect([free.status, free.body, free.headers.accman]).toEqual([200, '{"accman":null}', undefined])
    expect((await get(http, '/fixed', cred)).headers.accman).toBe('96')
    expect((await get(http, '/priced', cred)).headers.accman).toBe('90')
    for (const reply of [await get(http, '/nowhere'), await get(http, '/nowhere', cred)]) {
      expect([reply.status, reply.headers.accman]).toEqual([404, undefined])
    }
    expect(await movements(cred)).toEqual([
      ['-4', 'GET /fixed'],
      ['-6', 'GET /priced'],
    ])
  })

  test('registered in an encapsulated context, the plugin meters that context only', async () => {
    const app = Fastify()
    await app.register(async (paid) => {
      await paid.register(accman, { url: accmanUrl, price: () => 2n })
      paid.get('/paid', async () => 'paid')
    })
    app.get('/open', async () => 'open')
    const url = await listenOnLoopback(app)
    const http = new Client(url, 10)
    services.push({ app, http })
    const cred = await account(10n)
    expect(await get(http, '/open')).toMatchObject({ status: 200, body: 'open' })
    expect((await get(http, '/paid')).status).toBe(401)
    expect((await get(http, '/paid', cred)).headers.accman).toBe('8')
  })

  test('a custom header name carries the credential in and the balance out', async () => {
    const http = await service({ header: 'X-Credits', price: () => 2n }, (app) => app.get('/work', async () => 'done'))
    const cred = await account(10n)
    const reply = await http.send('GET', '/work', { 'x-credits': cred })
    expect([reply.status, reply.headers['x-credits'], reply.headers.accman]).toEqual([200, '8', undefined])
    expect((await get(http, '/work', cred)).status).toBe(401)
  })

  test('every request gets a new idempotency key, even when the consumer picks the request id', async () => {
    const http = await service({ price: () => 1n }, (app) => app.get('/work', async () => 'done'), 'x-request-id')
    const cred = await account(10n)
    for (const id of ['abc', 'abc', 'x'.repeat(100)]) expect((await get(http, '/work', cred, { 'x-request-id': id })).status).toBe(200)
    const keys = (await ledger.past(cred)).entries.slice(1).map((entry) => entry.idempotencyKey)
    expect(keys).toHaveLength(3)
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{16}\.\d+\.abc$/)
    expect(keys[1]).toMatch(/^[A-Za-z0-9_-]{16}\.\d+\.abc$/)
    // A request id too long for a key is left out of it.
    expect(keys[2]).toMatch(/^[A-Za-z0-9_-]{16}\.\d+$/)
    expect(new Set(keys).size).toBe(3)
    expect(await ledger.tot(cred)).toEqual({ tot: 7n, seq: 4 })
  })
})

describe('AccMan faults', () => {
  test('AccMan unreachable: 503 with Retry-After, and the handler never runs', async () => {
    let ran = 0
    const http = await service({ url: `http://127.0.0.1:${await closedPort()}`, retries: 1 }, (app) =>
      app.get('/work', async () => {
        ran += 1
        return 'done'
      }),
    )
    const reply = await get(http, '/work', await account(10n))
    expect(reply.status).toBe(503)
    expect(reply.headers['retry-after']).toBe('1')
    expect(json(reply)).toEqual({
      statusCode: 503,
      code: 'ACCMAN_UNAVAILABLE',
      error: 'Service Unavailable',
      message: 'the account service is unavailable; retry shortly',
    })
    expect(ran).toBe(0)
  })

  test('AccMan answering 503 past the retries: 503', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    try {
      proxy.plans.push('answer-503', 'answer-503', 'answer-503', 'answer-503', 'answer-503', 'answer-503')
      proxy.retryAfter = '0'
      const http = await service({ url: proxy.url, retries: 1 }, (app) => app.get('/work', async () => 'done'))
      const cred = await account(10n)
      expect((await get(http, '/work', cred)).status).toBe(503)
      // The debit, then the checks of its outcome: each refused, so nothing was applied.
      expect(proxy.seen).toEqual(['answer-503', 'answer-503', 'answer-503', 'answer-503', 'answer-503', 'answer-503'])
      expect(await movements(cred)).toEqual([])
    } finally {
      await proxy.close()
    }
  })

  test('the answer of the debit lost on a dropped connection: retried with its key, charged once', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    try {
      proxy.plans.push('drop-answer')
      const http = await service({ url: proxy.url, retries: 2, price: () => 10n }, (app) => app.get('/work', async () => 'done'))
      const cred = await account(100n)
      const reply = await get(http, '/work', cred)
      expect([reply.status, reply.body, reply.headers.accman]).toEqual([200, 'done', '90'])
      expect(proxy.seen.slice(0, 2)).toEqual(['drop-answer', 'pass'])
      expect(await movements(cred)).toEqual([['-10', 'GET /work']])
    } finally {
      await proxy.close()
    }
  })
})

describe('a debit whose answer is lost, answered 503', () => {
  test('the outcome is learnt with the same key and the debit refunded: the consumer pays nothing, a retry pays once', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    try {
      let ran = 0
      const http = await service({ url: proxy.url, retries: 0, price: () => 10n }, (app) =>
        app.get('/work', async () => {
          ran += 1
          return 'done'
        }),
      )
      const cred = await account(100n)
      proxy.plans.push('drop-answer')
      const lost = await get(http, '/work', cred)
      expect([lost.status, lost.headers['retry-after'], ran]).toEqual([503, '1', 0])
      expect(await ledger.tot(cred)).toEqual({ tot: 100n, seq: 3 })
      const [debit, refund] = (await ledger.past(cred)).entries.slice(1)
      expect([debit?.by, refund?.by, refund?.note]).toEqual([-10n, 10n, 'GET /work (refund)'])
      expect(refund?.idempotencyKey).toBe(`${debit?.idempotencyKey ?? ''}.refund`)

      const retried = await get(http, '/work', cred)
      expect([retried.status, retried.body, retried.headers.accman, ran]).toEqual([200, 'done', '90', 1])
      expect(await movements(cred)).toEqual([
        ['-10', 'GET /work'],
        ['10', 'GET /work (refund)'],
        ['-10', 'GET /work'],
      ])
    } finally {
      await proxy.close()
    }
  })

  test('AccMan silent for every check too: 503, and an error log with the key to reconcile', async () => {
    const proxy = await FaultProxy.start(accmanUrl)
    try {
      const http = await service({ url: proxy.url, retries: 0, price: () => 10n }, (app) => app.get('/work', async () => 'done'))
      const cred = await account(100n)
      proxy.plans.push('drop-answer', 'drop-answer', 'drop-answer')
      const lost = await get(http, '/work', cred)
      expect(lost.status).toBe(503)
      expect(proxy.seen).toEqual(['drop-answer', 'drop-answer', 'drop-answer'])
      const unknown = logLines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .findLast((line) => line.msg === 'accman: the outcome of a debit is unknown')
      expect(unknown).toMatchObject({ level: 50, price: '10' })
      const { entries } = await ledger.past(cred)
      expect(unknown?.key).toBe(entries[1]?.idempotencyKey)
      expect(await movements(cred)).toEqual([['-10', 'GET /work']])
    } finally {
      await proxy.close()
    }
  })
})

describe('the plugin keeps its own books', () => {
  test('a handler cannot change what is refunded: request.accman is read-only', async () => {
    const attempts: string[] = []
    const http = await service({ price: () => 10n }, (app) =>
      app.get('/throws', async (request) => {
        const charge = request.accman as { price: bigint; charged: bigint } | null
        for (const tamper of [
          () => Object.assign(charge ?? {}, { price: 1000n }),
          () => Object.assign(request, { accman: null }),
          () => Object.defineProperty(charge, 'price', { value: 1000n }),
        ]) {
          try {
            tamper()
            attempts.push('changed')
          } catch {
            attempts.push('refused')
          }
        }
        attempts.push(String(request.accman?.price))
        throw new Error('broken handler')
      }),
    )
    const cred = await account(100n)
    const reply = await get(http, '/throws', cred)
    expect([reply.status, reply.headers.accman]).toEqual([500, '100'])
    expect(attempts).toEqual(['refused', 'refused', 'refused', '10'])
    expect(await movements(cred)).toEqual([
      ['-10', 'GET /throws'],
      ['10', 'GET /throws (refund)'],
    ])
  })

  test('registering twice over the same routes is refused; sibling contexts each meter their own', async () => {
    const twice = Fastify()
    await twice.register(accman, { url: accmanUrl, price: () => 1n })
    await expect(twice.register(accman, { url: accmanUrl, price: () => 1n })).rejects.toThrow('already registered')
    await twice.close()

    const nested = Fastify()
    await nested.register(accman, { url: accmanUrl, price: () => 1n })
    await expect(
      nested.register(async (child) => {
        await child.register(accman, { url: accmanUrl, price: () => 1n })
      }),
    ).rejects.toThrow('already registered')
    await nested.close()

    const siblings = Fastify()
    for (const prefix of ['/a', '/b']) {
      await siblings.register(
        async (child) => {
          await child.register(accman, { url: accmanUrl, price: () => 2n })
          child.get('/work', async () => 'done')
        },
        { prefix },
      )
    }
    const client = new Client(await listenOnLoopback(siblings), 2)
    try {
      const cred = await account(10n)
      expect((await get(client, '/a/work', cred)).headers.accman).toBe('8')
      expect((await get(client, '/b/work', cred)).headers.accman).toBe('6')
      expect(await movements(cred)).toEqual([
        ['-2', 'GET /a/work'],
        ['-2', 'GET /b/work'],
      ])
    } finally {
      client.close()
      await siblings.close()
    }
  })

  test('HEAD is not metered unless its route says meterHead', async () => {
    const http = await service({ price: () => 3n }, (app) => {
      app.get('/free-head', async () => 'body')
      app.get('/paid-head', { config: { accman: { meterHead: true } } }, async () => 'body')
    })
    const cred = await account(10n)
    const free = await http.send('HEAD', '/free-head', { accman: cred })
    expect([free.status, free.headers.accman]).toEqual([200, undefined])
    const paid = await http.send('HEAD', '/paid-head', { accman: cred })
    expect([paid.status, paid.headers.accman]).toEqual([200, '7'])
    expect((await get(http, '/free-head', cred)).headers.accman).toBe('4')
    expect(await movements(cred)).toEqual([
      ['-3', 'HEAD /paid-head'],
      ['-3', 'GET /free-head'],
    ])
  })
})

test('no log line of the services, at trace level, carries a credential', () => {
  expect(credentials.length).toBeGreaterThan(10)
  expect(logLines.length).toBeGreaterThan(50)
  for (const line of logLines) for (const cred of credentials) expect(line).not.toContain(cred)
})
