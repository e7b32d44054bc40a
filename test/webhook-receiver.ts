// A real webhook receiver for the tests: a local HTTP server that verifies every delivery with
// the `standardwebhooks` package (the specification's own library, not AccMan's code), answers
// as the test tells it, and keeps what it received.
import { createServer, type Server } from 'node:http'
import { Webhook } from 'standardwebhooks'

export interface Received {
  id: string
  type: string
  data: { account: string; tot: string; held: string; avail: string; seq: number; threshold?: string; ref?: string }
  timestamp: string
}

export class Receiver {
  readonly #server: Server
  readonly #webhook: Webhook
  /** Every verified delivery, in arrival order (repeats included). */
  readonly deliveries: Received[] = []
  /** Deliveries whose signature did not verify. */
  readonly rejected: string[] = []
  /** Attempts per webhook-id, whatever the answer. */
  readonly attempts = new Map<string, number>()
  /** The status to answer an attempt with (200 unless the test says otherwise). */
  answer: (id: string, attempt: number) => number = () => 200
  port = 0

  constructor(secret: string) {
    this.#webhook = new Webhook(secret)
    this.#server = createServer((request, response) => {
      const chunks: Buffer[] = []
      request.on('data', (chunk: Buffer) => chunks.push(chunk))
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]))
        const id = headers['webhook-id'] ?? ''
        const attempt = (this.attempts.get(id) ?? 0) + 1
        this.attempts.set(id, attempt)
        try {
          const event = this.#webhook.verify(body, headers) as Omit<Received, 'id'>
          const status = this.answer(id, attempt)
          if (status >= 200 && status < 300) this.deliveries.push({ id, ...event })
          response.writeHead(status).end()
        } catch (error) {
          this.rejected.push(String(error))
          response.writeHead(400).end()
        }
      })
    })
  }

  /** Distinct events delivered (2xx), by webhook-id. */
  get delivered(): Map<string, Received> {
    return new Map(this.deliveries.map((delivery) => [delivery.id, delivery]))
  }

  async listen(port = 0): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(port, '127.0.0.1', () => resolve())
    })
    const address = this.#server.address()
    if (typeof address !== 'object' || address === null) throw new Error('no address')
    this.port = address.port
    return `http://127.0.0.1:${this.port}/hooks`
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** A whsec_ secret of 32 random-looking bytes, fixed for the tests. */
export const testSecret = `whsec_${Buffer.from('accman-webhook-test-secret-32byt').toString('base64')}`
