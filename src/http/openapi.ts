// The OpenAPI 3.1 document, built by @fastify/swagger from the routes' own zod schemas: the
// schemas that validate requests and describe answers are the only copy. zod writes JSON Schema
// 2020-12, which OpenAPI 3.1 takes as it is.
import { STATUS_CODES } from 'node:http'
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger'
import { z } from 'zod'
import { limits } from '../config.js'
import { apiErrorOf, apiErrorTable } from '../contract/errors.js'
import { errorBody, statusOf, type ApiErrorCode } from './errors.js'
import { errorBodySchema, parameterRules } from './schemas.js'

type SchemaNode = Record<string, unknown>

/** JSON Schema of what a client sends (`io: 'input'`: a query parameter is its text, before any transform). */
function jsonSchemaOf(schema: z.ZodType): SchemaNode {
  const jsonSchema = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as SchemaNode
  // The document's dialect is 2020-12 already; a $schema per parameter is noise.
  delete jsonSchema.$schema
  return jsonSchema
}

function convert(node: unknown): unknown {
  if (node instanceof z.ZodType) return jsonSchemaOf(node)
  if (Array.isArray(node)) return node.map(convert)
  if (typeof node !== 'object' || node === null) return node
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, convert(value)]))
}

/** Replaces every zod schema in a route schema (querystring, headers, response) by its JSON Schema. */
const transform: NonNullable<FastifyDynamicSwaggerOptions['transform']> = ({ schema, url }) => {
  if (schema === undefined) return { schema, url }
  return { schema: convert(schema) as typeof schema, url }
}

/** How a retention window reads in the description: whole days, hours, minutes or seconds. */
export function durationText(ms: number): string {
  const seconds = Math.floor(ms / 1000)
  const units: [number, string][] = [[86_400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']]
  for (const [size, name] of units) {
    if (seconds % size === 0 && seconds >= size) return `${seconds / size} ${name}${seconds === size ? '' : 's'}`
  }
  return `${seconds} seconds`
}

/** Every code of the table of codes, one line each: `- \`CODE\` (status): meaning`. */
function errorCodeList(): string {
  return apiErrorTable.map((entry) => `- \`${entry.code}\` (${entry.status}): ${entry.meaning}`).join('\n')
}

/** The document's options; the description states the server's idempotency retention window. */
export const openapiOptionsFor = (idempotencyTtlMs: number): FastifyDynamicSwaggerOptions => ({
  openapi: {
    openapi: '3.1.0',
    info: {
      title: 'AccMan',
      version: '0.1.0',
      description: [
        'Prepaid balances addressed by secret credentials, with an append-only history.',
        'Amounts are decimal integer strings; a credential is base64url with padding.',
        'Every error answers `{statusCode, code, error, message}` with a stable `code`.',
        'Requests the HTTP parser refuses get the same shape: 408 `ACCMAN_REQUEST_TIMEOUT`, 431 `ACCMAN_HEADERS_TOO_LARGE`, 400 `ACCMAN_BAD_REQUEST`;',
        `so do more than ${limits.headerLinesMax} header lines or ${limits.headerSizeBytesMax} bytes of request line and headers (431 \`ACCMAN_HEADERS_TOO_LARGE\`),`,
        'an HTTP/1.1 request without `Host` and a path with `%` in it (400 `ACCMAN_BAD_REQUEST`),',
        'a query value whose percent-encoding is not UTF-8 (400 `ACCMAN_INVALID_QUERY` naming the parameter),',
        'an unknown path 404 `ACCMAN_NOT_FOUND`, a known path with another method 405 `ACCMAN_METHOD_NOT_ALLOWED` with `Allow`.',
        'Every answer carries `x-request-id`. An empty `Accept` counts as none.',
        `An \`Idempotency-Key\` is kept for ${durationText(idempotencyTtlMs)} (ACCMAN_IDEMPOTENCY_TTL = ${idempotencyTtlMs / 1000} s) after the mod that first used it:`,
        'within that window a retry with the same key and amount is answered as the first was and changes nothing;',
        'past it the key counts as new (the first entry keeps it in the history).',
      ].join(' ') + `\n\nThe error codes, with their status:\n\n${errorCodeList()}`,
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'Required when the server has ACCMAN_TOKENS or ACCMAN_READ_TOKENS; read tokens may not mod.',
        },
      },
    },
  },
  transform,
})

/** A documented answer: a description, maybe headers, and a body schema per media type. */
export interface AnswerDoc {
  description: string
  headers?: Record<string, { type: 'string'; description: string }>
  content: Record<string, { schema: z.ZodType }>
}

const requestIdHeader = {
  'x-request-id': {
    type: 'string',
    description:
      "The request's id: the caller's x-request-id when well-formed and free of secrets (no credential of the request, no token), else a new UUID.",
  },
} as const

/**
 * The documented answers of one route: its successes, then its error codes grouped by status,
 * each status's body restricted to the codes the route can answer with there.
 */
export function answersOf(
  successes: Record<number, AnswerDoc>,
  errorCodes: readonly ApiErrorCode[],
): Record<number, AnswerDoc> {
  const answers: Record<number, AnswerDoc> = {}
  for (const [status, answer] of Object.entries(successes)) {
    answers[Number(status)] = { ...answer, headers: { ...requestIdHeader, ...answer.headers } }
  }
  const byStatus = new Map<number, ApiErrorCode[]>()
  for (const code of errorCodes) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code])
  for (const [status, codes] of byStatus) {
    const [first, ...rest] = codes
    if (first === undefined) continue
    const schema = errorBodySchema.extend({ code: z.enum([first, ...rest]) }).meta({
      examples: codes.map((code) => errorBody(code, exampleMessages[code] ?? STATUS_CODES[status] ?? 'error')),
    })
    answers[status] = {
      // A list, one code a line with its meaning from the table of codes (CommonMark, as OpenAPI reads it).
      description: codes.map((code) => `- \`${code}\`: ${apiErrorOf[code].meaning}`).join('\n'),
      headers: { ...requestIdHeader, ...errorHeaders[status] },
      content: { 'application/json': { schema } },
    }
  }
  return answers
}

const errorHeaders: Partial<Record<number, AnswerDoc['headers']>> = {
  401: { 'www-authenticate': { type: 'string', description: 'Bearer realm="accman"' } },
  503: { 'retry-after': { type: 'string', description: 'Seconds to wait before retrying.' } },
}

const exampleMessages: Partial<Record<ApiErrorCode, string | undefined>> = {
  ACCMAN_NO_ACCOUNT: 'no account for this credential',
  ACCMAN_INSUFFICIENT_FUNDS: 'insufficient funds: the balance is 3, the amount is -5',
  ACCMAN_INVALID_CRED: parameterRules.cred?.message,
  ACCMAN_INVALID_AMOUNT: parameterRules.by?.message,
  ACCMAN_INVALID_QUERY: 'missing parameter cred',
  ACCMAN_UNAUTHORIZED: 'a valid bearer token is required: Authorization: Bearer <token>',
  ACCMAN_FORBIDDEN: 'this token may read but not write',
  ACCMAN_NOT_ACCEPTABLE: 'this endpoint answers application/json or text/plain',
  ACCMAN_IDEMPOTENCY_MISMATCH: 'this idempotency key was first used with amount -1, not -2',
  ACCMAN_QUEUE_FULL: 'too many mods waiting; retry later',
  ACCMAN_CLOSED: 'the server is shutting down; retry shortly',
  ACCMAN_OVERLOADED: 'the server is overloaded; retry shortly',
  ACCMAN_STORE_UNAVAILABLE: 'the store did not answer in time; retry shortly',
  ACCMAN_BAD_REQUEST: 'the path must not be percent-encoded',
  ACCMAN_HEADERS_TOO_LARGE: `the request has more than ${limits.headerLinesMax} header lines`,
}
