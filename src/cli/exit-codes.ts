// The CLI's exit codes: part of its interface, documented in the README.
export const exitCodes = {
  ok: 0,
  /** Anything not listed below. */
  other: 1,
  /** Bad arguments, or input the server refused as malformed. */
  usage: 2,
  /** No account for the credential. */
  noAccount: 3,
  /** A debit larger than the balance. */
  insufficientFunds: 4,
  /** The server could not be reached. */
  unreachable: 5,
  /** The database is held by a running server, or does not exist. */
  databaseUnavailable: 6,
  /** verify (or import's verify) found faults. */
  faults: 7,
  /** The idempotency key was used before with another amount (or on another account). */
  idempotencyMismatch: 8,
} as const

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes]

/** A failure the CLI reports as one line and an exit code, never a stack trace. */
export class CliError extends Error {
  override readonly name = 'CliError'
  readonly exitCode: ExitCode
  constructor(message: string, exitCode: ExitCode) {
    super(message)
    this.exitCode = exitCode
  }
}
