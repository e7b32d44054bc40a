// The ceiling: a bare Fastify hello world, measured in the same run as AccMan.
import Fastify from 'fastify'

const app = Fastify({ logger: false })
app.get('/', async () => 'hello world')
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) })
const address = app.server.address()
process.stdout.write(`${JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`)
