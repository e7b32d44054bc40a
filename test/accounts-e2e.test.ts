// Rotation through a real listening server, on each engine: a rotation in the middle of 1,000
// concurrent debits loses none of them (every 200 is in the history, exactly once), and a
// rotation with grace=2 leaves the old credential working for 2 s, then answering 404.
import { ClassicLevel } from 'classic-level'
import type { FastifyInstance } from 'fastify'
import { afterAll, describe, expect, test } from 'vitest'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { Client, listenOnLoopback, query, readHistory, temporaryDirectories, testApp } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-accounts-e2e-')
const apps: FastifyInstance[] = []
afterAll(async () => {
  for (const app of apps) await app.close()
})

const engines: Array<[string, () => Promise<FastifyInstance>]> = [
  ['classic-level', async () => testApp({ db: new ClassicLevel<string, string>(temporaryDirectory()) })],
  ['PostgreSQL', async () => testApp({ store: await openPostgresStore(await freshDatabase(), { sync: true, poolMax: 10, timeoutMs: 30_000 }) })],
]

/** Figures the report quotes, printed once per engine. */
const figures: Record<string, unknown> = {}
afterAll(() => {
  console.log(`accounts e2e figures: ${JSON.stringify(figures)}`)
})

describe.each(engines)('rotation through a listening server on %s', (engine, makeApp) => {
  test('a rotation in the middle of 1,000 concurrent debits loses none of them', async () => {
    const app = await makeApp()
    apps.push(app)
    const client = new Client(await listenOnLoopback(app), 100)
    const older = 'ZTJlLW9sZC1jcmVkZW50aWFs'
    const newer = 'ZTJlLW5ldy1jcmVkZW50aWFs'
    try {
      expect((await client.send('PATCH', `/mod?${query({ cred: older, by: '5000' })}`)).status).toBe(200)
      const debit = (cred: string, index: number) =>
        client.send('PATCH', `/mod?${query({ cred, by: '-1' })}`, { accept: 'application/json', 'idempotency-key': `debit-${index}` }).then((reply) => ({ index, reply }))
      const first = Array.from({ length: 500 }, (_, index) => debit(older, index))
      const rotation = client.send('PATCH', `/rotate?${query({ cred: older, new: newer })}`, { 'idempotency-key': 'rotation-1' })
      const second = Array.from({ length: 500 }, (_, index) => debit(index % 2 === 0 ? older : newer, 500 + index))
      const answers = await Promise.all([...first, ...second])
      const rotated = await rotation
      expect(rotated.status).toBe(200)
      const statuses = new Map<number, number>()
      for (const { reply } of answers) statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1)
      // 404: an old credential already retired, or a new one not yet pointed at the account; 503:
      // the server shed load (on a machine this busy), and wrote nothing. Nothing else.
      expect([...statuses.keys()].filter((status) => ![200, 404, 503].includes(status)), JSON.stringify([...statuses])).toEqual([])
      const accepted = answers.filter(({ reply }) => reply.status === 200).map(({ index }) => `debit-${index}`)
      const history = await readHistory(client, newer, { missingIs: 'error' })
      const keys = history.map((entry) => (entry as { key?: string }).key).filter((key) => key?.startsWith('debit-'))
      // Every 200 is in the history, exactly once, and nothing else is.
      expect(new Set(keys).size).toBe(keys.length)
      expect([...keys].sort()).toEqual([...accepted].sort())
      expect(history).toHaveLength(2 + accepted.length)
      expect(history.filter((entry) => (entry as { kind?: string }).kind === 'rotate')).toHaveLength(1)
      for (const [index, entry] of history.entries()) {
        expect(entry.seq).toBe(index + 1)
        if (index > 0) expect(BigInt(entry.tot)).toBe(BigInt(history[index - 1]?.tot ?? '0') + BigInt(entry.by))
      }
      const tot = await client.send('GET', `/tot?${query({ cred: newer })}`)
      expect(tot.body).toBe(String(5000 - accepted.length))
      expect((await client.send('GET', `/tot?${query({ cred: older })}`)).status).toBe(404)
      figures[`${engine} debits accepted / refused 404 / rotation seq`] = [accepted.length, statuses.get(404) ?? 0, (JSON.parse(rotated.body) as { seq: number }).seq]
    } finally {
      client.close()
    }
  })

  test('after a rotation with grace=2 the old credential works for 2 s, then answers 404 everywhere', async () => {
    const app = await makeApp()
    apps.push(app)
    const client = new Client(await listenOnLoopback(app), 10)
    const older = 'Z3JhY2Utb2xk'
    const newer = 'Z3JhY2UtbmV3'
    try {
      expect((await client.send('PATCH', `/mod?${query({ cred: older, by: '30' })}`)).status).toBe(200)
      const sentMs = Date.now()
      const rotated = await client.send('PATCH', `/rotate?${query({ cred: older, new: newer, grace: '2' })}`, { 'idempotency-key': 'grace-rotation' })
      expect(rotated.status).toBe(200)
      const body = JSON.parse(rotated.body) as { account: string }
      expect((await client.send('GET', `/tot?${query({ cred: older })}`)).status).toBe(200)
      expect((await client.send('PATCH', `/mod?${query({ cred: older, by: '-1' })}`)).body).toBe('29')
      expect((await client.send('PATCH', `/mod?${query({ cred: newer, by: '-1' })}`)).body).toBe('28')
      // Wait for the condition, bounded: fails if the old credential still works after 20 s.
      const deadlineMs = sentMs + 20_000
      let retiredMs: number | undefined
      while (retiredMs === undefined) {
        const reply = await client.send('GET', `/tot?${query({ cred: older })}`)
        if (reply.status === 404) retiredMs = Date.now()
        else if (Date.now() > deadlineMs) throw new Error('the old credential still works 20 s after a rotation with grace=2')
        else await new Promise((resolve) => setTimeout(resolve, 25))
      }
      expect(retiredMs - sentMs).toBeGreaterThanOrEqual(1950)
      figures[`${engine} grace=2: old credential 404 after ms`] = retiredMs - sentMs
      for (const [method, path] of [
        ['GET', `/past?${query({ cred: older })}`],
        ['GET', `/acct?${query({ cred: older })}`],
        ['PATCH', `/mod?${query({ cred: older, by: '-1' })}`],
        ['PATCH', `/rotate?${query({ cred: older, new: 'Z3JhY2UtdGhpcmQ=' })}`],
      ] as const) {
        const reply = await client.send(method, path)
        expect(reply.status, path).toBe(404)
        expect(JSON.parse(reply.body)).toMatchObject({ code: 'ACCMAN_NO_ACCOUNT' })
      }
      // Except a retry of the rotation itself, which replays its answer.
      const replay = await client.send('PATCH', `/rotate?${query({ cred: older, new: newer, grace: '2' })}`, { 'idempotency-key': 'grace-rotation' })
      expect([replay.status, replay.body, replay.headers['idempotent-replayed']]).toEqual([200, rotated.body, 'true'])
      // The account is found by its public id without any credential; a credit with the old one opens another.
      expect(JSON.parse((await client.send('GET', `/acct?${query({ id: body.account })}`)).body)).toMatchObject({ tot: '28', seq: 4 })
      const reopened = await client.send('PATCH', `/mod?${query({ cred: older, by: '3' })}`, { accept: 'application/json' })
      expect(JSON.parse(reopened.body)).toEqual({ tot: '3', seq: 1, held: '0', avail: '3' })
      const other = JSON.parse((await client.send('GET', `/acct?${query({ cred: older })}`)).body) as { account: string }
      expect(other.account).not.toBe(body.account)
      // One rotation applied; its replay is not counted.
      expect((await client.send('GET', '/metrics')).body).toMatch(/^accman_rotations_total 1$/m)
    } finally {
      client.close()
    }
  })
})
