// POST /batch: many operations in one request, each decided and applied exactly as if sent alone,
// in order; one failing undoes nothing. The body's shape is checked first (a bad shape applies
// nothing); each operation's field values are then checked as its single endpoint would.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { batchBodyBytesMax, limits } from '../../config.js'
import { credentialKeyOf, isLedgerError, type CredentialKey, type Balance, type ModResult } from '../../ledger/index.js'
import type { Authenticate, ScopeOf } from '../auth.js'
import { ApiError, errorBody, retryAfterText, statusOf, type ApiErrorCode, type ErrorBody } from '../errors.js'
import type { Metrics, ModOutcome } from '../metrics.js'
import { answersOf } from '../openapi.js'
import {
  amount,
  batchBody,
  batchResultsBody,
  credential,
  holdQuery,
  idempotencyKeyHeader,
  note as noteSchema,
  parameterRules,
  settleQuery,
  voidQuery,
} from '../schemas.js'

/** One result: the single endpoint's JSON answer plus its status. */
type Result = ({ tot: string; seq: number; held: string; avail: string; replayed?: true } | Record<string, unknown> | ErrorBody) & { status: number }

/** The shape of an operation, per `op`: wrong shapes are 400 for the whole batch. */
const shapes = {
  mod: z.strictObject({
    op: z.literal('mod'),
    cred: z.string(),
    by: z.string(),
    note: z.string().optional(),
    key: z.string().optional(),
  }),
  tot: z.strictObject({ op: z.literal('tot'), cred: z.string() }),
  hold: z.strictObject({ op: z.literal('hold'), cred: z.string(), by: z.string(), ttl: z.string().optional(), note: z.string().optional(), key: z.string().optional() }),
  settle: z.strictObject({ op: z.literal('settle'), cred: z.string(), hold: z.string(), by: z.string().optional(), note: z.string().optional(), key: z.string().optional() }),
  void: z.strictObject({ op: z.literal('void'), cred: z.string(), hold: z.string(), note: z.string().optional(), key: z.string().optional() }),
  move: z.strictObject({
    op: z.literal('move'),
    cred: z.string(),
    to: z.string(),
    by: z.string(),
    note: z.string().optional(),
    key: z.string().optional(),
  }),
}
type Shapes = typeof shapes
type OpName = keyof Shapes
type OpOf<Name extends OpName> = z.infer<Shapes[Name]>

const mediaTypePattern = /^application\/json\s*(;|$)/i

/** A field's value is bad: the operation's own result, as the single endpoint would answer. */
function fieldRefusal(parameter: string): Result {
  const rule = parameterRules[parameter]
  if (rule === undefined) throw new Error(`no rule for ${parameter}`)
  return { ...errorBody(rule.code, rule.message), status: statusOf(rule.code) }
}

function refusal(code: ApiErrorCode, message: string, tot?: bigint, avail?: bigint): Result {
  return { ...errorBody(code, message, tot, avail), status: statusOf(code) }
}

function balanceResult(balance: Balance): Result {
  const held = balance.held ?? 0n
  return { tot: balance.tot.toString(), seq: balance.seq, held: held.toString(), avail: (balance.tot - held).toString(), status: 200 }
}

function ledgerRefusal(error: unknown): Result {
  if (isLedgerError(error)) return refusal(error.code, error.message, error.tot, error.avail)
  throw error
}

/** What the batch knows of the accounts its earlier mods touch: a read waits for them. */
type Pending = Map<CredentialKey, Promise<unknown>>

interface OpContext {
  ledger: FastifyRequest['server']['ledger']
  mayWrite: boolean
  pending: Pending
  observeMod: (outcome: ModOutcome) => void
  /** The name of the request's named token: entries it writes carry it. */
  actor: string | undefined
}

/**
 * How each operation is checked and run, one entry per `op`. `start` runs synchronously in batch
 * order, so mods reach the writer in that order; it answers the result to await.
 */
interface OpHandler<Name extends OpName> {
  writes: boolean
  start: (op: OpOf<Name>, context: OpContext) => Promise<Result> | Result
}

const handlers: { [Name in OpName]: OpHandler<Name> } = {
  move: { writes: true, start: (op, context) => startMove(op, context) },
  tot: {
    writes: false,
    start(op, { ledger, pending }) {
      if (!credential.safeParse(op.cred).success) return fieldRefusal('cred')
      const accountKey = credentialKeyOf(op.cred)
      const before = pending.get(accountKey)
      const read = async (): Promise<Result> => {
        const balance = await ledger.tot(accountKey)
        return balance === undefined ? refusal('ACCMAN_NO_ACCOUNT', 'no account for this credential') : balanceResult(balance)
      }
      // A read after a mod of the same account in this batch sees that mod.
      return before === undefined ? read() : before.then(read, read)
    },
  },
  mod: {
    writes: true,
    start(op, { ledger, mayWrite, pending, observeMod, actor }) {
      if (!mayWrite) {
        observeMod('unauthorized')
        return refusal('ACCMAN_FORBIDDEN', 'this token may read but not write')
      }
      const parsed = parseMod(op)
      if ('status' in parsed) {
        observeMod('rejected')
        return parsed
      }
      const accountKey = credentialKeyOf(op.cred)
      const modding = ledger.mod(accountKey, { ...parsed.input, ...(actor === undefined ? {} : { actor }) })
      pending.set(accountKey, modding)
      return modding.then(
        (result: ModResult) => {
          observeMod(result.replayed ? 'replay' : parsed.input.by > 0n ? 'credit' : 'debit')
          const answer = balanceResult(result)
          return result.replayed ? { ...answer, replayed: true } : answer
        },
        (error: unknown) => {
          const answer = ledgerRefusal(error)
          observeMod(outcomeOfStatus(answer.status))
          return answer
        },
      )
    },
  },
  hold: holdHandler('hold'),
  settle: holdHandler('settle'),
  void: holdHandler('void'),
}

/** A hold, settle or void: its query checked by its own endpoint's schema, then sent to the ledger. */
function holdHandler<Name extends 'hold' | 'settle' | 'void'>(name: Name): OpHandler<Name> {
  const schema = { hold: holdQuery, settle: settleQuery, void: voidQuery }[name]
  return {
    writes: true,
    start(op, { ledger, mayWrite, pending }) {
      if (!mayWrite) return refusal('ACCMAN_FORBIDDEN', 'this token may read but not write')
      const { key, ...fields } = op
      const query: Record<string, unknown> = { ...fields }
      delete query.op
      const parsed = schema.safeParse(query)
      if (!parsed.success) return fieldRefusal(String(parsed.error.issues[0]?.path[0] ?? 'cred'))
      if (key !== undefined && !idempotencyKeyHeader.safeParse(key).success) return fieldRefusal('idempotency-key')
      const data = parsed.data as { cred: string; by?: bigint; ttl?: number; hold?: string; note?: string }
      const options = { ...(data.note === undefined || data.note === '' ? {} : { note: data.note }), ...(key === undefined ? {} : { idempotencyKey: key }) }
      const accountKey = credentialKeyOf(data.cred)
      const holdId = data.hold ?? ''
      const running =
        name === 'hold'
          ? ledger.hold(accountKey, { by: data.by ?? 0n, ttlMs: (data.ttl ?? 0) * 1000, ...options })
          : name === 'settle'
            ? ledger.settle(accountKey, { holdId, ...(data.by === undefined ? {} : { by: data.by }), ...options })
            : ledger.void(accountKey, { holdId, ...options })
      pending.set(accountKey, running)
      return running.then(
        (result) => ({ ...(JSON.parse(result.answer) as Record<string, unknown>), status: 200, ...(result.replayed ? { replayed: true } : {}) }),
        ledgerRefusal,
      )
    },
  }
}

/** As PATCH /move: both accounts wait for it in the batch; it answers for FROM. */
function startMove(op: OpOf<'move'>, { ledger, mayWrite, pending, actor }: OpContext): Promise<Result> | Result {
  if (!mayWrite) return refusal('ACCMAN_FORBIDDEN', 'this token may read but not write')
  if (!credential.safeParse(op.cred).success) return fieldRefusal('cred')
  if (!credential.safeParse(op.to).success) return refusal('ACCMAN_INVALID_CRED', 'to must be a credential: base64url with padding')
  const by = amount.safeParse(op.by)
  if (!by.success || by.data <= 0n) return refusal('ACCMAN_INVALID_AMOUNT', 'by must be a positive integer: the amount moved')
  if (op.note !== undefined && !noteSchema.safeParse(op.note).success) return fieldRefusal('note')
  if (op.key !== undefined && !idempotencyKeyHeader.safeParse(op.key).success) return fieldRefusal('idempotency-key')
  const fromKey = credentialKeyOf(op.cred)
  const toKey = credentialKeyOf(op.to)
  if (fromKey === toKey) return refusal('ACCMAN_INVALID_QUERY', 'to must be another account than cred')
  const moving = ledger.move(fromKey, {
    by: by.data,
    toCredentialKey: toKey,
    ...(op.note === undefined || op.note === '' ? {} : { note: op.note }),
    ...(op.key === undefined ? {} : { idempotencyKey: op.key }),
    ...(actor === undefined ? {} : { actor }),
  })
  pending.set(fromKey, moving)
  pending.set(toKey, moving)
  return moving.then((result): Result => {
    // As PATCH /move answers: FROM's held stays, and avail is what is left of it to spend.
    const held = result.held ?? 0n
    const answer: Result = { move: result.move, tot: result.tot.toString(), held: held.toString(), avail: (result.tot - held).toString(), seq: result.seq, status: 200 }
    return result.replayed ? { ...answer, replayed: true } : answer
  }, ledgerRefusal)
}

function parseMod(op: OpOf<'mod'>): { input: { by: bigint; note?: string; idempotencyKey?: string } } | Result {
  if (!credential.safeParse(op.cred).success) return fieldRefusal('cred')
  const by = amount.safeParse(op.by)
  if (!by.success || by.data === 0n) return fieldRefusal('by')
  if (op.note !== undefined && !noteSchema.safeParse(op.note).success) return fieldRefusal('note')
  if (op.key !== undefined && !idempotencyKeyHeader.safeParse(op.key).success) return fieldRefusal('idempotency-key')
  return {
    input: {
      by: by.data,
      ...(op.note === undefined || op.note === '' ? {} : { note: op.note }),
      ...(op.key === undefined ? {} : { idempotencyKey: op.key }),
    },
  }
}

function outcomeOfStatus(status: number): ModOutcome {
  if (status === 402) return 'insufficient_funds'
  if (status === 404) return 'no_account'
  if (status >= 500) return 'unavailable'
  return 'rejected'
}

type AnyOp = OpOf<'mod'> | OpOf<'tot'> | OpOf<'hold'> | OpOf<'settle'> | OpOf<'void'> | OpOf<'move'>

/** The operations of a body, or the 400 naming the first bad one. Never quotes a value. */
export function opsOf(body: unknown): AnyOp[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('ACCMAN_INVALID_BODY', 'the body must be a JSON object {"ops":[...]}')
  }
  const keys = Object.keys(body)
  const unknown = keys.find((key) => key !== 'ops')
  if (unknown !== undefined) throw new ApiError('ACCMAN_INVALID_BODY', 'the body may hold only "ops"')
  const ops = (body as { ops?: unknown }).ops
  if (!Array.isArray(ops)) throw new ApiError('ACCMAN_INVALID_BODY', 'ops must be an array of operations')
  if (ops.length < 1 || ops.length > limits.batchOpsMax) {
    throw new ApiError('ACCMAN_INVALID_BODY', `ops must hold 1 to ${limits.batchOpsMax} operations, not ${ops.length}`)
  }
  const parsed: AnyOp[] = []
  for (const [index, op] of ops.entries()) {
    const name: unknown = typeof op === 'object' && op !== null ? (op as { op?: unknown }).op : undefined
    if (typeof name !== 'string' || !Object.hasOwn(shapes, name)) {
      throw new ApiError('ACCMAN_INVALID_BODY', `ops[${index}].op must be one of ${Object.keys(shapes).join(', ')}`)
    }
    const result = shapes[name as OpName].safeParse(op)
    if (!result.success) {
      const issue = result.error.issues[0]
      const field = issue?.code === 'unrecognized_keys' ? issue.keys[0] : issue?.path[0]
      const what = issue?.code === 'unrecognized_keys' ? 'is not a field of' : 'is missing or not a string in'
      throw new ApiError('ACCMAN_INVALID_BODY', `ops[${index}].${String(field ?? 'op')}: ${what} a ${name} operation`)
    }
    parsed.push(result.data)
  }
  return parsed
}

export interface BatchRoutesOptions {
  authenticate: Authenticate | undefined
  scopeOf: ScopeOf
  metrics: Metrics
  writerQueueMax: number
}

const batchSchema = {
  summary: 'Many operations in one request',
  description:
    'Each operation is decided and applied exactly as if sent alone, in order; one failing undoes nothing (no all-or-nothing). Answered once every applied operation is durable.',
  tags: ['ledger'],
  security: [{}, { bearer: [] }],
  body: batchBody,
  response: answersOf(
    { 200: { description: 'One result per operation, in order.', content: { 'application/json': { schema: batchResultsBody } } } },
    [
      'ACCMAN_INVALID_BODY',
      'ACCMAN_UNAUTHORIZED',
      'ACCMAN_PAYLOAD_TOO_LARGE',
      'ACCMAN_UNSUPPORTED_MEDIA_TYPE',
      'ACCMAN_BAD_REQUEST',
      'ACCMAN_INTERNAL',
      'ACCMAN_OVERLOADED',
      'ACCMAN_QUEUE_FULL',
      'ACCMAN_CLOSED',
    ],
  ),
}

export const batchRoutes: FastifyPluginAsync<BatchRoutesOptions> = async (app, { authenticate, scopeOf, metrics, writerQueueMax }) => {
  if (authenticate !== undefined) app.addHook('onRequest', authenticate)
  // After the token and before the body is read: only JSON is taken.
  app.addHook('onRequest', async (request) => {
    if (!mediaTypePattern.test(request.headers['content-type'] ?? '')) {
      throw new ApiError('ACCMAN_UNSUPPORTED_MEDIA_TYPE', 'the body must be Content-Type: application/json')
    }
  })
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: batchBodyBytesMax }, (_request, text, done) => {
    try {
      done(null, JSON.parse(text as string))
    } catch {
      done(new ApiError('ACCMAN_INVALID_BODY', 'the body is not JSON'), undefined)
    }
  })

  // The body's shape is checked by opsOf, which names the first bad operation; the schema documents it.
  const passBody = () => (data: unknown) => ({ value: data })
  const routeOptions = { schema: batchSchema, config: { access: 'read' as const }, bodyLimit: batchBodyBytesMax, validatorCompiler: passBody }
  app.post('/batch', routeOptions, async (request, reply) => {
    const ops = opsOf(request.body)
    const mayWrite = scopeOf(request.headers.authorization) !== 'read'
    const ledger = app.ledger
    const writes = mayWrite ? ops.filter((op) => handlers[op.op].writes).length : 0
    // The whole batch fits in the writer's queue or none of it is submitted.
    if (writes > 0 && ledger.writerQueueDepth + writes > writerQueueMax) {
      reply.header('retry-after', retryAfterText)
      throw new ApiError('ACCMAN_QUEUE_FULL', `the writer's queue has no room for ${writes} mods; retry shortly`)
    }
    const context: OpContext = { ledger, mayWrite, pending: new Map(), observeMod: (outcome) => metrics.observeMod(outcome), actor: request.actor }
    // Started in batch order, synchronously: the writer keeps each account's order of submission.
    const started = ops.map((op) => Promise.resolve((handlers[op.op] as OpHandler<OpName>).start(op as never, context)))
    const results = await Promise.all(started)
    metrics.observeBatch(ops.length)
    request.log.info({ ops: ops.length, writes }, 'batch')
    reply.header('cache-control', 'no-store')
    return { results }
  })
}
