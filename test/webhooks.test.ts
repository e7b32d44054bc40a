// Low-balance alerts and webhooks, end to end on both engines: AccMan listening on 127.0.0.1,
// a real receiver verifying every delivery with the standardwebhooks package, and the history
// as the truth the events are checked against.
import { MemoryLevel } from 'memory-level'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { AppConfig } from '../src/http/app.js'
import type { LedgerStore } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { Client, listenOnLoopback, logSink, query, runHere, testApp, waitFor } from './support.js'
import { Receiver, testSecret } from './webhook-receiver.js'
import pino from 'pino'

const engines: Array<[string, () => Promise<LedgerStore>]> = [
  ['LevelDB', () => openLevelStore(new MemoryLevel<string, string>(), { sync: false })],
  ['PostgreSQL', async () => openPostgresStore(await freshDatabase(), { sync: true, poolMax: 10, timeoutMs: 30_000 })],
]

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  vi.unstubAllEnvs()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface Started {
  app: FastifyInstance
  client: Client
  base: string
  logs: string[]
}

async function startAccMan(store: LedgerStore, config: Partial<AppConfig>): Promise<Started> {
  const logs: string[] = []
  const app = await testApp({ store, logger: pino({ level: 'debug' }, logSink(logs)), config: { webhookSecrets: [testSecret], webhookRetryBaseMs: 20, ...config } })
  const base = await listenOnLoopback(app)
  const client = new Client(base, 50)
  cleanups.push(async () => {
    client.close()
    await app.close()
  })
  return { app, client, base, logs }
}

async function startReceiver(): Promise<{ receiver: Receiver; url: string }> {
  const receiver = new Receiver(testSecret)
  const url = await receiver.listen()
  cleanups.push(() => receiver.close())
  return { receiver, url }
}

let modKeys = 0

/** A mod as a careful client sends it: with an idempotency key, sent again after a 503 (overload, full queue). */
async function mod(client: Client, cred: string, by: bigint): Promise<{ tot: string; seq: number }> {
  const headers = { accept: 'application/json', 'idempotency-key': `webhook-test-${process.pid}-${modKeys++}` }
  for (let attempt = 1; ; attempt++) {
    const reply = await client.send('PATCH', `/mod?${query({ cred, by: by.toString() })}`, headers)
    if (reply.status === 503 && attempt < 20) {
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt))
      continue
    }
    expect(reply.status, reply.body).toBe(200)
    return JSON.parse(reply.body) as { tot: string; seq: number }
  }
}

/** The seqs whose entry took tot from at or above `threshold` to below it, from the account's history. */
/** The public id of the account a credential addresses, as /acct gives it (events name accounts by it). */
async function publicIdOf(client: Client, cred: string): Promise<string> {
  const reply = await client.send('GET', `/acct?${query({ cred })}`, { accept: 'application/json' })
  return (JSON.parse(reply.body) as { account: string }).account
}

async function crossingsOf(client: Client, cred: string, threshold: bigint): Promise<number[]> {
  const seqs: number[] = []
  let previous = 0n
  for (let after = 0; ; ) {
    const reply = await client.send('GET', `/past?${query({ cred, after: String(after), limit: '1000' })}`, { accept: 'application/json' })
    const page = JSON.parse(reply.body) as { entries: Array<{ seq: number; tot: string }> }
    for (const entry of page.entries) {
      const tot = BigInt(entry.tot)
      if (previous >= threshold && threshold > tot) seqs.push(entry.seq)
      previous = tot
      after = entry.seq
    }
    if (page.entries.length < 1000) return seqs
  }
}

function credOf(name: string): string {
  return Buffer.from(`webhook-test-account-${name}`).toString('base64url') + '=='.slice(0, (4 - (Buffer.from(`webhook-test-account-${name}`).toString('base64url').length % 4)) % 4)
}

/** Polls an asynchronous condition until it holds; fails, naming `what`, after timeoutMs. */
async function eventually(what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface WebhooksStatus {
  endpoints: Array<{ url: string; disabled: boolean; pending: number; delivered: number; failed: number; lastError: string | null }>
  outbox: number
}

async function webhooksStatus(client: Client): Promise<WebhooksStatus> {
  return JSON.parse((await client.send('GET', '/webhooks')).body) as WebhooksStatus
}

async function metricValue(client: Client, name: string): Promise<number> {
  const text = (await client.send('GET', '/metrics')).body
  const line = text.split('\n').find((candidate) => candidate.startsWith(name))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

describe.each(engines)('webhooks on %s', (_engine, makeStore) => {
  it('PATCH /alert and PATCH /ref answer /tot’s JSON with the threshold in force and the ref, and write no history entry', async () => {
    const { client } = await startAccMan(await makeStore(), { alertBelowDefault: 50n })
    const cred = credOf('settings')
    await mod(client, cred, 1000n)
    let reply = await client.send('PATCH', `/alert?${query({ cred, below: '300' })}`)
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.body)).toEqual({ tot: '1000', seq: 1, held: '0', avail: '1000', alertBelow: '300' })
    reply = await client.send('PATCH', `/alert?${query({ cred, below: '' })}`)
    expect(JSON.parse(reply.body)).toEqual({ tot: '1000', seq: 1, held: '0', avail: '1000', alertBelow: '50' })
    reply = await client.send('PATCH', `/ref?${query({ cred, ref: 'customer-4711' })}`)
    expect(JSON.parse(reply.body)).toEqual({ tot: '1000', seq: 1, held: '0', avail: '1000', alertBelow: '50', ref: 'customer-4711' })
    // The settings survive mods, and reads take ref instead of cred.
    await mod(client, cred, -1n)
    reply = await client.send('GET', `/tot?${query({ ref: 'customer-4711' })}`, { accept: 'application/json' })
    expect(JSON.parse(reply.body)).toEqual({ tot: '999', seq: 2, held: '0', avail: '999' })
    reply = await client.send('GET', `/past?${query({ ref: 'customer-4711' })}`)
    expect((JSON.parse(reply.body) as { entries: unknown[] }).entries).toHaveLength(2)
    reply = await client.send('GET', `/holds?${query({ ref: 'customer-4711' })}`, { accept: 'application/json' })
    expect(JSON.parse(reply.body)).toEqual({ held: '0', holds: [] })
    reply = await client.send('GET', `/holds?${query({ ref: 'nobody-has-this' })}`, { accept: 'application/json' })
    expect(reply.status).toBe(404)
    reply = await client.send('PATCH', `/alert?${query({ cred, below: '7' })}`)
    expect(JSON.parse(reply.body)).toEqual({ tot: '999', seq: 2, held: '0', avail: '999', alertBelow: '7', ref: 'customer-4711' })
    // A ref names one account: another account cannot take it; the owner can change it.
    const other = credOf('settings-other')
    await mod(client, other, 5n)
    reply = await client.send('PATCH', `/ref?${query({ cred: other, ref: 'customer-4711' })}`)
    expect(reply.status).toBe(409)
    expect(JSON.parse(reply.body)).toMatchObject({ code: 'ACCMAN_REF_TAKEN' })
    reply = await client.send('PATCH', `/ref?${query({ cred, ref: 'customer-4712' })}`)
    expect(JSON.parse(reply.body)).toMatchObject({ ref: 'customer-4712' })
    expect((await client.send('GET', `/tot?${query({ ref: 'customer-4711' })}`)).status).toBe(404)
    reply = await client.send('PATCH', `/ref?${query({ cred: other, ref: 'customer-4711' })}`)
    expect(JSON.parse(reply.body)).toEqual({ tot: '5', seq: 1, held: '0', avail: '5', alertBelow: '50', ref: 'customer-4711' })
    reply = await client.send('PATCH', `/ref?${query({ cred: other, ref: '' })}`)
    expect(JSON.parse(reply.body)).toEqual({ tot: '5', seq: 1, held: '0', avail: '5', alertBelow: '50' })
    expect((await client.send('GET', `/tot?${query({ ref: 'customer-4711' })}`)).status).toBe(404)
    // Refusals write nothing and name the parameter.
    for (const [path, code] of [
      [`/alert?${query({ cred, below: '-1' })}`, 'ACCMAN_INVALID_QUERY'],
      [`/alert?${query({ cred: credOf('nobody'), below: '1' })}`, 'ACCMAN_NO_ACCOUNT'],
      [`/ref?${query({ cred, ref: 'x'.repeat(129) })}`, 'ACCMAN_INVALID_QUERY'],
      [`/tot?${query({ cred, ref: 'customer-4712' })}`, 'ACCMAN_INVALID_QUERY'],
    ] as const) {
      const method = path.startsWith('/tot') ? 'GET' : 'PATCH'
      const refused = await client.send(method, path)
      expect(JSON.parse(refused.body), path).toMatchObject({ code })
    }
    reply = await client.send('GET', `/past?${query({ cred })}`)
    expect((JSON.parse(reply.body) as { entries: unknown[] }).entries).toHaveLength(2)
  })

  it('1,000 threshold crossings in a concurrent load arrive as the history shows them, each verified and identified by webhook-id', async () => {
    const { receiver, url } = await startReceiver()
    const { client } = await startAccMan(await makeStore(), { webhookUrls: [url], alertBelowDefault: 100n })
    const accounts = Array.from({ length: 25 }, (_, index) => credOf(`load-${index}`))
    // Each account: 150, then 40 times down to 50 (a crossing) and back up; the accounts in parallel.
    await Promise.all(
      accounts.map(async (cred) => {
        await mod(client, cred, 150n)
        for (let cycle = 0; cycle < 40; cycle++) {
          await Promise.all([mod(client, cred, -100n), mod(client, cred, 100n)])
        }
      }),
    )
    const expected = new Map<string, { cred: string; seq: number }>()
    for (const cred of accounts) {
      const publicId = await publicIdOf(client, cred)
      for (const seq of await crossingsOf(client, cred, 100n)) expected.set(`${publicId}#${seq}`, { cred, seq })
    }
    expect(expected.size).toBeGreaterThanOrEqual(500)
    await waitFor('every crossing delivered', () => receiver.delivered.size >= expected.size, 60_000)
    const delivered = [...receiver.delivered.values()]
    expect(receiver.rejected).toEqual([])
    expect(delivered.every((event) => event.type === 'balance.low' && event.data.threshold === '100')).toBe(true)
    expect(new Set(delivered.map((event) => `${event.data.account}#${event.data.seq}`))).toEqual(new Set(expected.keys()))
    expect(delivered.every((event) => BigInt(event.data.tot) < 100n && event.data.avail === event.data.tot && event.data.held === '0')).toBe(true)
    console.info(`${_engine}: ${expected.size} crossings in the history, ${receiver.delivered.size} events delivered, ${receiver.deliveries.length} deliveries`)
  })

  it('a receiver that fails 3 times then succeeds gets the event, and balance.depleted fires at exactly 0', async () => {
    const { receiver, url } = await startReceiver()
    receiver.answer = (_id, attempt) => (attempt <= 3 ? 500 : 200)
    const { client } = await startAccMan(await makeStore(), { webhookUrls: [url] })
    const cred = credOf('flaky')
    await mod(client, cred, 10n)
    await client.send('PATCH', `/alert?${query({ cred, below: '5' })}`)
    await client.send('PATCH', `/ref?${query({ cred, ref: 'flaky-customer' })}`)
    await mod(client, cred, -10n)
    await waitFor('both events delivered', () => receiver.delivered.size === 2, 20_000)
    const events = [...receiver.delivered.values()].sort((a, b) => a.type.localeCompare(b.type))
    const publicId = await publicIdOf(client, cred)
    expect(events.map((event) => [event.type, event.data])).toEqual([
      ['balance.depleted', { account: publicId, tot: '0', held: '0', avail: '0', seq: 2, threshold: '5', ref: 'flaky-customer' }],
      ['balance.low', { account: publicId, tot: '0', held: '0', avail: '0', seq: 2, threshold: '5', ref: 'flaky-customer' }],
    ])
    for (const event of events) expect(receiver.attempts.get(event.id)).toBe(4)
    await eventually('the outbox empty', async () => (await webhooksStatus(client)).outbox === 0, 10_000)
    expect((await webhooksStatus(client)).endpoints[0]).toMatchObject({ url, delivered: 2, pending: 0, failed: 0 })
    expect(await metricValue(client, 'accman_webhook_deliveries_total{')).toBe(2)
  })

  it('410 disables the endpoint until accman webhooks enable', async () => {
    const { receiver, url } = await startReceiver()
    receiver.answer = () => 410
    const { client, base } = await startAccMan(await makeStore(), { webhookUrls: [url], alertBelowDefault: 5n })
    vi.stubEnv('ACCMAN_URL', base)
    const cred = credOf('gone')
    await mod(client, cred, 10n)
    await mod(client, cred, -6n)
    await waitFor('the 410', () => receiver.attempts.size === 1, 10_000)
    await eventually('the endpoint disabled', async () => (await webhooksStatus(client)).endpoints[0]?.disabled === true, 10_000)
    expect((await webhooksStatus(client)).endpoints[0]).toMatchObject({ disabled: true, pending: 1 })
    expect((await webhooksStatus(client)).endpoints[0]?.lastError).toContain('HTTP 410')
    const listed = await runHere(['webhooks'])
    expect(listed.stdout).toContain(`${url}  disabled`)
    expect(listed.stdout).toContain('HTTP 410')
    // While disabled, new events wait: nothing is sent.
    await mod(client, cred, 10n)
    await mod(client, cred, -10n)
    await eventually('two events pending', async () => (await webhooksStatus(client)).endpoints[0]?.pending === 2, 10_000)
    expect(receiver.attempts.size).toBe(1)
    receiver.answer = () => 200
    const enabled = await runHere(['webhooks', 'enable', url])
    expect(enabled).toMatchObject({ code: 0, stdout: `enabled ${url}\n` })
    await waitFor('both events delivered', () => receiver.delivered.size === 2, 20_000)
    expect((await webhooksStatus(client)).endpoints[0]).toMatchObject({ disabled: false })
    expect((await runHere(['webhooks', 'enable', 'http://127.0.0.1:1/unknown'])).code).not.toBe(0)
  })

  it('marks an event failed past the retry window, and accman webhooks retry sends it again', async () => {
    const { receiver, url } = await startReceiver()
    receiver.answer = () => 503
    const { client, base } = await startAccMan(await makeStore(), { webhookUrls: [url], alertBelowDefault: 5n, webhookRetryWindowMs: 1 })
    vi.stubEnv('ACCMAN_URL', base)
    const cred = credOf('retry')
    await mod(client, cred, 10n)
    await mod(client, cred, -6n)
    await eventually('a failed delivery', async () => (await webhooksStatus(client)).endpoints[0]?.failed === 1, 10_000)
    // The window (1 ms here) starts at the first attempt: the second one, past it, gives up.
    expect([...receiver.attempts.values()]).toEqual([2])
    receiver.answer = () => 200
    expect(await runHere(['webhooks', 'retry'])).toMatchObject({ code: 0, stdout: '1 failed deliveries will be sent again\n' })
    await waitFor('the retried event delivered', () => receiver.delivered.size === 1, 10_000)
  })

  it('the outbox bound drops the oldest undelivered events, with an error log and a metric', async () => {
    const { receiver, url } = await startReceiver()
    receiver.answer = () => 503
    const { client, logs } = await startAccMan(await makeStore(), { webhookUrls: [url], alertBelowDefault: 5n, outboxMax: 3 })
    const cred = credOf('bound')
    await mod(client, cred, 10n)
    // Six crossings, each seq 2k (k = 1..6); the endpoint refuses them all meanwhile.
    for (let crossing = 0; crossing < 6; crossing++) {
      await mod(client, cred, -6n)
      await mod(client, cred, 6n)
    }
    await eventually('three events dropped', async () => (await metricValue(client, 'accman_webhook_events_dropped_total')) === 3, 10_000)
    expect(logs.some((line) => line.includes('dropped the oldest undelivered events') && line.includes('"level":50'))).toBe(true)
    receiver.answer = () => 200
    await waitFor('the three newest delivered', () => receiver.delivered.size === 3, 20_000)
    expect([...receiver.delivered.values()].map((event) => event.data.seq).sort((a, b) => a - b)).toEqual([8, 10, 12])
    expect(logs.join('\n')).not.toContain(url)
  })
})
