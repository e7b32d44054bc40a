// The ledger's in-memory structures: exactness of the account cache, certainty of the filter.
import { describe, expect, test } from 'vitest'
import { AccountCache, KeyFilter } from '../src/ledger/cache.js'
import { accountKeyOf } from '../src/ledger/index.js'

const state = (tot: bigint, seq: number) => ({ tot, seq, atMs: 0 })

describe('AccountCache', () => {
  test('a read that overlapped a commit does not fill the cache', () => {
    const cache = new AccountCache(10)
    const key = accountKeyOf('QUFBQQ==')
    const before = cache.commits
    cache.commit([[key, state(5n, 2)]]) // the writer commits while a read is in flight
    cache.fillFromRead(key, state(4n, 1), before) // the read saw the older state
    expect(cache.get(key)).toEqual(state(5n, 2))
    const other = accountKeyOf('QkJCQg==')
    cache.fillFromRead(other, state(1n, 1), cache.commits)
    expect(cache.get(other)).toEqual(state(1n, 1))
  })

  test('bounded: the oldest entry goes first; capacity 0 keeps nothing', () => {
    const cache = new AccountCache(2)
    const keys = ['QUFBQQ==', 'QkJCQg==', 'Q0NDQw=='].map(accountKeyOf)
    keys.forEach((key, index) => cache.fillFromWriter(key, state(BigInt(index), 1)))
    expect(cache.size).toBe(2)
    expect(cache.get(keys[0] ?? accountKeyOf('AAAA'))).toBeUndefined()
    const none = new AccountCache(0)
    none.commit([[keys[0] ?? accountKeyOf('AAAA'), state(1n, 1)]])
    expect(none.size).toBe(0)
  })

  test('over many wraps of its ring it holds exactly the last `capacity` keys first cached, with their newest states', () => {
    const capacity = 7
    const cache = new AccountCache(capacity)
    const model = new Map<string, ReturnType<typeof state>>() // first-cached order, newest states
    const keyOf = (index: number) => accountKeyOf(Buffer.from(`account-${index}`).toString('base64url'))
    for (let step = 0; step < 500; step++) {
      // Mostly new keys, some updates of keys that may or may not still be cached.
      const index = step % 3 === 0 ? Math.max(0, step - 5) : step
      const key = keyOf(index)
      const next = state(BigInt(step), step + 1)
      cache.commit([[key, next]])
      if (model.has(key)) model.set(key, next)
      else {
        model.set(key, next)
        if (model.size > capacity) model.delete(model.keys().next().value ?? '')
      }
      expect(cache.size).toBe(model.size)
    }
    for (const [key, expected] of model) expect(cache.get(key as never)).toEqual(expected)
    expect(cache.get(keyOf(0))).toBeUndefined()
  })
})

describe('KeyFilter', () => {
  test('never says no to an account it holds, across growth; rarely says maybe to others', () => {
    const filter = new KeyFilter()
    const held = Array.from({ length: 600_000 }, (_, index) => accountKeyOf(`aGVsZC0${index.toString(36).padStart(5, '0')}`))
    for (const key of held) filter.add(key)
    for (const key of held) if (!filter.mightContain(key)) throw new Error('a false negative')
    let falsePositives = 0
    const probes = 100_000
    for (let index = 0; index < probes; index++) {
      if (filter.mightContain(accountKeyOf(`b3RoZXI${index.toString(36).padStart(5, '0')}`))) falsePositives++
    }
    expect(falsePositives / probes).toBeLessThan(0.01)
  })
})
