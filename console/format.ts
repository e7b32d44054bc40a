// Pure helpers of the console: amounts as bigint, credentials, CSV, chart sampling, date bounds.
// No DOM here, so the tests run them under Node.
import { amountMax, credentialBytes } from './limits.js'

/** One history entry as /past answers it: amounts stay decimal strings until shown. */
export interface Entry {
  seq: number
  by: string
  tot: string
  at: string
  note?: string
  key?: string
}

/** The balance as /tot and /mod answer it in JSON. */
export interface Balance {
  tot: bigint
  seq: number
}

/** Exact, with the locale's digit grouping: Intl formats a bigint without going through a float. */
export function grouped(value: bigint, locale?: string): string {
  return new Intl.NumberFormat(locale, { useGrouping: true }).format(value)
}

/** A change of balance, always with its sign: "+1,000", "-25". */
export function signedGrouped(value: bigint, locale?: string): string {
  return new Intl.NumberFormat(locale, { useGrouping: true, signDisplay: 'exceptZero' }).format(value)
}

export type Parsed = { amount: bigint; error?: undefined } | { amount?: undefined; error: string }

/**
 * An amount typed by a person: digits only, in minor units. Separators are refused rather than
 * guessed, since "1,50" and "1.500" mean different amounts in different locales.
 */
export function parseAmount(text: string): Parsed {
  const trimmed = text.trim()
  if (trimmed === '') return { error: 'Enter an amount, in minor units (e.g. 1000)' }
  if (!/^[0-9]+$/.test(trimmed)) return { error: 'The amount must be a whole number of minor units, digits only (e.g. 1000)' }
  const amount = BigInt(trimmed)
  if (amount === 0n) return { error: 'The amount must be more than zero' }
  if (amount > amountMax) return { error: `The amount must be at most ${grouped(amountMax, 'en-US')}` }
  return { amount }
}

/** base64url with padding, as the API takes credentials. */
export function base64url(bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_')
}

/** A new account's credential: random bytes from the platform's CSPRNG, never from the server. */
export function newCredential(randomBytes: (bytes: Uint8Array) => Uint8Array = (bytes) => crypto.getRandomValues(bytes)): string {
  return base64url(randomBytes(new Uint8Array(credentialBytes)))
}

export const csvHeader = 'seq,at,kind,by,tot,held,note,key'

/**
 * One CSV field (RFC 4180). Text that a spreadsheet would run as a formula (=, +, -, @ first)
 * is prefixed with an apostrophe; amounts are never text fields, so they stay exact.
 */
function csvText(text: string | undefined): string {
  if (text === undefined) return ''
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe
}

/** The entries as CSV, header first, in the order given; held is 0 until holds exist. */
export function csvOf(entries: readonly Entry[]): string {
  const rows = entries.map((entry) =>
    [String(entry.seq), entry.at, 'mod', entry.by, entry.tot, '0', csvText(entry.note), csvText(entry.key)].join(','),
  )
  return [csvHeader, ...rows].join('\r\n') + '\r\n'
}

/** A chart point: the balance after an entry, at its time (seconds), and the entry's index. */
export interface Point {
  atSeconds: number
  tot: number
  index: number
}

/**
 * At most `pointsMax` points of a step line: past that, each bucket of neighbours keeps its
 * lowest and its highest point, in time order, so no peak or trough disappears. The last point
 * (the current balance) is always kept.
 */
export function sampleSteps(points: readonly Point[], pointsMax: number): Point[] {
  if (points.length <= pointsMax) return [...points]
  const bucketSize = Math.ceil(points.length / Math.max(1, Math.floor((pointsMax - 1) / 2)))
  const sampled: Point[] = []
  for (let start = 0; start < points.length; start += bucketSize) {
    let low = points[start]
    let high = low
    for (let index = start + 1; index < Math.min(start + bucketSize, points.length); index++) {
      const point = points[index]
      if (point === undefined || low === undefined || high === undefined) continue
      if (point.tot < low.tot) low = point
      if (point.tot >= high.tot) high = point
    }
    if (low === undefined || high === undefined) continue
    if (low === high) sampled.push(low)
    else sampled.push(...(low.index < high.index ? [low, high] : [high, low]))
  }
  const last = points[points.length - 1]
  if (last !== undefined && sampled[sampled.length - 1] !== last) sampled.push(last)
  return sampled
}

/** The first millisecond of a local calendar day (`YYYY-MM-DD`), as an ISO instant for /past. */
export function dayStartIso(day: string): string {
  const [year, month, date] = day.split('-').map(Number)
  return new Date(year ?? 0, (month ?? 1) - 1, date ?? 1, 0, 0, 0, 0).toISOString()
}

/** The last millisecond of a local calendar day, as an ISO instant for /past. */
export function dayEndIso(day: string): string {
  const [year, month, date] = day.split('-').map(Number)
  return new Date(year ?? 0, (month ?? 1) - 1, date ?? 1, 23, 59, 59, 999).toISOString()
}
