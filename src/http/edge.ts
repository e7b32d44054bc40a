// What the server checks of a request as Node's parser handed it over, before any route sees it:
// how many header lines and bytes it had, its path, its body, and whether its x-request-id may be
// echoed and logged.
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/**
 * Node keeps the first `maxHeadersCount` header lines and silently drops the rest (an
 * Idempotency-Key among them, maybe). The server is therefore set one above the limit: a request
 * that reaches that count has more lines than the limit, and some may be gone.
 */
export function serverHeadersCountOf(headerLinesMax: number): number {
  return headerLinesMax + 1
}

export function tooManyHeaderLines(request: IncomingMessage, headerLinesMax: number): boolean {
  return request.rawHeaders.length / 2 >= serverHeadersCountOf(headerLinesMax)
}

/**
 * The bytes of the request line and headers, counted from what the parser kept: Node's own limit
 * counts names, values and the URL but no separators, so 32 KB of `X:` lines pass it. Whitespace
 * around values is not kept, so this never counts more than was sent.
 */
export function headerBytesOf(request: IncomingMessage): number {
  // `GET /tot?cred=… HTTP/1.1\r\n`
  let bytes = request.method?.length ?? 0
  bytes += 1 + (request.url?.length ?? 0) + ' HTTP/1.1\r\n'.length
  const lines = request.rawHeaders
  // `Name:value\r\n` per line, then the empty line.
  for (let index = 0; index < lines.length; index++) bytes += (lines[index]?.length ?? 0) + (index % 2 === 0 ? 1 : 2)
  return bytes + 2
}

/** `/%6dod` routes to /mod, past a proxy rule on `/mod`: a path is taken only as written. */
export function pathHasPercent(url: string): boolean {
  const percent = url.indexOf('%')
  if (percent === -1) return false
  const question = url.indexOf('?')
  return question === -1 || percent < question
}

/** A Content-Length of zero written with more digits (`00`) is still no body. */
const zeroLengthPattern = /^0+$/

export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length']
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && !zeroLengthPattern.test(length))
}

/** A caller's request id is kept when it looks like one: short, and from a plain alphabet. */
const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/

const bearerPattern = /^bearer +(\S+)/i

/** The query parameters that carry a credential (`to`, `new`: the account moved to, the new one). */
const secretParameters = ['cred', 'to', 'new'] as const

/**
 * The request id: the caller's `x-request-id` when well-formed, else a new UUID. Ids are echoed
 * and logged, so one that could carry a secret is replaced: one that appears in the URL or the
 * Authorization header, that contains or lies within a credential of the request (percent-decoded)
 * or the token it presents, or that contains a configured token. (Only "contains" for tokens: replacing an id that lies
 * within a token would tell a caller, by the echo, which strings a token contains.)
 */
export function requestIdGenerator(tokens: readonly string[]): (request: IncomingMessage) => string {
  return function requestIdOf(request) {
    const offered = request.headers['x-request-id']
    if (typeof offered === 'string' && requestIdPattern.test(offered) && mayEcho(offered, request, tokens)) return offered
    return randomUUID()
  }
}

function mayEcho(offered: string, request: IncomingMessage, tokens: readonly string[]): boolean {
  const url = request.url ?? ''
  const authorization = request.headers.authorization
  if (url.includes(offered) || authorization?.includes(offered) === true) return false
  if (tokens.some((token) => offered.includes(token))) return false
  for (const secret of requestSecretsOf(url, authorization)) {
    if (secret !== '' && (secret.includes(offered) || offered.includes(secret))) return false
  }
  return true
}

/** The secrets a request carries: its credentials, percent-decoded, and the token it presents. */
function requestSecretsOf(url: string, authorization: string | undefined): string[] {
  const secrets: string[] = []
  const presented = bearerPattern.exec(authorization ?? '')?.[1]
  if (presented !== undefined) secrets.push(presented)
  const question = url.indexOf('?')
  if (question === -1) return secrets
  const parameters = new URLSearchParams(url.slice(question + 1))
  for (const name of secretParameters) secrets.push(...parameters.getAll(name))
  return secrets
}
