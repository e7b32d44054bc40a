// accman/client: the typed client of AccMan's HTTP API.
export {
  AccManClient,
  type AccManClientOptions,
  type AccountDetails,
  type Balance,
  type HistoryEntry,
  type HistoryPage,
  type ModOptions,
  type ModResult,
  type PastOptions,
  type RotateOptions,
  type RotateResult,
} from './client.js'
export { isCredential } from '../contract/syntax.js'
export {
  AccManError,
  ConfigurationError,
  ForbiddenError,
  IdempotencyMismatchError,
  InsufficientFundsError,
  InvalidInputError,
  NoAccountError,
  OverflowError,
  UnauthorizedError,
  UnavailableError,
  UnreachableError,
  type AccManErrorCode,
} from './errors.js'
