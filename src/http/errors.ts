// The HTTP API's errors: the error class and body of a code from the one table of codes.
// Codes are API: clients branch on them. Messages never carry a credential, a token or the request URL.
import { STATUS_CODES } from 'node:http'
import { limits } from '../config.js'
import { apiErrorOf, type ApiErrorCode } from '../contract/errors.js'

export { apiErrorCodes, type ApiErrorCode } from '../contract/errors.js'

/** The status of a code, from the one table of codes (src/contract/errors.ts). */
export function statusOf(code: ApiErrorCode): number {
  return apiErrorOf[code].status
}

export class ApiError extends Error {
  override readonly name = 'ApiError'
  readonly code: ApiErrorCode
  readonly statusCode: number

  constructor(code: ApiErrorCode, message: string) {
    // An expected refusal: its stack would say nothing, and capturing it costs on a hot path.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = stackTraceLimit
    this.code = code
    this.statusCode = statusOf(code)
  }
}

export interface ErrorBody {
  statusCode: number
  code: ApiErrorCode
  error: string
  message: string
  /** The balance, on ACCMAN_INSUFFICIENT_FUNDS. */
  tot?: string
  /** What may be spent, on ACCMAN_INSUFFICIENT_FUNDS: tot, as nothing is held. */
  avail?: string
}

export function errorBody(code: ApiErrorCode, message: string, tot?: bigint): ErrorBody {
  const statusCode = statusOf(code)
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  if (tot !== undefined) {
    body.tot = tot.toString()
    body.avail = body.tot
  }
  return body
}

/** The Retry-After header of every 503, declared once in the limits. */
export const retryAfterText = String(limits.retryAfterSeconds)
