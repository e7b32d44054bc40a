// Accounts that outlive their credentials, on every engine: rotation (balance, history and
// idempotency keys kept; the old credential retired at once or after a grace; a retired one
// credited again makes an unrelated account), public ids, and rotations racing mods.
import { describe, expect, test } from 'vitest'
import { publicAccountId } from '../src/ledger/account-id.js'
import { credentialKeyOf, openLedger, type Ledger, type LedgerOptions, type LedgerStore } from '../src/ledger/index.js'
import type { AccountKey, CredentialKey } from '../src/ledger/types.js'
import { verifyStore } from '../src/ledger/verify.js'
import { codeOf, expectHistoryChain, type Backend } from './ledger.suite.js'

const older = credentialKeyOf('b2xkLWNyZWRlbnRpYWw=')
const newer = credentialKeyOf('bmV3LWNyZWRlbnRpYWw=')
const other = credentialKeyOf('b3RoZXItY3JlZGVudGlhbA==')

/** Waits for `condition`, polling; fails once `timeoutMs` has passed without it. */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<number> {
  const startedMs = Date.now()
  for (;;) {
    if (await condition()) return Date.now() - startedMs
    if (Date.now() - startedMs > timeoutMs) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export function accountsSuite(name: string, backend: Backend): void {
  const open = async (options: Partial<LedgerOptions> = {}, store?: LedgerStore): Promise<Ledger> =>
    openLedger(store ?? (await backend.makeStore()), { writerBatchMax: 500, writerQueueMax: 100_000, ...options })

  describe(`accounts on ${name}`, () => {
    test('a rotation keeps the balance, the history (seq continues) and the idempotency keys; the old credential stops at once', async () => {
      const ledger = await open()
      await ledger.mod(older, { by: 100n, note: 'top-up' })
      await ledger.mod(older, { by: -7n, idempotencyKey: 'charge-1' })
      const accountKey = (await ledger.resolve(older)) as AccountKey
      const before = await ledger.acctOf(accountKey)
      const rotated = await ledger.rotate(older, { newCredentialKey: newer, graceMs: 0, idempotencyKey: 'rot-1' })
      const body = JSON.parse(rotated.body) as Record<string, unknown>
      expect(rotated.replayed).toBe(false)
      expect(body).toMatchObject({ account: publicAccountId(accountKey), tot: '93', held: '0', avail: '93', seq: 3 })
      expect(body.created).toBe(new Date(before?.createdMs ?? 0).toISOString())
      // The old credential addresses nothing now; the new one the same account.
      expect(await ledger.tot(older)).toBeUndefined()
      expect(await ledger.resolve(newer)).toBe(accountKey)
      expect(await ledger.tot(newer)).toEqual({ tot: 93n, seq: 3 })
      expect(await codeOf(ledger.mod(older, { by: -1n }))).toBe('ACCMAN_NO_ACCOUNT')
      await expect(ledger.past(older, { limit: 10, order: 'asc' })).rejects.toMatchObject({ code: 'ACCMAN_NO_ACCOUNT' })
      // A key used before the rotation is still the account's.
      expect(await ledger.mod(newer, { by: -7n, idempotencyKey: 'charge-1' })).toEqual({ tot: 93n, seq: 2, replayed: true })
      const page = await ledger.past(newer, { limit: 10, order: 'asc' })
      expect(page.entries.map((entry) => [entry.seq, entry.kind ?? 'mod', entry.by, entry.tot, entry.idempotencyKey])).toEqual([
        [1, 'mod', 100n, 100n, undefined],
        [2, 'mod', -7n, 93n, 'charge-1'],
        [3, 'rotate', 0n, 93n, 'rot-1'],
      ])
      expect(await ledger.mod(newer, { by: -3n })).toEqual({ tot: 90n, seq: 4, replayed: false })
      // A retry of the rotation, even with the retired credential, replays its answer.
      expect(await ledger.rotate(older, { newCredentialKey: newer, graceMs: 0, idempotencyKey: 'rot-1' })).toEqual({ body: rotated.body, replayed: true })
      // The same key with other parameters is refused.
      expect(await codeOf(ledger.rotate(older, { newCredentialKey: other, graceMs: 0, idempotencyKey: 'rot-1' }))).toBe('ACCMAN_IDEMPOTENCY_MISMATCH')
      // The public id finds the account without a credential; it did not change.
      expect(await ledger.accountOfPublicId(publicAccountId(accountKey))).toBe(accountKey)
      expect(await ledger.accountOfPublicId('acct_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined()
      await ledger.close()
    })

    test('a rotation is refused, writing nothing, for an unknown credential and for a new one in use', async () => {
      const ledger = await open()
      await ledger.mod(older, { by: 5n })
      await ledger.mod(other, { by: 9n })
      expect(await codeOf(ledger.rotate(newer, { newCredentialKey: credentialKeyOf('dW51c2Vk'), graceMs: 0 }))).toBe('ACCMAN_NO_ACCOUNT')
      expect(await codeOf(ledger.rotate(older, { newCredentialKey: other, graceMs: 0 }))).toBe('ACCMAN_CRED_IN_USE')
      expect(await ledger.tot(older)).toEqual({ tot: 5n, seq: 1 })
      expect(await ledger.tot(other)).toEqual({ tot: 9n, seq: 1 })
      await ledger.close()
    })

    test('a retired credential credited again makes a new, unrelated account', async () => {
      const ledger = await open()
      await ledger.mod(older, { by: 50n })
      const first = (await ledger.resolve(older)) as AccountKey
      await ledger.rotate(older, { newCredentialKey: newer, graceMs: 0 })
      expect(await ledger.mod(older, { by: 4n })).toEqual({ tot: 4n, seq: 1, replayed: false })
      const second = (await ledger.resolve(older)) as AccountKey
      expect(second).not.toBe(first)
      expect(publicAccountId(second)).not.toBe(publicAccountId(first))
      expect(await ledger.tot(newer)).toEqual({ tot: 50n, seq: 2 })
      expect((await ledger.past(older, { limit: 10, order: 'asc' })).entries.map((entry) => entry.by)).toEqual([4n])
      await ledger.close()
    })

    test('during the grace both credentials work; after it the old one answers no account', async () => {
      const ledger = await open()
      await ledger.mod(older, { by: 20n })
      const graceMs = 1000
      const rotatedAtMs = Date.now()
      await ledger.rotate(older, { newCredentialKey: newer, graceMs })
      expect(await ledger.mod(older, { by: -1n })).toMatchObject({ tot: 19n, seq: 3 })
      expect(await ledger.mod(newer, { by: -1n })).toMatchObject({ tot: 18n, seq: 4 })
      // A rotation of the old credential to a credential of the same account is one in use.
      expect(await codeOf(ledger.rotate(newer, { newCredentialKey: older, graceMs: 0 }))).toBe('ACCMAN_CRED_IN_USE')
      await until(async () => (await ledger.tot(older)) === undefined, 'the old credential retires')
      expect(Date.now() - rotatedAtMs).toBeGreaterThanOrEqual(graceMs - 50)
      expect(await codeOf(ledger.mod(older, { by: -1n }))).toBe('ACCMAN_NO_ACCOUNT')
      expect(await ledger.tot(newer)).toEqual({ tot: 18n, seq: 4 })
      await ledger.close()
    })

    test('a rotation in the middle of 600 concurrent debits through both credentials loses none of them', async () => {
      const ledger = await open({ writerBatchMax: 50 })
      await ledger.mod(older, { by: 10_000n })
      const debits = (credential: CredentialKey, count: number, tag: string) =>
        Array.from({ length: count }, (_, index) => ledger.mod(credential, { by: -1n, idempotencyKey: `${tag}-${index}` }))
      const early = debits(older, 300, 'early')
      const rotation = ledger.rotate(older, { newCredentialKey: newer, graceMs: 60_000 })
      const late = [...debits(older, 150, 'late-old'), ...debits(newer, 150, 'late-new')]
      const results = await Promise.allSettled([...early, ...late])
      expect((await rotation).replayed).toBe(false)
      const refused = results.filter((result) => result.status === 'rejected')
      // A debit through the new credential queued before the rotation was decided has no account yet.
      for (const result of refused) expect((result.reason as { code?: string }).code).toBe('ACCMAN_NO_ACCOUNT')
      const applied = results.length - refused.length
      expect(await ledger.tot(newer)).toEqual({ tot: 10_000n - BigInt(applied), seq: 2 + applied })
      await expectHistoryChain(ledger, newer, 2 + applied)
      const kinds = (await ledger.past(newer, { limit: 1000, order: 'asc' })).entries.filter((entry) => entry.kind === 'rotate')
      expect(kinds).toHaveLength(1)
      await ledger.close()
    })

    test('verify covers the credentials table', async () => {
      const store = await backend.makeStore()
      const ledger = await open({}, store)
      await ledger.mod(older, { by: 3n })
      await ledger.rotate(older, { newCredentialKey: newer, graceMs: 0 })
      await ledger.mod(other, { by: 3n })
      // The ledger's close closes the store: verify through a second store on the same data where there is one.
      const report = await verifyStore(store, { nowMs: Date.now() })
      expect(report).toMatchObject({ accounts: 2, credentials: 3, faultCount: 0 })
      await ledger.close()
    })
  })
}
