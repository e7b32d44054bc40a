// The wire schemas. Each query parameter carries the error it reports, so a rejection names the
// parameter and has a stable code, and the handler holds domain types only.
import { z } from 'zod'
import {
  amountDigitsMax,
  amountMax,
  characterCount,
  credentialLengthMax,
  credentialLengthMin,
  idempotencyKeyLengthMax,
  noteLengthMax,
  pageSizeDefault,
  pageSizeMax,
  seqMax,
} from '../ledger/index.js'
import { idempotencyKeyText } from '../ledger/codec.js'
import type { ApiErrorCode } from './errors.js'

const credentialPattern = /^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{4}|[A-Za-z0-9_-]{3}=|[A-Za-z0-9_-]{2}==)$/
const amountPattern = /^-?[1-9][0-9]*$/
const seqPattern = /^(0|[1-9][0-9]{0,15})$/

/** How a bad value of one parameter is reported: a stable code and a message naming it. */
export interface ParameterRule {
  code: ApiErrorCode
  message: string
}

export const parameterRules: Readonly<Record<string, ParameterRule>> = {
  cred: {
    code: 'ACCMAN_INVALID_CRED',
    message: `cred must be base64url with padding, ${credentialLengthMin} to ${credentialLengthMax} characters`,
  },
  by: { code: 'ACCMAN_INVALID_AMOUNT', message: `by must be a nonzero integer with magnitude at most ${amountMax}` },
  note: { code: 'ACCMAN_INVALID_QUERY', message: `note must be at most ${noteLengthMax} characters` },
  limit: { code: 'ACCMAN_INVALID_QUERY', message: `limit must be an integer from 1 to ${pageSizeMax}` },
  after: { code: 'ACCMAN_INVALID_QUERY', message: 'after must be a non-negative integer seq' },
  before: { code: 'ACCMAN_INVALID_QUERY', message: 'before must be a non-negative integer seq' },
  order: { code: 'ACCMAN_INVALID_QUERY', message: 'order must be asc or desc' },
  from: { code: 'ACCMAN_INVALID_QUERY', message: 'from must be an ISO 8601 date or date-time, e.g. 2026-11-21T10:00:00.000Z' },
  to: { code: 'ACCMAN_INVALID_QUERY', message: 'to must be an ISO 8601 date or date-time, e.g. 2026-11-21T10:00:00.000Z' },
  'idempotency-key': {
    code: 'ACCMAN_INVALID_QUERY',
    message: `header Idempotency-Key must be 1 to ${idempotencyKeyLengthMax} visible ASCII characters`,
  },
}

export const credential = z
  .string()
  .min(credentialLengthMin)
  .max(credentialLengthMax)
  .regex(credentialPattern)

export const amount = z
  .string()
  .max(amountDigitsMax + 1)
  .regex(amountPattern)
  .transform((text) => BigInt(text))
  .refine((by) => by >= -amountMax && by <= amountMax)

const note = z
  .string()
  .refine((text) => characterCount(text) <= noteLengthMax)

const limit = z
  .string()
  .regex(/^[1-9][0-9]{0,3}$/)
  .transform(Number)
  .refine((value) => value <= pageSizeMax)

const seq = z
    .string()
    .regex(seqPattern)
    .transform(Number)
    .refine((value) => value <= seqMax)

const order = z
  .enum(['asc', 'desc'])

const dayMs = 86_400_000
const dateTime = z.iso.datetime({ offset: true }).transform((text) => Date.parse(text))
const date = z.iso.date().transform((text) => Date.parse(`${text}T00:00:00.000Z`))
/** `from`: an instant, or a date meaning its first millisecond (UTC). */
const fromInstant = z.union([dateTime, date]).refine((ms) => Number.isFinite(ms))
/** `to`: an instant, or a date meaning its last millisecond (UTC), so from=D&to=D is day D. */
const toInstant = z.union([dateTime, date.transform((ms) => ms + dayMs - 1)]).refine((ms) => Number.isFinite(ms))

export const totQuery = z.strictObject({ cred: credential })

export const modQuery = z.strictObject({
  cred: credential,
  by: amount,
  note: note.optional(),
})

export const pastQuery = z.strictObject({
  cred: credential,
  limit: limit.default(pageSizeDefault),
  after: seq.optional(),
  before: seq.optional(),
  order: order.default('asc'),
  from: fromInstant.optional(),
  to: toInstant.optional(),
})

export const idempotencyKeyHeader = idempotencyKeyText

export const modHeaders = z.looseObject({ 'idempotency-key': idempotencyKeyHeader.optional() })
