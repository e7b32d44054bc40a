// Prometheus metrics. Labels are routes, methods, statuses and outcomes, never a credential or an
// account key. Amounts are kept as bigint and written out exactly: a float counter would round
// past 2^53 units.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { RoundReport } from '../ledger/index.js'
import type { StorePoolStats } from '../ledger/store.js'
import type { DeliveryObserver } from '../webhooks/deliverer.js'

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
  readonly #holds = new Counter({
    name: 'accman_holds_total',
    help: 'Holds opened, settled, voided and expired',
    labelNames: ['event'] as const,
    registers: [this.#registry],
  })
  readonly #moves = new Counter({
    name: 'accman_moves_total',
    help: 'Moves applied (each writes two entries)',
    registers: [this.#registry],
  })
  readonly #freezes = new Counter({
    name: 'accman_freezes_total',
    help: 'Freezes and unfreezes applied',
    registers: [this.#registry],
  })
  readonly #rotations = new Counter({
    name: 'accman_rotations_total',
    help: 'Credentials rotated (applied rotations; replays and refusals are not counted)',
    registers: [this.#registry],
  })
  #credited = 0n
  #debited = 0n
  /** Units of holds, exact: opened (reserved), settled (posted), voided and expired (released). */
  readonly #holdUnits = { opened: 0n, settled: 0n, voided: 0n, expired: 0n }
  #moved = 0n

  /** `poolStats`: the store's connection pool, for an engine that has one (PostgreSQL). */
  constructor(writerQueueDepth: () => number, poolStats?: () => StorePoolStats) {
    if (poolStats !== undefined) {
      new Gauge({
        name: 'accman_store_pool_connections',
        help: 'Connections of the store pool: total open, idle, and callers waiting for one',
        labelNames: ['state'] as const,
        registers: [this.#registry],
        collect() {
          const stats = poolStats()
          this.set({ state: 'total' }, stats.total)
          this.set({ state: 'idle' }, stats.idle)
          this.set({ state: 'waiting' }, stats.waiting)
        },
      })
    }
    new Gauge({
      name: 'accman_writer_queue_depth',
      help: 'Mods waiting for the writer',
      registers: [this.#registry],
      collect() {
        this.set(writerQueueDepth())
      },
    })
    for (const outcome of modOutcomes) this.#mods.inc({ outcome }, 0)
    for (const event of holdEvents) this.#holds.inc({ event }, 0)
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
    const holds = report.holds
    if (holds !== undefined) {
      for (const event of holdEvents) if (holds[event] > 0) this.#holds.inc({ event }, holds[event])
      this.#holdUnits.opened += holds.openedUnits
      this.#holdUnits.settled += holds.settledUnits
      this.#holdUnits.voided += holds.voidedUnits
      this.#holdUnits.expired += holds.expiredUnits
    }
    if (report.moves > 0) this.#moves.inc(report.moves)
    if (report.freezes > 0) this.#freezes.inc(report.freezes)
    this.#moved += report.moved
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

  /** The deliverer's metrics: attempts by result, events dropped by the outbox bound, outbox depth, delivery latency. */
  webhookObserver(): DeliveryObserver {
    const registers = [this.#registry]
    const deliveries = new Counter({ name: 'accman_webhook_deliveries_total', help: 'Webhook events delivered (2xx), by endpoint id', labelNames: ['endpoint'] as const, registers })
    const failures = new Counter({
      name: 'accman_webhook_failures_total',
      help: 'Webhook attempts that failed (non-2xx, timeout, network error; gone: 410), by endpoint id',
      labelNames: ['endpoint', 'reason'] as const,
      registers,
    })
    const dropped = new Counter({ name: 'accman_webhook_events_dropped_total', help: 'Undelivered events dropped because the outbox was full (limits.outboxMax)', registers })
    const depth = new Gauge({ name: 'accman_webhook_outbox_depth', help: 'Events in the outbox (delivered to some endpoints, or to none yet)', registers })
    const latency = new Histogram({
      name: 'accman_webhook_delivery_latency_seconds',
      help: 'From the change that caused an event to its delivery (2xx), retries included',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86_400],
      registers,
    })
    dropped.inc(0)
    return {
      attempted: (endpoint, result, latencyMs) => {
        if (result === 'delivered') {
          deliveries.inc({ endpoint })
          if (latencyMs !== undefined) latency.observe(Math.max(0, latencyMs) / 1000)
        } else failures.inc({ endpoint, reason: result })
      },
      dropped: (count) => dropped.inc(count),
      depth: (count) => depth.set(count),
    }
  }

  async text(): Promise<string> {
    const [own, process_] = await Promise.all([this.#registry.metrics(), processMetrics().metrics()])
    return `${own}\n${exactCounter('accman_credited_units_total', 'Units credited by applied mods (exact)', this.#credited)}${exactCounter('accman_debited_units_total', 'Units debited by applied mods (exact)', this.#debited)}${exactCounter('accman_moved_units_total', 'Units moved between accounts by applied moves (exact)', this.#moved)}${this.#holdUnitsText()}${process_}`
  }

  #holdUnitsText(): string {
    const units = this.#holdUnits
    return (
      exactCounter('accman_hold_opened_units_total', 'Units reserved by holds opened (exact)', units.opened) +
      exactCounter('accman_hold_settled_units_total', 'Units posted by settled holds (exact)', units.settled) +
      exactCounter('accman_hold_voided_units_total', 'Units released by voided holds (exact)', units.voided) +
      exactCounter('accman_hold_expired_units_total', 'Units released by expired holds (exact)', units.expired)
    )
  }
}

const holdEvents = ['opened', 'settled', 'voided', 'expired'] as const

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
