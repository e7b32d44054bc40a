// What the routes' OpenAPI entries share, declared once: the security they take, and the refusals
// any route may answer besides its own.

/** No token, or a bearer token when tokens are configured. */
export const security = [{}, { bearer: [] }]

/** What any route may answer: a missing token, the transport's limits, faults and load. */
export const transportErrors = [
  'ACCMAN_UNAUTHORIZED',
  'ACCMAN_PAYLOAD_TOO_LARGE',
  'ACCMAN_URL_TOO_LONG',
  'ACCMAN_HEADERS_TOO_LARGE',
  'ACCMAN_INTERNAL',
  'ACCMAN_OVERLOADED',
  'ACCMAN_CLOSED',
  'ACCMAN_STORE_UNAVAILABLE',
] as const

/** What a route that names an account by its credential may answer. */
export const readErrors = [
  'ACCMAN_INVALID_CRED',
  'ACCMAN_INVALID_QUERY',
  'ACCMAN_NO_ACCOUNT',
  'ACCMAN_NOT_ACCEPTABLE',
  'ACCMAN_BAD_REQUEST',
  ...transportErrors,
] as const

/** What a write may answer besides: a read token, a full writer queue. */
export const writeErrors = [...readErrors, 'ACCMAN_FORBIDDEN', 'ACCMAN_QUEUE_FULL'] as const
