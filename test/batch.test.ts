// POST /batch through a real listening server: order, per-operation results, replays, tokens,
// bad bodies (nothing applied), limits and a full queue.
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { Client, listenOnLoopback, readHistory, ServerProcess, temporaryDirectories, testApp } from './support.js'
import type { AppConfig } from '../src/http/app.js'

const credA = 'YWNjb3VudC1hLWNyZWRlbnRpYWw='
const credB = 'YWNjb3VudC1iLWNyZWRlbnRpYWw='

let app: FastifyInstance | undefined
afterEach(async () => {
  await app?.close()
  app = undefined
})

async function serve(config: Partial<AppConfig> = {}): Promise<string> {
  app = await testApp({ config })
  return listenOnLoopback(app)
}

async function post(base: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

async function totOf(base: string, cred: string): Promise<string> {
  return (await fetch(`${base}/tot?cred=${encodeURIComponent(cred)}`)).text()
}

describe('POST /batch', () => {
  it('takes hold, settle and void, each answering as its own endpoint would', async () => {
    const base = await serve()
    await post(base, { ops: [{ op: 'mod', cred: credA, by: '100' }] })
    const opened = await post(base, {
      ops: [
        { op: 'hold', cred: credA, by: '30', ttl: '60', key: 'h-1' },
        { op: 'hold', cred: credA, by: '30', ttl: '60', key: 'h-1' },
        { op: 'hold', cred: credA, by: '71' },
        { op: 'hold', cred: credA, by: '0' },
        { op: 'hold', cred: credA, by: '20' },
        { op: 'tot', cred: credA },
      ],
    })
    const results = opened.body.results as Array<Record<string, unknown>>
    expect(results[0]).toMatchObject({ status: 200, by: '30', tot: '100', held: '30', avail: '70', seq: 2 })
    expect(Object.keys(results[0] ?? {})).toEqual(['hold', 'by', 'expires', 'tot', 'held', 'avail', 'seq', 'status'])
    expect(results[1]).toEqual({ ...results[0], replayed: true })
    expect(results[2]).toMatchObject({ status: 402, code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: '100', avail: '70' })
    expect(results[3]).toMatchObject({ status: 400, code: 'ACCMAN_INVALID_AMOUNT' })
    expect(results[5]).toEqual({ status: 200, tot: '100', seq: 3, held: '50', avail: '50' })
    const [first, second] = [results[0]?.hold as string, results[4]?.hold as string]
    const closed = await post(base, {
      ops: [
        { op: 'settle', cred: credA, hold: first, by: '10' },
        { op: 'void', cred: credA, hold: first },
        { op: 'void', cred: credA, hold: second },
        { op: 'settle', cred: credA, hold: 'short' },
      ],
    })
    expect(closed.body.results).toEqual([
      { status: 200, hold: first, settled: '10', tot: '90', held: '20', avail: '70', seq: 4 },
      expect.objectContaining({ status: 409, code: 'ACCMAN_HOLD_CLOSED' }),
      { status: 200, hold: second, tot: '90', held: '0', avail: '90', seq: 5 },
      expect.objectContaining({ status: 400, code: 'ACCMAN_INVALID_QUERY' }),
    ])
  })

  it('applies operations in order, each as if sent alone, with mixed results', async () => {
    const base = await serve()
    const answer = await post(base, {
      ops: [
        { op: 'tot', cred: credA },
        { op: 'mod', cred: credA, by: '100', note: 'first' },
        { op: 'mod', cred: credA, by: '-30' },
        { op: 'tot', cred: credA },
        { op: 'mod', cred: credA, by: '-500' },
        { op: 'mod', cred: credB, by: '-1' },
        { op: 'mod', cred: 'not a credential', by: '1' },
        { op: 'mod', cred: credB, by: '0' },
        { op: 'mod', cred: credB, by: '5', key: 'k 1' },
        { op: 'mod', cred: credB, by: '5', note: 'x'.repeat(257) },
      ],
    })
    expect(answer.status).toBe(200)
    expect(answer.body.results).toEqual([
      { status: 404, statusCode: 404, code: 'ACCMAN_NO_ACCOUNT', error: 'Not Found', message: 'no account for this credential' },
      { status: 200, tot: '100', seq: 1, held: '0', avail: '100' },
      { status: 200, tot: '70', seq: 2, held: '0', avail: '70' },
      { status: 200, tot: '70', seq: 2, held: '0', avail: '70' },
      expect.objectContaining({ status: 402, code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: '70' }),
      expect.objectContaining({ status: 404, code: 'ACCMAN_NO_ACCOUNT' }),
      expect.objectContaining({ status: 400, code: 'ACCMAN_INVALID_CRED' }),
      expect.objectContaining({ status: 400, code: 'ACCMAN_INVALID_AMOUNT' }),
      expect.objectContaining({ status: 400, code: 'ACCMAN_INVALID_QUERY', message: expect.stringContaining('Idempotency-Key') as unknown }),
      expect.objectContaining({ status: 400, code: 'ACCMAN_INVALID_QUERY', message: expect.stringContaining('note') as unknown }),
    ])
    expect(JSON.stringify(answer.body)).not.toContain(credA)
    expect(await totOf(base, credA)).toBe('70')
    expect(await totOf(base, credB)).toContain('ACCMAN_NO_ACCOUNT')
  })

  it('answers a replay with replayed:true and applies it once', async () => {
    const base = await serve()
    const ops = [
      { op: 'mod', cred: credA, by: '10', key: 'charge-1' },
      { op: 'mod', cred: credA, by: '10', key: 'charge-1' },
    ]
    const first = await post(base, { ops })
    expect(first.body.results).toEqual([
      { status: 200, tot: '10', seq: 1, held: '0', avail: '10' },
      { status: 200, tot: '10', seq: 1, held: '0', avail: '10', replayed: true },
    ])
    const again = await post(base, { ops: [ops[0], { op: 'mod', cred: credA, by: '11', key: 'charge-1' }] })
    expect(again.body.results).toEqual([
      { status: 200, tot: '10', seq: 1, held: '0', avail: '10', replayed: true },
      expect.objectContaining({ status: 422, code: 'ACCMAN_IDEMPOTENCY_MISMATCH' }),
    ])
    expect(await totOf(base, credA)).toBe('10')
  })

  it('gives a read token its tot results and a 403 result per write', async () => {
    const write = 'w'.repeat(32)
    const read = 'r'.repeat(32)
    const base = await serve({ tokens: [write], readTokens: [read] })
    await post(base, { ops: [{ op: 'mod', cred: credA, by: '7' }] }, { authorization: `Bearer ${write}` })
    const answer = await post(
      base,
      { ops: [{ op: 'tot', cred: credA }, { op: 'mod', cred: credA, by: '1' }] },
      { authorization: `Bearer ${read}` },
    )
    expect(answer.body.results).toEqual([
      { status: 200, tot: '7', seq: 1, held: '0', avail: '7' },
      expect.objectContaining({ status: 403, code: 'ACCMAN_FORBIDDEN' }),
    ])
    const none = await post(base, { ops: [{ op: 'tot', cred: credA }] })
    expect(none.status).toBe(401)
  })

  it('refuses another media type with 415', async () => {
    const base = await serve()
    const answer = await post(base, JSON.stringify({ ops: [{ op: 'mod', cred: credA, by: '1' }] }), { 'content-type': 'text/plain' })
    expect(answer.status).toBe(415)
    expect(answer.body.code).toBe('ACCMAN_UNSUPPORTED_MEDIA_TYPE')
    expect(await totOf(base, credA)).not.toBe('1')
  })

  it.each([
    ['not JSON', '{"ops":[', 'the body is not JSON'],
    ['no ops', {}, 'ops must be an array'],
    ['zero ops', { ops: [] }, 'ops must hold 1 to 1000 operations, not 0'],
    ['an unknown op', { ops: [{ op: 'mod', cred: credA, by: '1' }, { op: 'burn', cred: credA }] }, 'ops[1].op'],
    ['a missing field', { ops: [{ op: 'mod', cred: credA, by: '1' }, { op: 'mod', cred: credA }] }, 'ops[1].by'],
    ['a number for by', { ops: [{ op: 'mod', cred: credA, by: '1' }, { op: 'tot', cred: credA }, { op: 'mod', cred: credA, by: 5 }] }, 'ops[2].by'],
    ['an unknown field', { ops: [{ op: 'mod', cred: credA, by: '1', extra: credA }] }, 'ops[0].extra'],
  ])('refuses %s with 400 ACCMAN_INVALID_BODY, applying nothing', async (_name, body, message) => {
    const base = await serve()
    const answer = await post(base, body)
    expect(answer.status).toBe(400)
    expect(answer.body.code).toBe('ACCMAN_INVALID_BODY')
    expect(answer.body.message).toContain(message)
    expect(JSON.stringify(answer.body)).not.toContain(credA)
    expect(await totOf(base, credA)).not.toBe('1')
  })

  it('takes 1,000 operations at their longest and refuses 1,001', async () => {
    const base = await serve()
    const ops = Array.from({ length: 1000 }, (_, index) => ({
      op: 'mod',
      cred: credA,
      by: '1',
      note: '\u{1F600}'.repeat(256),
      key: `k${index}`.padEnd(255, 'x'),
    }))
    const full = await post(base, { ops })
    expect(full.status).toBe(200)
    expect((full.body.results as unknown[]).length).toBe(1000)
    expect(await totOf(base, credA)).toBe('1000')
    const over = await post(base, { ops: [...ops, { op: 'tot', cred: credA }] })
    expect(over.status).toBe(400)
    expect(over.body.message).toContain('not 1001')
    expect(await totOf(base, credA)).toBe('1000')
  })

  it('refuses a batch the writer queue has no room for with 503, applying nothing', async () => {
    const base = await serve({ writerQueueMax: 500, writerBatchMax: 100 })
    const mods = (count: number) => Array.from({ length: count }, () => ({ op: 'mod', cred: credA, by: '1' }))
    const refused = await post(base, { ops: [{ op: 'mod', cred: credA, by: '1000' }, ...mods(500)] })
    expect(refused.status).toBe(503)
    expect(refused.body.code).toBe('ACCMAN_QUEUE_FULL')
    expect(await totOf(base, credA)).toContain('ACCMAN_NO_ACCOUNT')
    const taken = await post(base, { ops: mods(500) })
    expect(taken.status).toBe(200)
    expect(await totOf(base, credA)).toBe('500')
  })
})

describe('POST /batch durability', () => {
  const directory = temporaryDirectories('accman-batch-')

  it('every mod a 200 answered is in /past after kill -9 and a restart', async () => {
    const db = directory()
    const server = new ServerProcess({ ACCMAN_DB: db, ACCMAN_SYNC: 'true' })
    const base = await server.url()
    const ops = Array.from({ length: 300 }, (_, index) => ({ op: 'mod', cred: index % 2 === 0 ? credA : credB, by: '2', key: `d-${index}` }))
    const answer = await post(base, { ops })
    expect(answer.status).toBe(200)
    expect((answer.body.results as { status: number }[]).every((result) => result.status === 200)).toBe(true)
    await server.kill('SIGKILL')

    const restarted = new ServerProcess({ ACCMAN_DB: db })
    const reader = new Client(await restarted.url(), 2)
    try {
      for (const cred of [credA, credB]) {
        const entries = await readHistory(reader, cred)
        expect(entries.map((entry) => (entry as { key?: string }).key)).toEqual(
          ops.filter((op) => op.cred === cred).map((op) => op.key),
        )
        expect(entries.at(-1)?.tot).toBe('300')
      }
    } finally {
      reader.close()
      await restarted.kill('SIGTERM')
    }
  })
})
