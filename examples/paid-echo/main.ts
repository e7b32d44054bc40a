// Runs paid-echo against a local AccMan: npm run example (or just paid-echo).
// ACCMAN_URL (default http://127.0.0.1:22262), ACCMAN_TOKEN, HOST (127.0.0.1), PORT (3000), LOG_LEVEL (info).
import { pino } from 'pino'
import { buildPaidEcho } from './app.js'

const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name])

// The credential header never reaches a log line, even if a serializer starts logging headers.
const logger = pino({ level: env('LOG_LEVEL') ?? 'info', redact: ['req.headers.accman'] })
const app = await buildPaidEcho({
  accman: { url: env('ACCMAN_URL') ?? 'http://127.0.0.1:22262', token: env('ACCMAN_TOKEN') },
  logger,
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void app.close().then(() => process.exit(0)))
}
await app.listen({ host: env('HOST') ?? '127.0.0.1', port: Number(env('PORT') ?? 3000) })
