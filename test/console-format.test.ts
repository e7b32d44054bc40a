// The console's pure helpers, under Node: exact amounts, credentials, CSV, sampling, day bounds.
import { describe, expect, test } from 'vitest'
import { base64url, csvOf, dayEndIso, dayStartIso, grouped, newCredential, parseAmount, sampleSteps, signedGrouped, type Point } from '../console/format.js'
import { chartPointsMax } from '../console/limits.js'
import { amountMax } from '../src/ledger/index.js'
import { credential } from '../src/http/schemas.js'

describe('amounts', () => {
  test('2^127 - 1 is shown exactly, with digit grouping', () => {
    expect(grouped(amountMax, 'en-US')).toBe('170,141,183,460,469,231,731,687,303,715,884,105,727')
    expect(grouped(amountMax, 'de-DE')).toBe('170.141.183.460.469.231.731.687.303.715.884.105.727')
    expect(signedGrouped(-amountMax, 'en-US')).toBe('-170,141,183,460,469,231,731,687,303,715,884,105,727')
    expect(signedGrouped(1000n, 'en-US')).toBe('+1,000')
  })

  test.each([
    ['1000', 1000n],
    [' 42 ', 42n],
    [amountMax.toString(), amountMax],
  ])('parses %j', (text, amount) => {
    expect(parseAmount(text)).toEqual({ amount })
  })

  test.each([
    ['', 'Enter an amount'],
    ['0', 'more than zero'],
    ['-5', 'digits only'],
    ['1,000', 'digits only'],
    ['10.50', 'digits only'],
    ['1e3', 'digits only'],
    [(amountMax + 1n).toString(), 'at most 170,141,183,460,469,231,731,687,303,715,884,105,727'],
  ])('refuses %j', (text, message) => {
    expect(parseAmount(text).error).toContain(message)
  })
})

describe('credentials', () => {
  test('32 random bytes, base64url with padding, accepted by the API', () => {
    const made = new Set<string>()
    for (let index = 0; index < 50; index++) {
      const cred = newCredential()
      expect(cred).toMatch(/^[A-Za-z0-9_-]{43}=$/)
      expect(credential.safeParse(cred).success).toBe(true)
      made.add(cred)
    }
    expect(made.size).toBe(50)
  })

  test('encodes the bytes it is given, in the URL-safe alphabet', () => {
    expect(base64url(new Uint8Array([0xfb, 0xff, 0xbf]))).toBe('-_-_')
    expect(newCredential((bytes) => bytes.fill(0))).toBe(`${'A'.repeat(43)}=`)
    expect(Buffer.from(newCredential((bytes) => bytes.fill(0xff)), 'base64url')).toEqual(Buffer.alloc(32, 0xff))
  })
})

describe('CSV', () => {
  test('a header row, then one row per entry with exact integers and held 0', () => {
    const csv = csvOf([
      { seq: 1, by: amountMax.toString(), tot: amountMax.toString(), at: '2026-11-30T10:00:00.000Z', note: 'opening', key: 'k-1' },
      { seq: 2, by: `-${amountMax}`, tot: '0', at: '2026-11-30T10:00:01.000Z' },
    ])
    expect(csv.split('\r\n')).toEqual([
      'seq,at,kind,by,tot,held,note,key',
      `1,2026-11-30T10:00:00.000Z,mod,${amountMax},${amountMax},0,opening,k-1`,
      `2,2026-11-30T10:00:01.000Z,mod,-${amountMax},0,0,,`,
      '',
    ])
  })

  test('quotes separators and quotes, and defuses formulas in text fields', () => {
    const csv = csvOf([{ seq: 1, by: '5', tot: '5', at: '2026-11-30T10:00:00.000Z', note: 'a, "b"\nc', key: '=HYPERLINK("x")' }])
    expect(csv.split('\r\n')[1]).toBe('1,2026-11-30T10:00:00.000Z,mod,5,5,0,"a, ""b""\nc","\'=HYPERLINK(""x"")"')
  })
})

describe('chart sampling', () => {
  const series = (tots: number[]): Point[] => tots.map((tot, index) => ({ atSeconds: index, tot, index }))

  test('keeps every point up to the limit', () => {
    const points = series([1, 5, 2])
    expect(sampleSteps(points, 3)).toEqual(points)
  })

  test('thousands of points become at most the limit, keeping every peak, trough and the last point', () => {
    const tots = Array.from({ length: 50_000 }, (_, index) => (index % 997) * 10)
    tots[12_345] = 1_000_000
    tots[40_000] = -7
    const sampled = sampleSteps(series(tots), chartPointsMax)
    expect(sampled.length).toBeLessThanOrEqual(chartPointsMax)
    expect(sampled.length).toBeGreaterThan(chartPointsMax / 2)
    expect(sampled.map((point) => point.tot)).toContain(1_000_000)
    expect(sampled.map((point) => point.tot)).toContain(-7)
    expect(sampled[sampled.length - 1]?.index).toBe(49_999)
    const indexes = sampled.map((point) => point.index)
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b))
  })
})

describe('day bounds', () => {
  test('a local day runs from its first to its last millisecond', () => {
    const start = Date.parse(dayStartIso('2026-11-30'))
    const end = Date.parse(dayEndIso('2026-11-30'))
    expect(end - start).toBe(86_400_000 - 1 + (new Date(start).getTimezoneOffset() - new Date(end).getTimezoneOffset()) * 60_000)
    expect(new Date(start).getDate()).toBe(30)
    expect(new Date(start).getHours()).toBe(0)
    expect(new Date(end).getHours()).toBe(23)
  })
})
