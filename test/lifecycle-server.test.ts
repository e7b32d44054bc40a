// Moves, expiry, freezing, named-token actors and /past?key= through real listening servers on
// 127.0.0.1, on LevelDB and on PostgreSQL; and kill -9 during a stream of moves.
import { MemoryLevel } from 'memory-level'
import { ClassicLevel } from 'classic-level'
import type { FastifyInstance } from 'fastify'
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest'
import { AccManClient } from '../src/client/index.js'
import { parseConfig } from '../src/config.js'
import { credentialKeyOf, type LedgerStore } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { verifyStore } from '../src/ledger/verify.js'
import { freshDatabase } from './postgres-support.js'
import { Client, killLeftoverServers, listenOnLoopback, query, runHere, ServerProcess, temporaryDirectories, testApp, waitFor, type Reply } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-lifecycle-')
afterEach(killLeftoverServers)

interface PastEntry {
  seq: number
  kind: string
  by: string
  tot: string
  move?: string
  key?: string
  actor?: string
  note?: string
}

const engines: Array<[string, () => Promise<LedgerStore>]> = [
  ['LevelDB', async () => openLevelStore(new MemoryLevel<string, string>(), { sync: false })],
  ['PostgreSQL', async () => openPostgresStore(await freshDatabase(), { sync: true, poolMax: 10, timeoutMs: 30_000 })],
]

const apps: FastifyInstance[] = []
afterAll(async () => {
  for (const app of apps) await app.close()
})

async function serve(store: LedgerStore, config: NonNullable<Parameters<typeof testApp>[0]>['config'] = {}): Promise<{ client: Client; url: string }> {
  const app = await testApp({ store, config })
  apps.push(app)
  const url = await listenOnLoopback(app)
  return { client: new Client(url, 64), url }
}

const json = (reply: Reply) => JSON.parse(reply.body) as Record<string, unknown>
/** Any string: for fields whose value the test cannot know (times, random ids). */
const anyString: unknown = expect.any(String)
const matching = (pattern: RegExp): unknown => expect.stringMatching(pattern)

async function history(client: Client, cred: string, headers: Record<string, string> = {}): Promise<PastEntry[]> {
  const entries: PastEntry[] = []
  for (;;) {
    const reply = await client.send('GET', `/past?${query({ cred, limit: '1000', after: String(entries.length) })}`, headers)
    expect(reply.status).toBe(200)
    const page = json(reply) as { entries: PastEntry[] }
    if (page.entries.length === 0) return entries
    entries.push(...page.entries)
  }
}

/** seq contiguous from 1 and each tot the previous plus by. */
function expectChained(entries: PastEntry[]): void {
  let tot = 0n
  for (const [index, entry] of entries.entries()) {
    expect(entry.seq).toBe(index + 1)
    tot += BigInt(entry.by)
    expect(BigInt(entry.tot)).toBe(tot)
  }
}

const alice = 'YWxpY2Utc2VydmVy'
const bob = 'Ym9iLXNlcnZlcg=='
const carol = 'Y2Fyb2wtc2VydmVy'

describe.each(engines)('on %s, through a listening server', (_engine, makeStore) => {
  test('1,000 concurrent moves A->B and B->A of 1 each keep A+B = 1000, with both histories chained', async () => {
    const store = await makeStore()
    const { client } = await serve(store)
    for (const cred of [alice, bob]) expect((await client.send('PATCH', `/mod?${query({ cred, by: '500' })}`)).status).toBe(200)
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, index) =>
        client.send('PATCH', `/move?${query(index % 2 === 0 ? { cred: alice, to: bob, by: '1' } : { cred: bob, to: alice, by: '1' })}`),
      ),
    )
    expect(replies.filter((reply) => reply.status !== 200).map((reply) => reply.body)).toEqual([])
    const a = await history(client, alice)
    const b = await history(client, bob)
    expectChained(a)
    expectChained(b)
    expect(BigInt(a.at(-1)?.tot ?? '0') + BigInt(b.at(-1)?.tot ?? '0')).toBe(1000n)
    expect(a.length + b.length).toBe(2002)
    // Every acknowledged move is on both sides, with opposite amounts and one id.
    const ids = replies.map((reply) => json(reply).move as string)
    const sides = new Map<string, bigint[]>()
    for (const entry of [...a, ...b]) if (entry.move !== undefined) sides.set(entry.move, [...(sides.get(entry.move) ?? []), BigInt(entry.by)])
    expect(new Set(ids).size).toBe(1000)
    for (const id of ids) expect(sides.get(id)?.sort()).toEqual([-1n, 1n])
    const report = await verifyStore(store)
    expect(report.faults).toEqual([])
    expect(report.entries).toBe(2002)
  })

  test('a move answers for FROM; refusals name their cause and write nothing', async () => {
    const { client } = await serve(await makeStore())
    await client.send('PATCH', `/mod?${query({ cred: alice, by: '100' })}`)
    await client.send('PATCH', `/mod?${query({ cred: bob, by: '1' })}`)
    const moved = await client.send('PATCH', `/move?${query({ cred: alice, to: bob, by: '30', note: 'split' })}`, { 'idempotency-key': 'mv-1' })
    expect(moved.status).toBe(200)
    const body = json(moved)
    expect(body).toEqual({ move: matching(/^[A-Za-z0-9_-]{22}$/), tot: '70', held: '0', avail: '70', seq: 2 })
    const replay = await client.send('PATCH', `/move?${query({ cred: alice, to: bob, by: '30', note: 'split' })}`, { 'idempotency-key': 'mv-1' })
    expect(json(replay)).toEqual(body)
    expect(replay.headers['idempotent-replayed']).toBe('true')
    const [out] = (await history(client, alice)).slice(-1)
    const [into] = (await history(client, bob)).slice(-1)
    expect(out).toEqual({ seq: 2, kind: 'move', by: '-30', tot: '70', held: '0', at: anyString, note: 'split', key: 'mv-1', move: body.move })
    expect(into).toEqual({ seq: 2, kind: 'move', by: '30', tot: '31', held: '0', at: anyString, note: 'split', move: body.move })
    expect(JSON.stringify([out, into])).not.toContain(alice)
    expect(JSON.stringify([out, into])).not.toContain(bob)

    const refusal = async (parameters: Record<string, string>) => {
      const reply = await client.send('PATCH', `/move?${query(parameters)}`)
      return { status: reply.status, ...json(reply) }
    }
    expect(await refusal({ cred: alice, to: carol, by: '1' })).toMatchObject({ status: 404, code: 'ACCMAN_NO_ACCOUNT', message: matching(/\bto\b/) })
    expect(await refusal({ cred: carol, to: alice, by: '1' })).toMatchObject({ status: 404, code: 'ACCMAN_NO_ACCOUNT' })
    expect(await refusal({ cred: alice, to: bob, by: '71' })).toMatchObject({ status: 402, code: 'ACCMAN_INSUFFICIENT_FUNDS', tot: '70', avail: '70' })
    expect(await refusal({ cred: alice, to: alice, by: '1' })).toMatchObject({ status: 400, code: 'ACCMAN_INVALID_QUERY' })
    expect(await refusal({ cred: alice, to: 'not a credential', by: '1' })).toMatchObject({ status: 400, code: 'ACCMAN_INVALID_CRED' })
    expect(await refusal({ cred: alice, to: bob, by: '-1' })).toMatchObject({ status: 400, code: 'ACCMAN_INVALID_AMOUNT' })
    expect(await refusal({ cred: alice, to: bob, by: '1', ttl: '5' })).toMatchObject({ status: 400, code: 'ACCMAN_INVALID_QUERY' })
    await client.send('PATCH', `/mod?${query({ cred: carol, by: String(2n ** 127n - 1n) })}`)
    expect(await refusal({ cred: alice, to: carol, by: '1' })).toMatchObject({ status: 422, code: 'ACCMAN_OVERFLOW' })
    expect((await client.send('GET', `/tot?${query({ cred: alice })}`)).body).toBe('70')
  })

  test('POST /batch takes move operations, each answered as PATCH /move would', async () => {
    const { client, url } = await serve(await makeStore())
    await client.send('PATCH', `/mod?${query({ cred: alice, by: '10' })}`)
    await client.send('PATCH', `/mod?${query({ cred: bob, by: '1' })}`)
    const ops = [
      { op: 'move', cred: alice, to: bob, by: '4', key: 'b-move' },
      { op: 'move', cred: alice, to: bob, by: '4', key: 'b-move' },
      { op: 'tot', cred: bob },
      { op: 'move', cred: alice, to: bob, by: '100' },
      { op: 'move', cred: alice, to: alice, by: '1' },
      { op: 'move', cred: alice, to: carol, by: '1' },
    ]
    const response = await fetch(`${url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ops }) })
    const { results } = (await response.json()) as { results: Array<Record<string, unknown>> }
    const id = results[0]?.move
    expect(results.map((result) => [result.status, result.code ?? result.tot])).toEqual([
      [200, '6'],
      [200, '6'],
      [200, '5'],
      [402, 'ACCMAN_INSUFFICIENT_FUNDS'],
      [400, 'ACCMAN_INVALID_QUERY'],
      [404, 'ACCMAN_NO_ACCOUNT'],
    ])
    expect(results[1]).toEqual({ status: 200, move: id, tot: '6', held: '0', avail: '6', seq: 2, replayed: true })
    // With part of FROM held, the batch answers held and avail as PATCH /move does.
    expect((await client.send('PATCH', `/hold?${query({ cred: alice, by: '2' })}`)).status).toBe(200)
    const single = json(await client.send('PATCH', `/move?${query({ cred: alice, to: bob, by: '1' })}`))
    expect(single).toMatchObject({ tot: '5', held: '2', avail: '3' })
    const batched = await fetch(`${url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ops: [{ op: 'move', cred: alice, to: bob, by: '1' }] }) })
    const [result] = ((await batched.json()) as { results: Array<Record<string, unknown>> }).results
    expect(result).toEqual({ status: 200, move: expect.any(String) as string, tot: '4', held: '2', avail: '2', seq: 5 })
  })

  test('freeze and unfreeze: 423 on debits and moves out, credits accepted, entries of kind freeze/unfreeze', async () => {
    const { client } = await serve(await makeStore())
    await client.send('PATCH', `/mod?${query({ cred: alice, by: '10' })}`)
    await client.send('PATCH', `/mod?${query({ cred: bob, by: '10' })}`)
    const frozen = await client.send('PATCH', `/freeze?${query({ cred: alice })}`)
    expect([frozen.status, json(frozen)]).toEqual([200, { tot: '10', seq: 2, frozen: true }])
    expect(json(await client.send('PATCH', `/freeze?${query({ cred: alice })}`))).toEqual({ tot: '10', seq: 2, frozen: true })
    const debit = await client.send('PATCH', `/mod?${query({ cred: alice, by: '-1' })}`)
    expect([debit.status, json(debit).code]).toEqual([423, 'ACCMAN_FROZEN'])
    expect((await client.send('PATCH', `/move?${query({ cred: alice, to: bob, by: '1' })}`)).status).toBe(423)
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '5' })}`)).status).toBe(200)
    expect((await client.send('PATCH', `/move?${query({ cred: bob, to: alice, by: '5' })}`)).status).toBe(200)
    expect((await client.send('GET', `/tot?${query({ cred: alice })}`)).body).toBe('20')
    expect(json(await client.send('PATCH', `/unfreeze?${query({ cred: alice })}`))).toEqual({ tot: '20', seq: 5, frozen: false })
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '-20' })}`)).status).toBe(200)
    expect((await history(client, alice)).map((entry) => [entry.kind, entry.by])).toEqual([
      ['mod', '10'],
      ['freeze', '0'],
      ['mod', '5'],
      ['move', '5'],
      ['unfreeze', '0'],
      ['mod', '-20'],
    ])
    expect((await client.send('PATCH', `/freeze?${query({ cred: carol })}`)).status).toBe(404)
    for (const path of ['/move', '/freeze', '/unfreeze']) {
      const wrongMethod = await client.send('GET', `${path}?${query({ cred: alice })}`)
      expect([wrongMethod.status, wrongMethod.headers.allow, json(wrongMethod).code]).toEqual([405, 'PATCH', 'ACCMAN_METHOD_NOT_ALLOWED'])
    }
  })

  test('expiry: ttl on a credit, 410 once it passes, reads still answer, a credit with ttl reopens', async () => {
    const { client } = await serve(await makeStore())
    const credited = await client.send('PATCH', `/mod?${query({ cred: alice, by: '100', ttl: '1' })}`, { accept: 'application/json' })
    expect(json(credited)).toEqual({ tot: '100', seq: 1, held: '0', avail: '100', expires: matching(/^\d{4}-\d\d-\d\dT/) })
    const expires = json(credited).expires
    expect(json(await client.send('GET', `/tot?${query({ cred: alice })}`, { accept: 'application/json' }))).toEqual({ tot: '100', seq: 1, held: '0', avail: '100', expires })
    const debitOf = (by: string) => client.send('PATCH', `/mod?${query({ cred: alice, by })}`)
    // 402 while open (more than the balance), 410 once expired: the probe never applies.
    let status = 0
    const deadline = Date.now() + 15_000
    while (status !== 410) {
      expect(Date.now()).toBeLessThan(deadline)
      status = (await debitOf('-1000')).status
    }
    const refused = await debitOf('-1')
    expect([refused.status, json(refused).code]).toEqual([410, 'ACCMAN_EXPIRED'])
    expect((await client.send('GET', `/tot?${query({ cred: alice })}`)).body).toBe('100')
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '1' })}`)).status).toBe(200)
    expect((await debitOf('-1')).status).toBe(410)
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '1', ttl: '3600' })}`)).status).toBe(200)
    expect((await debitOf('-1')).status).toBe(200)
    const badTtl = await client.send('PATCH', `/mod?${query({ cred: alice, by: '-1', ttl: '60' })}`)
    expect([badTtl.status, json(badTtl).code]).toEqual([400, 'ACCMAN_INVALID_QUERY'])
    for (const ttl of ['0', '315360001', '1.5', '-5', 'x']) {
      const reply = await client.send('PATCH', `/mod?${query({ cred: alice, by: '1', ttl })}`)
      expect([reply.status, json(reply).code, json(reply).message]).toEqual([400, 'ACCMAN_INVALID_QUERY', matching(/ttl/)])
    }
  })

  test('named tokens: entries carry the name as actor, never the token; /past?key= answers "was it charged?"', async () => {
    const writeToken = 'billing-token-0123456789abcdef'
    const plainToken = 'plain-token-0123456789abcdef'
    const config = parseConfig({ ACCMAN_TOKENS: `billing:${writeToken},${plainToken}`, ACCMAN_READ_TOKENS: 'support:read-token-0123456789abcdef' })
    expect(config.tokens).toEqual([writeToken, plainToken])
    expect(config.tokenNames).toEqual(['billing', undefined])
    const { client } = await serve(await makeStore(), { tokens: config.tokens, readTokens: config.readTokens, tokenNames: config.tokenNames ?? [], readTokenNames: config.readTokenNames ?? [] })
    const as = (token: string) => ({ authorization: `Bearer ${token}` })
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '10' })}`, as(writeToken))).status).toBe(200)
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '-1' })}`, { ...as(plainToken), 'idempotency-key': 'req-42' })).status).toBe(200)
    expect((await client.send('PATCH', `/freeze?${query({ cred: alice })}`, as(writeToken))).status).toBe(200)
    expect((await client.send('PATCH', `/mod?${query({ cred: alice, by: '1' })}`, as('read-token-0123456789abcdef'))).status).toBe(403)
    const entries = await history(client, alice, as('read-token-0123456789abcdef'))
    expect(entries.map((entry) => entry.actor)).toEqual(['billing', undefined, 'billing'])
    expect(JSON.stringify(entries)).not.toContain(writeToken)
    const byKey = await client.send('GET', `/past?${query({ cred: alice, key: 'req-42' })}`, as(writeToken))
    expect(json(byKey)).toEqual({ tot: '9', seq: 3, held: '0', entries: [{ seq: 2, kind: 'mod', by: '-1', tot: '9', held: '0', at: anyString, key: 'req-42' }] })
    const none = await client.send('GET', `/past?${query({ cred: alice, key: 'req-43' })}`, as(writeToken))
    expect(json(none).entries).toEqual([])
    // Holds, settles, voids and rotations carry the name too.
    expect((await client.send('PATCH', `/unfreeze?${query({ cred: alice })}`, as(plainToken))).status).toBe(200)
    const held = await client.send('PATCH', `/hold?${query({ cred: alice, by: '3' })}`, as(writeToken))
    expect(held.status).toBe(200)
    expect((await client.send('PATCH', `/settle?${query({ cred: alice, hold: json(held).hold as string, by: '1' })}`, as(writeToken))).status).toBe(200)
    const second = await client.send('PATCH', `/hold?${query({ cred: alice, by: '2' })}`, as(plainToken))
    expect((await client.send('PATCH', `/void?${query({ cred: alice, hold: json(second).hold as string })}`, as(writeToken))).status).toBe(200)
    const renamed = 'bmFtZWQtdG9rZW4tcm90YXRlZA=='
    expect((await client.send('PATCH', `/rotate?${query({ cred: alice, new: renamed })}`, as(writeToken))).status).toBe(200)
    const later = (await history(client, renamed, as(writeToken))).slice(3)
    expect(later.map((entry) => [entry.kind, entry.actor])).toEqual([
      ['unfreeze', undefined],
      ['hold', 'billing'],
      ['settle', 'billing'],
      ['hold', undefined],
      ['void', 'billing'],
      ['rotate', 'billing'],
    ])
    expect(JSON.stringify(later)).not.toContain(writeToken)
  })
})

describe.each([
  ['LevelDB', async () => ({ env: { ACCMAN_DB: temporaryDirectory(), ACCMAN_SYNC: 'true' } })],
  ['PostgreSQL', async () => ({ env: { ACCMAN_DB: await freshDatabase() } })],
])('kill -9 during a stream of moves, on %s', (engine, target) => {
  test('every acknowledged move is whole on both sides and none is half-applied', async () => {
    const { env } = await target()
    const creds = ['a2lsbC1tb3ZlLTE=', 'a2lsbC1tb3ZlLTI=', 'a2lsbC1tb3ZlLTM=']
    const server = new ServerProcess(env)
    const client = new Client(await server.url(), 32)
    for (const cred of creds) expect((await client.send('PATCH', `/mod?${query({ cred, by: '100000' })}`)).status).toBe(200)
    const acknowledged: string[] = []
    let stopped = false
    const loops = Array.from({ length: 24 }, async (_, worker) => {
      for (let index = 0; !stopped && index < 5000; index++) {
        const from = creds[(worker + index) % 3] ?? ''
        const to = creds[(worker + index + 1) % 3] ?? ''
        try {
          const reply = await client.send('PATCH', `/move?${query({ cred: from, to, by: '1' })}`)
          if (reply.status === 200) acknowledged.push(json(reply).move as string)
        } catch {
          return // the server is gone
        }
      }
    })
    await waitFor('300 acknowledged moves', () => acknowledged.length >= 300, 30_000)
    await server.kill('SIGKILL')
    stopped = true
    await Promise.all(loops)

    const store: LedgerStore =
      engine === 'LevelDB'
        ? await openLevelStore(new ClassicLevel<string, string>(env.ACCMAN_DB ?? ''), { sync: true })
        : await openPostgresStore(env.ACCMAN_DB ?? '', { sync: true, poolMax: 2, timeoutMs: 30_000 })
    try {
      const report = await verifyStore(store)
      expect(report.faults).toEqual([])
      // Both sides of every acknowledged move, and every move in the store has both sides.
      const sides = new Map<string, number>()
      let total = 0n
      for (const cred of creds) {
        // Each credential addresses its account through the credentials table.
        const { state: credential } = await store.readCredential(credentialKeyOf(cred))
        if (credential === undefined) throw new Error('a credential of the test addresses no account')
        const account = await store.readAccount(credential.accountKey)
        total += account?.tot ?? 0n
        const entries = await store.pageHistory(credential.accountKey, { seqLow: 1, seqHigh: account?.seq ?? 0, limit: 100_000, order: 'asc' })
        for (const entry of entries) if (entry.move !== undefined) sides.set(entry.move, (sides.get(entry.move) ?? 0) + 1)
      }
      expect(total).toBe(300_000n)
      for (const id of acknowledged) expect(sides.get(id)).toBe(2)
      expect([...sides.values()].every((count) => count === 2)).toBe(true)
      console.log(`kill -9 on ${engine}: ${acknowledged.length} moves acknowledged, ${sides.size} in the store, all whole`)
    } finally {
      await store.close()
    }
  })
})

describe('the client and the CLI', () => {
  test('client: move, freeze, unfreeze, pastByKey, and history entries with their kinds', async () => {
    const { url } = await serve(await openLevelStore(new MemoryLevel<string, string>(), { sync: false }))
    const client = new AccManClient({ url, batch: false })
    await client.mod(alice, 100n)
    await client.mod(bob, 1n, { ttlSeconds: 3600 })
    const moved = await client.move(alice, bob, 40n, { note: 'merge', idempotencyKey: 'c-move' })
    expect(moved).toEqual({ move: matching(/^[A-Za-z0-9_-]{22}$/), tot: 60n, seq: 2, replayed: false })
    expect(await client.move(alice, bob, 40n, { note: 'merge', idempotencyKey: 'c-move' })).toEqual({ ...moved, replayed: true })
    expect(await client.freeze(alice)).toEqual({ tot: 60n, seq: 3, frozen: true })
    await expect(client.mod(alice, -1n)).rejects.toMatchObject({ code: 'ACCMAN_FROZEN', status: 423 })
    await expect(client.move(alice, bob, 1n)).rejects.toMatchObject({ code: 'ACCMAN_FROZEN' })
    expect(await client.unfreeze(alice)).toEqual({ tot: 60n, seq: 4, frozen: false })
    const page = await client.past(alice)
    expect(page.entries.map((entry) => [entry.kind, entry.by, entry.move])).toEqual([
      ['mod', 100n, undefined],
      ['move', -40n, moved.move],
      ['freeze', 0n, undefined],
      ['unfreeze', 0n, undefined],
    ])
    expect((await client.pastByKey(alice, 'c-move')).entries.map((entry) => entry.seq)).toEqual([2])
    const refused = await client.move(alice, 'dW5rbm93bi10bw==', 1n).then(() => new Error('accepted'), (error: unknown) => error as Error)
    expect(refused).toMatchObject({ code: 'ACCMAN_NO_ACCOUNT' })
    expect(refused.message).not.toContain('dW5rbm93bi10bw==')
  })

  test('CLI: accman move, freeze and unfreeze', async () => {
    const { url } = await serve(await openLevelStore(new MemoryLevel<string, string>(), { sync: false }))
    vi.stubEnv('ACCMAN_URL', url)
    vi.stubEnv('ACCMAN_TOKEN', undefined)
    try {
      expect((await runHere(['mod', alice, '100'])).code).toBe(0)
      expect((await runHere(['mod', bob, '1'])).code).toBe(0)
      expect(await runHere(['move', alice, bob, '30', '--key', 'cli-m'])).toEqual({ code: 0, stdout: '70\n', stderr: '' })
      const again = await runHere(['move', alice, bob, '30', '--key', 'cli-m', '--json'])
      expect(JSON.parse(again.stdout)).toEqual({ move: matching(/^[A-Za-z0-9_-]{22}$/), tot: '70', held: '0', avail: '70', seq: 2 })
      expect(await runHere(['freeze', alice])).toEqual({ code: 0, stdout: 'frozen\n', stderr: '' })
      const refused = await runHere(['move', alice, bob, '1'])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toContain('ACCMAN_FROZEN')
      expect(refused.stderr).not.toContain(bob)
      expect(await runHere(['unfreeze', alice, '--json'])).toEqual({ code: 0, stdout: '{"tot":"70","seq":4,"frozen":false}\n', stderr: '' })
      expect((await runHere(['move', alice, 'bad cred', '1'])).code).toBe(2)
      expect((await runHere(['move', alice, bob, '-1'])).code).toBe(2)
    } finally {
      vi.unstubAllEnvs()
    }
  })
})
