// The deliverer: sends the outbox's events to the configured endpoints, at least once each, off
// the writer's path (the writer only adds events to its rounds' writes; nothing here holds an
// account or waits on a mod). A pass takes the due events (leased on a shared store, so each is
// sent by one node at a time), attempts each pending endpoint with a bounded number of attempts
// in flight, and stores each event's new delivery state: a 2xx ends an endpoint's delivery, 410
// disables the endpoint until an operator enables it, anything else is retried with exponential
// backoff and jitter (or the receiver's Retry-After, capped) until the retry window is over, when
// it is marked failed (`accman webhooks retry` sends it again). An event delivered everywhere is
// deleted. URLs and secrets never reach a log line: endpoints are logged by id.
import type { Logger } from 'pino'
import type { Limits } from '../config.js'
import type { DeliveryState, LedgerStore, OutboxRecord } from '../ledger/index.js'
import { endpointOf, signatureOf, type Endpoint } from './endpoints.js'

export type DelivererLimits = Pick<
  Limits,
  | 'outboxMax'
  | 'webhookAttemptTimeoutMs'
  | 'webhookConcurrencyMax'
  | 'webhookClaimBatchMax'
  | 'webhookPollIntervalMs'
  | 'webhookRetryDelayMsMax'
  | 'webhookRetryWindowMs'
  | 'webhookRetryAfterMsMax'
  | 'webhookDisabledRecheckMs'
>

/** What the deliverer reports, for metrics. */
export interface DeliveryObserver {
  attempted(endpointId: string, result: 'delivered' | 'failed' | 'gone', latencyMs: number | undefined): void
  dropped(count: number): void
  depth(count: number): void
}

export interface DelivererOptions {
  store: LedgerStore
  urls: readonly string[]
  secrets: readonly string[]
  retryBaseMs: number
  limits: DelivererLimits
  log?: Logger | undefined
  observer?: DeliveryObserver | undefined
  now?: () => number
  random?: () => number
}

export interface EndpointStatus {
  url: string
  id: string
  disabled: boolean
  pending: number
  delivered: number
  failed: number
  lastError: string | null
}

type AttemptResult = { result: 'delivered' } | { result: 'gone' } | { result: 'failed'; error: string; retryAfterMs: number | undefined }

/** The meta record listing the endpoints a 410 disabled, by id. */
const disabledMetaKey = 'webhooks-disabled'
/** Trim and count the outbox once per this many passes. */
const trimEveryPasses = 5

export class Deliverer {
  readonly #options: DelivererOptions
  readonly #endpoints: Endpoint[]
  readonly #now: () => number
  readonly #random: () => number
  readonly #leaseMs: number
  readonly #delivered = new Map<string, number>()
  readonly #lastError = new Map<string, string>()
  readonly #stopping = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #passing: Promise<void> | undefined
  #passes = 0
  #stopped = false

  constructor(options: DelivererOptions) {
    this.#options = options
    this.#endpoints = options.urls.map(endpointOf)
    this.#now = options.now ?? Date.now
    this.#random = options.random ?? Math.random
    const { limits } = options
    // Long enough for a whole pass at its slowest, so no other node takes an event being sent.
    this.#leaseMs =
      limits.webhookAttemptTimeoutMs * Math.max(1, this.#endpoints.length) * Math.ceil(limits.webhookClaimBatchMax / limits.webhookConcurrencyMax) +
      limits.webhookPollIntervalMs
  }

  get endpoints(): readonly Endpoint[] {
    return this.#endpoints
  }

  start(): void {
    if (this.#endpoints.length === 0 || this.#timer !== undefined || this.#stopped) return
    this.#schedule(0)
  }

  /** Stops the loop; attempts in flight are abandoned (their events stay due: at least once). */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#stopping.abort()
    await this.#passing?.catch(() => {})
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#passing = this.pass()
        .then((more) => this.#schedule(more ? 0 : this.#options.limits.webhookPollIntervalMs))
        .catch((error: unknown) => {
          this.#options.log?.error({ code: (error as { code?: string }).code }, 'webhook delivery pass failed; trying again')
          this.#schedule(this.#options.limits.webhookPollIntervalMs)
        })
    }, delayMs)
    this.#timer.unref()
  }

  /** One pass; resolves true when there may be more due events right away. */
  async pass(): Promise<boolean> {
    const { store, limits } = this.#options
    if (this.#passes++ % trimEveryPasses === 0) await this.#trim()
    const nowMs = this.#now()
    const disabled = await this.#disabled()
    const records = await store.claimOutbox(nowMs, limits.webhookClaimBatchMax, this.#leaseMs)
    if (records.length === 0) return false
    const outcomes = await mapBounded(records, limits.webhookConcurrencyMax, (record) => this.#deliver(record, disabled))
    if (this.#stopped) return false
    const gone = new Set<string>()
    for (const outcome of outcomes) for (const id of outcome.gone) gone.add(id)
    if (gone.size > 0) await this.#setDisabled(new Set([...disabled, ...gone]))
    await store.updateOutbox(
      outcomes.filter((outcome) => !outcome.done).map((outcome) => outcome.record),
      outcomes.filter((outcome) => outcome.done).map((outcome) => outcome.record),
    )
    return records.length === limits.webhookClaimBatchMax
  }

  async #trim(): Promise<void> {
    const { store, limits, log, observer } = this.#options
    const dropped = await store.trimOutbox(limits.outboxMax)
    if (dropped > 0) {
      log?.error({ dropped, outboxMax: limits.outboxMax }, 'the webhook outbox is full: dropped the oldest undelivered events')
      observer?.dropped(dropped)
    }
    observer?.depth(await store.countOutbox())
  }

  /** Attempts every endpoint the event is due for; the event's new state, and whether it is done. */
  async #deliver(record: OutboxRecord, disabled: ReadonlySet<string>): Promise<{ record: OutboxRecord; done: boolean; gone: string[] }> {
    const deliveries: Record<string, DeliveryState> = { ...record.deliveries }
    const gone: string[] = []
    for (const endpoint of this.#endpoints) {
      const state: DeliveryState = deliveries[endpoint.id] ?? { status: 'pending', attempts: 0, nextAtMs: record.atMs }
      deliveries[endpoint.id] = state
      if (state.status !== 'pending') continue
      const nowMs = this.#now()
      if (disabled.has(endpoint.id)) {
        state.nextAtMs = nowMs + this.#options.limits.webhookDisabledRecheckMs
        continue
      }
      if (state.nextAtMs > nowMs || this.#stopped) continue
      deliveries[endpoint.id] = await this.#attemptOnce(endpoint, record, state, nowMs, gone)
    }
    const states = this.#endpoints.map((endpoint) => deliveries[endpoint.id])
    const done = states.every((state) => state?.status === 'delivered')
    const due = states.filter((state) => state?.status === 'pending').map((state) => state?.nextAtMs ?? 0)
    return { record: { ...record, deliveries, dueAtMs: due.length === 0 ? undefined : Math.min(...due) }, done, gone }
  }

  async #attemptOnce(endpoint: Endpoint, record: OutboxRecord, state: DeliveryState, nowMs: number, gone: string[]): Promise<DeliveryState> {
    const attempt = await this.#attempt(endpoint, record, nowMs)
    const { observer, log, limits } = this.#options
    const attempts = state.attempts + 1
    const sinceMs = state.sinceMs ?? nowMs
    if (attempt.result === 'delivered') {
      this.#delivered.set(endpoint.id, (this.#delivered.get(endpoint.id) ?? 0) + 1)
      observer?.attempted(endpoint.id, 'delivered', this.#now() - record.atMs)
      return { status: 'delivered', attempts, nextAtMs: nowMs, sinceMs }
    }
    if (attempt.result === 'gone') {
      gone.push(endpoint.id)
      const lastError = 'HTTP 410: the endpoint is disabled until `accman webhooks enable`'
      this.#lastError.set(endpoint.id, lastError)
      observer?.attempted(endpoint.id, 'gone', undefined)
      log?.warn({ endpoint: endpoint.id }, 'webhook endpoint answered 410 Gone: disabled until an operator enables it')
      return { status: 'pending', attempts, nextAtMs: nowMs + limits.webhookDisabledRecheckMs, sinceMs, lastError }
    }
    this.#lastError.set(endpoint.id, attempt.error)
    observer?.attempted(endpoint.id, 'failed', undefined)
    if (nowMs - sinceMs >= limits.webhookRetryWindowMs) {
      log?.error({ endpoint: endpoint.id, event: record.id, attempts, error: attempt.error }, 'webhook delivery failed for good')
      return { status: 'failed', attempts, nextAtMs: nowMs, sinceMs, lastError: attempt.error }
    }
    const delayMs = attempt.retryAfterMs ?? this.#backoffMs(attempts)
    log?.debug({ endpoint: endpoint.id, event: record.id, attempts, delayMs, error: attempt.error }, 'webhook delivery failed; will retry')
    return { status: 'pending', attempts, nextAtMs: nowMs + delayMs, sinceMs, lastError: attempt.error }
  }

  /** Exponential from the base, capped, with jitter: between half and all of it. */
  #backoffMs(attempts: number): number {
    const { retryBaseMs, limits } = this.#options
    const ceilingMs = Math.min(limits.webhookRetryDelayMsMax, retryBaseMs * 2 ** Math.min(attempts - 1, 40))
    return Math.ceil(ceilingMs * (0.5 + this.#random() / 2))
  }

  async #attempt(endpoint: Endpoint, record: OutboxRecord, nowMs: number): Promise<AttemptResult> {
    const timestampSeconds = Math.floor(nowMs / 1000)
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'AccMan-Webhooks',
      'webhook-id': record.id,
      'webhook-timestamp': String(timestampSeconds),
      'webhook-signature': signatureOf(this.#options.secrets, record.id, timestampSeconds, record.body),
    }
    if (endpoint.authorization !== undefined) headers.authorization = endpoint.authorization
    const signal = AbortSignal.any([AbortSignal.timeout(this.#options.limits.webhookAttemptTimeoutMs), this.#stopping.signal])
    try {
      const response = await fetch(endpoint.target, { method: 'POST', headers, body: record.body, signal, redirect: 'manual' })
      await response.body?.cancel().catch(() => {})
      if (response.status >= 200 && response.status < 300) return { result: 'delivered' }
      if (response.status === 410) return { result: 'gone' }
      return { result: 'failed', error: `HTTP ${response.status}`, retryAfterMs: this.#retryAfterMs(response.headers.get('retry-after'), nowMs) }
    } catch (error) {
      return { result: 'failed', error: attemptErrorOf(error), retryAfterMs: undefined }
    }
  }

  /** Retry-After in seconds or as an HTTP date, capped; undefined when absent or unreadable. */
  #retryAfterMs(value: string | null, nowMs: number): number | undefined {
    if (value === null) return undefined
    const capMs = this.#options.limits.webhookRetryAfterMsMax
    if (/^[0-9]{1,10}$/.test(value.trim())) return Math.min(capMs, Number(value.trim()) * 1000)
    const atMs = Date.parse(value)
    return Number.isNaN(atMs) ? undefined : Math.min(capMs, Math.max(0, atMs - nowMs))
  }

  async #disabled(): Promise<Set<string>> {
    const text = await this.#options.store.readMeta(disabledMetaKey)
    if (text === undefined) return new Set()
    const ids: unknown = JSON.parse(text)
    return new Set(Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [])
  }

  async #setDisabled(ids: ReadonlySet<string>): Promise<void> {
    await this.#options.store.writeMeta([[disabledMetaKey, ids.size === 0 ? undefined : JSON.stringify([...ids].sort())]])
  }

  /** Events in the outbox. */
  outboxDepth(): Promise<number> {
    return this.#options.store.countOutbox()
  }

  /** Re-enables an endpoint a 410 disabled; undefined when no configured endpoint has this URL. */
  async enable(url: string): Promise<Endpoint | undefined> {
    const endpoint = this.#endpoints.find((candidate) => candidate.id === endpointIdOf(url))
    if (endpoint === undefined) return undefined
    const disabled = await this.#disabled()
    disabled.delete(endpoint.id)
    await this.#setDisabled(disabled)
    this.#lastError.delete(endpoint.id)
    // What waited for it is due now, rather than at its next look (webhookDisabledRecheckMs).
    const nowMs = this.#now()
    await this.#reschedule((record) => {
      const state = record.deliveries[endpoint.id]
      if (state !== undefined && state.status !== 'pending') return undefined
      return { ...record, deliveries: { ...record.deliveries, [endpoint.id]: { ...(state ?? { status: 'pending', attempts: 0 }), nextAtMs: nowMs } }, dueAtMs: nowMs }
    })
    return endpoint
  }

  /** Stores `change(record)` for every record of the outbox it changes (returns a record for). */
  async #reschedule(change: (record: OutboxRecord) => OutboxRecord | undefined): Promise<number> {
    const { store, limits } = this.#options
    const saves: OutboxRecord[] = []
    await forEachOutboxRecord(store, limits.outboxMax, (record) => {
      const changed = change(record)
      if (changed !== undefined) saves.push(changed)
    })
    for (let index = 0; index < saves.length; index += limits.webhookClaimBatchMax) {
      await store.updateOutbox(saves.slice(index, index + limits.webhookClaimBatchMax), [])
    }
    return saves.length
  }

  /** Per endpoint: events pending and failed (from the outbox), delivered by this node since it started, the last error. */
  async status(): Promise<EndpointStatus[]> {
    const { store, limits } = this.#options
    const disabled = await this.#disabled()
    const counts = new Map(this.#endpoints.map((endpoint) => [endpoint.id, { pending: 0, failed: 0, lastError: undefined as string | undefined }]))
    await forEachOutboxRecord(store, limits.outboxMax, (record) => {
      for (const endpoint of this.#endpoints) {
        const state = record.deliveries[endpoint.id]
        const count = counts.get(endpoint.id)
        if (count === undefined) continue
        if (state === undefined || state.status === 'pending') count.pending++
        else if (state.status === 'failed') count.failed++
        if (state?.lastError !== undefined && state.status !== 'delivered') count.lastError = state.lastError
      }
    })
    return this.#endpoints.map((endpoint) => {
      const count = counts.get(endpoint.id)
      return {
        url: endpoint.printable,
        id: endpoint.id,
        disabled: disabled.has(endpoint.id),
        pending: count?.pending ?? 0,
        delivered: this.#delivered.get(endpoint.id) ?? 0,
        failed: count?.failed ?? 0,
        lastError: this.#lastError.get(endpoint.id) ?? count?.lastError ?? null,
      }
    })
  }

  /** Makes every failed delivery pending again, due now, with a fresh retry window; resolves with how many. */
  async retryFailed(): Promise<number> {
    const nowMs = this.#now()
    let retried = 0
    await this.#reschedule((record) => {
      let changed = false
      const deliveries: Record<string, DeliveryState> = { ...record.deliveries }
      for (const [id, state] of Object.entries(deliveries)) {
        if (state.status !== 'failed') continue
        const retry: DeliveryState = { status: 'pending', attempts: state.attempts, nextAtMs: nowMs }
        if (state.lastError !== undefined) retry.lastError = state.lastError
        deliveries[id] = retry
        changed = true
        retried++
      }
      return changed ? { ...record, deliveries, dueAtMs: nowMs } : undefined
    })
    return retried
  }
}

export function endpointIdOf(url: string): string | undefined {
  return URL.canParse(url) ? endpointOf(url).id : undefined
}

/** Every record of the outbox, a page at a time, at most `max`. */
async function forEachOutboxRecord(store: LedgerStore, max: number, visit: (record: OutboxRecord) => void): Promise<void> {
  const pageMax = 1000
  let after: OutboxRecord | undefined
  for (let seen = 0; seen < max; ) {
    const page = await store.pageOutbox(after, Math.min(pageMax, max - seen))
    for (const record of page) visit(record)
    seen += page.length
    if (page.length < pageMax) break
    after = page.at(-1)
  }
}

/** A failed attempt, in words that carry no URL: the timeout, or the error code of the connection. */
function attemptErrorOf(error: unknown): string {
  const name = (error as { name?: string }).name
  if (name === 'TimeoutError') return 'timeout'
  if (name === 'AbortError') return 'aborted'
  const cause = (error as { cause?: { code?: unknown } }).cause
  const code = typeof cause?.code === 'string' ? cause.code : 'unknown'
  return `network error (${code})`
}

/** Runs `work` over `items` with at most `concurrency` at once; results in order. */
async function mapBounded<T, R>(items: readonly T[], concurrency: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return results
}
