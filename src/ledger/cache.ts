// What the ledger keeps in memory so that reads rarely touch the store: an exact, bounded cache
// of account states, and a filter that says for certain when an account does not exist.
import assert from 'node:assert/strict'
import type { AccountState } from './codec.js'
import type { AccountKey } from './types.js'

/**
 * Account states by key, at most `capacity` of them, oldest insertion evicted first. Exact, never
 * stale: only the writer changes balances, and it stores every state it commits here right after
 * the commit. Readers may fill it with what they read from the store, but only when no commit
 * happened meanwhile (the commit count did not move), so a slow read never overwrites a newer state.
 */
export class AccountCache {
  readonly #states = new Map<AccountKey, AccountState>()
  readonly #capacity: number
  #commits = 0

  constructor(capacity: number) {
    assert.ok(Number.isInteger(capacity) && capacity >= 0)
    this.#capacity = capacity
  }

  get size(): number {
    return this.#states.size
  }

  /** Increases with every commit; a reader notes it before reading the store. */
  get commits(): number {
    return this.#commits
  }

  get(accountKey: AccountKey): AccountState | undefined {
    return this.#states.get(accountKey)
  }

  /** A state read from the store while the commit count was `commitsBeforeRead`. */
  fillFromRead(accountKey: AccountKey, state: AccountState, commitsBeforeRead: number): void {
    if (commitsBeforeRead === this.#commits) this.#set(accountKey, state)
  }

  /** A state the writer read itself: nothing else writes, so it is current. */
  fillFromWriter(accountKey: AccountKey, state: AccountState): void {
    this.#set(accountKey, state)
  }

  /** The states of a batch the writer has just stored. */
  commit(states: Iterable<[AccountKey, AccountState]>): void {
    this.#commits++
    for (const [accountKey, state] of states) this.#set(accountKey, state)
  }

  #set(accountKey: AccountKey, state: AccountState): void {
    if (this.#capacity === 0) return
    this.#states.delete(accountKey)
    this.#states.set(accountKey, state)
    if (this.#states.size > this.#capacity) {
      const oldest = this.#states.keys().next()
      if (oldest.done !== true) this.#states.delete(oldest.value)
    }
  }
}

const bitsPerAccount = 16
const probes = 4
const initialBits = 1 << 23 // 1 MiB: 500,000 accounts before the first growth

/**
 * A Bloom filter of the accounts that exist, so that most reads for an unknown credential are
 * answered without touching the store. "No" is certain; "maybe" is checked against the store.
 * Account keys are SHA-256 digests already, so their own bits serve as the probe positions.
 * Accounts are never deleted, so entries are only added; when the newest filter is full, a
 * larger one is stacked on it (a scalable Bloom filter), keeping false positives rare.
 */
export class AccountFilter {
  readonly #layers: { bits: Uint32Array; mask: number; count: number; capacity: number }[] = []

  constructor() {
    this.#grow(initialBits)
  }

  add(accountKey: AccountKey): void {
    let layer = this.#layers.at(-1)
    assert.ok(layer !== undefined)
    if (layer.count >= layer.capacity) layer = this.#grow((layer.mask + 1) * 2)
    for (let probe = 0; probe < probes; probe++) {
      const bit = probeOf(accountKey, probe) & layer.mask
      layer.bits[bit >>> 5] = (layer.bits[bit >>> 5] ?? 0) | (1 << (bit & 31))
    }
    layer.count++
  }

  mightContain(accountKey: AccountKey): boolean {
    for (const layer of this.#layers) {
      let all = true
      for (let probe = 0; probe < probes && all; probe++) {
        const bit = probeOf(accountKey, probe) & layer.mask
        all = ((layer.bits[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0
      }
      if (all) return true
    }
    return false
  }

  #grow(bits: number) {
    const layer = { bits: new Uint32Array(bits / 32), mask: bits - 1, count: 0, capacity: bits / bitsPerAccount }
    this.#layers.push(layer)
    return layer
  }
}

/** 32 bits of the key's hex digest for probe `probe` (each probe reads its own 8 hex digits). */
function probeOf(accountKey: AccountKey, probe: number): number {
  return Number.parseInt(accountKey.slice(probe * 8, probe * 8 + 8), 16)
}
