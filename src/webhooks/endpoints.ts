// Webhook endpoints and signatures (Standard Webhooks). A URL may carry a password in its
// userinfo or a token in its query: it is only ever shown as `printable` (scheme, host, port,
// path), and endpoints are named elsewhere by their id, a hash of the URL.
import { createHash, createHmac } from 'node:crypto'

export interface Endpoint {
  /** Stable across restarts and nodes; stored with each delivery state. */
  id: string
  /** Without userinfo and query: safe for logs, answers and the CLI. */
  printable: string
  /** What is fetched: the URL without its userinfo, which goes to `authorization`. */
  target: string
  authorization: string | undefined
}

export function endpointOf(url: string): Endpoint {
  const parsed = new URL(url)
  const authorization =
    parsed.username === '' && parsed.password === ''
      ? undefined
      : `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`
  const target = new URL(url)
  target.username = ''
  target.password = ''
  return {
    id: createHash('sha256').update(url).digest('hex').slice(0, 16),
    printable: printableUrl(url),
    target: target.toString(),
    authorization,
  }
}

/** Scheme, host, port and path: never the userinfo, query or fragment. */
export function printableUrl(url: string): string {
  const parsed = new URL(url)
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
}

/** `webhook-signature`: `v1,<base64 HMAC-SHA256 of id.timestamp.body>` per secret, space-separated. */
export function signatureOf(secrets: readonly string[], id: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
      return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`
    })
    .join(' ')
}
