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
  rotationGraceSecondsDefault,
  rotationGraceSecondsMax,
  seqMax,
} from '../ledger/index.js'
import { publicAccountIdPattern } from '../ledger/account-id.js'
import { idempotencyKeyText } from '../ledger/codec.js'
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
  new: { code: 'ACCMAN_INVALID_CRED', message: `new must be ${credentialSyntax}` },
  id: { code: 'ACCMAN_INVALID_QUERY', message: 'id must be a public account id: acct_ and 22 base64url characters' },
  grace: { code: 'ACCMAN_INVALID_QUERY', message: `grace must be a whole number of seconds from 0 to ${rotationGraceSecondsMax}` },
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

export const totQuery = z.strictObject({ cred: credParameter })

export const modQuery = z.strictObject({
  cred: credParameter,
  by: amount.meta({
    description: 'The change, a nonzero decimal integer: positive credits (and creates the account), negative debits.',
    examples: ['-1', '1000'],
  }),
  note: note.optional().meta({ description: `Kept in the history entry; at most ${noteLengthMax} characters.`, examples: ['invoice 42'] }),
})

const publicIdParameter = z
  .string()
  .regex(publicAccountIdPattern)
  .meta({ description: 'Instead of cred (reads only): the public id of the account, as /acct gives it.', examples: ['acct_3q2-7wJ9kQm1xZpL0aB4cD'] })

/** Exactly one of cred and id: checked by the handler (see accountOfQuery), which names the parameter. */
export const acctQuery = z.strictObject({ cred: credParameter.optional(), id: publicIdParameter.optional() })

const graceSeconds = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,5})$/)
  .transform(Number)
  .refine((value) => value <= rotationGraceSecondsMax)

export const rotateQuery = z.strictObject({
  cred: credParameter.meta({ description: 'The credential to replace.' }),
  new: credential.meta({ description: 'The new credential: valid, different from cred, and addressing no account.', examples: ['bmV3LXNlY3JldC1jcmVkZW50aWFsLTAx'] }),
  grace: graceSeconds
    .default(rotationGraceSecondsDefault)
    .meta({ description: `Seconds during which cred keeps working too, 0 to ${rotationGraceSecondsMax}; ${rotationGraceSecondsDefault} when absent.` }),
})

export const pastQuery = z.strictObject({
  cred: credParameter.optional(),
  id: publicIdParameter.optional(),
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
})

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
  kind: z.enum(['mod', 'hold', 'settle', 'void', 'expire', 'rotate', 'move', 'freeze', 'unfreeze']).meta({ description: 'What the entry records.' }),
  by: amountText.or(z.literal('0')).meta({ description: 'The change; "0" on entries that move no money (rotate).' }),
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
          { seq: 1, kind: 'mod', by: '1000', tot: '1000', at: '2026-11-21T10:00:00.000Z', note: 'invoice 42' },
          { seq: 2, kind: 'mod', by: '-1', tot: '999', at: '2026-11-21T10:00:01.250Z', key: 'order-7f3a-charge-1' },
        ],
      },
    ],
  })

export const accountBodySchema = z
  .strictObject({
    account: z.string().regex(publicAccountIdPattern).meta({ description: 'The public id: stable across rotations, reveals no credential.' }),
    tot: balanceDecimalText,
    held: balanceDecimalText.meta({ description: 'Held by open holds.' }),
    avail: balanceDecimalText.meta({ description: 'tot - held.' }),
    seq: seqNumber,
    created: z.iso.datetime().meta({ description: 'The time of entry 1.' }),
    updated: z.iso.datetime().meta({ description: 'The time of the last entry.' }),
  })
  .meta({
    examples: [
      { account: 'acct_3q2-7wJ9kQm1xZpL0aB4cD', tot: '999', held: '0', avail: '999', seq: 2, created: '2026-11-21T10:00:00.000Z', updated: '2026-11-21T10:00:01.250Z' },
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

export const healthBody = z.strictObject({ status: z.literal('ok') })

export const whoamiBody = z
  .strictObject({
    scope: z.enum(['open', 'read', 'write']).meta({
      description: '`write`: may mod; `read`: tot and past only; `open`: no tokens are configured (loopback only).',
    }),
  })
  .meta({ examples: [{ scope: 'write' }] })
