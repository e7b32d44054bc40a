// accman/client: the typed client of AccMan's HTTP API.
export {
  AccManClient,
  type AccManClientOptions,
  type Balance,
  type HistoryEntry,
  type HistoryPage,
  type FreezeResult,
  type ModOptions,
  type ModResult,
  type MoveOptions,
  type MoveResult,
  type PastOptions,
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
