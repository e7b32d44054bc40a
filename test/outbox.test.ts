// The ledger side of alerts, on every engine: crossings decided from (before, after), events
// written in the round of the change that caused them, settings changed without history, the
// ref index, and the outbox's plain-data methods (claim, update, page, trim, count).
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { afterEach, describe, expect, it } from 'vitest'
import { alertEvents, crossedBelow, depleted } from '../src/ledger/alerts.js'
import { decodeAccount, encodeAccount, type AccountState } from '../src/ledger/codec.js'
import { credentialKeyOf, LedgerError, openLedger, publicAccountId, type AccountKey, type Ledger, type LedgerStore } from '../src/ledger/index.js'
import { openLevelStore } from '../src/ledger/level/store.js'
import { openPostgresStore } from '../src/ledger/postgres/store.js'
import { freshDatabase } from './postgres-support.js'
import { temporaryDirectories } from './support.js'

const directory = temporaryDirectories('accman-outbox-')
const opened: Ledger[] = []
afterEach(async () => {
  for (const ledger of opened.splice(0)) await ledger.close()
})

/** Each engine, and how to open the same store again. */
const engines: Array<[string, () => Promise<{ open: () => Promise<LedgerStore> }>]> = [
  [
    'memory-level',
    async () => {
      const db = new MemoryLevel<string, string>()
      return { open: () => openLevelStore(db, { sync: false }) }
    },
  ],
  [
    'classic-level',
    async () => {
      const path = directory()
      return { open: () => openLevelStore(new ClassicLevel<string, string>(path), { sync: true }) }
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await freshDatabase()
      return { open: () => openPostgresStore(url, { sync: true, poolMax: 5, timeoutMs: 30_000 }) }
    },
  ],
]

async function ledgerOn(store: LedgerStore, alertBelowDefault?: bigint): Promise<Ledger> {
  const ledger = await openLedger(store, {
    writerBatchMax: 100,
    writerQueueMax: 10_000,
    outboxEnabled: true,
    ...(alertBelowDefault === undefined ? {} : { alertBelowDefault }),
  })
  opened.push(ledger)
  return ledger
}

describe('crossings, as pure functions', () => {
  it('fires once per downward crossing: from at or above the threshold to below it', () => {
    expect(crossedBelow(100n, 99n, 100n)).toBe(true)
    expect(crossedBelow(150n, 0n, 100n)).toBe(true)
    expect(crossedBelow(99n, 50n, 100n)).toBe(false) // already below: no second event
    expect(crossedBelow(100n, 100n, 100n)).toBe(false)
    expect(crossedBelow(50n, 150n, 100n)).toBe(false)
    expect(crossedBelow(100n, 0n, undefined)).toBe(false)
    expect(crossedBelow(0n, 0n, 0n)).toBe(false)
    expect(depleted(1n, 0n)).toBe(true)
    expect(depleted(0n, 0n)).toBe(false)
    expect(depleted(5n, 1n)).toBe(false)
  })

  it('names the account by its public id, with the threshold and ref in force, and a stable id', () => {
    const accountKey = credentialKeyOf('Y3JlZA==') as string as AccountKey
    const after: AccountState = { tot: 0n, seq: 7, atMs: Date.UTC(2026, 10, 30), ref: 'customer-1' }
    const events = alertEvents(accountKey, { tot: 10n, seq: 6, atMs: 0 }, after, 5n)
    expect(events.map((event) => event.type)).toEqual(['balance.low', 'balance.depleted'])
    expect(JSON.parse(events[0]!.body)).toEqual({
      type: 'balance.low',
      timestamp: '2026-11-30T00:00:00.000Z',
      data: { account: publicAccountId(accountKey), tot: '0', held: '0', avail: '0', seq: 7, threshold: '5', ref: 'customer-1' },
    })
    expect(events[0]!.body).not.toContain(accountKey)
    expect(alertEvents(accountKey, { tot: 10n, seq: 6, atMs: 0 }, after, 5n).map((event) => event.id)).toEqual(events.map((event) => event.id))
    expect(publicAccountId(accountKey)).toMatch(/^acct_[A-Za-z0-9_-]{22}$/)
  })

  it('stores the threshold and ref as optional fields: old records read unchanged', () => {
    const key = credentialKeyOf('Y3JlZA==') as string as AccountKey
    expect(decodeAccount(key, '{"tot":"5","seq":1,"atMs":3}')).toEqual({ tot: 5n, seq: 1, atMs: 3 })
    const state: AccountState = { tot: 5n, seq: 1, atMs: 3, alertBelow: 10n, ref: 'ref "quoted" é' }
    expect(decodeAccount(key, encodeAccount(state))).toEqual(state)
    expect(() => decodeAccount(key, '{"tot":"5","seq":1,"atMs":3,"ref":""}')).toThrow()
    expect(() => decodeAccount(key, '{"tot":"5","seq":1,"atMs":3,"alertBelow":"-1"}')).toThrow()
  })
})

describe.each(engines)('the outbox on %s', (_name, makeEngine) => {
  it('writes each crossing’s events in the round of the mod that caused it, and nothing else', async () => {
    const engine = await makeEngine()
    const store = await engine.open()
    const ledger = await ledgerOn(store, 100n)
    const accountKey = credentialKeyOf('b3V0Ym94LWE=')
    await ledger.mod(accountKey, { by: 150n })
    await ledger.mod(accountKey, { by: -60n }) // 90: low
    await ledger.mod(accountKey, { by: -10n }) // 80: already below
    await ledger.mod(accountKey, { by: 30n }) // 110
    await ledger.mod(accountKey, { by: -110n }) // 0: low and depleted
    await expect(ledger.mod(accountKey, { by: -1n })).rejects.toThrow(LedgerError)
    const page = await store.pageOutbox(undefined, 100)
    // Events of one change share its time: within it, the order is the ids'.
    const seqAndType = page.map((record) => `${(JSON.parse(record.body) as { data: { seq: number } }).data.seq} ${record.type}`)
    expect(seqAndType.sort()).toEqual(['2 balance.low', '5 balance.depleted', '5 balance.low'])
    expect(await store.countOutbox()).toBe(3)
    // Due at once; one delivered everywhere (deleted), one put off: the third is what is due.
    const claimed = await store.claimOutbox(Date.now() + 1000, 2, 60_000)
    expect(claimed).toHaveLength(2)
    await store.updateOutbox([{ ...claimed[1]!, dueAtMs: Date.now() + 3_600_000 }], [claimed[0]!])
    expect(await store.countOutbox()).toBe(2)
    const third = page.find((record) => !claimed.some((taken) => taken.id === record.id))
    expect((await store.claimOutbox(Date.now() + 1000, 10, 60_000)).map((record) => record.id)).toEqual([third?.id])
    // The bound drops the oldest (page order: time, then id).
    const remaining = page.filter((record) => record.id !== claimed[0]!.id)
    expect(await store.trimOutbox(1)).toBe(1)
    expect((await store.pageOutbox(undefined, 10)).map((record) => record.id)).toEqual([remaining[1]!.id])
  })

  it('writes hold.expired for each expired hold and account.frozen for a freeze, naming the account by its public id', async () => {
    const store = await (await makeEngine()).open()
    const ledger = await ledgerOn(store)
    const accountKey = credentialKeyOf('b3V0Ym94LWg=')
    await ledger.mod(accountKey, { by: 10n })
    const hold = await ledger.hold(accountKey, { by: 4n, ttlMs: 1000 })
    // The expiry is recorded by the background pass or by this call, whichever runs first.
    const deadline = Date.now() + 15_000
    while (!(await store.pageOutbox(undefined, 10)).some((record) => record.type === 'hold.expired')) {
      expect(Date.now()).toBeLessThan(deadline)
      await ledger.expireDueHolds(100)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await ledger.freeze(accountKey, { frozen: true })
    await ledger.freeze(accountKey, { frozen: false })
    const bodies = (await store.pageOutbox(undefined, 10)).map((record) => JSON.parse(record.body) as { type: string; data: unknown })
    const account = publicAccountId((await ledger.resolve(accountKey))!)
    expect(bodies.map((body) => body.type).sort()).toEqual(['account.frozen', 'hold.expired'])
    expect(bodies.find((body) => body.type === 'hold.expired')?.data).toEqual({ account, tot: '10', held: '0', avail: '10', seq: 3, hold: hold.hold })
    expect(bodies.find((body) => body.type === 'account.frozen')?.data).toEqual({ account, tot: '10', held: '0', avail: '10', seq: 4 })
  })

  it('writes account.rotated for a rotation, once (a replay writes nothing), with no credential in it', async () => {
    const store = await (await makeEngine()).open()
    const ledger = await ledgerOn(store)
    const [oldCredential, newCredential] = ['b3V0Ym94LXJvdDE=', 'b3V0Ym94LXJvdDI=']
    await ledger.mod(credentialKeyOf(oldCredential), { by: 7n })
    const request = { newCredentialKey: credentialKeyOf(newCredential), graceMs: 0, idempotencyKey: 'rotate-once' }
    await ledger.rotate(credentialKeyOf(oldCredential), request)
    expect((await ledger.rotate(credentialKeyOf(oldCredential), request)).replayed).toBe(true)
    const records = await store.pageOutbox(undefined, 10)
    expect(records.map((record) => record.type)).toEqual(['account.rotated'])
    const account = publicAccountId((await ledger.resolve(credentialKeyOf(newCredential)))!)
    expect((JSON.parse(records[0]!.body) as { data: unknown }).data).toEqual({ account, tot: '7', held: '0', avail: '7', seq: 2 })
    for (const text of [oldCredential, newCredential, credentialKeyOf(oldCredential), credentialKeyOf(newCredential)]) expect(records[0]!.body).not.toContain(text)
  })

  it('changes the threshold and the ref without a history entry; a ref names one account, and survives a reopen', async () => {
    const engine = await makeEngine()
    const ledger = await ledgerOn(await engine.open())
    const first = credentialKeyOf('Zmlyc3Q=')
    const second = credentialKeyOf('c2Vjb25k')
    await ledger.mod(first, { by: 10n })
    await ledger.mod(second, { by: 20n })
    await expect(ledger.updateAccount(credentialKeyOf('bm9ib2R5'), { alertBelow: 1n })).rejects.toMatchObject({ code: 'ACCMAN_NO_ACCOUNT' })
    expect(await ledger.updateAccount(first, { alertBelow: 5n, ref: 'shared-ref' })).toMatchObject({ tot: 10n, seq: 1, alertBelow: 5n, ref: 'shared-ref' })
    await expect(ledger.updateAccount(second, { ref: 'shared-ref' })).rejects.toMatchObject({ code: 'ACCMAN_REF_TAKEN' })
    await ledger.mod(first, { by: -6n }) // 4: low, with the account's threshold
    expect(await ledger.account(first)).toMatchObject({ tot: 4n, seq: 2, alertBelow: 5n, ref: 'shared-ref' })
    expect(await ledger.accountKeyOfRef('shared-ref')).toBe(await ledger.resolve(first))
    await ledger.updateAccount(first, { ref: 'moved-ref', alertBelow: null })
    expect(await ledger.accountKeyOfRef('shared-ref')).toBeUndefined()
    await ledger.updateAccount(second, { ref: 'shared-ref' })
    expect(await ledger.accountKeyOfRef('shared-ref')).toBe(await ledger.resolve(second))
    await ledger.close()
    opened.splice(0)
    const reopened = await ledgerOn(await engine.open())
    const reread = await reopened.account(first)
    expect(reread).toMatchObject({ tot: 4n, seq: 2, ref: 'moved-ref' })
    expect(reread?.alertBelow).toBeUndefined()
    expect(await reopened.accountKeyOfRef('moved-ref')).toBe(await reopened.resolve(first))
    expect((await reopened.past(first, { limit: 10, order: 'asc' })).entries).toHaveLength(2)
  })
})
