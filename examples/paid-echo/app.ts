// paid-echo: a Fastify service that charges one unit per byte it echoes, metered by accman/fastify.
//   GET  /echo?text=hello   echoes the text; the price, its UTF-8 length, is known before the handler.
//   POST /echo              echoes the body; the price is reserved from Content-Length (the body
//                           limit when the body is chunked) and settled to the bytes echoed.
//   GET  /stream?text=hi&times=3
//                           streams the text `times` times, one chunk each, billed by the bytes
//                           actually sent: a hold reserves them all, and the bytes written when the
//                           stream ends are settled (a consumer who hangs up pays for what they got).
//   GET  /healthz           free: the route opts out with config.accman = false.
import type { AccManClient } from 'accman/client'
import accman from 'accman/fastify'
import { Readable } from 'node:stream'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'

export interface PaidEchoOptions {
  /** AccMan's URL and token, or a client of it. */
  accman: { url: string; token?: string | undefined } | { client: AccManClient }
  /** A pino logger; none by default. */
  logger?: FastifyBaseLogger
  /** Largest body POST /echo takes; also what a chunked body reserves. Default 512. */
  bodyLimitBytes?: number
}

export async function buildPaidEcho(options: PaidEchoOptions): Promise<FastifyInstance> {
  const bodyLimitBytes = options.bodyLimitBytes ?? 512
  const app = Fastify({
    bodyLimit: bodyLimitBytes,
    // HEAD would pay for an echo it never receives.
    exposeHeadRoutes: false,
    ...(options.logger === undefined ? {} : { loggerInstance: options.logger }),
  })
  // Echo any body as bytes, whatever its media type.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

  await app.register(accman, {
    ...options.accman,
    price: (request) => priceOf(request, bodyLimitBytes),
    // What was echoed: the body of a 2xx, nothing for a refusal (a 400, or a 413 for a body too large).
    settle: (_request, reply, payload) => (reply.statusCode < 300 ? bytesOf(payload) : 0n),
  })

  app.get('/healthz', { config: { accman: false } }, async () => ({ status: 'ok' }))

  app.get('/echo', async (request: FastifyRequest<{ Querystring: { text?: unknown } }>, reply: FastifyReply) => {
    const { text } = request.query
    if (typeof text !== 'string') return reply.code(400).send({ code: 'BAD_TEXT', message: 'give one text parameter' })
    return reply.type('text/plain; charset=utf-8').send(text)
  })

  // Bytes written so far by each streamed answer, counted as the stream hands them on.
  const sentBytes = new WeakMap<FastifyRequest, bigint>()
  app.get(
    '/stream',
    {
      config: {
        accman: {
          price: (request) => streamPriceOf(request, bodyLimitBytes),
          settle: (request) => sentBytes.get(request) ?? 0n,
        },
      },
    },
    async (request: FastifyRequest<{ Querystring: { text?: unknown; times?: unknown } }>, reply: FastifyReply) => {
      const { text } = request.query
      const times = Number(request.query.times)
      if (typeof text !== 'string' || !Number.isInteger(times) || times < 1) {
        return reply.code(400).send({ code: 'BAD_STREAM', message: 'give one text and times from 1' })
      }
      sentBytes.set(request, 0n)
      const chunks = Array.from({ length: times }, () => Buffer.from(text))
      const stream = Readable.from(
        (async function* () {
          for (const chunk of chunks) {
            yield chunk
            sentBytes.set(request, (sentBytes.get(request) ?? 0n) + BigInt(chunk.length))
          }
        })(),
      )
      return reply.type('text/plain; charset=utf-8').send(stream)
    },
  )

  app.post('/echo', async (request: FastifyRequest<{ Body: Buffer | undefined }>, reply: FastifyReply) => {
    return reply.type('application/octet-stream').send(request.body ?? Buffer.alloc(0))
  })

  return app
}

function priceOf(request: FastifyRequest, bodyLimitBytes: number): bigint {
  if (request.method === 'POST') {
    const length = Number(request.headers['content-length'] ?? Number.NaN)
    // A chunked body has no length yet: reserve the most it can be; settle refunds the rest.
    return BigInt(Number.isSafeInteger(length) && length >= 0 ? Math.min(length, bodyLimitBytes) : bodyLimitBytes)
  }
  const { text } = request.query as { text?: unknown }
  return typeof text === 'string' ? BigInt(Buffer.byteLength(text)) : 0n
}

/** The most a stream may send: its text times `times`, bounded by the body limit times 16. */
function streamPriceOf(request: FastifyRequest, bodyLimitBytes: number): bigint {
  const { text, times } = request.query as { text?: unknown; times?: unknown }
  const count = Number(times)
  if (typeof text !== 'string' || !Number.isInteger(count) || count < 1) return 0n
  return BigInt(Math.min(Buffer.byteLength(text) * count, bodyLimitBytes * 16))
}

function bytesOf(payload: unknown): bigint {
  if (typeof payload === 'string') return BigInt(Buffer.byteLength(payload))
  if (Buffer.isBuffer(payload)) return BigInt(payload.length)
  return 0n
}
