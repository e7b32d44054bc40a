// Every error code of AccMan, declared once. The server's code -> status mapping, the ledger's
// refusals, the client's typed errors, the CLI's exit codes, the OpenAPI document and the errors
// table of docs/http-api.md all come from (or are checked against) this table. Codes are API:
// clients branch on them, and they never change meaning. A pure module: the published client
// imports it.

/** The client's error classes (src/client/errors.ts), by name. */
export type ClientErrorClassName =
  | 'AccManError'
  | 'NoAccountError'
  | 'InsufficientFundsError'
  | 'UnauthorizedError'
  | 'ForbiddenError'
  | 'InvalidInputError'
  | 'OverflowError'
  | 'IdempotencyMismatchError'
  | 'UnavailableError'
  | 'UnreachableError'
  | 'ConfigurationError'
  | 'NoHoldError'
  | 'HoldClosedError'
  | 'HoldExpiredError'
  | 'HoldExceededError'
  | 'TooManyHoldsError'
  | 'ExpiredError'
  | 'FrozenError'
  | 'CredentialInUseError'

/** The CLI's exit codes (src/cli/exit-codes.ts) a refusal of the server can end in, by name. */
export type CliExitName = 'other' | 'usage' | 'noAccount' | 'insufficientFunds' | 'idempotencyMismatch'

export interface ApiErrorRow {
  code: `ACCMAN_${string}`
  status: number
  /** One line: when the server answers with it, as docs/http-api.md's errors table says. */
  meaning: string
  /** A refusal the ledger itself makes (a LedgerError), not only the HTTP layer. */
  ledger: boolean
  /** Declared but not sent today; kept so that clients may branch on it. */
  reserved: boolean
  /** The class the client throws for it. */
  clientClass: ClientErrorClassName
  /** What the CLI exits with when the server answers with it. */
  cliExit: CliExitName
}

type RowOptions = Partial<Pick<ApiErrorRow, 'ledger' | 'reserved' | 'clientClass' | 'cliExit'>>

/** A row as written below: what is not said takes the defaults of `complete`. */
const row = <const Code extends `ACCMAN_${string}`, const Options extends RowOptions = Record<never, never>>(
  code: Code,
  status: number,
  meaning: string,
  options?: Options,
) => ({ code, status, meaning, ...options }) as { code: Code; status: number; meaning: string } & Options

/** Not a ledger refusal, sent, a plain AccManError in the client, exit 2 (a 400) or 1 in the CLI. */
function complete(entry: { code: `ACCMAN_${string}`; status: number; meaning: string } & RowOptions): ApiErrorRow {
  return {
    code: entry.code,
    status: entry.status,
    meaning: entry.meaning,
    ledger: entry.ledger ?? false,
    reserved: entry.reserved ?? false,
    clientClass: entry.clientClass ?? 'AccManError',
    cliExit: entry.cliExit ?? (entry.status === 400 ? 'usage' : 'other'),
  }
}

/** The codes the HTTP API answers with, in the order of docs/http-api.md (by status). */
export const apiErrorTable = [
  row('ACCMAN_INVALID_CRED', 400, '`cred` is not base64url with padding, 4 to 512 characters', { clientClass: 'InvalidInputError' }),
  row('ACCMAN_INVALID_AMOUNT', 400, '`by` is not a nonzero integer with magnitude at most 2^127-1', { clientClass: 'InvalidInputError' }),
  row(
    'ACCMAN_INVALID_QUERY',
    400,
    'a missing, repeated or unknown parameter; a bad `limit`, `after`, `before`, `order`, `from`, `to` or `note`; a query value that is not valid percent-encoded UTF-8; a bad `Idempotency-Key` header; a `/move` whose two credentials address one account',
    // The ledger's too: only the round that resolves both credentials of a move knows they address one account.
    { ledger: true, clientClass: 'InvalidInputError' },
  ),
  row(
    'ACCMAN_INVALID_BODY',
    400,
    'a `/batch` body that is not JSON or not `{"ops":[...]}` of 1 to 1,000 well-formed operations; the message names the first bad operation by index; nothing is applied',
    { clientClass: 'InvalidInputError' },
  ),
  row('ACCMAN_BAD_REQUEST', 400, 'a request the HTTP layer cannot parse; a path with `%` in it; an HTTP/1.1 request without `Host`', {
    clientClass: 'InvalidInputError',
  }),
  row(
    'ACCMAN_UNAUTHORIZED',
    401,
    'tokens are configured and the request has no valid `Authorization: Bearer <token>`; sent with `WWW-Authenticate`',
    { clientClass: 'UnauthorizedError' },
  ),
  row('ACCMAN_INSUFFICIENT_FUNDS', 402, 'a debit or a hold larger than `avail` (the balance less its active holds); the body also carries `tot` and `avail`', {
    ledger: true,
    clientClass: 'InsufficientFundsError',
    cliExit: 'insufficientFunds',
  }),
  row('ACCMAN_FORBIDDEN', 403, 'a read token (`ACCMAN_READ_TOKENS`) on `/mod` or `/backup`', { clientClass: 'ForbiddenError' }),
  row('ACCMAN_NO_ACCOUNT', 404, '`tot`, `past` or a debit for a credential that no credit has created', {
    ledger: true,
    clientClass: 'NoAccountError',
    cliExit: 'noAccount',
  }),
  row('ACCMAN_NO_HOLD', 404, '`/settle` or `/void` of a hold id the account does not have', { ledger: true, clientClass: 'NoHoldError' }),
  row('ACCMAN_NOT_FOUND', 404, 'an unknown path (the URL is never echoed)'),
  row('ACCMAN_METHOD_NOT_ALLOWED', 405, 'a known path with another method; the `Allow` header lists the methods it answers'),
  row('ACCMAN_NOT_ACCEPTABLE', 406, "the `Accept` header admits none of the endpoint's media types"),
  row(
    'ACCMAN_REQUEST_TIMEOUT',
    408,
    'the request line and headers took more than 10 s, or the whole request more than 30 s; the connection is closed',
  ),
  row('ACCMAN_CRED_IN_USE', 409, '`/rotate` with a `new` credential that already addresses an account', { ledger: true, clientClass: 'CredentialInUseError' }),
  row('ACCMAN_IDEMPOTENCY_IN_FLIGHT', 409, 'reserved, not sent: a retry queued behind its first mod is answered as a replay', {
    ledger: true,
    reserved: true,
  }),
  row('ACCMAN_HOLD_CLOSED', 409, '`/settle` or `/void` of a hold already settled or voided', { ledger: true, clientClass: 'HoldClosedError' }),
  row('ACCMAN_HOLD_EXPIRED', 410, '`/settle` or `/void` of a hold past its expiry (also once its `expire` entry is written)', {
    ledger: true,
    clientClass: 'HoldExpiredError',
  }),
  row('ACCMAN_EXPIRED', 410, 'a debit, a new hold or a move out of an account whose expiry (set by a credit with `ttl`) has passed; a credit with `ttl` reopens it', {
    ledger: true,
    clientClass: 'ExpiredError',
  }),
  row('ACCMAN_REF_TAKEN', 409, '`PATCH /ref` with a ref that already names another account; nothing is changed', { ledger: true }),
  row(
    'ACCMAN_PAYLOAD_TOO_LARGE',
    413,
    'a request with a body (`Content-Length` above 0 or `Transfer-Encoding`) to any endpoint but `/batch`, or a `/batch` body larger than its limit',
  ),
  row('ACCMAN_URL_TOO_LONG', 414, 'a URL longer than 4096 characters (the longest valid one is well under that)'),
  row('ACCMAN_UNSUPPORTED_MEDIA_TYPE', 415, 'a `/batch` body whose `Content-Type` is not `application/json`', { clientClass: 'InvalidInputError' }),
  row('ACCMAN_OVERFLOW', 422, 'a credit that would take the balance past 2^127-1', {
    ledger: true,
    clientClass: 'OverflowError',
    cliExit: 'usage',
  }),
  row('ACCMAN_IDEMPOTENCY_MISMATCH', 422, 'an `Idempotency-Key` already used on the account with a different amount, or by another operation (`/mod`, `/hold`, `/settle`, `/void`, `/move`) or other parameters', {
    ledger: true,
    clientClass: 'IdempotencyMismatchError',
    cliExit: 'idempotencyMismatch',
  }),
  row('ACCMAN_TOO_MANY_HOLDS', 422, 'a hold on an account that has 1,000 active holds already', { ledger: true, clientClass: 'TooManyHoldsError' }),
  row('ACCMAN_HOLD_EXCEEDED', 422, 'a `/settle` whose `by` is larger than the hold', { ledger: true, clientClass: 'HoldExceededError' }),
  row('ACCMAN_FROZEN', 423, 'a debit, a new hold or a move out of a frozen account (`/freeze`); `/unfreeze` lifts it', { ledger: true, clientClass: 'FrozenError' }),
  row('ACCMAN_HEADERS_TOO_LARGE', 431, 'more than 100 header lines, or the request line and headers exceed 8 KiB (counted as sent, without the optional spaces around header values); the connection is closed'),
  row('ACCMAN_INTERNAL', 500, 'a fault in AccMan; the message gives the request id, which the logged error line carries'),
  row('ACCMAN_OVERLOADED', 503, 'the event loop lags more than 1 s behind; sent with `Retry-After: 1` (`/healthz` is exempt)', {
    clientClass: 'UnavailableError',
  }),
  row('ACCMAN_QUEUE_FULL', 503, '100,000 mods already wait for the writer; sent with `Retry-After: 1`', {
    ledger: true,
    clientClass: 'UnavailableError',
  }),
  row(
    'ACCMAN_CLOSED',
    503,
    'a request that arrives while the server stops; `/healthz` while the database is not open; a mod after a storage fault (with `Retry-After: 1`)',
    { ledger: true, clientClass: 'UnavailableError' },
  ),
  row(
    'ACCMAN_STORE_UNAVAILABLE',
    503,
    'a shared store (PostgreSQL) that did not answer within `ACCMAN_DB_TIMEOUT_MS`: nothing was written; `/readyz` too meanwhile (with `Retry-After: 1`)',
    { ledger: true, clientClass: 'UnavailableError' },
  ),
]

type ApiErrorRowOf = (typeof apiErrorTable)[number]

export type ApiErrorCode = ApiErrorRowOf['code']

/** Every code the API answers with. */
export const apiErrorCodes = apiErrorTable.map((entry) => entry.code) as [ApiErrorCode, ...ApiErrorCode[]]

/** The refusals the ledger makes (src/ledger/errors.ts). */
export type LedgerErrorCode = Extract<ApiErrorRowOf, { ledger: true }>['code']

export const ledgerErrorCodes = apiErrorTable
  .filter((entry): entry is Extract<ApiErrorRowOf, { ledger: true }> => 'ledger' in entry && entry.ledger)
  .map((entry) => entry.code)

/** The row of a code the API answers with, every field given. */
export const apiErrorOf: Readonly<Record<ApiErrorCode, Readonly<ApiErrorRow>>> = Object.freeze(
  Object.fromEntries(apiErrorTable.map((entry) => [entry.code, Object.freeze(complete(entry))])) as Record<ApiErrorCode, ApiErrorRow>,
)

export function isApiErrorCode(code: string): code is ApiErrorCode {
  return Object.hasOwn(apiErrorOf, code)
}

/** The client's own codes: failures where no AccMan error body arrived. */
export const clientErrorTable = [
  {
    code: 'ACCMAN_UNREACHABLE',
    meaning: 'no HTTP answer at all: the connection was refused or dropped, or the answer took too long',
    clientClass: 'UnreachableError',
  },
  { code: 'ACCMAN_UNAVAILABLE', meaning: "a 503 without AccMan's error body (a proxy in front of it, say)", clientClass: 'UnavailableError' },
  {
    code: 'ACCMAN_UNEXPECTED_RESPONSE',
    meaning: "an answer that is not AccMan's shape (not AccMan, or a newer one)",
    clientClass: 'AccManError',
  },
  {
    code: 'ACCMAN_CONFIGURATION',
    meaning: 'options that cannot work (a bad url or token); thrown when the client is made',
    clientClass: 'ConfigurationError',
  },
] as const satisfies readonly { code: `ACCMAN_${string}`; meaning: string; clientClass: ClientErrorClassName }[]

export type ClientOwnErrorCode = (typeof clientErrorTable)[number]['code']
