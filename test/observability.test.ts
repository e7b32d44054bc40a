// /metrics, /readyz and x-request-id, through a real listening server on 127.0.0.1.
import { createHash } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { MemoryLevel } from 'memory-level'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import type { AppConfig } from '../src/http/app.js'
import { amountMax } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { withOutage } from './ledger.suite.js'
import { Client, listenOnLoopback, logSink, query, testApp } from './support.js'

const cred = 'b2JzZXJ2YWJpbGl0eS1hY2NvdW50LTEyMzQ1Ng=='
const writeToken = 'write-token-0123456789abcdef'
const readToken = 'read-token-0123456789abcdef'

const running: Array<{ app: FastifyInstance; client: Client }> = []

afterEach(async () => {
  for (const { app, client } of running.splice(0)) {
    client.close()
    await app.close()
  }
})

async function listening(
  options: { config?: Partial<AppConfig>; db?: MemoryLevel<string, string>; logLines?: string[] } = {},
): Promise<Client> {
  const app = await testApp({
    ...(options.config === undefined ? {} : { config: options.config }),
    ...(options.db === undefined ? {} : { db: options.db }),
    ...(options.logLines === undefined ? {} : { logger: pino({ level: 'trace' }, logSink(options.logLines)) }),
  })
  const url = await listenOnLoopback(app)
  const client = new Client(url, 20)
  running.push({ app, client })
  return client
}

/** The value of one sample line, e.g. `accman_mods_total{outcome="debit"}`. */
function sample(text: string, series: string): string | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `))
  return line?.slice(series.length + 1)
}

const mod = (client: Client, by: string, headers: Record<string, string> = {}, account = cred) =>
  client.send('PATCH', `/mod?${query({ cred: account, by })}`, headers)

describe('/metrics', () => {
  test('counts requests, mods by outcome, exact amounts, accounts and writer rounds after real traffic', async () => {
    const client = await listening()
    expect((await mod(client, '1000')).status).toBe(200)
    expect((await mod(client, '-1')).status).toBe(200)
    expect((await mod(client, '-2', { 'idempotency-key': 'charge-1' })).status).toBe(200)
    const replay = await mod(client, '-2', { 'idempotency-key': 'charge-1' })
    expect(replay.headers['idempotent-replayed']).toBe('true')
    expect((await mod(client, '-5000')).status).toBe(402)
    expect((await mod(client, '-1', {}, 'dW5rbm93bi1hY2NvdW50')).status).toBe(404)
    expect((await mod(client, 'ten')).status).toBe(400)
    for (let index = 0; index < 7; index++) expect((await client.send('GET', `/tot?${query({ cred })}`)).status).toBe(200)

    const reply = await client.send('GET', '/metrics')
    expect(reply.status).toBe(200)
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = reply.body
    expect(sample(text, 'accman_mods_total{outcome="credit"}')).toBe('1')
    expect(sample(text, 'accman_mods_total{outcome="debit"}')).toBe('2')
    expect(sample(text, 'accman_mods_total{outcome="replay"}')).toBe('1')
    expect(sample(text, 'accman_mods_total{outcome="insufficient_funds"}')).toBe('1')
    expect(sample(text, 'accman_mods_total{outcome="no_account"}')).toBe('1')
    expect(sample(text, 'accman_mods_total{outcome="rejected"}')).toBe('1')
    expect(sample(text, 'accman_credited_units_total')).toBe('1000')
    expect(sample(text, 'accman_debited_units_total')).toBe('3')
    expect(sample(text, 'accman_accounts_created_total')).toBe('1')
    expect(sample(text, 'accman_writer_queue_depth')).toBe('0')
    expect(sample(text, 'accman_http_request_duration_seconds_count{method="GET",route="/tot",status_code="200"}')).toBe('7')
    expect(sample(text, 'accman_http_request_duration_seconds_count{method="PATCH",route="/mod",status_code="402"}')).toBe('1')
    // The six mods that passed validation were decided in rounds; the applied ones were written.
    expect(Number(sample(text, 'accman_writer_round_mods_sum'))).toBe(6)
    expect(Number(sample(text, 'accman_writer_write_seconds_count'))).toBeGreaterThanOrEqual(1)
    expect(sample(text, 'process_resident_memory_bytes')).toMatch(/^[0-9]+$/)
    expect(text).toContain('nodejs_eventloop_lag_seconds')
    // No credential and no account key in any label or value.
    expect(text).not.toContain(cred)
    expect(text).not.toContain(createHash('sha256').update(cred).digest('hex'))
  })

  test('amount totals stay exact past 2^53 units', async () => {
    const client = await listening()
    const max = amountMax.toString()
    expect((await mod(client, max)).status).toBe(200)
    expect((await mod(client, max, {}, 'c2Vjb25kLWFjY291bnQ=')).status).toBe(200)
    expect((await mod(client, `-${max}`)).status).toBe(200)
    const text = (await client.send('GET', '/metrics')).body
    expect(sample(text, 'accman_credited_units_total')).toBe((2n * amountMax).toString())
    expect(sample(text, 'accman_debited_units_total')).toBe(max)
  })

  test('asks for a token when tokens are configured, unless ACCMAN_METRICS_PUBLIC opens it', async () => {
    const guarded = await listening({ config: { tokens: [writeToken], readTokens: [readToken] } })
    const refused = await guarded.send('GET', '/metrics')
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'ACCMAN_UNAUTHORIZED' })
    expect((await guarded.send('GET', '/metrics', { authorization: 'Bearer not-a-configured-token' })).status).toBe(401)
    expect((await guarded.send('GET', '/metrics', { authorization: `Bearer ${readToken}` })).status).toBe(200)
    expect((await guarded.send('GET', '/metrics', { authorization: `Bearer ${writeToken}` })).status).toBe(200)

    const open = await listening({ config: { tokens: [writeToken], metricsPublic: true } })
    expect((await open.send('GET', '/metrics')).status).toBe(200)
    // Opening the metrics opens nothing else.
    expect((await open.send('GET', `/tot?${query({ cred })}`)).status).toBe(401)
  })
})

/** A memory-level whose writes can be made to fail, as a full disk would. */
function failingLevel(): { db: MemoryLevel<string, string>; failWrites: () => void } {
  const db = new MemoryLevel<string, string>()
  // abstract-level's private write hook, which every batch goes through; not in its types.
  const internals = db as unknown as { _batch: (...args: unknown[]) => Promise<void> }
  const write = internals._batch.bind(db)
  let failing = false
  internals._batch = async (...args) => {
    if (failing) throw new Error('injected write failure')
    return write(...args)
  }
  return { db, failWrites: () => (failing = true) }
}

describe('/readyz', () => {
  test('200 while serving, 503 once the writer has stopped on a storage fault, while /healthz stays up', async () => {
    const { db, failWrites } = failingLevel()
    const client = await listening({ db })
    const ready = await client.send('GET', '/readyz')
    expect(ready.status).toBe(200)
    expect(JSON.parse(ready.body)).toEqual({ status: 'ok' })

    failWrites()
    expect((await mod(client, '5')).status).toBe(503)
    const notReady = await client.send('GET', '/readyz')
    expect(notReady.status).toBe(503)
    expect(JSON.parse(notReady.body)).toMatchObject({ code: 'ACCMAN_CLOSED', message: 'the writer stopped after a storage fault' })
    expect(notReady.headers['retry-after']).toBe('1')
    expect((await client.send('GET', '/healthz')).status).toBe(200)
  })

  test('503 ACCMAN_STORE_UNAVAILABLE while the store does not answer, /healthz 200 meanwhile; serving again once it answers', async () => {
    const outage = withOutage(await openLevelStore(new MemoryLevel<string, string>(), { sync: false }))
    const app = await testApp({ store: outage.store })
    const client = new Client(await listenOnLoopback(app), 20)
    running.push({ app, client })
    expect((await mod(client, '5')).status).toBe(200)

    outage.setDown(true)
    const refused = await mod(client, '1')
    expect(refused.status).toBe(503)
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'ACCMAN_STORE_UNAVAILABLE' })
    expect(refused.headers['retry-after']).toBe('1')
    const notReady = await client.send('GET', '/readyz')
    expect(notReady.status).toBe(503)
    expect(JSON.parse(notReady.body)).toMatchObject({ code: 'ACCMAN_STORE_UNAVAILABLE' })
    expect(notReady.headers['retry-after']).toBe('1')
    expect((await client.send('GET', '/healthz')).status).toBe(200)

    outage.setDown(false)
    expect((await client.send('GET', '/readyz')).status).toBe(200)
    const served = await mod(client, '1')
    expect(served.status).toBe(200)
    // The refused mod wrote nothing: 5 + 1.
    expect(served.body.trim()).toBe('6')
  })

  test('503 once shutting down, while the server still listens', async () => {
    const app = await testApp()
    // Holds the close after AccMan's own preClose hook, with the server still listening.
    let release = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    app.addHook('preClose', () => held)
    const url = await listenOnLoopback(app)
    const client = new Client(url, 1)
    expect((await client.send('GET', '/readyz')).status).toBe(200)
    const closed = app.close()
    const during = await client.send('GET', '/readyz')
    expect(during.status).toBe(503)
    expect(JSON.parse(during.body)).toMatchObject({ code: 'ACCMAN_CLOSED' })
    client.close()
    release()
    await closed
  })
})

describe('x-request-id', () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

  test('echoes a well-formed id, makes a UUID otherwise, and never takes one that is in the URL or the token', async () => {
    const client = await listening({ config: { tokens: [writeToken] } })
    const auth = { authorization: `Bearer ${writeToken}` }
    const kept = await client.send('GET', `/tot?${query({ cred })}`, { ...auth, 'x-request-id': 'svc-7f3a:42' })
    expect(kept.headers['x-request-id']).toBe('svc-7f3a:42')

    const made = await client.send('GET', `/tot?${query({ cred })}`, auth)
    const other = await client.send('GET', `/tot?${query({ cred })}`, auth)
    expect(made.headers['x-request-id']).toMatch(uuid)
    expect(other.headers['x-request-id']).toMatch(uuid)
    expect(other.headers['x-request-id']).not.toBe(made.headers['x-request-id'])

    for (const offered of ['has space', 'x'.repeat(129), 'semi;colon', cred.slice(0, 20), writeToken]) {
      const reply = await client.send('GET', `/tot?${query({ cred })}`, { ...auth, 'x-request-id': offered })
      expect(reply.headers['x-request-id'], offered).toMatch(uuid)
    }
  })

  test('is on every kind of answer and on every log line of the request', async () => {
    const logLines: string[] = []
    const client = await listening({ logLines })
    const answers = [
      await client.send('PATCH', `/mod?${query({ cred, by: '10' })}`, { 'x-request-id': 'id-200' }),
      await client.send('GET', '/nowhere', { 'x-request-id': 'id-404' }),
      await client.send('POST', '/tot', { 'x-request-id': 'id-405' }),
      await client.send('GET', '/tot?cred=%zz', { 'x-request-id': 'id-400' }),
      await client.send('GET', `/tot?${query({ cred: 'bad' })}`, { 'x-request-id': 'id-400b' }),
    ]
    expect(answers.map((reply) => [reply.status, reply.headers['x-request-id']])).toEqual([
      [200, 'id-200'],
      [404, 'id-404'],
      [405, 'id-405'],
      [400, 'id-400'],
      [400, 'id-400b'],
    ])
    const requestLines = logLines
      .map((line) => JSON.parse(line) as { msg?: string; reqId?: string; statusCode?: number })
      .filter((record) => record.msg === 'request')
    expect(requestLines.map((record) => record.reqId).sort()).toEqual(['id-200', 'id-400', 'id-400b', 'id-404', 'id-405'])
    expect(logLines.join('\n')).not.toContain(cred)
  })
})
