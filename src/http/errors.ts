// The error codes of the HTTP API and their statuses, in one table. Codes are API: clients branch
// on them. Messages never carry a credential, a token or the request URL.
import { STATUS_CODES } from 'node:http'
import { ledgerErrorCodes } from '../ledger/index.js'

const httpErrorCodes = [
  'ACCMAN_INVALID_CRED',
  'ACCMAN_INVALID_AMOUNT',
  'ACCMAN_INVALID_QUERY',
  'ACCMAN_NOT_ACCEPTABLE',
  'ACCMAN_NOT_FOUND',
  'ACCMAN_METHOD_NOT_ALLOWED',
  'ACCMAN_BAD_REQUEST',
  'ACCMAN_PAYLOAD_TOO_LARGE',
  'ACCMAN_UNSUPPORTED_MEDIA_TYPE',
  'ACCMAN_UNAUTHORIZED',
  'ACCMAN_FORBIDDEN',
  'ACCMAN_REQUEST_TIMEOUT',
  'ACCMAN_URL_TOO_LONG',
  'ACCMAN_HEADERS_TOO_LARGE',
  'ACCMAN_OVERLOADED',
  'ACCMAN_INTERNAL',
] as const

/** Every code the API answers with, for the OpenAPI document. */
export const apiErrorCodes = [...ledgerErrorCodes, ...httpErrorCodes] as const

export type ApiErrorCode = (typeof apiErrorCodes)[number]

/** Exhaustive: a new code does not compile until it has a status. */
export function statusOf(code: ApiErrorCode): number {
  switch (code) {
    case 'ACCMAN_INVALID_CRED':
    case 'ACCMAN_INVALID_AMOUNT':
    case 'ACCMAN_INVALID_QUERY':
    case 'ACCMAN_BAD_REQUEST':
      return 400
    case 'ACCMAN_UNAUTHORIZED':
      return 401
    case 'ACCMAN_INSUFFICIENT_FUNDS':
      return 402
    case 'ACCMAN_FORBIDDEN':
      return 403
    case 'ACCMAN_NO_ACCOUNT':
    case 'ACCMAN_NOT_FOUND':
      return 404
    case 'ACCMAN_METHOD_NOT_ALLOWED':
      return 405
    case 'ACCMAN_NOT_ACCEPTABLE':
      return 406
    case 'ACCMAN_REQUEST_TIMEOUT':
      return 408
    case 'ACCMAN_IDEMPOTENCY_IN_FLIGHT':
      return 409
    case 'ACCMAN_PAYLOAD_TOO_LARGE':
      return 413
    case 'ACCMAN_URL_TOO_LONG':
      return 414
    case 'ACCMAN_UNSUPPORTED_MEDIA_TYPE':
      return 415
    case 'ACCMAN_OVERFLOW':
    case 'ACCMAN_IDEMPOTENCY_MISMATCH':
      return 422
    case 'ACCMAN_HEADERS_TOO_LARGE':
      return 431
    case 'ACCMAN_INTERNAL':
      return 500
    case 'ACCMAN_OVERLOADED':
    case 'ACCMAN_QUEUE_FULL':
    case 'ACCMAN_CLOSED':
      return 503
  }
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
}

export function errorBody(code: ApiErrorCode, message: string, tot?: bigint): ErrorBody {
  const statusCode = statusOf(code)
  const body: ErrorBody = { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message }
  if (tot !== undefined) body.tot = tot.toString()
  return body
}
