import { expect, test } from 'vitest'
import { newCredential } from '../src/cli/credential.js'
import { credential } from '../src/http/schemas.js'

test('new credentials are valid, distinct, and never start with a dash', () => {
  const made = Array.from({ length: 5000 }, newCredential)
  for (const value of made) {
    expect(value).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{42}=$/)
    expect(credential.safeParse(value).success).toBe(true)
  }
  expect(new Set(made).size).toBe(made.length)
})
