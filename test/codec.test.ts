// The record decoders check by hand what the stored-record schemas describe: the two must agree
// on every record, valid or corrupt, and a valid one must decode to the values the schema gives.
import { describe, expect, test } from 'vitest'
import type { z } from 'zod'
import {
  accountRecord,
  decodeAccount,
  decodeEntry,
  decodeIdempotency,
  encodeAccount,
  encodeEntry,
  encodeIdempotency,
  entryRecord,
  historyKeyOf,
  idempotencyRecord,
} from '../src/ledger/codec.js'
import type { AccountKey } from '../src/ledger/types.js'

const accountKey = 'a'.repeat(64) as AccountKey
const max = (2n ** 127n - 1n).toString()
const tooBig = (2n ** 127n).toString()

/** Each field's candidate values, valid and not; records are built from every one in turn. */
const candidates: Record<string, unknown[]> = {
  tot: ['0', '7', max, tooBig, '-1', '01', '', 7, null, '1.5', ' 1'],
  by: ['1', '-1', max, `-${max}`, tooBig, `-${tooBig}`, '0', '-0', '01', 1, null],
  seq: [1, 42, Number.MAX_SAFE_INTEGER, 0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, '1', null],
  atMs: [0, 1_767_225_600_000, -1, 2.5, '0', null, 1e300],
  note: ['', 'lunch', '😀'.repeat(256), '😀'.repeat(257), 'x'.repeat(257), 5, null],
  key: ['k', '!~', 'x'.repeat(255), 'x'.repeat(256), '', 'a b', 'é', 1, null],
}

function recordsOf(fields: string[], optional: string[]): string[] {
  const base: Record<string, unknown> = { tot: '5', by: '5', seq: 3, atMs: 1000 }
  const texts: string[] = []
  const whole = Object.fromEntries(fields.filter((name) => !optional.includes(name)).map((name) => [name, base[name]]))
  texts.push(JSON.stringify(whole))
  for (const name of fields) {
    for (const value of candidates[name] ?? []) texts.push(JSON.stringify({ ...whole, [name]: value }))
    const without = { ...whole }
    delete without[name]
    texts.push(JSON.stringify(without))
  }
  texts.push(JSON.stringify({ ...whole, extra: 1 }), '{"__proto__":{},"tot":"1","seq":1,"atMs":1}', 'null', '[]', '"x"', '5', '{', '')
  return texts
}

function verdictOf(decode: () => unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: decode() }
  } catch (error) {
    return { ok: false, message: (error as Error).message }
  }
}

function expectSameVerdicts(schema: z.ZodType, texts: string[], decode: (text: string) => unknown, fromSchema: (record: never) => unknown) {
  let valid = 0
  let corrupt = 0
  for (const text of texts) {
    let json: unknown
    let parsed: { success: boolean; data?: unknown }
    try {
      json = JSON.parse(text)
      parsed = schema.safeParse(json)
    } catch {
      parsed = { success: false }
    }
    const verdict = verdictOf(() => decode(text))
    expect({ text, ok: verdict.ok }).toEqual({ text, ok: parsed.success })
    if (verdict.ok) {
      valid++
      expect(verdict.value).toEqual(fromSchema(parsed.data as never))
    } else {
      corrupt++
      expect(verdict.message).toMatch(/^corrupt record in \w+ at /)
      expect(verdict.message).not.toContain(text === '' ? '\u0000' : text)
    }
  }
  // Both kinds are exercised, so the comparison cannot pass by everything failing to parse.
  expect(valid).toBeGreaterThan(5)
  expect(corrupt).toBeGreaterThan(20)
}

describe('stored record decoders', () => {
  test('an account record is accepted exactly when its schema accepts it, with the same values', () => {
    expectSameVerdicts(accountRecord, recordsOf(['tot', 'seq', 'atMs'], []), (text) => decodeAccount(accountKey, text), (record: z.output<typeof accountRecord>) => record)
  })

  test('a history entry is accepted exactly when its schema accepts it, with the same values', () => {
    const key = historyKeyOf(accountKey, 9)
    expectSameVerdicts(
      entryRecord,
      [...recordsOf(['by', 'tot', 'atMs', 'note', 'key'], ['note', 'key']), JSON.stringify({ by: '1', tot: '1', atMs: 1, note: 'n', key: 'k' })],
      (text) => decodeEntry(key, text),
      (record: z.output<typeof entryRecord>) => ({
        seq: 9,
        by: record.by,
        tot: record.tot,
        atMs: record.atMs,
        ...(record.note === undefined ? {} : { note: record.note }),
        ...(record.key === undefined ? {} : { idempotencyKey: record.key }),
      }),
    )
  })

  test('an idempotency record is accepted exactly when its schema accepts it, with the same values', () => {
    expectSameVerdicts(
      idempotencyRecord,
      recordsOf(['by', 'tot', 'seq', 'atMs'], ['atMs']),
      (text) => decodeIdempotency(`${accountKey}!k`, text),
      (record: z.output<typeof idempotencyRecord>) => ({ by: record.by, tot: record.tot, seq: record.seq, atMs: record.atMs }),
    )
  })

  test('the encoders write exactly the text JSON.stringify gives for the record', () => {
    const notes = [undefined, '', 'lunch "quoted" \\ back\nslash', '😀\u2028\u0000', '\ud800']
    const keys = [undefined, 'k', '!"#\\~']
    for (const note of notes) {
      for (const idempotencyKey of keys) {
        const entry = { by: -(2n ** 127n - 1n), tot: 0n, atMs: 1_767_225_600_000, note, idempotencyKey }
        expect(encodeEntry(entry)).toBe(JSON.stringify({ by: entry.by.toString(), tot: entry.tot.toString(), atMs: entry.atMs, note, key: idempotencyKey }))
      }
    }
    for (const atMs of [undefined, 0, Number.MAX_SAFE_INTEGER]) {
      const record = { by: 7n, tot: 2n ** 127n - 1n, seq: Number.MAX_SAFE_INTEGER, atMs }
      expect(encodeIdempotency(record)).toBe(JSON.stringify({ by: '7', tot: record.tot.toString(), seq: record.seq, atMs }))
    }
    expect(encodeAccount({ tot: 12n, seq: 3, atMs: 9 })).toBe(JSON.stringify({ tot: '12', seq: 3, atMs: 9 }))
  })

  test('encoded records decode to what was encoded', () => {
    const entry = { by: -3n, tot: 2n ** 127n - 1n, atMs: 5, note: 'n 😀', idempotencyKey: 'k-1' }
    expect(decodeEntry(historyKeyOf(accountKey, 4), encodeEntry(entry))).toEqual({ seq: 4, ...entry })
    expect(decodeAccount(accountKey, encodeAccount({ tot: 0n, seq: 1, atMs: 0 }))).toEqual({ tot: 0n, seq: 1, atMs: 0 })
    expect(decodeIdempotency(`${accountKey}!k`, encodeIdempotency({ by: 1n, tot: 1n, seq: 1, atMs: undefined }))).toEqual({ by: 1n, tot: 1n, seq: 1, atMs: undefined })
  })
})
