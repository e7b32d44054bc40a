// The cost of webhooks to mods: the same mod scenario on a fresh AccMan without webhooks, and with
// one endpoint that accepts connections and never answers (every attempt waits for its timeout,
// the outbox fills). Half the mods cross the threshold, so the writer writes an event every other
// mod. The two should be within the run's noise: delivery is off the writer's path.
import { createServer, type Server as NetServer } from 'node:net'
import autocannon from 'autocannon'
import { benchCredential } from './bulk-load.js'

export const webhooksScenarioName = 'webhooks: mods crossing a threshold, black-holed endpoint vs none'

interface Started {
  url: string
}

export interface WebhooksBenchRow {
  name: string
  modsPerS: number
  p99Ms: number
}

/** A TCP listener that accepts and holds every connection without a byte in return. */
async function blackHole(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>()
  const server: NetServer = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (typeof address !== 'object' || address === null) throw new Error('no address')
  return {
    url: `http://127.0.0.1:${address.port}/hooks`,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/** Mods on 1,000 accounts at 150 with a threshold of 100: -100 (crossing) and +100, alternately. */
async function modScenario(url: string, seconds: number): Promise<{ modsPerS: number; p99Ms: number }> {
  const accounts = Array.from({ length: 1000 }, (_, index) => benchCredential(900_000 + index))
  for (const cred of accounts) {
    const response = await fetch(`${url}/mod?cred=${encodeURIComponent(cred)}&by=150`, { method: 'PATCH' })
    if (response.status !== 200) throw new Error(`setup mod answered ${response.status}`)
  }
  let sent = 0
  const result = await autocannon({
    url,
    connections: 50,
    duration: seconds,
    requests: [
      {
        method: 'PATCH',
        setupRequest: (request) => {
          const index = sent++
          // Each account alternates, so each mod finds its account at 150 or at 50.
          const cred = accounts[Math.floor(index / 2) % accounts.length] ?? ''
          const by = index % 2 === 0 ? '-100' : '100'
          return { ...request, path: `/mod?cred=${encodeURIComponent(cred)}&by=${by}` }
        },
      },
    ],
  })
  return { modsPerS: Math.round(result.requests.average), p99Ms: result.latency.p99 }
}

export async function webhooksBench(
  startAccman: (env: Record<string, string>) => Promise<Started>,
  stopAccman: (server: Started) => Promise<void>,
  seconds: number,
): Promise<WebhooksBenchRow[]> {
  const rows: WebhooksBenchRow[] = []
  const hole = await blackHole()
  const secret = `whsec_${Buffer.alloc(32, 1).toString('base64')}`
  try {
    for (const [name, env] of [
      ['without webhooks', { ACCMAN_ALERT_BELOW: '100' }],
      ['black-holed endpoint', { ACCMAN_ALERT_BELOW: '100', ACCMAN_WEBHOOK_URL: hole.url, ACCMAN_WEBHOOK_SECRET: secret }],
    ] as const) {
      const accman = await startAccman(env)
      try {
        const measured = await modScenario(accman.url, seconds)
        const row = { name, ...measured }
        console.log(`webhooks, ${name}: ${row.modsPerS} mods/s, p99 ${row.p99Ms} ms`)
        rows.push(row)
      } finally {
        await stopAccman(accman)
      }
    }
  } finally {
    await hole.close()
  }
  return rows
}
