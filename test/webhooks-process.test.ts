// Webhooks through the server as production runs it (dist/, its own process): an event whose
// change was acknowledged survives kill -9 with the receiver down, on both engines; a webhook URL
// that is not http(s) stops the start, named by its variable, never quoted.
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freshDatabase } from './postgres-support.js'
import { Client, killLeftoverServers, query, ServerProcess, waitFor } from './support.js'
import { Receiver, testSecret } from './webhook-receiver.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  await killLeftoverServers()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const cred = 'a2lsbC05LXRlc3QtYWNjb3VudA=='
const repositoryRoot = fileURLToPath(new URL('../', import.meta.url))

const databases: Array<[string, () => Promise<string>]> = [
  [
    'LevelDB',
    async () => {
      const directory = mkdtempSync(join(tmpdir(), 'accman-webhooks-'))
      cleanups.push(() => rmSync(directory, { recursive: true, force: true }))
      return join(directory, 'data')
    },
  ],
  ['PostgreSQL', freshDatabase],
]

describe.each(databases)('webhooks across kill -9 on %s', (_engine, makeDatabase) => {
  it('an acknowledged debit that crossed is delivered after AccMan and the receiver both come back', async () => {
    const db = await makeDatabase()
    // The receiver's port, kept while it is down.
    const receiver = new Receiver(testSecret)
    const url = await receiver.listen()
    await receiver.close()
    const env = {
      ACCMAN_DB: db,
      ACCMAN_WEBHOOK_URL: url,
      ACCMAN_WEBHOOK_SECRET: testSecret,
      ACCMAN_ALERT_BELOW: '100',
      ACCMAN_WEBHOOK_RETRY_BASE_MS: '50',
    }
    const first = new ServerProcess(env)
    const client = new Client(await first.url(), 4)
    expect((await client.send('PATCH', `/mod?${query({ cred, by: '150' })}`)).status).toBe(200)
    const debit = await client.send('PATCH', `/mod?${query({ cred, by: '-100' })}`, { accept: 'application/json' })
    expect(debit.status).toBe(200)
    // Acknowledged: kill at once, before any delivery could succeed (the receiver is down).
    await first.kill('SIGKILL')
    client.close()
    expect(first.lines.join('\n')).not.toContain(url)

    const back = new Receiver(testSecret)
    await back.listen(receiver.port)
    cleanups.push(() => back.close())
    const second = new ServerProcess(env)
    await second.url()
    await waitFor('the event delivered after the restart', () => back.delivered.size === 1, 30_000)
    const [event] = [...back.delivered.values()]
    expect(event).toMatchObject({ type: 'balance.low', data: { tot: '50', seq: 2, threshold: '100' } })
    expect(back.rejected).toEqual([])
    await second.kill('SIGTERM')
  })
})

describe('webhook configuration', () => {
  it.each([
    ['ACCMAN_WEBHOOK_URL', 'ftp://operator:hunter2-secret@hooks.example.com/x', 'ACCMAN_WEBHOOK_URL must be one or more http:// or https:// URLs'],
    ['ACCMAN_WEBHOOK_URL', 'https://ok.example.com/a,javascript:alert(1)', 'ACCMAN_WEBHOOK_URL must be one or more http:// or https:// URLs'],
    ['ACCMAN_WEBHOOK_SECRET', 'hunter2-secret', 'ACCMAN_WEBHOOK_SECRET must be one or more whsec_ secrets'],
  ])('refuses to start with a bad %s, in one line that names it and quotes nothing', async (name, value, message) => {
    const directory = mkdtempSync(join(tmpdir(), 'accman-webhooks-'))
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }))
    const env: Record<string, string> = { ACCMAN_DB: join(directory, 'data'), ACCMAN_WEBHOOK_URL: 'http://127.0.0.1:1/x', ACCMAN_WEBHOOK_SECRET: testSecret }
    env[name] = value
    const server = new ServerProcess(env)
    expect(await server.exited).toBe(1)
    expect(server.stderr).toHaveLength(1)
    expect(server.stderr[0]).toContain(message)
    expect(server.stderr[0]).not.toContain('hunter2')
  })

  it('needs a secret when a URL is set', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'accman-webhooks-'))
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }))
    const server = new ServerProcess({ ACCMAN_DB: join(directory, 'data'), ACCMAN_WEBHOOK_URL: 'http://127.0.0.1:1/x' })
    expect(await server.exited).toBe(1)
    expect(server.stderr.join('\n')).toContain('ACCMAN_WEBHOOK_SECRET is required when ACCMAN_WEBHOOK_URL is set')
  })
})

describe('the receiver example of docs/webhooks.md', () => {
  it('runs as written and verifies a real delivery', async () => {
    const page = readFileSync(join(repositoryRoot, 'docs/webhooks.md'), 'utf8')
    const example = /## A receiver[\s\S]*?```js\n([\s\S]*?)```/.exec(page)?.[1]
    expect(example).toContain("from 'standardwebhooks'")
    // Beside the repository's node_modules, so that its import resolves as in a project.
    const file = join(repositoryRoot, `.docs-receiver-${process.pid}.mjs`)
    writeFileSync(file, example ?? '')
    cleanups.push(() => rmSync(file, { force: true }))
    const port = await freePort()
    const receiver = spawn(process.execPath, [file], { env: { PATH: process.env.PATH ?? '', PORT: String(port), ACCMAN_WEBHOOK_SECRET: testSecret }, stdio: 'pipe' })
    const exited = new Promise((resolve) => receiver.on('exit', resolve))
    cleanups.push(async () => {
      receiver.kill('SIGTERM')
      await exited
    })
    const lines: string[] = []
    createInterface({ input: receiver.stdout }).on('line', (line) => lines.push(line))
    const directory = mkdtempSync(join(tmpdir(), 'accman-webhooks-'))
    cleanups.push(() => rmSync(directory, { recursive: true, force: true }))
    const server = new ServerProcess({
      ACCMAN_DB: join(directory, 'data'),
      ACCMAN_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
      ACCMAN_WEBHOOK_SECRET: testSecret,
      ACCMAN_ALERT_BELOW: '500',
      ACCMAN_WEBHOOK_RETRY_BASE_MS: '50',
    })
    const client = new Client(await server.url(), 2)
    expect((await client.send('PATCH', `/mod?${query({ cred, by: '1000' })}`)).status).toBe(200)
    expect((await client.send('PATCH', `/mod?${query({ cred, by: '-600' })}`)).status).toBe(200)
    client.close()
    await waitFor('the example to print the event', () => lines.length > 0, 30_000)
    const [id, json] = (lines[0] ?? '').split(' ', 2)
    expect(id).toMatch(/^evt_/)
    expect(JSON.parse(json ?? '')).toMatchObject({ type: 'balance.low', data: { tot: '400', avail: '400', seq: 2, threshold: '500' } })
    await server.kill('SIGTERM')
  })
})

/** A port free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const address = probe.address()
  await new Promise((resolve) => probe.close(resolve))
  if (typeof address !== 'object' || address === null) throw new Error('no address')
  return address.port
}
