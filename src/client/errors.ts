// The client's errors: one class per refusal a caller branches on, each with AccMan's stable code
// and the HTTP status. No message ever carries the credential, the token or the request URL
// (the credential travels in the query string), so an error can be logged as is.

import type { ApiErrorCode, ClientErrorClassName, ClientOwnErrorCode } from '../contract/errors.js'

/**
 * Codes AccMan sends, plus the client's own (no AccMan error body arrived: unreachable, a bare
 * 503, an answer not in AccMan's shape, options that cannot work). Both are declared in
 * src/contract/errors.ts. Codes are API; messages are not.
 */
export type AccManErrorCode = ApiErrorCode | ClientOwnErrorCode

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
  /** The refused amount (negative: a debit, or a hold of -by). */
  readonly by: bigint
  /** The balance less its active holds when refused (AccMan with holds); tot otherwise. */
  avail: bigint

  constructor(status: number, message: string, tot: bigint, by: bigint) {
    super('ACCMAN_INSUFFICIENT_FUNDS', status, message)
    this.tot = tot
    this.by = by
    this.avail = tot
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

/** 404: the account has no hold with this id. */
export class NoHoldError extends AccManError {
  override readonly name = 'NoHoldError'
}

/** 409: the hold was settled or voided already. */
export class HoldClosedError extends AccManError {
  override readonly name = 'HoldClosedError'
}

/** 410: the hold is past its expiry; its funds are released. */
export class HoldExpiredError extends AccManError {
  override readonly name = 'HoldExpiredError'
}

/** 422: a settle larger than the hold. */
export class HoldExceededError extends AccManError {
  override readonly name = 'HoldExceededError'
}

/** 422: the account has as many active holds as it may. */
export class TooManyHoldsError extends AccManError {
  override readonly name = 'TooManyHoldsError'
}

/** 410: the account's expiry has passed; a credit with a ttl reopens it. */
export class ExpiredError extends AccManError {
  override readonly name = 'ExpiredError'
}

/** 423: the account is frozen; credits, settles and voids still work. */
export class FrozenError extends AccManError {
  override readonly name = 'FrozenError'
}

/** 409: the new credential of a rotation already addresses an account. */
export class CredentialInUseError extends AccManError {
  override readonly name = 'CredentialInUseError'
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

/** An error class that takes (code, status, message): every one but the two that carry more. */
type PlainErrorClass = new (code: AccManErrorCode, status: number | undefined, message: string) => AccManError

/**
 * The classes the table of codes names (src/contract/errors.ts), by name: a class named there
 * and missing here does not compile. The three with their own constructors are built by hand.
 */
export const plainErrorClasses: Readonly<
  Record<Exclude<ClientErrorClassName, 'InsufficientFundsError' | 'UnreachableError' | 'ConfigurationError'>, PlainErrorClass>
> = {
  AccManError,
  NoAccountError,
  UnauthorizedError,
  ForbiddenError,
  InvalidInputError,
  OverflowError,
  IdempotencyMismatchError,
  UnavailableError,
  NoHoldError,
  HoldClosedError,
  HoldExpiredError,
  HoldExceededError,
  TooManyHoldsError,
  ExpiredError,
  FrozenError,
  CredentialInUseError,
}
