// One source for each table. The error codes (src/contract/errors.ts): the server, the ledger,
// the client, the CLI, the OpenAPI document and docs/http-api.md must all agree with it, so a code
// added in one place only fails here. The credential and amount syntax (src/contract/syntax.ts),
// and the relationships between the limits (src/config.ts).
import { createServer, STATUS_CODES, type Server } from 'node:http'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { call } from '../src/cli/http.js'
import { CliError, exitCodes } from '../src/cli/exit-codes.js'
import * as clientModule from '../src/client/index.js'
import { AccManClient, AccManError } from '../src/client/index.js'
import { limits, limitsProblem } from '../src/config.js'
import { apiErrorOf, apiErrorTable, clientErrorTable, ledgerErrorCodes } from '../src/contract/errors.js'
import { balancePattern, isCredential, parseAmount } from '../src/contract/syntax.js'
import { amount, credential } from '../src/http/schemas.js'
import { amount as storedAmount, balance as storedBalance } from '../src/ledger/codec.js'
import { amountMax } from '../src/ledger/limits.js'
import { testApp } from './support.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const rows = apiErrorTable.map((entry) => apiErrorOf[entry.code])

/** Every `'ACCMAN_...'` string literal in the .ts files below `folder`. */
function codesIn(folder: string): Set<string> {
  const codes = new Set<string>()
  const visit = (directory: string) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const path = join(directory, entry.name)
      if (entry.isDirectory()) visit(path)
      else if (entry.name.endsWith('.ts')) {
        for (const match of readFileSync(path, 'utf8').matchAll(/'(ACCMAN_[A-Z_]+)'/g)) codes.add(match[1] ?? '')
      }
    }
  }
  visit(join(root, 'src', folder))
  return codes
}

describe('the table of error codes', () => {
  test('one row per code, each with a status Node knows and a one-line meaning', () => {
    const codes = rows.map((entry) => entry.code)
    expect(new Set(codes).size).toBe(codes.length)
    for (const entry of rows) {
      expect(STATUS_CODES[entry.status], entry.code).toBeDefined()
      expect(entry.status).toBeGreaterThanOrEqual(400)
      expect(entry.meaning).not.toMatch(/\n/)
      expect(entry.meaning.length).toBeGreaterThan(10)
    }
  })

  test('the server emits exactly the codes of the table, less the reserved ones', () => {
    const emitted = new Set([...codesIn('http'), ...codesIn('ledger')])
    const sent = rows.filter((entry) => !entry.reserved).map((entry) => entry.code)
    expect([...emitted].sort()).toEqual([...sent].sort())
  })

  test('the ledger refuses with exactly its marked codes', () => {
    const refused = codesIn('ledger')
    const reserved = new Set(rows.filter((entry) => entry.reserved).map((entry) => entry.code))
    expect([...refused].sort()).toEqual(ledgerErrorCodes.filter((code) => !reserved.has(code)).sort())
  })

  test("docs/http-api.md's errors table lists every code, in order, with its status and meaning", () => {
    const text = readFileSync(join(root, 'docs', 'http-api.md'), 'utf8')
    const documented = [...text.matchAll(/^\| `(ACCMAN_[A-Z_]+)` +\| (\d{3}) +\| (.+?) *\|$/gm)].map((match) => ({
      code: match[1],
      status: Number(match[2]),
      meaning: match[3],
    }))
    expect(documented).toEqual(rows.map(({ code, status, meaning }) => ({ code, status, meaning })))
  })

  test('every class the table names is exported by accman/client', () => {
    const names = new Set([...rows.map((entry) => entry.clientClass), ...clientErrorTable.map((entry) => entry.clientClass)])
    for (const name of names) {
      const exported = (clientModule as Record<string, unknown>)[name]
      expect(exported, name).toBeTypeOf('function')
      expect((exported as { prototype: unknown }).prototype instanceof Error || exported === AccManError, name).toBe(true)
    }
  })
})

describe('the OpenAPI document', () => {
  interface Doc {
    info: { description: string }
    paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>
  }
  let doc: Doc

  beforeAll(async () => {
    // 0: the event loop check off, as compiling the document may lag the loop on a busy machine.
    const app = await testApp({ config: { eventLoopDelayMsMax: 0 } })
    try {
      doc = JSON.parse((await app.inject('/openapi.json')).body) as Doc
    } finally {
      await app.close()
    }
  })

  test('lists every code of the table with its status and meaning', () => {
    const listed = [...doc.info.description.matchAll(/^- `(ACCMAN_[A-Z_]+)` \((\d{3})\): (.+)$/gm)].map((match) => ({
      code: match[1],
      status: Number(match[2]),
      meaning: match[3],
    }))
    expect(listed).toEqual(rows.map(({ code, status, meaning }) => ({ code, status, meaning })))
  })

  test("every route's error answers name codes of the table, under their status, with their meaning", () => {
    const seen = new Set<string>()
    for (const operations of Object.values(doc.paths)) {
      for (const operation of Object.values(operations)) {
        for (const [status, answer] of Object.entries(operation.responses)) {
          for (const match of answer.description.matchAll(/^- `(ACCMAN_[A-Z_]+)`: (.+)$/gm)) {
            const entry = apiErrorOf[match[1] as keyof typeof apiErrorOf]
            expect(entry, match[1]).toBeDefined()
            expect(entry.status).toBe(Number(status))
            expect(match[2]).toBe(entry.meaning)
            seen.add(entry.code)
          }
        }
      }
    }
    // The mod route alone answers these: they must be documented somewhere.
    for (const code of ['ACCMAN_INSUFFICIENT_FUNDS', 'ACCMAN_OVERFLOW', 'ACCMAN_IDEMPOTENCY_MISMATCH', 'ACCMAN_QUEUE_FULL']) {
      expect(seen).toContain(code)
    }
  })
})

/**
 * A stand-in for AccMan answering every request with the error of the code its `cred` encodes
 * (base64url with padding, so that it passes the client's own check), as AccMan would send it.
 */
describe('the client and the CLI, against a server answering each code', () => {
  let server: Server
  let url = ''
  const credOf = (code: string) => Buffer.from(code).toString('base64')
  const codeOf = (cred: string) => Buffer.from(cred, 'base64').toString()

  beforeAll(async () => {
    server = createServer((request, response) => {
      const code = codeOf(new URL(request.url ?? '/', 'http://x').searchParams.get('cred') ?? '')
      const entry = apiErrorOf[code as keyof typeof apiErrorOf]
      const status = entry?.status ?? 418
      const body = { statusCode: status, code, error: STATUS_CODES[status], message: 'refused', tot: '7' }
      response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    if (typeof address !== 'object' || address === null) throw new Error('no address')
    url = `http://127.0.0.1:${address.port}`
  })

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve))
  })

  test.each(rows.map((entry) => [entry.code, entry] as const))('the client throws the class the table names for %s', async (_code, entry) => {
    const client = new AccManClient({ url, retries: 0 })
    const error = await client.mod(credOf(entry.code), -3n).then(
      () => undefined,
      (thrown: unknown) => thrown,
    )
    expect(error).toBeInstanceOf(AccManError)
    expect((error as AccManError).name).toBe(entry.clientClass)
    expect((error as AccManError).code).toBe(entry.code)
    expect((error as AccManError).status).toBe(entry.status)
  })

  test('a code the table does not have is a plain AccManError with its code and status', async () => {
    const error = await new AccManClient({ url, retries: 0 }).tot(credOf('ACCMAN_FROM_THE_FUTURE')).catch((thrown: unknown) => thrown)
    expect(error).toBeInstanceOf(AccManError)
    expect((error as AccManError).name).toBe('AccManError')
    expect((error as AccManError).code).toBe('ACCMAN_FROM_THE_FUTURE')
    expect((error as AccManError).status).toBe(418)
  })

  test('every code ends the CLI with the exit code the table names', async () => {
    const cliServer = { url, token: undefined, timeoutMs: 5_000 }
    // At once: 503 and 409 are retried within the CLI's bounds before they count.
    const outcomes = await Promise.all(
      rows.map((entry) =>
        call(cliServer, 'GET', '/tot', { cred: credOf(entry.code) }).then(
          () => undefined,
          (thrown: unknown) => thrown,
        ),
      ),
    )
    outcomes.forEach((error, index) => {
      const entry = rows[index]
      expect(error, entry?.code).toBeInstanceOf(CliError)
      expect([entry?.code, (error as CliError).exitCode]).toEqual([entry?.code, exitCodes[entry?.cliExit ?? 'ok']])
    })
  }, 30_000)
})

describe('one syntax for credentials and amounts', () => {
  const credentials: [string, boolean][] = [
    ['abcd', true],
    ['abc=', true],
    ['ab==', true],
    ['abcdefghijklmnopqrstuvwxyz0123456789-_==', true],
    ['a'.repeat(512), true],
    ['a'.repeat(516), false],
    ['abc', false],
    ['a===', false],
    ['ab+/', false],
    ['abcde', false],
    ['ab=c', false],
    ['', false],
  ]

  test.each(credentials)('%s: the server, the client and the CLI agree (%s)', (text, valid) => {
    expect(isCredential(text)).toBe(valid)
    expect(clientModule.isCredential(text)).toBe(valid)
    expect(credential.safeParse(text).success).toBe(valid)
  })

  const amounts: [string, bigint | undefined][] = [
    ['1', 1n],
    ['-1', -1n],
    [amountMax.toString(), amountMax],
    [`-${amountMax}`, -amountMax],
    [(amountMax + 1n).toString(), undefined],
    ['9'.repeat(40), undefined],
    ['0', undefined],
    ['-0', undefined],
    ['01', undefined],
    ['+1', undefined],
    ['1.5', undefined],
    [' 1', undefined],
  ]

  test.each(amounts)('%s: the server, the CLI and the store agree', (text, value) => {
    expect(parseAmount(text)).toBe(value)
    const parsed = amount.safeParse(text)
    expect(parsed.success ? parsed.data : undefined).toBe(value)
    const stored = storedAmount.safeParse(text)
    expect(stored.success ? stored.data : undefined).toBe(value)
  })

  test('a balance is 0 or a positive amount, here and in the store', () => {
    for (const text of ['0', '1', amountMax.toString()]) {
      expect(balancePattern.test(text)).toBe(true)
      expect(storedBalance.safeParse(text).success).toBe(true)
    }
    for (const text of ['-1', '-0', '00', (amountMax + 1n).toString()]) expect(storedBalance.safeParse(text).success).toBe(false)
  })

  test('no other file of src/ writes the credential pattern again', () => {
    const copies: string[] = []
    const visit = (directory: string) => {
      for (const entry of readdirSync(directory, { withFileTypes: true })) {
        const path = join(directory, entry.name)
        if (entry.isDirectory()) visit(path)
        else if (entry.name.endsWith('.ts') && readFileSync(path, 'utf8').includes('[A-Za-z0-9_-]{4}')) copies.push(path)
      }
    }
    visit(join(root, 'src'))
    expect(copies.map((path) => path.slice(root.length))).toEqual([join('src', 'contract', 'syntax.ts')])
  })
})

describe('limits', () => {
  test('the declared limits hold their relationships', () => {
    expect(limitsProblem(limits)).toBeUndefined()
  })

  test.each([
    [{ writerBatchMax: limits.writerQueueMax + 1 }, 'writerBatchMax must not exceed writerQueueMax'],
    [{ urlLengthMax: limits.headerSizeBytesMax }, 'urlLengthMax must fit in headerSizeBytesMax'],
    [{ headersTimeoutMs: limits.requestTimeoutMs + 1 }, 'headersTimeoutMs must not exceed requestTimeoutMs'],
    [{ writerLookAheadBatchesMax: 0 }, 'writerLookAheadBatchesMax must be a whole number of at least 1'],
    [{ scanPageMax: 1.5 }, 'scanPageMax must be a whole number of at least 1'],
  ])('%o is refused: %s', (change, message) => {
    expect(limitsProblem({ ...limits, ...change })).toBe(message)
  })
})
