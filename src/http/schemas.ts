// The wire schemas. Each query parameter carries the error it reports, so a rejection names the
// parameter and has a stable code, and the handler holds domain types only.
import { z } from 'zod'
import { amountPattern, balancePattern, credentialLengthMax, credentialLengthMin, credentialPattern, credentialSyntax } from '../contract/syntax.js'
import {
  accountTtlSecondsMax,
  accountTtlSecondsMin,
  amountMax,
  holdTtlSecondsDefault,
  holdTtlSecondsMax,
  holdTtlSecondsMin,
  characterCount,
  idempotencyKeyLengthMax,
  noteLengthMax,
  pageSizeDefault,
  pageSizeMax,
  rotationGraceSecondsDefault,
  rotationGraceSecondsMax,
  seqMax,
} from '../ledger/index.js'
import { idempotencyKeyText, isRefText } from '../ledger/codec.js'
import { refLengthMax } from '../ledger/limits.js'
import { publicAccountIdPattern } from '../ledger/account-id.js'
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
  hold: { code: 'ACCMAN_INVALID_QUERY', message: 'hold must be a hold id: 16 to 64 characters of base64url' },
  ttl: {
    code: 'ACCMAN_INVALID_QUERY',
    message: `ttl must be a whole number of seconds: ${holdTtlSecondsMin} to ${holdTtlSecondsMax} on /hold, ${accountTtlSecondsMin} to ${accountTtlSecondsMax} on a credit`,
  },
  key: { code: 'ACCMAN_INVALID_QUERY', message: `key must be 1 to ${idempotencyKeyLengthMax} visible ASCII characters` },
  ref: {
    code: 'ACCMAN_INVALID_QUERY',
    message: `ref must be 1 to ${refLengthMax} characters without control characters; a read takes one of cred, id and ref`,
  },
  below: { code: 'ACCMAN_INVALID_QUERY', message: `below must be a whole number from 0 to ${amountMax}, or empty to remove the threshold` },
  url: { code: 'ACCMAN_INVALID_QUERY', message: 'url must be one of the configured webhook URLs (ACCMAN_WEBHOOK_URL)' },
  new: { code: 'ACCMAN_INVALID_CRED', message: `new must be ${credentialSyntax}` },
  id: { code: 'ACCMAN_INVALID_QUERY', message: 'id must be a public account id, acct_ and 22 base64url characters; a read takes one of cred, id and ref' },
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

export const refText = z.string().refine(isRefText)
const refParameter = refText.meta({
  description: `The account's ref (set by PATCH /ref), instead of cred: 1 to ${refLengthMax} characters.`,
  examples: ['customer-4711'],
})

const publicIdParameter = z
  .string()
  .regex(publicAccountIdPattern)
  .meta({ description: 'Instead of cred (reads only): the public id of the account, as /acct gives it.', examples: ['acct_3q2-7wJ9kQm1xZpL0aB4cD'] })

/** Reads name the account by cred, by id or by ref, exactly one of them. */
function credOrRef<T extends { cred?: string | undefined; id?: string | undefined; ref?: string | undefined }>(query: T, context: z.RefinementCtx): void {
  const given = (['cred', 'id', 'ref'] as const).filter((name) => query[name] !== undefined)
  if (given.length === 0) context.addIssue({ code: 'custom', path: ['cred'], message: 'missing' })
  if (given.length > 1) context.addIssue({ code: 'custom', path: [given[1] ?? 'ref'], message: 'one of cred, id and ref' })
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

/** An account's ttl in seconds: digits only, no sign, no leading zero. */
export const ttlSeconds = z
  .string()
  .regex(/^[1-9][0-9]{0,8}$/)
  .transform(Number)
  .refine((value) => value >= accountTtlSecondsMin && value <= accountTtlSecondsMax)

export const modQuery = z.strictObject({
  cred: credParameter,
  by: amount.meta({
    description: 'The change, a nonzero decimal integer: positive credits (and creates the account), negative debits.',
    examples: ['-1', '1000'],
  }),
  note: note.optional().meta({ description: `Kept in the history entry; at most ${noteLengthMax} characters.`, examples: ['invoice 42'] }),
  ttl: ttlSeconds.optional().meta({
    description: `On a credit only: the account expires no earlier than now + ttl seconds (${accountTtlSecondsMin} to ${accountTtlSecondsMax}); an expired account refuses debits and moves out until a credit with ttl reopens it.`,
    examples: ['2592000'],
  }),
})

/** A positive amount: what a hold reserves, what a settle posts. */
const positiveAmount = amount.refine((by) => by > 0n)
const holdId = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/)
const holdTtlSeconds = z
  .string()
  .regex(/^[1-9][0-9]{0,5}$/)
  .transform(Number)
  .refine((seconds) => seconds >= holdTtlSecondsMin && seconds <= holdTtlSecondsMax)
const holdParameter = holdId.meta({ description: 'The hold id /hold answered with.', examples: ['q3V1Yk9vX2hvbGRfaWQxMg'] })
const holdNote = note.optional().meta({ description: `Kept in the history entry; at most ${noteLengthMax} characters.`, examples: ['request 7f3a'] })

export const holdQuery = z.strictObject({
  cred: credParameter,
  by: positiveAmount.meta({ description: 'The amount to reserve: a positive decimal integer.', examples: ['50'] }),
  ttl: holdTtlSeconds.default(holdTtlSecondsDefault).meta({
    description: `Seconds the hold lasts, ${holdTtlSecondsMin} to ${holdTtlSecondsMax}; ${holdTtlSecondsDefault} when absent.`,
  }),
  note: holdNote,
})

export const settleQuery = z.strictObject({
  cred: credParameter,
  hold: holdParameter,
  by: positiveAmount.optional().meta({ description: "The amount to post, 1 to the hold's amount; the whole hold when absent.", examples: ['42'] }),
  note: holdNote,
})

export const voidQuery = z.strictObject({ cred: credParameter, hold: holdParameter, note: holdNote })

export const holdsQuery = z
  .strictObject({ cred: credParameter.optional(), id: publicIdParameter.optional(), ref: refParameter.optional() })
  .superRefine(credOrRef)
export const moveQuery = z.strictObject({
  cred: credParameter.meta({ description: 'The credential of the account the amount leaves (FROM).' }),
  to: credential.meta({ description: 'The credential of the account the amount goes to (TO); it must exist.', examples: ['dG8tZXhhbXBsZS1jcmVkZW50aWFs'] }),
  by: amount.meta({ description: 'The amount moved, a positive decimal integer.', examples: ['250'] }),
  note: note.optional().meta({ description: `Kept in both history entries; at most ${noteLengthMax} characters.` }),
})

export const freezeQuery = z.strictObject({ cred: credParameter })

/** Rules of one endpoint's parameters where a name means something else than elsewhere (/move's `to` is a credential). */
export const endpointParameterRules = new WeakMap<z.ZodType, Readonly<Record<string, ParameterRule>>>([
  [moveQuery, { to: { code: 'ACCMAN_INVALID_CRED', message: `to must be ${credentialSyntax}` } }],
])

/** Exactly one of cred, id and ref (see credOrRef and accountOfQuery). */
export const acctQuery = z
  .strictObject({ cred: credParameter.optional(), id: publicIdParameter.optional(), ref: refParameter.optional() })
  .superRefine(credOrRef)

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
  key: idempotencyKeyText.optional().meta({
    description: 'Only the entries that carry this Idempotency-Key ("was request X charged?"), oldest first, also after the key is past its retention window; the paging parameters do not apply.',
    examples: ['order-7f3a-charge-1'],
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
    held: balanceDecimalText.meta({ description: 'The sum of the active holds, as of the answer.' }),
    avail: balanceDecimalText.meta({ description: 'tot - held: what a debit or a new hold may take.' }),
    expires: z.iso.datetime().optional().meta({ description: 'When the account expires (set by a credit with ttl); absent: never.' }),
  })
  .meta({ examples: [{ tot: '999', seq: 2, held: '0', avail: '999' }] })

const holdFigures = {
  tot: balanceDecimalText,
  held: balanceDecimalText,
  avail: balanceDecimalText,
  seq: seqNumber,
}

export const holdBody = z
  .strictObject({
    hold: holdId.meta({ description: 'The hold id: opaque, URL-safe, unguessable.' }),
    by: balanceDecimalText,
    expires: z.iso.datetime().meta({ description: 'The hold counts in held until this instant, not after.' }),
    ...holdFigures,
  })
  .meta({ examples: [{ hold: 'q3V1Yk9vX2hvbGRfaWQxMg', by: '50', expires: '2026-11-30T12:05:00.000Z', tot: '999', held: '50', avail: '949', seq: 3 }] })

export const settleBody = z
  .strictObject({ hold: holdId, settled: balanceDecimalText.meta({ description: 'The amount posted as a debit.' }), ...holdFigures })
  .meta({ examples: [{ hold: 'q3V1Yk9vX2hvbGRfaWQxMg', settled: '42', tot: '957', held: '0', avail: '957', seq: 4 }] })

export const voidBody = z
  .strictObject({ hold: holdId, ...holdFigures })
  .meta({ examples: [{ hold: 'q3V1Yk9vX2hvbGRfaWQxMg', tot: '999', held: '0', avail: '999', seq: 4 }] })

export const holdsBody = z
  .strictObject({
    held: balanceDecimalText,
    holds: z.array(
      z.strictObject({ hold: holdId, by: balanceDecimalText, at: z.iso.datetime(), expires: z.iso.datetime(), note: z.string().optional() }),
    ),
  })
  .meta({
    examples: [
      { held: '50', holds: [{ hold: 'q3V1Yk9vX2hvbGRfaWQxMg', by: '50', at: '2026-11-30T12:00:00.000Z', expires: '2026-11-30T12:05:00.000Z', note: 'request 7f3a' }] },
    ],
  })

export const balanceText = z
  .string()
  .regex(balancePattern)
  .meta({ description: 'The balance as a bare decimal integer, no newline.', examples: ['999'] })

export const entryBody = z.strictObject({
  seq: seqNumber,
  kind: z.enum(['mod', 'hold', 'settle', 'void', 'expire', 'rotate', 'move', 'freeze', 'unfreeze']).meta({ description: 'What the entry records.' }),
  by: z.union([amountText, z.literal('0')]).meta({ description: 'The change of tot; "0" for a hold, void or expire.' }),
  tot: balanceDecimalText.meta({ description: 'The balance after this entry.' }),
  hold: holdId.optional().meta({ description: 'The hold of a hold, settle, void or expire entry.' }),
  heldBy: amountText.optional().meta({ description: 'The signed change of held: +A for a hold of A, -A for its settle, void or expire.' }),
  held: balanceDecimalText.meta({ description: "The account's held after this entry." }),
  at: z.iso.datetime(),
  note: z.string().optional(),
  key: idempotencyKeyText.optional().meta({ description: 'The Idempotency-Key the mod carried.' }),
  move: z.string().optional().meta({ description: "The move's id, the same on both of its entries." }),
  actor: z.string().optional().meta({ description: 'The name of the named token that wrote the entry.' }),
})

export const pastBody = z
  .strictObject({
    tot: balanceDecimalText,
    seq: seqNumber,
    held: balanceDecimalText.meta({ description: "The account's held as of now (may be below the last entry's held until due expiries are written)." }),
    entries: z.array(entryBody),
  })
  .meta({
    examples: [
      {
        tot: '999',
        seq: 2,
        held: '0',
        entries: [
          { seq: 1, kind: 'mod', by: '1000', tot: '1000', held: '0', at: '2026-11-21T10:00:00.000Z', note: 'invoice 42' },
          { seq: 2, kind: 'mod', by: '-1', tot: '999', held: '0', at: '2026-11-21T10:00:01.250Z', key: 'order-7f3a-charge-1' },
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
    expires: z.iso.datetime().optional().meta({ description: 'When the account expires (set by a credit with ttl); absent: never.' }),
    frozen: z.literal(true).optional().meta({ description: 'Present (true) while the account is frozen.' }),
    alertBelow: balanceDecimalText.optional().meta({ description: 'The account\'s own low-balance threshold, when set.' }),
    ref: z.string().optional().meta({ description: 'The account\'s ref, when set.' }),
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
  avail: balanceDecimalText.optional().meta({ description: 'The balance less its active holds, on ACCMAN_INSUFFICIENT_FUNDS.' }),
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
  z.strictObject({
    op: z.literal('hold'),
    cred: z.string(),
    by: z.string(),
    ttl: z.string().optional(),
    note: z.string().optional(),
    key: z.string().optional().meta({ description: "The hold's Idempotency-Key." }),
  }),
  z.strictObject({ op: z.literal('settle'), cred: z.string(), hold: z.string(), by: z.string().optional(), note: z.string().optional(), key: z.string().optional() }),
  z.strictObject({ op: z.literal('void'), cred: z.string(), hold: z.string(), note: z.string().optional(), key: z.string().optional() }),
  z.strictObject({
    op: z.literal('move'),
    cred: z.string().meta({ description: 'As /move: FROM.' }),
    to: z.string(),
    by: z.string(),
    note: z.string().optional(),
    key: z.string().optional().meta({ description: "The move's Idempotency-Key (FROM's key space)." }),
  }),
])

export const batchBody = z
  .strictObject({ ops: z.array(batchOperation).min(1).max(limits.batchOpsMax) })
  .meta({ examples: [{ ops: [{ op: 'mod', cred: exampleCredential, by: '-1', key: 'order-7f3a-charge-1' }, { op: 'tot', cred: exampleCredential }] }] })

const batchResult = z.union([
  z.strictObject({
    status: z.literal(200),
    tot: balanceDecimalText,
    seq: seqNumber,
    held: balanceDecimalText,
    avail: balanceDecimalText,
    replayed: z.literal(true).optional(),
  }),
  holdBody.extend({ status: z.literal(200), replayed: z.literal(true).optional() }),
  settleBody.extend({ status: z.literal(200), replayed: z.literal(true).optional() }),
  voidBody.extend({ status: z.literal(200), replayed: z.literal(true).optional() }),
  z.strictObject({
    status: z.literal(200),
    move: z.string(),
    tot: balanceDecimalText,
    held: balanceDecimalText,
    avail: balanceDecimalText,
    seq: seqNumber,
    replayed: z.literal(true).optional(),
  }),
  errorBodySchema.extend({ status: z.int() }),
])

export const batchResultsBody = z
  .strictObject({ results: z.array(batchResult) })
  .meta({ examples: [{ results: [{ status: 200, tot: '999', seq: 2, held: '0', avail: '999' }, { status: 200, tot: '999', seq: 2, held: '0', avail: '999' }] }] })

export const accountSettingsBody = z
  .strictObject({
    tot: balanceDecimalText,
    seq: seqNumber,
    held: balanceDecimalText,
    avail: balanceDecimalText,
    expires: z.iso.datetime().optional(),
    alertBelow: balanceDecimalText.optional().meta({ description: 'The low-balance threshold in force (the account\'s own, else ACCMAN_ALERT_BELOW); absent when none.' }),
    ref: z.string().optional().meta({ description: 'The account\'s ref, when set.' }),
  })
  .meta({ examples: [{ tot: '999', seq: 2, held: '0', avail: '999', alertBelow: '500', ref: 'customer-4711' }] })

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

export const moveBody = z
  .strictObject({
    move: z.string().meta({ description: "The move's id, on both history entries." }),
    tot: balanceDecimalText.meta({ description: "FROM's balance after the move." }),
    held: balanceDecimalText.meta({ description: 'Held by open holds ("0" where holds are not built).' }),
    avail: balanceDecimalText.meta({ description: 'tot - held.' }),
    seq: seqNumber,
    expires: z.iso.datetime().optional(),
  })
  .meta({ examples: [{ move: 'Zb3c9Q2xR0mW4yTt1uVv8A', tot: '750', held: '0', avail: '750', seq: 3 }] })

export const freezeBody = z
  .strictObject({ tot: balanceDecimalText, seq: seqNumber, frozen: z.boolean(), expires: z.iso.datetime().optional() })
  .meta({ examples: [{ tot: '750', seq: 4, frozen: true }] })
