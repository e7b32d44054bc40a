// The server as a process: configuration errors, the LevelDB lock, kill -9 and SIGTERM.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { Client, killLeftoverServers, query, readHistory, ServerProcess, temporaryDirectories, waitFor } from './support.js'

const temporaryDirectory = temporaryDirectories('accman-server-')
afterEach(killLeftoverServers)

describe('start-up failures are one line on stderr and a non-zero exit', () => {
  test.each([
    ['ACCMAN_PORT', 'abc'],
    ['ACCMAN_PORT', '70000'],
    ['ACCMAN_SYNC', 'maybe'],
    ['ACCMAN_LOG_LEVEL', 'loud'],
  ])('%s=%s', async (variable, value) => {
    const server = new ServerProcess({ ACCMAN_DB: temporaryDirectory(), [variable]: value })
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(new RegExp(`^accman: invalid configuration: ${variable} `))
  })

  test('off loopback without tokens: refused with one line that says how to set one', async () => {
    const server = new ServerProcess({ ACCMAN_DB: temporaryDirectory(), ACCMAN_HOST: '0.0.0.0' })
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(/^accman: invalid configuration: ACCMAN_HOST 0\.0\.0\.0 is not a loopback address, so AccMan needs tokens: set ACCMAN_TOKENS/)
  })

  test.each([
    ['a database directory that cannot be created', () => ({ ACCMAN_DB: '/etc/hostname/data' }), /^accman: cannot open the database \/etc\/hostname\/data: ENOTDIR/],
    ['a database path that is a file', () => ({ ACCMAN_DB: '/etc/hostname' }), /^accman: cannot open the database \/etc\/hostname/],
  ])('%s: one line, exit 1', async (_name, env, line) => {
    const server = new ServerProcess(env())
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toMatch(line)
  })

  test('a port in use: one line, exit 1, and the database lock is released', async () => {
    const first = new ServerProcess({ ACCMAN_DB: temporaryDirectory() })
    const port = String(await first.port)
    const db = temporaryDirectory()
    const second = new ServerProcess({ ACCMAN_DB: db, ACCMAN_PORT: port })
    expect(await second.exited).toBe(1)
    expect(second.stderr).toEqual([`accman: 127.0.0.1:${port} is already in use`])
    const third = new ServerProcess({ ACCMAN_DB: db })
    await third.port
    expect(await third.kill('SIGINT')).toBe(0)
    expect(await first.kill('SIGTERM')).toBe(0)
  })

  test('a .env file is read, and the real environment wins over it', async () => {
    const cwd = temporaryDirectory()
    writeFileSync(join(cwd, '.env'), 'ACCMAN_LOG_LEVEL=loud\nACCMAN_SYNC=nope\n')
    const fromFile = new ServerProcess({ ACCMAN_DB: join(cwd, 'data') }, cwd)
    expect(await fromFile.exited).toBe(1)
    expect(fromFile.stderr[0]).toContain('ACCMAN_LOG_LEVEL')
    const overridden = new ServerProcess({ ACCMAN_DB: join(cwd, 'data'), ACCMAN_LOG_LEVEL: 'info', ACCMAN_SYNC: 'true' }, cwd)
    await overridden.port
    expect(await overridden.kill('SIGTERM')).toBe(0)
  })

  test('a second server on the same database exits with one line; the first keeps serving', async () => {
    const db = temporaryDirectory()
    const first = new ServerProcess({ ACCMAN_DB: db })
    const client = new Client(await first.url(), 4)
    const second = new ServerProcess({ ACCMAN_DB: db })
    expect(await second.exited).toBe(1)
    expect(second.stderr).toHaveLength(1)
    expect(second.stderr[0]).toMatch(/^accman: the database .* is in use by another process/)
    expect((await client.send('GET', '/healthz')).status).toBe(200)
    client.close()
    expect(await first.kill('SIGTERM')).toBe(0)
  })
})

/** Sends +1 mods from `workers` connections until stopped; counts what was sent and acknowledged. */
function driveLoad(client: Client, creds: string[], workers: number) {
  const sent = new Map(creds.map((cred) => [cred, 0]))
  const acknowledged = new Map(creds.map((cred) => [cred, 0]))
  /** Acknowledged keyed mods with their answers, to replay after a restart. */
  const answers: { cred: string; key: string; body: string }[] = []
  let stopped = false
  const deadline = Date.now() + 20_000
  const loops = Array.from({ length: workers }, async (_, worker) => {
    const cred = creds[worker % creds.length] ?? ''
    for (let count = 0; count < 5_000 && !stopped && Date.now() < deadline; count++) {
      sent.set(cred, (sent.get(cred) ?? 0) + 1)
      const key = `w${worker}-${count}-${process.pid}-${Date.now()}`
      try {
        const reply = await client.send('PATCH', `/mod?${query({ cred, by: '1' })}`, {
          'idempotency-key': key,
          accept: 'application/json',
        })
        if (reply.status === 200) {
          acknowledged.set(cred, (acknowledged.get(cred) ?? 0) + 1)
          answers.push({ cred, key, body: reply.body })
        }
      } catch {
        return // the server is gone
      }
    }
  })
  const total = () => [...acknowledged.values()].reduce((sum, value) => sum + value, 0)
  return { sent, acknowledged, answers, total, stop: () => (stopped = true), done: Promise.all(loops) }
}

test('waitFor fails, naming what it waited for, when the condition never holds', async () => {
  await expect(waitFor('the impossible', () => false, 50)).rejects.toThrow('timed out after 50 ms waiting for the impossible')
})

// A killed process leaves its writes in the page cache, so this shows what survives the death of
// the process, with ACCMAN_SYNC=true or false alike; only losing the machine would tell them apart.
test('acknowledged mods survive the death of the process (kill -9), three times over', async () => {
  const db = temporaryDirectory()
  const creds = ['a2lsbC0x', 'a2lsbC0y', 'a2lsbC0z', 'a2lsbC00']
  const applied = new Map(creds.map((cred) => [cred, 0]))
  const report: string[] = []
  for (let round = 1; round <= 3; round++) {
    const server = new ServerProcess({ ACCMAN_DB: db, ACCMAN_SYNC: 'true' })
    const client = new Client(await server.url(), 32)
    const load = driveLoad(client, creds, 32)
    await waitFor(`${300 * round} acknowledged mods`, () => load.total() >= 300 * round, 15_000)
    await server.kill('SIGKILL')
    load.stop()
    await load.done
    client.close()

    const restarted = new ServerProcess({ ACCMAN_DB: db })
    const reader = new Client(await restarted.url(), 4)
    for (const cred of creds) {
      const before = applied.get(cred) ?? 0
      const entries = await readHistory(reader, cred)
      const now = entries.length
      const acknowledged = load.acknowledged.get(cred) ?? 0
      const sent = load.sent.get(cred) ?? 0
      report.push(`round ${round} ${cred}: sent ${sent}, acknowledged ${acknowledged}, applied ${now - before}`)
      expect(now - before).toBeGreaterThanOrEqual(acknowledged)
      expect(now - before).toBeLessThanOrEqual(sent)
      for (const [index, entry] of entries.entries()) {
        expect(entry.seq).toBe(index + 1)
        expect(entry.tot).toBe(String(index + 1))
      }
      const tot = await reader.send('GET', `/tot?${query({ cred })}`)
      expect(tot.body).toBe(String(now))
      applied.set(cred, now)
    }
    // The last acknowledged mods, retried after the crash, are replays of what was answered.
    for (const { cred, key, body } of load.answers.slice(-20)) {
      const retry = await reader.send('PATCH', `/mod?${query({ cred, by: '1' })}`, {
        'idempotency-key': key,
        accept: 'application/json',
      })
      expect(retry.headers['idempotent-replayed']).toBe('true')
      expect(retry.body).toBe(body)
    }
    reader.close()
    expect(await restarted.kill('SIGTERM')).toBe(0)
  }
  console.log(report.join('\n'))
})

test('SIGTERM under load: in-flight mods are answered, written, and the exit is 0', async () => {
  const db = temporaryDirectory()
  const creds = ['dGVybS0x', 'dGVybS0y']
  const server = new ServerProcess({ ACCMAN_DB: db })
  const client = new Client(await server.url(), 16)
  const load = driveLoad(client, creds, 16)
  await waitFor('200 acknowledged mods', () => load.total() >= 200, 15_000)
  expect(await server.kill('SIGTERM')).toBe(0)
  load.stop()
  await load.done
  client.close()
  expect(server.lines.some((line) => line.includes('"msg":"stopped"'))).toBe(true)

  const restarted = new ServerProcess({ ACCMAN_DB: db })
  const reader = new Client(await restarted.url(), 4)
  for (const cred of creds) {
    const entries = await readHistory(reader, cred)
    expect(entries.length).toBeGreaterThanOrEqual(load.acknowledged.get(cred) ?? 0)
    expect(entries.length).toBeLessThanOrEqual(load.sent.get(cred) ?? 0)
  }
  reader.close()
  expect(await restarted.kill('SIGTERM')).toBe(0)
})
