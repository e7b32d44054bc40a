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

export function createLogger(level: Config['logLevel'], destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'accman' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      serializers: {
        // Never req.url: it carries the credential.
        req: (req: LoggedRequest) => ({ id: req.id, method: req.method, route: req.routeOptions?.url }),
      },
    },
    destination,
  )
}
