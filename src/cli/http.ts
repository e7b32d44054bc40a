// The CLI's side of the HTTP API: one request, retried on network failures and 503s within
// cliLimits, then its answer or one CliError with the right exit code. No message quotes the
// request URL (the credential travels in its query string) nor the token.
import { setTimeout as sleep } from 'node:timers/promises'
import { failureReason, retryAfterMs } from '../client/connection.js'
import { cliLimits } from '../config.js'
import { apiErrorOf, isApiErrorCode } from '../contract/errors.js'
import { CliError, exitCodes, type ExitCode } from './exit-codes.js'

export interface Server {
  url: string
  token: string | undefined
  /** Per attempt. */
  timeoutMs: number
}

interface ErrorBody {
  code?: string
  message?: string
}

/**
 * A failure after which a mod may or may not have been applied: no answer, or a 5xx. Retrying
 * with the same idempotency key is the way to learn which.
 */
export class OutcomeUnknownError extends CliError {}

/** From the table of codes; a code this CLI does not know goes by its status. */
function exitCodeOf(status: number, code: string | undefined): ExitCode {
  if (code !== undefined && isApiErrorCode(code)) return exitCodes[apiErrorOf[code].cliExit]
  return status === 400 || status === 422 ? exitCodes.usage : exitCodes.other
}

/** 503 (queue full, overloaded, stopping) and 409 (the same key still in flight) pass with time. */
function isPassing(status: number): boolean {
  return status === 503 || status === 409
}

/** Exponential with jitter, never shorter than what a Retry-After asked for. */
function waitMs(attempt: number, askedMs: number | undefined): number {
  const ceilingMs = cliLimits.backoffBaseMs * 2 ** (attempt - 1)
  return Math.max(askedMs ?? 0, ceilingMs / 2 + Math.random() * (ceilingMs / 2))
}

/** The server as a message may name it: scheme, host and port only. */
function origin(url: string): string {
  return new URL(url).origin
}

export async function call(
  server: Server,
  method: 'GET' | 'PATCH' | 'POST',
  path: string,
  parameters: Record<string, string | undefined>,
  headers: Record<string, string> = {},
): Promise<string> {
  const url = new URL(path, server.url)
  for (const [name, value] of Object.entries(parameters)) if (value !== undefined) url.searchParams.set(name, value)
  if (server.token !== undefined) headers.authorization = `Bearer ${server.token}`
  const startedMs = Date.now()
  const mayRetry = (attempt: number, delayMs: number) =>
    attempt < cliLimits.attemptsMax && Date.now() - startedMs + delayMs < cliLimits.retryTotalMsMax
  for (let attempt = 1; ; attempt += 1) {
    const remainingMs = Math.max(cliLimits.retryTotalMsMax - (Date.now() - startedMs), 1)
    let status: number
    let body: string
    let retryAfter: string | null
    try {
      const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(Math.min(server.timeoutMs, remainingMs)) })
      status = response.status
      retryAfter = response.headers.get('retry-after')
      body = await response.text()
    } catch (error) {
      const delayMs = waitMs(attempt, undefined)
      if (mayRetry(attempt, delayMs)) {
        await sleep(delayMs)
        continue
      }
      const tries = attempt === 1 ? '1 attempt' : `${attempt} attempts`
      throw new OutcomeUnknownError(`cannot reach AccMan at ${origin(server.url)} (${failureReason(error)}) after ${tries}`, exitCodes.unreachable)
    }
    if (status >= 200 && status < 300) return body
    // A credential in use is a final answer, not a key in flight.
    const inUse = status === 409 && body.includes('"code":"ACCMAN_CRED_IN_USE"')
    if (isPassing(status) && !inUse) {
      const delayMs = waitMs(attempt, retryAfterMs(retryAfter, cliLimits.retryAfterMsMax))
      if (mayRetry(attempt, delayMs)) {
        await sleep(delayMs)
        continue
      }
    }
    let parsed: ErrorBody = {}
    try {
      parsed = JSON.parse(body) as ErrorBody
    } catch {
      // not our error shape: a proxy, or not AccMan at all
    }
    // A proxy's page could quote anything: only AccMan's message is shown, and only as text.
    const message = typeof parsed.message === 'string' ? parsed.message : `HTTP ${status}`
    const code = typeof parsed.code === 'string' ? ` (${parsed.code})` : ''
    const text = `${message}${code}`
    if (status >= 500 || (status === 409 && !inUse)) throw new OutcomeUnknownError(text, exitCodeOf(status, parsed.code))
    throw new CliError(text, exitCodeOf(status, parsed.code))
  }
}
