// `accman webhooks`: the endpoints' deliveries, retrying failed events, re-enabling an endpoint
// a 410 disabled. Through the running server (ACCMAN_URL, ACCMAN_TOKEN).
import type { CliContext } from './context.js'
import { call } from './http.js'

interface EndpointStatus {
  url: string
  disabled: boolean
  pending: number
  delivered: number
  failed: number
  lastError: string | null
}

export async function webhooks(context: CliContext, options: { json: boolean }): Promise<void> {
  const body = await call(context.server(), 'GET', '/webhooks', {}, { accept: 'application/json' })
  if (options.json) {
    context.io.stdout.write(`${body}\n`)
    return
  }
  const status = JSON.parse(body) as { endpoints: EndpointStatus[]; outbox: number }
  if (status.endpoints.length === 0) {
    context.io.stdout.write('webhooks are off (ACCMAN_WEBHOOK_URL is not set)\n')
    return
  }
  const rows = [
    ['endpoint', 'state', 'pending', 'delivered', 'failed', 'last error'],
    ...status.endpoints.map((endpoint) => [
      endpoint.url,
      endpoint.disabled ? 'disabled' : 'enabled',
      String(endpoint.pending),
      String(endpoint.delivered),
      String(endpoint.failed),
      endpoint.lastError ?? '-',
    ]),
  ]
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  const lines = rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '))
  context.io.stdout.write(`${lines.join('\n')}\noutbox: ${status.outbox} events\n`)
}

export async function retryWebhooks(context: CliContext): Promise<void> {
  const body = await call(context.server(), 'POST', '/webhooks/retry', {}, { accept: 'application/json' })
  const { retried } = JSON.parse(body) as { retried: number }
  context.io.stdout.write(`${retried} failed deliveries will be sent again\n`)
}

export async function enableWebhook(context: CliContext, url: string): Promise<void> {
  // The URL may carry a password: it is a secret of this run, never printed back whole.
  context.secrets.add(url)
  const body = await call(context.server(), 'POST', '/webhooks/enable', { url }, { accept: 'application/json' })
  const { enabled } = JSON.parse(body) as { enabled: string }
  context.io.stdout.write(`enabled ${enabled}\n`)
}
