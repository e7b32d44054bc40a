// The wire schemas. Each query parameter carries the error it reports, so a rejection names the
// parameter and has a stable code, and the handler holds domain types only.
import { z } from 'zod'
import { amountPattern, balancePattern, credentialLengthMax, credentialLengthMin, credentialPattern, credentialSyntax } from '../contract/syntax.js'
import {
  amountMax,
  characterCount,
  idempotencyKeyLengthMax,
  noteLengthMax,
  pageSizeDefault,
  pageSizeMax,
  seqMax,
} from '../ledger/index.js'
import { idempotencyKeyText, isRefText } from '../ledger/codec.js'
import { refLengthMax } from '../ledger/limits.js'
import { limits } from '../config.js'
import { apiErrorCodes, type ApiErrorCode } from './errors.js'

const seqPattern = /^(0|[1-9][0-9]{0,15})$/

/** How a bad value of one parameter is reported: a stable code and a message naming it. */
export interface ParameterRule {
  code: ApiErrorCode
  message: string
}

export const parameterRules: Readonly<Record<string, ParameterRule>> = {
  cred: {
    code: 'ACCMAN_INVALID_CRED',
    message: `cred must be ${credentialSyntax}`,
  },
  by: { code: 'ACCMAN_INVALID_AMOUNT', message: `by must be a nonzero integer with magnitude at most ${amountMax}` },
  note: { code: 'ACCMAN_INVALID_QUERY', message: `note must be at most ${noteLengthMax} characters` },
  limit: { code: 'ACCMAN_INVALID_QUERY', message: `limit must be an integer from 1 to ${pageSizeMax}` },
  after: { code: 'ACCMAN_INVALID_QUERY', message: 'after must be a non-negative integer seq' },
  before: { code: 'ACCMAN_INVALID_QUERY', message: 'before must be a non-negative integer seq' },
  order: { code: 'ACCMAN_INVALID_QUERY', message: 'order must be asc or desc' },
  from: { code: 'ACCMAN_INVALID_QUERY', message: 'from must be an ISO 8601 date or date-time, e.g. 2026-11-21T10:00:00.000Z' },
  to: { code: 'ACCMAN_INVALID_QUERY', message: 'to must be an ISO 8601 date or date-time, e.g. 2026-11-21T10:00:00.000Z' },
  ref: {
    code: 'ACCMAN_INVALID_QUERY',
    message: `ref must be 1 to ${refLengthMax} characters without control characters; reads take cred or ref, not both`,
  },
  below: { code: 'ACCMAN_INVALID_QUERY', message: `below must be a whole number from 0 to ${amountMax}, or empty to remove the threshold` },
  url: { code: 'ACCMAN_INVALID_QUERY', message: 'url must be one of the configured webhook URLs (ACCMAN_WEBHOOK_URL)' },
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
  .regex(amountPattern)
  .transform((text) => BigInt(text))
  .refine((by) => by >= -amountMax && by <= amountMax)

export const note = z
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

// Descriptions and examples below feed the OpenAPI document (src/http/openapi.ts).
const exampleCredential = 'c2VjcmV0LWV4YW1wbGUtY3JlZGVudGlhbA=='
const credParameter = credential.meta({
  description: "The account's secret credential: base64url with padding.",
  examples: [exampleCredential],
})

export const refText = z.string().refine(isRefText)
const refParameter = refText.meta({
  description: `The account's ref (set by PATCH /ref), instead of cred: 1 to ${refLengthMax} characters.`,
  examples: ['customer-4711'],
})

/** Reads name the account by cred or by ref, exactly one of them. */
function credOrRef<T extends { cred?: string | undefined; ref?: string | undefined }>(query: T, context: z.RefinementCtx): void {
  if (query.cred === undefined && query.ref === undefined) context.addIssue({ code: 'custom', path: ['cred'], message: 'missing' })
  if (query.cred !== undefined && query.ref !== undefined) context.addIssue({ code: 'custom', path: ['ref'], message: 'cred or ref' })
}

export const totQuery = z.strictObject({ cred: credParameter.optional(), ref: refParameter.optional() }).superRefine(credOrRef)

export const alertQuery = z.strictObject({
  cred: credParameter,
  below: z
    .string()
    .regex(balancePattern)
    .transform((text) => BigInt(text))
    .refine((units) => units <= amountMax)
    .or(z.literal('').transform(() => null))
    .meta({ description: 'The low-balance threshold in units, 0 or more; empty removes the account\'s own (the default applies).', examples: ['500'] }),
})

export const refQuery = z.strictObject({
  cred: credParameter,
  ref: refText.or(z.literal('').transform(() => null)).meta({
    description: `The operator's own reference for the account, 1 to ${refLengthMax} characters; empty removes it.`,
    examples: ['customer-4711'],
  }),
})

export const webhookUrlQuery = z.strictObject({
  url: z.string().min(1).meta({ description: 'One of the configured webhook URLs, exactly as in ACCMAN_WEBHOOK_URL.' }),
})

export const modQuery = z.strictObject({
  cred: credParameter,
  by: amount.meta({
    description: 'The change, a nonzero decimal integer: positive credits (and creates the account), negative debits.',
    examples: ['-1', '1000'],
  }),
  note: note.optional().meta({ description: `Kept in the history entry; at most ${noteLengthMax} characters.`, examples: ['invoice 42'] }),
})

export const pastQuery = z.strictObject({
  cred: credParameter.optional(),
  ref: refParameter.optional(),
  limit: limit.default(pageSizeDefault).meta({ description: `Entries per page, 1 to ${pageSizeMax}; ${pageSizeDefault} when absent.` }),
  after: seq.optional().meta({ description: 'Only entries with a greater seq (the next page in ascending order).' }),
  before: seq.optional().meta({ description: 'Only entries with a smaller seq (the next page in descending order).' }),
  order: order.default('asc').meta({ description: 'Ascending or descending seq.' }),
  from: fromInstant.optional().meta({
    description: 'Only entries at or after this instant; a bare date means its first millisecond (UTC).',
    examples: ['2026-11-01'],
  }),
  to: toInstant.optional().meta({
    description: 'Only entries at or before this instant; a bare date means its last millisecond (UTC).',
    examples: ['2026-11-30T23:59:59.999Z'],
  }),
}).superRefine(credOrRef)

export const idempotencyKeyHeader = idempotencyKeyText

export const modHeaders = z.looseObject({
  'idempotency-key': idempotencyKeyHeader.optional().meta({
    description: 'Makes the mod safe to retry: a repeat with the same key and amount is answered as the first was.',
    examples: ['order-7f3a-charge-1'],
  }),
})

// The bodies the API answers with. Routes build them by hand (faster than serialising); these
// schemas document them, and the tests check real answers against them.
const amountText = z.string().regex(amountPattern)
const balanceDecimalText = z.string().regex(balancePattern)
const seqNumber = z.int().min(0).max(seqMax)

export const balanceBody = z
  .strictObject({
    tot: balanceDecimalText.meta({ description: 'The balance, a decimal integer string.' }),
    seq: seqNumber.meta({ description: 'The number of history entries so far.' }),
  })
  .meta({ examples: [{ tot: '999', seq: 2 }] })

export const balanceText = z
  .string()
  .regex(balancePattern)
  .meta({ description: 'The balance as a bare decimal integer, no newline.', examples: ['999'] })

export const entryBody = z.strictObject({
  seq: seqNumber,
  by: amountText,
  tot: balanceDecimalText.meta({ description: 'The balance after this entry.' }),
  at: z.iso.datetime(),
  note: z.string().optional(),
  key: idempotencyKeyText.optional().meta({ description: 'The Idempotency-Key the mod carried.' }),
})

export const pastBody = z
  .strictObject({ tot: balanceDecimalText, seq: seqNumber, entries: z.array(entryBody) })
  .meta({
    examples: [
      {
        tot: '999',
        seq: 2,
        entries: [
          { seq: 1, by: '1000', tot: '1000', at: '2026-11-21T10:00:00.000Z', note: 'invoice 42' },
          { seq: 2, by: '-1', tot: '999', at: '2026-11-21T10:00:01.250Z', key: 'order-7f3a-charge-1' },
        ],
      },
    ],
  })

export const errorBodySchema = z.strictObject({
  statusCode: z.int(),
  code: z.enum(apiErrorCodes).meta({ description: 'Stable: clients branch on it.' }),
  error: z.string(),
  message: z.string().meta({ description: 'For people; never carries a credential, a token or the URL.' }),
  tot: balanceDecimalText.optional().meta({ description: 'The balance, on ACCMAN_INSUFFICIENT_FUNDS.' }),
})

const batchOperation = z.union([
  z.strictObject({
    op: z.literal('mod'),
    cred: z.string().meta({ description: 'As /mod: validated per operation.' }),
    by: z.string(),
    note: z.string().optional(),
    key: z.string().optional().meta({ description: "The mod's Idempotency-Key." }),
  }),
  z.strictObject({ op: z.literal('tot'), cred: z.string() }),
])

export const batchBody = z
  .strictObject({ ops: z.array(batchOperation).min(1).max(limits.batchOpsMax) })
  .meta({ examples: [{ ops: [{ op: 'mod', cred: exampleCredential, by: '-1', key: 'order-7f3a-charge-1' }, { op: 'tot', cred: exampleCredential }] }] })

const batchResult = z.union([
  z.strictObject({ status: z.literal(200), tot: balanceDecimalText, seq: seqNumber, replayed: z.literal(true).optional() }),
  errorBodySchema.extend({ status: z.int() }),
])

export const batchResultsBody = z
  .strictObject({ results: z.array(batchResult) })
  .meta({ examples: [{ results: [{ status: 200, tot: '999', seq: 2 }, { status: 200, tot: '999', seq: 2 }] }] })

export const accountSettingsBody = z
  .strictObject({
    tot: balanceDecimalText,
    seq: seqNumber,
    alertBelow: balanceDecimalText.optional().meta({ description: 'The low-balance threshold in force (the account\'s own, else ACCMAN_ALERT_BELOW); absent when none.' }),
    ref: z.string().optional().meta({ description: 'The account\'s ref, when set.' }),
  })
  .meta({ examples: [{ tot: '999', seq: 2, alertBelow: '500', ref: 'customer-4711' }] })

export const webhooksBody = z
  .strictObject({
    endpoints: z.array(
      z.strictObject({
        url: z.string().meta({ description: 'Scheme, host, port and path: never the userinfo or the query.' }),
        id: z.string().meta({ description: 'A hash of the URL, as the logs and metrics name the endpoint.' }),
        disabled: z.boolean().meta({ description: 'A 410 disabled it: `accman webhooks enable <url>` re-enables it.' }),
        pending: z.int().min(0),
        delivered: z.int().min(0).meta({ description: 'Delivered by this node since it started.' }),
        failed: z.int().min(0).meta({ description: 'Gave up after the retry window: `accman webhooks retry` sends them again.' }),
        lastError: z.string().nullable(),
      }),
    ),
    outbox: z.int().min(0).meta({ description: 'Events in the outbox.' }),
  })
  .meta({
    examples: [
      { endpoints: [{ url: 'https://billing.example.com/hooks', id: '3f0c9a1b2d4e5f60', disabled: false, pending: 0, delivered: 12, failed: 0, lastError: null }], outbox: 0 },
    ],
  })

export const healthBody = z.strictObject({ status: z.literal('ok') })

export const whoamiBody = z
  .strictObject({
    scope: z.enum(['open', 'read', 'write']).meta({
      description: '`write`: may mod; `read`: tot and past only; `open`: no tokens are configured (loopback only).',
    }),
  })
  .meta({ examples: [{ scope: 'write' }] })
