// The HTTP contract, through app.inject on memory-level (and on PostgreSQL: test/http-postgres.test.ts).
import type { FastifyInstance } from 'fastify'
import { MemoryLevel } from 'memory-level'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { classicCred, query, testApp } from './support.js'

const max = '170141183460469231731687303715884105727'
let app: FastifyInstance

beforeEach(async () => {
  app = await testApp()
})
afterEach(async () => {
  await app.close()
})

const tot = (cred: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: `/tot?${query({ cred })}`, headers })
const mod = (parameters: Record<string, string>, headers: Record<string, string> = {}) =>
  app.inject({ method: 'PATCH', url: `/mod?${query(parameters)}`, headers })
const past = (parameters: Record<string, string>, headers: Record<string, string> = {}) =>
  app.inject({ method: 'GET', url: `/past?${query(parameters)}`, headers })

describe('tot and mod', () => {
  test('a credit creates the account; the answer is the bare balance as text', async () => {
    expect((await tot(classicCred)).statusCode).toBe(404)
    const credited = await mod({ cred: classicCred, by: '1000' })
    expect(credited.statusCode).toBe(200)
    expect(credited.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(credited.body).toBe('1000')
    const debited = await mod({ cred: classicCred, by: '-1' })
    expect(debited.body).toBe('999')
    const read = await tot(classicCred)
    expect(read.statusCode).toBe(200)
    expect(read.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(read.body).toBe('999')
  })

  test('JSON when Accept prefers it, with the seq the balance is valid at', async () => {
    const json = { accept: 'application/json' }
    const credited = await mod({ cred: classicCred, by: '1000' }, json)
    expect(credited.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(credited.json()).toEqual({ tot: '1000', seq: 1, held: '0', avail: '1000' })
    expect((await mod({ cred: classicCred, by: '1' }, json)).json()).toEqual({ tot: '1001', seq: 2, held: '0', avail: '1001' })
    expect((await tot(classicCred, json)).json()).toEqual({ tot: '1001', seq: 2, held: '0', avail: '1001' })
  })

  test.each([
    ['*/*', 'text'],
    ['text/plain', 'text'],
    ['text/*', 'text'],
    ['application/json, text/plain', 'json'],
    ['text/plain, application/json', 'text'],
    ['text/plain;q=0.5, application/json', 'json'],
    ['application/json;q=0.2, */*;q=0.1', 'json'],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'text'],
  ])('Accept %s answers %s', async (accept, representation) => {
    await mod({ cred: classicCred, by: '7' })
    const reply = await tot(classicCred, { accept })
    expect(reply.statusCode).toBe(200)
    expect(reply.body).toBe(representation === 'json' ? '{"tot":"7","seq":1,"held":"0","avail":"7"}' : '7')
  })

  test('an Accept that takes neither text nor JSON gets 406 and the mod is not applied', async () => {
    await mod({ cred: classicCred, by: '7' })
    const refused = await mod({ cred: classicCred, by: '1' }, { accept: 'image/png' })
    expect(refused.statusCode).toBe(406)
    expect(refused.json()).toMatchObject({ code: 'ACCMAN_NOT_ACCEPTABLE' })
    expect((await tot(classicCred)).body).toBe('7')
  })

  test('balances are exact up to 2^127 - 1, and past it is a 422 that writes nothing', async () => {
    expect((await mod({ cred: classicCred, by: max })).body).toBe(max)
    const overflow = await mod({ cred: classicCred, by: '1' })
    expect(overflow.statusCode).toBe(422)
    expect(overflow.json()).toMatchObject({ statusCode: 422, code: 'ACCMAN_OVERFLOW', error: 'Unprocessable Entity' })
    expect((await mod({ cred: classicCred, by: `-${max}` })).body).toBe('0')
    expect((await tot(classicCred, { accept: 'application/json' })).json()).toEqual({ tot: '0', seq: 2, held: '0', avail: '0' })
  })

  test('a debit on an unknown credential is a 404 that creates nothing', async () => {
    const reply = await mod({ cred: classicCred, by: '-1' })
    expect(reply.statusCode).toBe(404)
    expect(reply.json()).toEqual({
      statusCode: 404,
      code: 'ACCMAN_NO_ACCOUNT',
      error: 'Not Found',
      message: 'no account for this credential',
    })
    expect((await tot(classicCred)).statusCode).toBe(404)
    expect((await past({ cred: classicCred })).statusCode).toBe(404)
  })

  test('an overdraft is a 402 naming the balance and the amount, and writes nothing', async () => {
    await mod({ cred: classicCred, by: '5' })
    const reply = await mod({ cred: classicCred, by: '-6' })
    expect(reply.statusCode).toBe(402)
    const body = reply.json<{ code: string; error: string; message: string; tot: string }>()
    expect(body.code).toBe('ACCMAN_INSUFFICIENT_FUNDS')
    expect(body.error).toBe('Payment Required')
    expect(body.tot).toBe('5')
    expect(body.message).toMatch(/\b5\b.*-6/)
    expect((await tot(classicCred, { accept: 'application/json' })).json()).toEqual({ tot: '5', seq: 1, held: '0', avail: '5' })
  })

  test('two strings that decode to the same bytes are two accounts', async () => {
    await mod({ cred: 'AB==', by: '3' })
    expect((await tot('AB==')).body).toBe('3')
    expect((await tot('AA==')).statusCode).toBe(404)
  })

  test('credentials at the length bounds', async () => {
    const longest = 'A'.repeat(512)
    expect((await mod({ cred: longest, by: '1' })).statusCode).toBe(200)
    expect((await mod({ cred: 'AAAA', by: '1' })).statusCode).toBe(200)
    expect((await mod({ cred: `${longest}AAAA`, by: '1' })).json()).toMatchObject({ code: 'ACCMAN_INVALID_CRED' })
  })
})

describe('idempotency keys', () => {
  test('a retry returns the first result, says so, and writes nothing', async () => {
    await mod({ cred: classicCred, by: '100' })
    const key = { 'idempotency-key': 'charge-42', accept: 'application/json' }
    const first = await mod({ cred: classicCred, by: '-10' }, key)
    expect(first.json()).toEqual({ tot: '90', seq: 2, held: '0', avail: '90' })
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    await mod({ cred: classicCred, by: '-1' })
    const retry = await mod({ cred: classicCred, by: '-10' }, key)
    expect(retry.statusCode).toBe(200)
    expect(retry.headers['idempotent-replayed']).toBe('true')
    expect(retry.json()).toEqual({ tot: '90', seq: 2, held: '0', avail: '90' })
    expect((await tot(classicCred)).body).toBe('89')
  })

  test('the same key with another amount is a 422; a rejected mod keeps its key free', async () => {
    const key = { 'idempotency-key': 'k' }
    expect((await mod({ cred: classicCred, by: '-5' }, key)).statusCode).toBe(404)
    await mod({ cred: classicCred, by: '4' })
    expect((await mod({ cred: classicCred, by: '-5' }, key)).statusCode).toBe(402)
    await mod({ cred: classicCred, by: '1' })
    expect((await mod({ cred: classicCred, by: '-5' }, key)).body).toBe('0')
    const mismatch = await mod({ cred: classicCred, by: '-6' }, key)
    expect(mismatch.statusCode).toBe(422)
    expect(mismatch.json()).toMatchObject({ code: 'ACCMAN_IDEMPOTENCY_MISMATCH' })
  })

  test('a note is at most 256 characters, counted as a person counts them', async () => {
    expect((await mod({ cred: classicCred, by: '1', note: '🙂'.repeat(256) })).statusCode).toBe(200)
    const tooLong = await mod({ cred: classicCred, by: '1', note: '🙂'.repeat(257) })
    expect(tooLong.statusCode).toBe(400)
    expect(tooLong.json()).toMatchObject({ code: 'ACCMAN_INVALID_QUERY' })
    const entries = (await past({ cred: classicCred })).json<{ entries: { note: string }[] }>().entries
    expect(entries).toHaveLength(1)
    expect(entries[0]?.note).toBe('🙂'.repeat(256))
  })

  test('the key and the note are kept in the history', async () => {
    await mod({ cred: classicCred, by: '100', note: 'payment #1' }, { 'idempotency-key': 'pay-1' })
    const entry = (await past({ cred: classicCred })).json<{ entries: Record<string, unknown>[] }>().entries[0]
    expect(entry).toMatchObject({ seq: 1, by: '100', tot: '100', note: 'payment #1', key: 'pay-1' })
  })
})

describe('past', () => {
  test('every accepted mod, oldest first, each tot chaining from the last', async () => {
    for (const by of ['10', '-3', '5']) await mod({ cred: classicCred, by })
    await mod({ cred: classicCred, by: '-100' }) // refused: not in the history
    const reply = await past({ cred: classicCred })
    expect(reply.statusCode).toBe(200)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    const body = reply.json<{ tot: string; seq: number; entries: { seq: number; by: string; tot: string; at: string }[] }>()
    expect(body.tot).toBe('12')
    expect(body.seq).toBe(3)
    expect(body.entries.map(({ seq, by, tot }) => ({ seq, by, tot }))).toEqual([
      { seq: 1, by: '10', tot: '10' },
      { seq: 2, by: '-3', tot: '7' },
      { seq: 3, by: '5', tot: '12' },
    ])
    for (const entry of body.entries) expect(entry.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    expect(Object.keys(body.entries[0] ?? {})).toEqual(['seq', 'kind', 'by', 'tot', 'held', 'at'])
  })

  test('limit, after, before and order page through the history', async () => {
    for (let index = 0; index < 120; index++) await mod({ cred: classicCred, by: '1' })
    const seqs = async (parameters: Record<string, string>) =>
      (await past({ cred: classicCred, ...parameters })).json<{ entries: { seq: number }[] }>().entries.map((e) => e.seq)
    expect(await seqs({})).toHaveLength(100)
    expect((await seqs({})).at(0)).toBe(1)
    expect(await seqs({ limit: '2', after: '100' })).toEqual([101, 102])
    expect(await seqs({ limit: '2', order: 'desc' })).toEqual([120, 119])
    expect(await seqs({ limit: '2', order: 'desc', before: '50' })).toEqual([49, 48])
    expect(await seqs({ limit: '1000' })).toHaveLength(120)
  })

  test('from and to filter on time, inclusive, in UTC milliseconds', async () => {
    await app.close()
    let clockMs = Date.parse('2026-11-21T10:00:00.000Z')
    // A clock the test moves is the writer's, so LevelDB's; PostgreSQL's entry times come from
    // its own clock (test/ledger.suite.ts filters on those).
    app = await testApp({ now: () => clockMs, db: new MemoryLevel<string, string>() })
    for (let index = 0; index < 5; index++) {
      await mod({ cred: classicCred, by: '1' })
      clockMs += 60_000
    }
    const seqs = async (parameters: Record<string, string>) =>
      (await past({ cred: classicCred, ...parameters })).json<{ entries: { seq: number }[] }>().entries.map((e) => e.seq)
    expect(await seqs({ from: '2026-11-21T10:01:00.000Z', to: '2026-11-21T10:03:00Z' })).toEqual([2, 3, 4])
    expect(await seqs({ from: '2026-11-21T11:01:00+01:00' })).toEqual([2, 3, 4, 5])
    expect(await seqs({ to: '2026-11-20' })).toEqual([])
    // A date alone is the whole day: from its first to its last millisecond, UTC.
    expect(await seqs({ from: '2026-11-21', to: '2026-11-21' })).toEqual([1, 2, 3, 4, 5])
    expect(await seqs({ from: '2026-11-22' })).toEqual([])
    expect(await seqs({ from: '2026-11-21', order: 'desc', limit: '2' })).toEqual([5, 4])
  })

  test('past answers JSON only', async () => {
    await mod({ cred: classicCred, by: '1' })
    expect((await past({ cred: classicCred }, { accept: 'text/plain' })).statusCode).toBe(406)
    expect((await past({ cred: classicCred }, { accept: 'text/plain, application/json;q=0.5' })).statusCode).toBe(200)
  })
})

describe('bad input: a 4xx with a stable code naming the parameter; nothing changes; nothing echoed', () => {
  const cases: [string, string, Record<string, string>, number, string, string][] = [
    // [method, path+query, headers, status, code, text the message must contain]
    ['GET', '/tot', {}, 400, 'ACCMAN_INVALID_QUERY', 'cred'],
    ['GET', '/tot?cred=', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=abc', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=abcde', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=ab%2Bc', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=ab%2Fc', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=abc%3D%3D', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=a===', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', '/tot?cred=%ZZ%ZZ', {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', `/tot?cred=${'A'.repeat(516)}`, {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['GET', `/tot?cred=${classicCred}&cred=${classicCred}`, {}, 400, 'ACCMAN_INVALID_QUERY', 'cred'],
    ['GET', `/tot?cred=${classicCred}&by=1`, {}, 400, 'ACCMAN_INVALID_QUERY', 'parameter'],
    ['GET', `/tot?${classicCred}`, {}, 400, 'ACCMAN_INVALID_QUERY', 'parameter'],
    ['PATCH', `/mod?cred=${classicCred}`, {}, 400, 'ACCMAN_INVALID_QUERY', 'by'],
    ['PATCH', `/mod?by=1`, {}, 400, 'ACCMAN_INVALID_QUERY', 'cred'],
    ['PATCH', `/mod?cred=${classicCred}&by=`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=0`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=-0`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=01`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=%2B1`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=1.5`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=1e3`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=0x10`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=%201`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=170141183460469231731687303715884105728`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=-170141183460469231731687303715884105728`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=${'9'.repeat(400)}`, {}, 400, 'ACCMAN_INVALID_AMOUNT', 'by'],
    ['PATCH', `/mod?cred=${classicCred}&by=1&by=1`, {}, 400, 'ACCMAN_INVALID_QUERY', 'by'],
    ['PATCH', `/mod?cred=bad&by=1`, {}, 400, 'ACCMAN_INVALID_CRED', 'cred'],
    ['PATCH', `/mod?cred=${classicCred}&by=1&note=${'n'.repeat(257)}`, {}, 400, 'ACCMAN_INVALID_QUERY', 'note'],
    ['PATCH', `/mod?cred=${classicCred}&by=1&extra=1`, {}, 400, 'ACCMAN_INVALID_QUERY', 'parameter'],
    ['PATCH', `/mod?cred=${classicCred}&by=1`, { 'idempotency-key': '' }, 400, 'ACCMAN_INVALID_QUERY', 'Idempotency-Key'],
    ['PATCH', `/mod?cred=${classicCred}&by=1`, { 'idempotency-key': 'a b' }, 400, 'ACCMAN_INVALID_QUERY', 'Idempotency-Key'],
    ['PATCH', `/mod?cred=${classicCred}&by=1`, { 'idempotency-key': 'k'.repeat(256) }, 400, 'ACCMAN_INVALID_QUERY', 'Idempotency-Key'],
    ['PATCH', `/mod?cred=${classicCred}&by=1`, { 'idempotency-key': 'é' }, 400, 'ACCMAN_INVALID_QUERY', 'Idempotency-Key'],
    ['GET', `/past?cred=${classicCred}&limit=0`, {}, 400, 'ACCMAN_INVALID_QUERY', 'limit'],
    ['GET', `/past?cred=${classicCred}&limit=1001`, {}, 400, 'ACCMAN_INVALID_QUERY', 'limit'],
    ['GET', `/past?cred=${classicCred}&limit=ten`, {}, 400, 'ACCMAN_INVALID_QUERY', 'limit'],
    ['GET', `/past?cred=${classicCred}&limit=`, {}, 400, 'ACCMAN_INVALID_QUERY', 'limit'],
    ['GET', `/past?cred=${classicCred}&after=-1`, {}, 400, 'ACCMAN_INVALID_QUERY', 'after'],
    ['GET', `/past?cred=${classicCred}&before=1.5`, {}, 400, 'ACCMAN_INVALID_QUERY', 'before'],
    ['GET', `/past?cred=${classicCred}&order=up`, {}, 400, 'ACCMAN_INVALID_QUERY', 'order'],
    ['GET', `/past?cred=${classicCred}&from=yesterday`, {}, 400, 'ACCMAN_INVALID_QUERY', 'from'],
    ['GET', `/past?cred=${classicCred}&to=2026-13-01`, {}, 400, 'ACCMAN_INVALID_QUERY', 'to'],
    ['GET', `/past?cred=${classicCred}&limit=1&limit=2`, {}, 400, 'ACCMAN_INVALID_QUERY', 'limit'],
    ['GET', `/nowhere?cred=${classicCred}`, {}, 404, 'ACCMAN_NOT_FOUND', 'route'],
    ['GET', `/mod?cred=${classicCred}&by=1`, {}, 405, 'ACCMAN_METHOD_NOT_ALLOWED', 'PATCH'],
    ['POST', `/mod?cred=${classicCred}&by=1`, {}, 405, 'ACCMAN_METHOD_NOT_ALLOWED', 'PATCH'],
    ['DELETE', `/past?cred=${classicCred}`, {}, 405, 'ACCMAN_METHOD_NOT_ALLOWED', 'GET'],
    ['GET', `/tot?cred=${classicCred}`, { accept: 'image/png' }, 406, 'ACCMAN_NOT_ACCEPTABLE', 'text/plain'],
  ]

  test.each(cases)('%s %s', async (method, url, headers, status, code, named) => {
    await mod({ cred: classicCred, by: '50' })
    const before = (await past({ cred: classicCred })).body
    const reply = await app.inject({ method: method as 'GET', url, headers })
    expect(reply.statusCode).toBe(status)
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8')
    const body = reply.json<{ statusCode: number; code: string; error: string; message: string }>()
    expect(body.statusCode).toBe(status)
    expect(body.code).toBe(code)
    expect(body.error.length).toBeGreaterThan(0)
    expect(body.message).toContain(named)
    expect(reply.body).not.toContain(classicCred)
    expect(reply.body).not.toContain('abcdefghijklmnopqrstuvwxyz')
    expect((await past({ cred: classicCred })).body).toBe(before)
  })

  test('a request body is refused and nothing is written', async () => {
    const reply = await app.inject({
      method: 'PATCH',
      url: `/mod?${query({ cred: classicCred, by: '1' })}`,
      headers: { 'content-type': 'application/json' },
      payload: '{"by":"1000"}',
    })
    expect(reply.statusCode).toBe(413)
    expect(reply.json()).toMatchObject({ code: 'ACCMAN_PAYLOAD_TOO_LARGE', message: 'no endpoint takes a request body' })
    expect((await tot(classicCred)).statusCode).toBe(404)
  })
})

test('/healthz answers 200 once the database is open', async () => {
  const reply = await app.inject({ method: 'GET', url: '/healthz' })
  expect(reply.statusCode).toBe(200)
  expect(reply.json()).toEqual({ status: 'ok' })
})

describe('accounts: /acct and reads by public id', () => {
  const acct = (parameters: Record<string, string>) => app.inject({ method: 'GET', url: `/acct?${query(parameters)}` })

  test('/acct describes the account; /acct, /past and /holds find it by its public id', async () => {
    await mod({ cred: classicCred, by: '1000', ttl: '3600' })
    const described = await acct({ cred: classicCred })
    expect(described.statusCode).toBe(200)
    const body = described.json<Record<string, unknown>>()
    expect(Object.keys(body).sort()).toEqual(['account', 'avail', 'created', 'expires', 'held', 'seq', 'tot', 'updated'])
    expect(body).toMatchObject({ tot: '1000', held: '0', avail: '1000', seq: 1 })
    expect(body.account).toMatch(/^acct_[A-Za-z0-9_-]{22}$/)
    expect(JSON.stringify(body)).not.toContain(classicCred)
    const id = body.account as string
    expect((await acct({ id })).json()).toEqual(body)
    const history = await app.inject({ method: 'GET', url: `/past?${query({ id })}` })
    expect(history.json<{ entries: Array<{ by: string }> }>().entries.map((entry) => entry.by)).toEqual(['1000'])
    expect((await app.inject({ method: 'GET', url: `/holds?${query({ id })}` })).json()).toEqual({ held: '0', holds: [] })
  })

  test('an unknown credential, id or ref is 404 naming what found nothing; a bad or doubled one is 400', async () => {
    const nothing = [
      [`/acct?${query({ cred: classicCred })}`, 'no account for this credential'],
      [`/acct?${query({ id: 'acct_AAAAAAAAAAAAAAAAAAAAAA' })}`, 'no account with this id'],
      [`/past?${query({ id: 'acct_AAAAAAAAAAAAAAAAAAAAAA' })}`, 'no account with this id'],
      [`/holds?${query({ id: 'acct_AAAAAAAAAAAAAAAAAAAAAA' })}`, 'no account with this id'],
      [`/tot?${query({ ref: 'customer-none' })}`, 'no account with this ref'],
    ] as const
    for (const [url, message] of nothing) {
      const reply = await app.inject({ method: 'GET', url })
      expect([reply.statusCode, reply.json<{ code: string }>().code, reply.json<{ message: string }>().message], url).toEqual([404, 'ACCMAN_NO_ACCOUNT', message])
    }
    const malformed = await acct({ id: 'acct_nope' })
    expect([malformed.statusCode, malformed.json<{ code: string }>().code]).toEqual([400, 'ACCMAN_INVALID_QUERY'])
    expect(malformed.json<{ message: string }>().message).toContain('id')
    const both = await acct({ cred: classicCred, id: 'acct_AAAAAAAAAAAAAAAAAAAAAA' })
    expect([both.statusCode, both.json<{ code: string }>().code]).toEqual([400, 'ACCMAN_INVALID_QUERY'])
    expect(both.json<{ message: string }>().message).toContain('one of cred, id and ref')
    expect(both.body).not.toContain(classicCred)
    expect((await app.inject({ method: 'GET', url: '/acct' })).statusCode).toBe(400)
  })
})
