// Refusals the ledger expects. Codes are API and never change meaning; messages may improve.
// Broken invariants are not here: they are assertions, and they stop the writer.

// The codes are declared in the one table of every error code (src/contract/errors.ts), which
// marks the ledger's subset.
import type { LedgerErrorCode } from '../contract/errors.js'

export { ledgerErrorCodes, type LedgerErrorCode } from '../contract/errors.js'

export class LedgerError extends Error {
  override readonly name = 'LedgerError'
  readonly code: LedgerErrorCode
  /** The balance at the time of refusal, for ACCMAN_INSUFFICIENT_FUNDS. */
  readonly tot: bigint | undefined
  /** The balance less the active holds at the time of refusal, for ACCMAN_INSUFFICIENT_FUNDS. */
  readonly avail: bigint | undefined

  constructor(code: LedgerErrorCode, message: string, tot?: bigint, avail?: bigint) {
    // An expected refusal: its stack would say nothing, and capturing it costs on a hot path.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = stackTraceLimit
    this.code = code
    this.tot = tot
    this.avail = avail ?? tot
  }
}

export function isLedgerError(error: unknown): error is LedgerError {
  return error instanceof LedgerError
}
