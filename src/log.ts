// pino JSON on stdout. Credentials travel in the query string, so nothing here ever logs a URL:
// requests are logged by route. Redaction covers the headers that carry secrets.
import { pino, type Logger } from 'pino'
import type { Config } from './config.js'

export const redactedPaths = ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]']

interface LoggedRequest {
  id?: string
  method?: string
  routeOptions?: { url?: string }
}

// Defence in depth: nothing of ours logs a URL or a token, but a message from a library might
// quote one. These patterns blank what follows `cred=` and `Bearer `.
const secretPattern = /(cred=)[^&\s"'#]*|(bearer\s+)[\x21-\x7e]+/gi

export function scrubSecrets(text: string): string {
  return text.replace(secretPattern, (_match, cred: string | undefined, bearer: string | undefined) => `${cred ?? bearer ?? ''}[redacted]`)
}

function serializeError(error: Error): Record<string, unknown> {
  const serialized = pino.stdSerializers.err(error)
  serialized.message = scrubSecrets(serialized.message)
  if (typeof serialized.stack === 'string') serialized.stack = scrubSecrets(serialized.stack)
  return serialized
}

export function createLogger(level: Config['logLevel'], destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'accman' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      serializers: {
        // Never req.url: it carries the credential.
        req: (req: LoggedRequest) => ({ id: req.id, method: req.method, route: req.routeOptions?.url }),
        err: serializeError,
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((arg: unknown) => (typeof arg === 'string' ? scrubSecrets(arg) : arg))
          method.apply(this, scrubbed as Parameters<typeof method>)
        },
      },
    },
    destination,
  )
}
