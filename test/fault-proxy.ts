// A TCP proxy in front of a real AccMan that injects network faults, one plan per new connection:
// the faults a paid service meets between itself and AccMan, without touching AccMan.
import { connect, createServer, type Server, type Socket } from 'node:net'

export type ConnectionPlan =
  /** Forward both ways. */
  | 'pass'
  /** Forward the request, then drop the connection when AccMan's answer arrives: applied, never heard. */
  | 'drop-answer'
  /** Answer 503 ACCMAN_QUEUE_FULL as AccMan does under load, without forwarding. */
  | 'answer-503'
  /** Read the request and never answer. */
  | 'hang'

const queueFullBody = JSON.stringify({
  statusCode: 503,
  code: 'ACCMAN_QUEUE_FULL',
  error: 'Service Unavailable',
  message: 'too many mods waiting; retry later',
})
const queueFullAnswer = (retryAfter: string): string =>
  `HTTP/1.1 503 Service Unavailable\r\nretry-after: ${retryAfter}\r\nconnection: close\r\n` +
  `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(queueFullBody)}\r\n\r\n${queueFullBody}`

export class FaultProxy {
  /** Plans for the next connections, in order; connections past the list pass. */
  readonly plans: ConnectionPlan[] = []
  /** What each connection so far was given. */
  readonly seen: ConnectionPlan[] = []
  /** The Retry-After of the 503s it makes up, as AccMan sends it (seconds). */
  retryAfter = '1'
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #targetPort: number

  private constructor(targetPort: number) {
    this.#targetPort = targetPort
    this.#server = createServer((socket) => this.#accept(socket))
  }

  static async start(targetUrl: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(Number(new URL(targetUrl).port))
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get url(): string {
    const address = this.#server.address()
    if (typeof address !== 'object' || address === null) throw new Error('the proxy is not listening')
    return `http://127.0.0.1:${address.port}`
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #track(socket: Socket): Socket {
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    return socket
  }

  #accept(client: Socket): void {
    this.#track(client)
    const plan = this.plans.shift() ?? 'pass'
    this.seen.push(plan)
    if (plan === 'hang') {
      client.resume()
      return
    }
    if (plan === 'answer-503') {
      client.once('data', () => client.end(queueFullAnswer(this.retryAfter)))
      return
    }
    const upstream = this.#track(connect(this.#targetPort, '127.0.0.1'))
    client.pipe(upstream)
    upstream.on('data', (chunk: Buffer) => {
      if (plan === 'drop-answer') {
        upstream.destroy()
        client.destroy()
      } else {
        client.write(chunk)
      }
    })
    upstream.on('end', () => client.end())
    client.on('close', () => upstream.destroy())
  }
}

/** A loopback port that nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (typeof address !== 'object' || address === null) throw new Error('no address')
  return address.port
}
