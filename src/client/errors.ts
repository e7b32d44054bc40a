// The client's errors: one class per refusal a caller branches on, each with AccMan's stable code
// and the HTTP status. No message ever carries the credential, the token or the request URL
// (the credential travels in the query string), so an error can be logged as is.

/** Codes AccMan sends, plus four of the client's own (see below). Codes are API; messages are not. */
export type AccManErrorCode =
  | 'ACCMAN_NO_ACCOUNT'
  | 'ACCMAN_INSUFFICIENT_FUNDS'
  | 'ACCMAN_OVERFLOW'
  | 'ACCMAN_IDEMPOTENCY_MISMATCH'
  | 'ACCMAN_IDEMPOTENCY_IN_FLIGHT'
  | 'ACCMAN_QUEUE_FULL'
  | 'ACCMAN_CLOSED'
  | 'ACCMAN_OVERLOADED'
  | 'ACCMAN_INVALID_CRED'
  | 'ACCMAN_INVALID_AMOUNT'
  | 'ACCMAN_INVALID_QUERY'
  | 'ACCMAN_BAD_REQUEST'
  | 'ACCMAN_UNAUTHORIZED'
  | 'ACCMAN_FORBIDDEN'
  | 'ACCMAN_NOT_FOUND'
  | 'ACCMAN_METHOD_NOT_ALLOWED'
  | 'ACCMAN_NOT_ACCEPTABLE'
  | 'ACCMAN_REQUEST_TIMEOUT'
  | 'ACCMAN_PAYLOAD_TOO_LARGE'
  | 'ACCMAN_URL_TOO_LONG'
  | 'ACCMAN_UNSUPPORTED_MEDIA_TYPE'
  | 'ACCMAN_HEADERS_TOO_LARGE'
  | 'ACCMAN_INTERNAL'
  /** The client's own: no HTTP answer at all (connection refused or dropped, timeout). */
  | 'ACCMAN_UNREACHABLE'
  /** The client's own: a 503 without AccMan's error body (a proxy in front of it, say). */
  | 'ACCMAN_UNAVAILABLE'
  /** The client's own: an answer that is not AccMan's shape (not AccMan, or a newer one). */
  | 'ACCMAN_UNEXPECTED_RESPONSE'
  /** The client's own: options that cannot work (a bad url or token); thrown at construction. */
  | 'ACCMAN_CONFIGURATION'

export class AccManError extends Error {
  override readonly name: string = 'AccManError'
  readonly code: AccManErrorCode
  /** The HTTP status of AccMan's answer; undefined when none arrived. */
  readonly status: number | undefined

  constructor(code: AccManErrorCode, status: number | undefined, message: string) {
    super(message)
    this.code = code
    this.status = status
  }

  /** JSON.stringify cannot write a bigint: amounts become decimal strings, as on the wire. */
  toJSON(): Record<string, unknown> {
    const fields: Record<string, unknown> = { name: this.name, message: this.message }
    for (const [name, value] of Object.entries(this)) fields[name] = typeof value === 'bigint' ? value.toString() : value
    return fields
  }
}

/** 404: no credit ever created the account of this credential. */
export class NoAccountError extends AccManError {
  override readonly name = 'NoAccountError'
}

/** 402: a debit larger than the balance. Nothing was written. */
export class InsufficientFundsError extends AccManError {
  override readonly name = 'InsufficientFundsError'
  /** The balance when the debit was refused. */
  readonly tot: bigint
  /** The refused amount (negative: a debit). */
  readonly by: bigint

  constructor(status: number, message: string, tot: bigint, by: bigint) {
    super('ACCMAN_INSUFFICIENT_FUNDS', status, message)
    this.tot = tot
    this.by = by
  }
}

/** 401: AccMan has tokens configured and this client's token is missing or wrong. */
export class UnauthorizedError extends AccManError {
  override readonly name = 'UnauthorizedError'
}

/** 403: a read token used for a mod. */
export class ForbiddenError extends AccManError {
  override readonly name = 'ForbiddenError'
}

/** 400: a malformed credential, amount, note, page option or idempotency key. */
export class InvalidInputError extends AccManError {
  override readonly name = 'InvalidInputError'
}

/** 422: a credit that would take the balance past 2^127-1. */
export class OverflowError extends AccManError {
  override readonly name = 'OverflowError'
}

/** 422: the idempotency key was used on this account with another amount. */
export class IdempotencyMismatchError extends AccManError {
  override readonly name = 'IdempotencyMismatchError'
}

/** 503 (overloaded, queue full, stopping), still so after the client's retries. */
export class UnavailableError extends AccManError {
  override readonly name = 'UnavailableError'
}

/** No answer: the connection failed or was dropped, or the answer took too long, on every attempt. */
export class UnreachableError extends AccManError {
  override readonly name = 'UnreachableError'
  /** `timeout`, or the network error code (ECONNREFUSED, UND_ERR_SOCKET, ...). */
  readonly reason: string

  constructor(message: string, reason: string) {
    super('ACCMAN_UNREACHABLE', undefined, message)
    this.reason = reason
  }
}

/**
 * The client's options cannot work: a url that is not http(s) or carries a user name or password, a
 * token that cannot travel in a header, a retry option out of range. Thrown when the client is
 * made, never retried; the message names the option, never its value.
 */
export class ConfigurationError extends AccManError {
  override readonly name = 'ConfigurationError'

  constructor(message: string) {
    super('ACCMAN_CONFIGURATION', undefined, message)
  }
}
