// What the client and the CLI share about reaching AccMan: checks of the server URL and the token
// made before anything is sent (their messages never quote either), the reason of a network
// failure told by its code only, and the wait a 503's Retry-After asks for.

/** Visible ASCII, as a bearer token must be to travel in a header. */
const tokenPattern = /^[\x21-\x7e]{1,4096}$/

/** Why a server URL is unusable, or undefined; never quotes the URL, which may carry a password. */
export function serverUrlProblem(url: string | URL): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'the AccMan url is not a URL'
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'the AccMan url must be http: or https:'
  if (parsed.username !== '' || parsed.password !== '') {
    return 'the AccMan url must not contain a user name or password; use a token'
  }
  return undefined
}

/** Why a token is unusable, or undefined; never quotes the token. */
export function tokenProblem(token: string): string | undefined {
  return tokenPattern.test(token) ? undefined : 'the token must be 1 to 4096 visible ASCII characters (no spaces, no line breaks)'
}

/** The network error's code only: its message could, in some library, quote the URL. */
export function failureReason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timeout'
  const cause = (error as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause
  if (typeof cause?.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(cause.code)) return cause.code
  // A few of fetch's own refusals have no code ("bad port"); plain words cannot hold a URL.
  if (typeof cause?.message === 'string' && /^[a-z ]{1,40}$/.test(cause.message)) return cause.message
  return error instanceof Error && /^[A-Za-z]{1,64}$/.test(error.name) ? error.name : 'unknown error'
}

/**
 * The wait a Retry-After header asks for, in ms, at most `maxMs`; undefined when absent or not
 * one of its two forms (delay-seconds, or an HTTP date).
 */
export function retryAfterMs(header: string | null, maxMs: number, nowMs: number = Date.now()): number | undefined {
  if (header === null) return undefined
  const text = header.trim()
  if (/^[0-9]{1,10}$/.test(text)) return Math.min(Number(text) * 1000, maxMs)
  const dateMs = Date.parse(text)
  if (Number.isNaN(dateMs) || !/[A-Za-z]/.test(text)) return undefined
  return Math.min(Math.max(dateMs - nowMs, 0), maxMs)
}
