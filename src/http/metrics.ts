// Prometheus metrics. Labels are routes, methods, statuses and outcomes, never a credential or an
// account key. Amounts are kept as bigint and written out exactly: a float counter would round
// past 2^53 units.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { RoundReport } from '../ledger/index.js'

export type ModOutcome =
  | 'credit'
  | 'debit'
  | 'replay'
  | 'insufficient_funds'
  | 'no_account'
  | 'rejected'
  | 'unauthorized'
  | 'unavailable'

/** The process's own metrics (CPU, memory, event loop, GC), shared by every app in the process. */
let processRegistry: Registry | undefined

function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

export class Metrics {
  readonly #registry = new Registry()
  readonly #requests = new Histogram({
    name: 'accman_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status: latency from arrival to the last byte written',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.#registry],
  })
  readonly #mods = new Counter({
    name: 'accman_mods_total',
    help: 'Mods answered, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.#registry],
  })
  readonly #roundMods = new Histogram({
    name: 'accman_writer_round_mods',
    help: 'Mods decided per writer round (one atomic batch)',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
    registers: [this.#registry],
  })
  readonly #writeSeconds = new Histogram({
    name: 'accman_writer_write_seconds',
    help: 'Time to write one round as a batch, with its fsync when ACCMAN_SYNC is on',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.#registry],
  })
  readonly #accountsCreated = new Counter({
    name: 'accman_accounts_created_total',
    help: 'Accounts created by a first credit',
    registers: [this.#registry],
  })
  readonly #batchOps = new Histogram({
    name: 'accman_batch_ops',
    help: 'Operations per POST /batch',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.#registry],
  })
  readonly #rotations = new Counter({
    name: 'accman_rotations_total',
    help: 'Credentials rotated (applied rotations; replays and refusals are not counted)',
    registers: [this.#registry],
  })
  #credited = 0n
  #debited = 0n

  constructor(writerQueueDepth: () => number) {
    new Gauge({
      name: 'accman_writer_queue_depth',
      help: 'Mods waiting for the writer',
      registers: [this.#registry],
      collect() {
        this.set(writerQueueDepth())
      },
    })
    for (const outcome of modOutcomes) this.#mods.inc({ outcome }, 0)
  }

  readonly contentType = this.#registry.contentType

  /** The writer stored a round. */
  observeRound(report: RoundReport): void {
    this.#roundMods.observe(report.mods)
    if (report.applied > 0) this.#writeSeconds.observe(report.writeMs / 1000)
    if (report.accountsCreated > 0) this.#accountsCreated.inc(report.accountsCreated)
    if (report.rotations > 0) this.#rotations.inc(report.rotations)
    this.#credited += report.credited
    this.#debited += report.debited
  }

  /** A request was answered (onResponse). */
  observeRequest(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? 'unmatched'
    const statusCode = reply.statusCode
    this.#requests.observe(
      { method: request.method, route, status_code: statusCode },
      reply.elapsedTime / 1000,
    )
    if (route === '/mod' && request.method === 'PATCH') this.#mods.inc({ outcome: modOutcomeOf(request, reply) })
  }

  /** A mod inside a /batch was answered. */
  observeMod(outcome: ModOutcome): void {
    this.#mods.inc({ outcome })
  }

  /** A /batch was answered. */
  observeBatch(ops: number): void {
    this.#batchOps.observe(ops)
  }

  async text(): Promise<string> {
    const [own, process_] = await Promise.all([this.#registry.metrics(), processMetrics().metrics()])
    return `${own}\n${exactCounter('accman_credited_units_total', 'Units credited by applied mods (exact)', this.#credited)}${exactCounter('accman_debited_units_total', 'Units debited by applied mods (exact)', this.#debited)}${process_}`
  }
}

const modOutcomes: readonly ModOutcome[] = [
  'credit',
  'debit',
  'replay',
  'insufficient_funds',
  'no_account',
  'rejected',
  'unauthorized',
  'unavailable',
]

function modOutcomeOf(request: FastifyRequest, reply: FastifyReply): ModOutcome {
  switch (reply.statusCode) {
    case 200: {
      if (reply.getHeader('idempotent-replayed') === 'true') return 'replay'
      const { by } = request.query as { by: bigint }
      return by > 0n ? 'credit' : 'debit'
    }
    case 402:
      return 'insufficient_funds'
    case 404:
      return 'no_account'
    case 401:
    case 403:
      return 'unauthorized'
    case 503:
    case 500:
      return 'unavailable'
    default:
      return 'rejected'
  }
}

function exactCounter(name: string, help: string, value: bigint): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}\n`
}
