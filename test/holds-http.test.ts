// Holds over HTTP, through real listening servers, on both engines: the contract's answers, and
// the races the issue names (holds on a small avail, settle against void, settle against expiry,
// debits against holds, kill -9 with holds open).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import type { LedgerStore } from '../src/ledger/index.js'
import { freshDatabase } from './postgres-support.js'
import { Client, killLeftoverServers, listenOnLoopback, ServerProcess, testApp } from './support.js'

const directories: string[] = []
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true })
})
afterEach(async () => {
  await killLeftoverServers()
})

interface Engine {
  name: string
  /** A store for an in-process app (undefined: memory-level). */
  store: () => Promise<LedgerStore | undefined>
  /** ACCMAN_DB for a server process: a fresh database. */
  db: () => Promise<string>
}

const engines: Engine[] = [
  {
    name: 'LevelDB',
    store: async () => undefined,
    db: async () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-holds-'))
      directories.push(directory)
      return directory
    },
  },
  {
    name: 'PostgreSQL',
    store: async () => await openPostgresStore(await freshDatabase(), { sync: true, poolMax: 10, timeoutMs: 30_000 }),
    db: freshDatabase,
  },
]

const cred = 'aG9sZHMtaHR0cC1hbGljZQ=='
const otherCred = 'aG9sZHMtaHR0cC1ib2I='

type Json = Record<string, unknown>

/** Waits for `check` to hold, polling; fails after `timeoutMs`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

class Api {
  constructor(readonly client: Client) {}

  async call(method: string, path: string, parameters: Record<string, string>, headers: Record<string, string> = {}) {
    const search = new URLSearchParams(parameters).toString()
    const reply = await this.client.send(method, `${path}?${search}`, { accept: 'application/json', ...headers })
    return { status: reply.status, body: JSON.parse(reply.body) as Json, text: reply.body, headers: reply.headers }
  }

  mod = (by: string, c = cred) => this.call('PATCH', '/mod', { cred: c, by })
  hold = (by: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    this.call('PATCH', '/hold', { cred, by, ...extra }, headers)
  settle = (hold: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) =>
    this.call('PATCH', '/settle', { cred, hold, ...extra }, headers)
  void = (hold: string, extra: Record<string, string> = {}) => this.call('PATCH', '/void', { cred, hold, ...extra })
  tot = () => this.call('GET', '/tot', { cred })
  holds = () => this.call('GET', '/holds', { cred })
  past = () => this.call('GET', '/past', { cred, limit: '1000' })
}

describe.each(engines)('holds over HTTP on $name', (engine) => {
  async function serve(): Promise<{ api: Api; app: FastifyInstance; close: () => Promise<void> }> {
    const store = await engine.store()
    const app = await testApp(store === undefined ? {} : { store })
    const client = new Client(await listenOnLoopback(app), 100)
    return {
      api: new Api(client),
      app,
      close: async () => {
        client.close()
        await app.close()
      },
    }
  }

  test('the contract: answers, replays, listings, /tot, /past and the refusals in their order', async () => {
    const { api, close } = await serve()
    try {
      expect((await api.mod('100')).body).toEqual({ tot: '100', seq: 1, held: '0', avail: '100' })
      const hold = await api.hold('30', { ttl: '60', note: 'job 1' }, { 'idempotency-key': 'h1' })
      expect(hold.status).toBe(200)
      const id = hold.body.hold as string
      expect(id).toMatch(/^[A-Za-z0-9_-]{16,64}$/)
      const expires = Date.parse(hold.body.expires as string)
      expect(hold.body).toEqual({ hold: id, by: '30', expires: new Date(expires).toISOString(), tot: '100', held: '30', avail: '70', seq: 2 })
      await api.mod('5')
      // A replay answers the first body exactly, as it was then.
      const replay = await api.hold('30', { ttl: '60', note: 'job 1' }, { 'idempotency-key': 'h1' })
      expect(replay.text).toBe(hold.text)
      expect(replay.headers['idempotent-replayed']).toBe('true')
      expect((await api.hold('31', { ttl: '60' }, { 'idempotency-key': 'h1' })).body.code).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      expect((await api.tot()).body).toEqual({ tot: '105', seq: 3, held: '30', avail: '75' })
      const listed = await api.holds()
      const at = ((listed.body.holds as Json[])[0]?.at ?? '') as string
      expect(Date.parse(at)).toBe(expires - 60_000)
      expect(listed.body).toEqual({ held: '30', holds: [{ hold: id, by: '30', at, expires: hold.body.expires, note: 'job 1' }] })
      // 402 carries tot and avail.
      const refused = await api.hold('76')
      expect(refused.status).toBe(402)
      expect(refused.body).toMatchObject({ code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: '105', avail: '75' })
      const overdraft = await api.mod('-76')
      expect(overdraft.status).toBe(402)
      expect(overdraft.body).toMatchObject({ tot: '105', avail: '75' })
      // Malformed input: 400, nothing changes.
      for (const [extra, code] of [
        [{ by: '0' }, 'ACCMAN_INVALID_AMOUNT'],
        [{ by: '-1' }, 'ACCMAN_INVALID_AMOUNT'],
        [{ by: '1.5' }, 'ACCMAN_INVALID_AMOUNT'],
        [{ by: '1', ttl: '0' }, 'ACCMAN_INVALID_QUERY'],
        [{ by: '1', ttl: '604801' }, 'ACCMAN_INVALID_QUERY'],
        [{ by: '1', ttl: 'x' }, 'ACCMAN_INVALID_QUERY'],
      ] as const) {
        const answer = await api.call('PATCH', '/hold', { cred, ...extra })
        expect([answer.status, answer.body.code]).toEqual([400, code])
      }
      expect((await api.settle('short')).body.code).toBe('ACCMAN_INVALID_QUERY')
      expect((await api.settle(id, { by: '0' })).body.code).toBe('ACCMAN_INVALID_AMOUNT')
      expect((await api.void('not a hold id!!!!!!!!!')).body.code).toBe('ACCMAN_INVALID_QUERY')
      expect((await api.settle('AAAAAAAAAAAAAAAAAAAAAA')).status).toBe(404)
      expect((await api.settle('AAAAAAAAAAAAAAAAAAAAAA')).body.code).toBe('ACCMAN_NO_HOLD')
      expect((await api.call('PATCH', '/hold', { cred: otherCred, by: '1' })).body.code).toBe('ACCMAN_NO_ACCOUNT')
      const exceeded = await api.settle(id, { by: '31' })
      expect([exceeded.status, exceeded.body.code]).toEqual([422, 'ACCMAN_HOLD_EXCEEDED'])
      const settled = await api.settle(id, { by: '20', note: 'job 1 done' })
      expect(settled.body).toEqual({ hold: id, settled: '20', tot: '85', held: '0', avail: '85', seq: 4 })
      const again = await api.void(id)
      expect([again.status, again.body.code]).toEqual([409, 'ACCMAN_HOLD_CLOSED'])
      // 409 comes before 422.
      expect((await api.settle(id, { by: '31' })).status).toBe(409)
      const second = await api.hold('10')
      const voided = await api.void(second.body.hold as string)
      expect(voided.body).toEqual({ hold: second.body.hold, tot: '85', held: '0', avail: '85', seq: 6 })
      const past = await api.past()
      expect(past.body.held).toBe('0')
      const entries = past.body.entries as Json[]
      expect(entries.map((entry) => [entry.kind, entry.by, entry.tot, entry.heldBy, entry.held])).toEqual([
        ['mod', '100', '100', undefined, '0'],
        ['hold', '0', '100', '30', '30'],
        ['mod', '5', '105', undefined, '30'],
        ['settle', '-20', '85', '-30', '0'],
        ['hold', '0', '85', '10', '10'],
        ['void', '0', '85', '-10', '0'],
      ])
      expect(entries[1]?.hold).toBe(id)
      expect(entries[3]).toMatchObject({ hold: id, note: 'job 1 done' })
      const metrics = await api.client.send('GET', '/metrics')
      expect(metrics.body).toMatch(/accman_holds_total\{event="opened"\} 2/)
      expect(metrics.body).toMatch(/accman_hold_settled_units_total 20/)
    } finally {
      await close()
    }
  })

  test('200 concurrent holds of 1 on avail 50: exactly 50 holds and 150 402s', async () => {
    const { api, close } = await serve()
    try {
      await api.mod('50')
      const answers = await Promise.all(Array.from({ length: 200 }, () => api.hold('1')))
      expect(answers.filter((answer) => answer.status === 200)).toHaveLength(50)
      expect(answers.filter((answer) => answer.status === 402)).toHaveLength(150)
      expect((await api.tot()).body).toEqual({ tot: '50', seq: 51, held: '50', avail: '0' })
      expect(((await api.holds()).body.holds as Json[]).length).toBe(50)
    } finally {
      await close()
    }
  })

  test('100 racing settle/void pairs on 100 holds: exactly one winner each, the other 409', async () => {
    const { api, close } = await serve()
    try {
      await api.mod('1000')
      const holds = await Promise.all(Array.from({ length: 100 }, () => api.hold('3')))
      const ids = holds.map((hold) => hold.body.hold as string)
      const answers = await Promise.all(ids.flatMap((id) => [api.settle(id, { by: '2' }), api.void(id)]))
      for (let index = 0; index < 100; index++) {
        const pair = [answers[2 * index]?.status, answers[2 * index + 1]?.status].sort()
        expect(pair).toEqual([200, 409])
      }
      const settledCount = answers.filter((answer, index) => index % 2 === 0 && answer.status === 200).length
      expect((await api.tot()).body).toEqual({ tot: String(1000 - 2 * settledCount), seq: 201, held: '0', avail: String(1000 - 2 * settledCount) })
    } finally {
      await close()
    }
  })

  test('debits racing holds never take avail below 0', async () => {
    const { api, close } = await serve()
    try {
      await api.mod('100')
      const answers = await Promise.all(Array.from({ length: 300 }, (_, index) => (index % 2 === 0 ? api.hold('1') : api.mod('-1'))))
      const accepted = answers.filter((answer) => answer.status === 200).length
      expect(accepted).toBe(100)
      expect(answers.every((answer) => answer.status === 200 || answer.status === 402)).toBe(true)
      const tot = (await api.tot()).body
      expect(tot.avail).toBe('0')
      for (const entry of (await api.past()).body.entries as Json[]) expect(BigInt(entry.tot as string) - BigInt(entry.held as string) >= 0n).toBe(true)
    } finally {
      await close()
    }
  })

  test('settles racing expiry never settle an expired hold', async () => {
    const { api, close } = await serve()
    try {
      await api.mod('1000')
      const holds = await Promise.all(Array.from({ length: 40 }, () => api.hold('1', { ttl: '1' })))
      const expiresById = new Map(holds.map((hold) => [hold.body.hold as string, Date.parse(hold.body.expires as string)]))
      const open = new Set(expiresById.keys())
      // Settle each hold, a few at a time, until every one is settled or expired.
      const deadline = Date.now() + 10_000
      let index = 0
      while (open.size > 0) {
        expect(Date.now()).toBeLessThan(deadline)
        const batch = [...open].slice(0, 2)
        const answers = await Promise.all(batch.map((id) => api.settle(id, { by: '1', note: String(index++) })))
        for (const [position, answer] of answers.entries()) {
          expect([200, 410]).toContain(answer.status)
          open.delete(batch[position] ?? '')
        }
      }
      await until(async () => (await api.past()).body.held === '0' && ((await api.past()).body.entries as Json[]).filter((entry) => entry.kind === 'expire').length + ((await api.past()).body.entries as Json[]).filter((entry) => entry.kind === 'settle').length === 40, 10_000, 'the expiries to be written')
      const entries = (await api.past()).body.entries as Json[]
      for (const entry of entries) {
        const expires = expiresById.get(entry.hold as string)
        if (entry.kind === 'settle') expect(Date.parse(entry.at as string)).toBeLessThan(expires ?? 0)
        if (entry.kind === 'expire') {
          expect(Date.parse(entry.at as string)).toBeGreaterThanOrEqual(expires ?? Infinity)
          expect(Date.parse(entry.at as string) - (expires ?? 0)).toBeLessThan(5000)
        }
      }
      const settledOrExpired = new Set(entries.filter((entry) => entry.kind === 'settle' || entry.kind === 'expire').map((entry) => entry.hold))
      expect(settledOrExpired.size).toBe(40)
    } finally {
      await close()
    }
  })

  test('kill -9 with active holds: after restart they are there, and expire on time, recorded', async () => {
    const db = await engine.db()
    const server = new ServerProcess({ ACCMAN_DB: db, ACCMAN_SYNC: 'true' })
    const api = new Api(new Client(await server.url(), 10))
    await api.mod('100')
    const short = await api.hold('10', { ttl: '3' })
    const long = await api.hold('20', { ttl: '600' })
    await server.kill('SIGKILL')
    api.client.close()
    const restarted = new ServerProcess({ ACCMAN_DB: db })
    const again = new Api(new Client(await restarted.url(), 10))
    try {
      const ids = ((await again.holds()).body.holds as Json[]).map((hold) => hold.hold)
      expect(ids).toContain(long.body.hold)
      const shortExpires = Date.parse(short.body.expires as string)
      // Counted until its instant, not after, whether or not its expiry is written.
      await until(async () => Date.now() > shortExpires + 50, 10_000, 'the short hold to pass its expiry')
      expect((await again.tot()).body).toMatchObject({ held: '20', avail: '80' })
      await until(
        async () => ((await again.past()).body.entries as Json[]).some((entry) => entry.kind === 'expire'),
        10_000,
        'the expire entry',
      )
      const expire = ((await again.past()).body.entries as Json[]).find((entry) => entry.kind === 'expire')
      expect(expire).toMatchObject({ hold: short.body.hold, by: '0', heldBy: '-10', held: '20' })
      expect(Date.parse(expire?.at as string) - shortExpires).toBeLessThan(5000)
      expect(((await again.holds()).body.holds as Json[]).map((hold) => hold.hold)).toEqual([long.body.hold])
    } finally {
      again.client.close()
      await restarted.kill('SIGTERM')
    }
  })
})
