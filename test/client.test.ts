// accman/client against a real AccMan process on a temporary LevelDB: bigint amounts, every
// refusal as its typed error, retries that charge once, and no secret in any error.
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  AccManClient,
  AccManError,
  ConfigurationError,
  CredentialInUseError,
  ExpiredError,
  ForbiddenError,
  FrozenError,
  IdempotencyMismatchError,
  InsufficientFundsError,
  InvalidInputError,
  NoAccountError,
  OverflowError,
  UnauthorizedError,
  UnavailableError,
  UnreachableError,
} from '../src/client/index.js'
import { newCredential } from '../src/cli/credential.js'
import { closedPort, FaultProxy } from './fault-proxy.js'
import { ServerProcess, temporaryDirectories } from './support.js'

const directory = temporaryDirectories('accman-client-')
const writeToken = 's3cret-write-token-0123456789'
const readToken = 's3cret-read-token-0123456789'
let server: ServerProcess
let guarded: ServerProcess
let url: string
let client: AccManClient

beforeAll(async () => {
  server = new ServerProcess({ ACCMAN_DB: directory(), ACCMAN_SYNC: 'false' })
  guarded = new ServerProcess({ ACCMAN_DB: directory(), ACCMAN_SYNC: 'false', ACCMAN_TOKENS: writeToken, ACCMAN_READ_TOKENS: readToken })
  url = await server.url()
  client = new AccManClient({ url })
  await guarded.url()
})

afterAll(async () => {
  await Promise.all([server.kill('SIGTERM'), guarded.kill('SIGTERM')])
})

/** The error a call rejects with; a call that resolves fails the test. */
async function refusal(call: Promise<unknown>): Promise<AccManError> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  )
  if (!('error' in outcome)) throw new Error(`expected a refusal, got ${inspect(outcome.value)}`)
  expect(outcome.error).toBeInstanceOf(AccManError)
  return outcome.error as AccManError
}

/** Every rendering of an error that could end up in a log. */
function renderings(error: Error): string[] {
  return [error.message, String(error), error.stack ?? '', inspect(error, { depth: 5 }), JSON.stringify(error)]
}

function expectNoSecret(error: Error, ...secrets: string[]): void {
  for (const text of renderings(error)) {
    for (const secret of secrets) {
      expect(text).not.toContain(secret)
      expect(text).not.toContain(encodeURIComponent(secret))
    }
    expect(text).not.toContain('cred=')
  }
}

describe('answers', () => {
  test('tot, mod and past carry amounts past 2^53 exactly, as bigint', async () => {
    const cred = newCredential()
    const large = 2n ** 100n + 7n
    const credit = await client.mod(cred, large, { note: 'invoice 1', idempotencyKey: 'invoice-1' })
    expect(credit).toEqual({ tot: large, seq: 1, replayed: false })
    expect(await client.mod(cred, -7n)).toEqual({ tot: 2n ** 100n, seq: 2, replayed: false })
    expect(await client.tot(cred)).toEqual({ tot: 2n ** 100n, seq: 2 })
    const page = await client.past(cred)
    expect(page.tot).toBe(2n ** 100n)
    expect(page.seq).toBe(2)
    expect(page.entries).toHaveLength(2)
    expect(page.entries[0]).toMatchObject({ seq: 1, by: large, tot: large, note: 'invoice 1', idempotencyKey: 'invoice-1' })
    expect(page.entries[1]).toMatchObject({ seq: 2, by: -7n, tot: 2n ** 100n })
    expect(page.entries[1]?.note).toBeUndefined()
    expect(page.entries[0]?.at).toBeInstanceOf(Date)
    expect(Math.abs(Date.now() - (page.entries[0]?.at.getTime() ?? 0))).toBeLessThan(60_000)
  })

  test('a mod without a key gets a fresh UUID key, so a retry of it cannot apply twice', async () => {
    const cred = newCredential()
    await client.mod(cred, 10n)
    await client.mod(cred, 10n)
    const keys = (await client.past(cred)).entries.map((entry) => entry.idempotencyKey)
    expect(keys).toHaveLength(2)
    for (const key of keys) expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(keys[0]).not.toBe(keys[1])
  })

  test('the same key and amount is a replay: the first result, replayed, one entry', async () => {
    const cred = newCredential()
    await client.mod(cred, 100n)
    const first = await client.mod(cred, -30n, { idempotencyKey: 'order-1' })
    await client.mod(cred, -1n)
    const again = await client.mod(cred, -30n, { idempotencyKey: 'order-1' })
    expect(first).toEqual({ tot: 70n, seq: 2, replayed: false })
    expect(again).toEqual({ tot: 70n, seq: 2, replayed: true })
    expect(await client.tot(cred)).toEqual({ tot: 69n, seq: 3 })
  })

  test('past pages with limit, after, order and a time window', async () => {
    const cred = newCredential()
    for (const by of [5n, 6n, 7n, 8n]) await client.mod(cred, by)
    const firstTwo = await client.past(cred, { limit: 2 })
    expect(firstTwo.entries.map((entry) => entry.by)).toEqual([5n, 6n])
    expect(firstTwo.seq).toBe(4)
    const rest = await client.past(cred, { limit: 2, after: 2 })
    expect(rest.entries.map((entry) => entry.by)).toEqual([7n, 8n])
    const newest = await client.past(cred, { order: 'desc', limit: 1 })
    expect(newest.entries.map((entry) => entry.seq)).toEqual([4])
    const before = await client.past(cred, { order: 'desc', before: 3 })
    expect(before.entries.map((entry) => entry.seq)).toEqual([2, 1])
    const all = (await client.past(cred)).entries
    const window = await client.past(cred, { from: all[1]?.at, to: new Date(Date.now() + 60_000) })
    expect(window.entries[0]?.seq).toBeLessThanOrEqual(2)
    expect(window.entries.at(-1)?.seq).toBe(4)
    expect((await client.past(cred, { to: '2000-01-01' })).entries).toEqual([])
  })

  test('a path prefix in the url is kept', async () => {
    const prefixed = new AccManClient({ url: `${url}/some/prefix` })
    const error = await refusal(prefixed.tot(newCredential()))
    // AccMan has no such path: the prefix reached it.
    expect(error.status).toBe(404)
    expect(error.code).toBe('ACCMAN_NOT_FOUND')
  })
})

describe('accounts beyond their credentials', () => {
  test('acct and acctById describe the account; rotate keeps it, replays on a retry, refuses a credential in use', async () => {
    const [first, second, taken] = [newCredential(), newCredential(), newCredential()]
    await client.mod(first, 10n, { ttlSeconds: 3600 })
    await client.mod(taken, 1n)
    const details = await client.acct(first)
    expect(details).toMatchObject({ tot: 10n, held: 0n, avail: 10n, seq: 1 })
    expect(details.account).toMatch(/^acct_[A-Za-z0-9_-]{22}$/)
    expect(details.expires?.getTime()).toBeGreaterThan(Date.now() + 3_500_000)
    expect(details.frozen).toBeUndefined()
    expect(await client.acctById(details.account)).toEqual(details)

    const rotated = await client.rotate(first, second, { idempotencyKey: 'rotate-1' })
    expect(rotated).toMatchObject({ account: details.account, tot: 10n, seq: 2, replayed: false })
    expect(await client.rotate(first, second, { idempotencyKey: 'rotate-1' })).toEqual({ ...rotated, replayed: true })
    expect(await refusal(client.tot(first))).toBeInstanceOf(NoAccountError)
    expect(await client.tot(second)).toEqual({ tot: 10n, seq: 2 })
    expect((await client.past(second)).entries.map((entry) => [entry.kind, entry.by])).toEqual([
      ['mod', 10n],
      ['rotate', 0n],
    ])
    const inUse = await refusal(client.rotate(second, taken))
    expect(inUse).toBeInstanceOf(CredentialInUseError)
    expect([inUse.code, inUse.status]).toEqual(['ACCMAN_CRED_IN_USE', 409])
    expectNoSecret(inUse, second, taken)
  })

  test('move, freeze, unfreeze and pastByKey', async () => {
    const [from, to] = [newCredential(), newCredential()]
    await client.mod(from, 10n)
    await client.mod(to, 1n)
    const moved = await client.move(from, to, 4n, { idempotencyKey: 'move-1', note: 'gift' })
    expect(moved).toMatchObject({ tot: 6n, seq: 2, replayed: false })
    expect(await client.tot(to)).toEqual({ tot: 5n, seq: 2 })
    const [fromEntry, toEntry] = [(await client.past(from)).entries[1], (await client.past(to)).entries[1]]
    expect([fromEntry?.kind, fromEntry?.by, fromEntry?.move]).toEqual(['move', -4n, moved.move])
    expect([toEntry?.kind, toEntry?.by, toEntry?.move]).toEqual(['move', 4n, moved.move])
    expect((await client.pastByKey(from, 'move-1')).entries.map((entry) => entry.seq)).toEqual([2])

    expect(await client.freeze(from)).toEqual({ tot: 6n, seq: 3, frozen: true })
    expect((await client.acct(from)).frozen).toBe(true)
    const frozen = await refusal(client.mod(from, -1n))
    expect(frozen).toBeInstanceOf(FrozenError)
    expect([frozen.code, frozen.status]).toEqual(['ACCMAN_FROZEN', 423])
    expect(await client.unfreeze(from)).toEqual({ tot: 6n, seq: 4, frozen: false })
    expect(await client.mod(from, -1n)).toMatchObject({ tot: 5n, seq: 5 })
  })

  test('an account past its expiry refuses a debit with ExpiredError; a credit with a ttl reopens it', async () => {
    const cred = newCredential()
    await client.mod(cred, 1000n, { ttlSeconds: 1 })
    // Debits succeed until the expiry passes; bounded in count and time.
    const deadline = Date.now() + 10_000
    let refused: AccManError | undefined
    while (refused === undefined) {
      expect(Date.now()).toBeLessThan(deadline)
      refused = await client.mod(cred, -1n).then(
        () => undefined,
        (error: unknown) => error as AccManError,
      )
    }
    expect(refused).toBeInstanceOf(ExpiredError)
    expect([refused.code, refused.status]).toEqual(['ACCMAN_EXPIRED', 410])
    const balance = await client.tot(cred)
    expect(balance.tot).toBeGreaterThan(0n)
    await client.mod(cred, 1n, { ttlSeconds: 60 })
    expect((await client.mod(cred, -1n)).tot).toBe(balance.tot)
  })
})

describe('refusals are typed errors with the code, the status and no secret', () => {
  test('unknown account: NoAccountError on tot, past and a debit', async () => {
    const cred = newCredential()
    for (const call of [() => client.tot(cred), () => client.past(cred), () => client.mod(cred, -1n)]) {
      const error = await refusal(call())
      expect(error).toBeInstanceOf(NoAccountError)
      expect(error.code).toBe('ACCMAN_NO_ACCOUNT')
      expect(error.status).toBe(404)
      expect(error.name).toBe('NoAccountError')
      expectNoSecret(error, cred)
    }
  })

  test('insufficient funds: the balance and the refused amount as bigint, nothing written', async () => {
    const cred = newCredential()
    await client.mod(cred, 995n)
    const error = await refusal(client.mod(cred, -5000n))
    expect(error).toBeInstanceOf(InsufficientFundsError)
    const funds = error as InsufficientFundsError
    expect(funds.tot).toBe(995n)
    expect(funds.by).toBe(-5000n)
    expect(funds.status).toBe(402)
    expect(funds.message).toBe('insufficient funds: the balance is 995, the amount is -5000 (ACCMAN_INSUFFICIENT_FUNDS)')
    expectNoSecret(funds, cred)
    expect(JSON.parse(JSON.stringify(funds))).toMatchObject({ code: 'ACCMAN_INSUFFICIENT_FUNDS', status: 402, tot: '995', by: '-5000' })
    expect(await client.tot(cred)).toEqual({ tot: 995n, seq: 1 })
  })

  test.each([
    ['a malformed credential', () => client.tot('not a credential'), 'ACCMAN_INVALID_CRED', 'not a credential'],
    ['a zero amount', () => client.mod(newCredential(), 0n), 'ACCMAN_INVALID_AMOUNT', ''],
    ['a note too long', () => client.mod(newCredential(), 1n, { note: 'n'.repeat(257) }), 'ACCMAN_INVALID_QUERY', ''],
    ['a bad idempotency key', () => client.mod(newCredential(), 1n, { idempotencyKey: 'two words' }), 'ACCMAN_INVALID_QUERY', ''],
    ['a page too large', () => client.past(newCredential(), { limit: 5000 }), 'ACCMAN_INVALID_QUERY', ''],
  ])('%s: InvalidInputError', async (_name, call, code, secret) => {
    const error = await refusal(call())
    expect(error).toBeInstanceOf(InvalidInputError)
    expect(error.code).toBe(code)
    expect(error.status).toBe(400)
    if (secret !== '') expectNoSecret(error, secret)
  })

  test('an amount that is not a bigint is refused before anything is sent', async () => {
    await expect(client.mod(newCredential(), 5 as unknown as bigint)).rejects.toThrow(TypeError)
  })

  test('a key reused with another amount: IdempotencyMismatchError; a credit past 2^127-1: OverflowError', async () => {
    const cred = newCredential()
    await client.mod(cred, 10n, { idempotencyKey: 'k1' })
    const mismatch = await refusal(client.mod(cred, 11n, { idempotencyKey: 'k1' }))
    expect(mismatch).toBeInstanceOf(IdempotencyMismatchError)
    expect([mismatch.code, mismatch.status]).toEqual(['ACCMAN_IDEMPOTENCY_MISMATCH', 422])
    const overflow = await refusal(client.mod(cred, 2n ** 127n - 1n))
    expect(overflow).toBeInstanceOf(OverflowError)
    expect([overflow.code, overflow.status]).toEqual(['ACCMAN_OVERFLOW', 422])
    expect(await client.tot(cred)).toEqual({ tot: 10n, seq: 1 })
  })

  test('tokens: none or a wrong one is UnauthorizedError, a read token on mod ForbiddenError', async () => {
    const guardedUrl = await guarded.url()
    const cred = newCredential()
    const writer = new AccManClient({ url: guardedUrl, token: writeToken })
    expect(await writer.mod(cred, 3n)).toMatchObject({ tot: 3n })
    for (const token of [undefined, 'wrong-token-0123456789abcdef']) {
      const error = await refusal(new AccManClient({ url: guardedUrl, token }).tot(cred))
      expect(error).toBeInstanceOf(UnauthorizedError)
      expect([error.code, error.status]).toEqual(['ACCMAN_UNAUTHORIZED', 401])
      expectNoSecret(error, cred, 'wrong-token-0123456789abcdef')
    }
    const reader = new AccManClient({ url: guardedUrl, token: readToken })
    expect(await reader.tot(cred)).toEqual({ tot: 3n, seq: 1 })
    const forbidden = await refusal(reader.mod(cred, 1n))
    expect(forbidden).toBeInstanceOf(ForbiddenError)
    expect([forbidden.code, forbidden.status]).toEqual(['ACCMAN_FORBIDDEN', 403])
    expectNoSecret(forbidden, cred, readToken)
  })
})

describe('network faults', () => {
  test('nothing listening: UnreachableError after every attempt, naming the server but not the request', async () => {
    const port = await closedPort()
    const cred = newCredential()
    const unreachable = new AccManClient({ url: `http://127.0.0.1:${port}`, retries: 2, retryDelayMs: 10 })
    const error = await refusal(unreachable.mod(cred, -1n))
    expect(error).toBeInstanceOf(UnreachableError)
    expect(error.code).toBe('ACCMAN_UNREACHABLE')
    expect(error.status).toBeUndefined()
    expect((error as UnreachableError).reason).toBe('ECONNREFUSED')
    expect(error.message).toBe(`cannot reach AccMan at http://127.0.0.1:${port} (ECONNREFUSED) after 3 attempts`)
    expectNoSecret(error, cred)
  })

  test('no answer in time: each attempt times out, then UnreachableError with reason timeout', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      // Fetch may open a spare connection after an aborted one: every connection hangs.
      proxy.plans.push('hang', 'hang', 'hang', 'hang')
      const slow = new AccManClient({ url: proxy.url, timeoutMs: 200, retries: 1, retryDelayMs: 10 })
      const started = performance.now()
      const error = await refusal(slow.tot(newCredential()))
      expect(error).toBeInstanceOf(UnreachableError)
      expect((error as UnreachableError).reason).toBe('timeout')
      expect(error.message).toContain('after 2 attempts')
      expect(proxy.seen.length).toBeGreaterThanOrEqual(2)
      expect(proxy.seen.every((plan) => plan === 'hang')).toBe(true)
      expect(performance.now() - started).toBeGreaterThanOrEqual(400)
      expect(performance.now() - started).toBeLessThan(5000)
    } finally {
      await proxy.close()
    }
  })

  test('a 503 is retried; one mod is applied', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      const cred = newCredential()
      proxy.plans.push('answer-503', 'answer-503')
      proxy.retryAfter = '0'
      const retrying = new AccManClient({ url: proxy.url, retries: 2, retryDelayMs: 10 })
      expect(await retrying.mod(cred, 40n)).toEqual({ tot: 40n, seq: 1, replayed: false })
      expect(proxy.seen).toEqual(['answer-503', 'answer-503', 'pass'])
      expect((await client.past(cred)).entries).toHaveLength(1)
    } finally {
      await proxy.close()
    }
  })

  test('a 503 past the retries is UnavailableError with AccMan code', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      proxy.plans.push('answer-503', 'answer-503')
      proxy.retryAfter = '0'
      const error = await refusal(new AccManClient({ url: proxy.url, retries: 1, retryDelayMs: 10 }).mod(newCredential(), 1n))
      expect(error).toBeInstanceOf(UnavailableError)
      expect([error.code, error.status]).toEqual(['ACCMAN_QUEUE_FULL', 503])
      expect(proxy.seen).toEqual(['answer-503', 'answer-503'])
    } finally {
      await proxy.close()
    }
  })

  test('a 503 is retried no sooner than its Retry-After asks', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      const cred = newCredential()
      proxy.plans.push('answer-503')
      proxy.retryAfter = '1'
      const retrying = new AccManClient({ url: proxy.url, retries: 1, retryDelayMs: 10 })
      const started = performance.now()
      expect(await retrying.mod(cred, 40n)).toEqual({ tot: 40n, seq: 1, replayed: false })
      // A lower bound only: the wait AccMan asked for, not how fast the machine is.
      expect(performance.now() - started).toBeGreaterThanOrEqual(1000)
      expect(proxy.seen).toEqual(['answer-503', 'pass'])
    } finally {
      await proxy.close()
    }
  })

  test('a Retry-After longer than retryAfterMaxMs waits retryAfterMaxMs, then retries', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      proxy.plans.push('answer-503')
      proxy.retryAfter = '3600'
      const retrying = new AccManClient({ url: proxy.url, retries: 1, retryDelayMs: 10, retryAfterMaxMs: 300 })
      const started = performance.now()
      expect(await retrying.mod(newCredential(), 1n)).toEqual({ tot: 1n, seq: 1, replayed: false })
      expect(performance.now() - started).toBeGreaterThanOrEqual(300)
      expect(proxy.seen).toEqual(['answer-503', 'pass'])
    } finally {
      await proxy.close()
    }
  })

  test('an answer lost on a dropped connection: the retry is a replay, the debit applied once', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      const cred = newCredential()
      await client.mod(cred, 100n)
      proxy.plans.push('drop-answer')
      const retrying = new AccManClient({ url: proxy.url, retries: 2, retryDelayMs: 10 })
      expect(await retrying.mod(cred, -25n)).toEqual({ tot: 75n, seq: 2, replayed: true })
      expect(proxy.seen).toEqual(['drop-answer', 'pass'])
      const entries = (await client.past(cred)).entries
      expect(entries.map((entry) => entry.by)).toEqual([100n, -25n])
      expect(await client.tot(cred)).toEqual({ tot: 75n, seq: 2 })
    } finally {
      await proxy.close()
    }
  })

  test('no retries: a dropped answer is UnreachableError, though the mod was applied', async () => {
    const proxy = await FaultProxy.start(url)
    try {
      const cred = newCredential()
      proxy.plans.push('drop-answer')
      const error = await refusal(new AccManClient({ url: proxy.url, retries: 0 }).mod(cred, 5n, { idempotencyKey: 'once' }))
      expect(error).toBeInstanceOf(UnreachableError)
      expect((error as UnreachableError).reason).toBe('UND_ERR_SOCKET')
      // The caller retries with its key and learns the outcome without a second credit.
      expect(await client.mod(cred, 5n, { idempotencyKey: 'once' })).toEqual({ tot: 5n, seq: 1, replayed: true })
    } finally {
      await proxy.close()
    }
  })
})

/** The error a function throws; one that returns fails the test. */
function thrown(make: () => unknown): Error {
  try {
    make()
  } catch (error) {
    expect(error).toBeInstanceOf(Error)
    return error as Error
  }
  throw new Error('expected a throw')
}

test.each([
  ['a url with a user name and password', { url: 'http://admin:pa55w0rd-secret@127.0.0.1:9' }, 'user name or password', 'pa55w0rd-secret'],
  ['a url with a user name only', { url: 'http://admin-secret@127.0.0.1:9' }, 'user name or password', 'admin-secret'],
  ['a url that is not http(s)', { url: 'ftp://127.0.0.1/s3cret-path' }, 'http: or https:', 's3cret-path'],
  ['a url that is not a url', { url: 'not a url s3cret-text' }, 'not a URL', 's3cret-text'],
  ['a token with a line break', { url: 'http://127.0.0.1:9', token: 'tok-s3cret\nX-Evil: 1' }, 'visible ASCII', 'tok-s3cret'],
  ['a token with a space', { url: 'http://127.0.0.1:9', token: 'tok-s3cret two' }, 'visible ASCII', 'tok-s3cret'],
  ['an empty token', { url: 'http://127.0.0.1:9', token: '' }, 'visible ASCII', undefined],
  ['retries out of range', { url: 'http://127.0.0.1:9', retries: 11 }, 'retries must be an integer from 0 to 10', undefined],
  ['retryAfterMaxMs out of range', { url: 'http://127.0.0.1:9', retryAfterMaxMs: 60_001 }, 'retryAfterMaxMs must be', undefined],
])('%s: ConfigurationError at construction, without the secret', (_name, options, message, secret) => {
  const error = thrown(() => new AccManClient(options))
  expect(error).toBeInstanceOf(ConfigurationError)
  expect(error).not.toBeInstanceOf(UnreachableError)
  expect([(error as ConfigurationError).code, (error as ConfigurationError).status]).toEqual(['ACCMAN_CONFIGURATION', undefined])
  expect(error.message).toContain(message)
  if (secret !== undefined) expectNoSecret(error, secret)
})

test('options are checked when the client is made', () => {
  expect(() => new AccManClient({ url: 'ftp://127.0.0.1' })).toThrow('http: or https:')
  expect(() => new AccManClient({ url, retries: 11 })).toThrow('retries must be an integer from 0 to 10')
  expect(() => new AccManClient({ url, timeoutMs: 0 })).toThrow('timeoutMs must be a positive integer')
})
