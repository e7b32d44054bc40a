// The console's calls to the API: the same endpoints and parameters every client uses. The
// credential travels as the `cred` query parameter of a fetch, which never reaches the address
// bar or the history, and no Referer leaves the page.
import type { Balance, Entry } from './format.js'
import { rangePageSize } from './limits.js'

export type Scope = 'open' | 'read' | 'write'

/** An answer other than 2xx, with the server's code and message; status 0 when none came. */
export class Refusal extends Error {
  override readonly name = 'Refusal'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export interface Range {
  /** ISO instants for /past's `from` and `to`. */
  from?: string
  to?: string
}

export interface PastQuery extends Range {
  limit: number
  order: 'asc' | 'desc'
  after?: number
  before?: number
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

const decimal = /^-?(0|[1-9][0-9]*)$/

function balanceOf(body: unknown): Balance {
  if (!isRecord(body) || typeof body.tot !== 'string' || !decimal.test(body.tot) || typeof body.seq !== 'number') {
    throw new Refusal(0, 'CONSOLE_BAD_ANSWER', 'the server answered something the console does not understand')
  }
  return { tot: BigInt(body.tot), seq: body.seq }
}

function entriesOf(body: unknown): Entry[] {
  const entries = isRecord(body) ? body.entries : undefined
  const valid =
    Array.isArray(entries) &&
    entries.every(
      (entry) =>
        isRecord(entry) &&
        typeof entry.seq === 'number' &&
        typeof entry.by === 'string' &&
        decimal.test(entry.by) &&
        typeof entry.tot === 'string' &&
        decimal.test(entry.tot) &&
        typeof entry.at === 'string',
    )
  if (!valid) throw new Refusal(0, 'CONSOLE_BAD_ANSWER', 'the server answered something the console does not understand')
  return entries as Entry[]
}

export class Api {
  constructor(private readonly token: string | undefined) {}

  private async call(method: 'GET' | 'PATCH', path: string, parameters: Record<string, string>, headers: Record<string, string> = {}): Promise<unknown> {
    const query = new URLSearchParams(parameters).toString()
    let response: Response
    try {
      response = await fetch(query === '' ? path : `${path}?${query}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }),
          ...headers,
        },
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      })
    } catch {
      throw new Refusal(0, 'CONSOLE_UNREACHABLE', 'the server could not be reached; check that it is running and try again')
    }
    let body: unknown
    try {
      body = await response.json()
    } catch {
      body = undefined
    }
    if (response.ok) return body
    const code = isRecord(body) && typeof body.code === 'string' ? body.code : 'CONSOLE_UNEXPECTED'
    const message = isRecord(body) && typeof body.message === 'string' ? body.message : `the server answered ${response.status}`
    throw new Refusal(response.status, code, message)
  }

  async whoami(): Promise<Scope> {
    const body = await this.call('GET', '/whoami', {})
    const scope = isRecord(body) ? body.scope : undefined
    if (scope === 'open' || scope === 'read' || scope === 'write') return scope
    throw new Refusal(0, 'CONSOLE_BAD_ANSWER', 'the server answered something the console does not understand')
  }

  async tot(cred: string): Promise<Balance> {
    return balanceOf(await this.call('GET', '/tot', { cred }))
  }

  /** One /mod: `by` positive credits, negative debits; the key makes a retry apply once. */
  async mod(cred: string, by: bigint, note: string | undefined, idempotencyKey: string): Promise<Balance> {
    const parameters: Record<string, string> = { cred, by: by.toString() }
    if (note !== undefined && note !== '') parameters.note = note
    return balanceOf(await this.call('PATCH', '/mod', parameters, { 'idempotency-key': idempotencyKey }))
  }

  async past(cred: string, query: PastQuery): Promise<Entry[]> {
    const parameters: Record<string, string> = { cred, limit: String(query.limit), order: query.order }
    if (query.after !== undefined) parameters.after = String(query.after)
    if (query.before !== undefined) parameters.before = String(query.before)
    if (query.from !== undefined) parameters.from = query.from
    if (query.to !== undefined) parameters.to = query.to
    return entriesOf(await this.call('GET', '/past', parameters))
  }

  /**
   * The newest `entriesMax` entries of a range, oldest first, reading whole pages backwards;
   * `complete` says whether that was all of the range.
   */
  async newestOfRange(cred: string, range: Range, entriesMax: number): Promise<{ entries: Entry[]; complete: boolean }> {
    const pages: Entry[][] = []
    let count = 0
    let before: number | undefined
    for (;;) {
      const limit = Math.min(rangePageSize, entriesMax - count + 1)
      const page = await this.past(cred, { ...range, order: 'desc', limit, ...(before === undefined ? {} : { before }) })
      const room = entriesMax - count
      pages.push(page.slice(0, room))
      count += Math.min(page.length, room)
      const last = page[page.length - 1]
      if (page.length > room) return { entries: pages.flat().reverse(), complete: false }
      if (page.length < limit || last === undefined) return { entries: pages.flat().reverse(), complete: true }
      before = last.seq
    }
  }
}
