// What the ledger keeps in memory so that reads rarely touch the store: an exact, bounded cache
// of account states, and a filter that says for certain when an account does not exist.
import assert from 'node:assert/strict'
import type { AccountState, CredentialState } from './codec.js'
import type { AccountKey, CredentialKey } from './types.js'

/**
 * Account states by key, at most `capacity` of them, first cached first evicted. Exact, never
 * stale: only the writer changes balances, and it stores every state it commits here right after
 * the commit. Readers may fill it with what they read from the store, but only when no commit
 * happened meanwhile (the commit count did not move), so a slow read never overwrites a newer state.
 */
export class AccountCache {
  readonly #states = new Map<AccountKey, AccountState>()
  readonly #capacity: number
  /**
   * The cached keys in the order they were first cached, as a ring: the slot at `#oldest` is the
   * next to go. Not the Map's own order: V8 leaves a deleted Map slot in place until a rehash, so
   * finding the oldest key through `keys().next()` skips every key evicted since, which made each
   * eviction cost tens of microseconds once the cache was full.
   */
  readonly #order: AccountKey[] = []
  #oldest = 0
  #commits = 0

  constructor(capacity: number) {
    assert.ok(Number.isInteger(capacity) && capacity >= 0)
    this.#capacity = capacity
  }

  get size(): number {
    return this.#states.size
  }

  get capacity(): number {
    return this.#capacity
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
    if (this.#states.has(accountKey)) {
      this.#states.set(accountKey, state) // keeps its place in the ring
      return
    }
    if (this.#order.length < this.#capacity) {
      this.#order.push(accountKey)
    } else {
      // Keys leave only here, so the ring holds exactly the cached keys.
      const evicted = this.#order[this.#oldest]
      assert.ok(evicted !== undefined && this.#states.delete(evicted), 'the cache ring lost track of a key')
      this.#order[this.#oldest] = accountKey
      this.#oldest = (this.#oldest + 1) % this.#capacity
    }
    this.#states.set(accountKey, state)
  }
}

/** What the ledger keeps in memory; the writer keeps all of it current. */
export interface LedgerMemory {
  accounts: AccountCache
  /** Every account that exists. */
  accountKeys: KeyFilter
  /** Every idempotency record written within the retention window, by its stored key. */
  idempotencyKeys: WindowedKeyFilter
  /** Credential -> account mappings (exclusive engine): exact, kept current by the writer. */
  credentials: CredentialCache
}

/**
 * The last credentials the writer read or wrote, with their state (undefined: no such
 * credential), at most `capacity`. Only the writer fills it, from its rounds, so it never holds
 * a state older than the store's; readers only look.
 */
export class CredentialCache {
  readonly #capacity: number
  readonly #states = new Map<CredentialKey, CredentialState | undefined>()

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  /** [true, state] when known, [false] when it has to be read. */
  get(credentialKey: CredentialKey): [true, CredentialState | undefined] | [false] {
    if (!this.#states.has(credentialKey)) return [false]
    return [true, this.#states.get(credentialKey)]
  }

  /** Records what a round read or stored; the oldest entry makes room. */
  set(credentialKey: CredentialKey, state: CredentialState | undefined): void {
    if (this.#capacity === 0) return
    this.#states.delete(credentialKey)
    this.#states.set(credentialKey, state)
    if (this.#states.size > this.#capacity) {
      const oldest = this.#states.keys().next()
      if (oldest.done !== true) this.#states.delete(oldest.value)
    }
  }

  get size(): number {
    return this.#states.size
  }
}

const bitsPerKey = 16
const probes = 4
/** The account filter's first layer: 1 MiB, 500,000 keys before the first growth. */
export const accountFilterBits = 1 << 23
/** The smallest layer an idempotency generation starts with: 8 KiB, 4,096 keys. */
const generationFilterBitsMin = 1 << 16

interface Layer {
  bits: Uint32Array
  mask: number
  count: number
  capacity: number
}

/**
 * A Bloom filter of the keys that exist (accounts, idempotency records), so that most lookups of
 * a key that does not exist are answered without touching the store. "No" is certain; "maybe" is
 * checked against the store. Entries are only added; when the newest layer is full a larger one
 * is stacked on it (a scalable Bloom filter), keeping false positives rare as the keys grow.
 */
export class KeyFilter {
  readonly #layers: Layer[] = []

  constructor(initialBits = accountFilterBits) {
    assert.ok(isPowerOfTwo(initialBits) && initialBits >= generationFilterBitsMin, 'filter size must be a power of two')
    this.#grow(initialBits)
  }

  /** Keys added. */
  get count(): number {
    return this.#layers.reduce((sum, layer) => sum + layer.count, 0)
  }

  get sizeBytes(): number {
    return this.#layers.reduce((sum, layer) => sum + layer.bits.byteLength, 0)
  }

  add(key: string): void {
    let layer = this.#layers.at(-1)
    assert.ok(layer !== undefined)
    if (layer.count >= layer.capacity) layer = this.#grow((layer.mask + 1) * 2)
    const [first, step] = hashesOf(key)
    for (let probe = 0; probe < probes; probe++) {
      const bit = (first + probe * step) & layer.mask
      layer.bits[bit >>> 5] = (layer.bits[bit >>> 5] ?? 0) | (1 << (bit & 31))
    }
    layer.count++
  }

  mightContain(key: string): boolean {
    const [first, step] = hashesOf(key)
    for (const layer of this.#layers) {
      let all = true
      for (let probe = 0; probe < probes && all; probe++) {
        const bit = (first + probe * step) & layer.mask
        all = ((layer.bits[bit >>> 5] ?? 0) & (1 << (bit & 31))) !== 0
      }
      if (all) return true
    }
    return false
  }

  #grow(bits: number): Layer {
    const layer = { bits: new Uint32Array(bits / 32), mask: bits - 1, count: 0, capacity: bits / bitsPerKey }
    this.#layers.push(layer)
    return layer
  }

  /** The filter as text, to be kept across a clean stop instead of scanning the store at start. */
  snapshot(): KeyFilterSnapshot {
    return {
      bitsPerKey,
      probes,
      layers: this.#layers.map((layer) => ({
        count: layer.count,
        bits: Buffer.from(layer.bits.buffer, layer.bits.byteOffset, layer.bits.byteLength).toString('base64'),
      })),
    }
  }

  /**
   * The filter a snapshot describes, or undefined if it was made with other parameters or is
   * damaged: its layers must be powers of two of at least `initialBits`, each holding at most its capacity.
   */
  static fromSnapshot(snapshot: KeyFilterSnapshot, initialBits = accountFilterBits): KeyFilter | undefined {
    if (snapshot.bitsPerKey !== bitsPerKey || snapshot.probes !== probes || snapshot.layers.length === 0) return undefined
    const filter = new KeyFilter(generationFilterBitsMin)
    filter.#layers.length = 0
    for (const saved of snapshot.layers) {
      const bytes = Buffer.from(saved.bits, 'base64')
      const bitCount = bytes.byteLength * 8
      if (bitCount < initialBits || !isPowerOfTwo(bitCount) || saved.count > bitCount / bitsPerKey) return undefined
      const bits = new Uint32Array(bitCount / 32)
      Buffer.from(bits.buffer).set(bytes)
      filter.#layers.push({ bits, mask: bitCount - 1, count: saved.count, capacity: bitCount / bitsPerKey })
    }
    return filter
  }
}

export interface KeyFilterSnapshot {
  bitsPerKey: number
  probes: number
  layers: { count: number; bits: string }[]
}

/** Generations per retention window: a key outlives its window by at most a quarter of it. */
export const generationsPerWindow = 4

/**
 * The idempotency keys written within the retention window, as a few Bloom filters by time of
 * writing (generations). A key is "maybe" if any generation says so; a generation whose every key
 * is past the window is dropped, so memory follows the traffic of one window, never the store's
 * age. Time only moves forward here (`advance` keeps the latest clock seen), so a dropped
 * generation never held a key that a later, earlier-reading clock would still call live.
 */
export class WindowedKeyFilter {
  readonly #windowMs: number
  readonly #generationMs: number
  /** By generation index (time of writing / generationMs), oldest first. */
  readonly #generations = new Map<number, KeyFilter>()
  #clockMs = 0

  constructor(windowMs: number) {
    assert.ok(Number.isInteger(windowMs) && windowMs >= 1, 'the window must be a positive integer of ms')
    this.#windowMs = windowMs
    this.#generationMs = Math.max(1, Math.ceil(windowMs / generationsPerWindow))
  }

  get windowMs(): number {
    return this.#windowMs
  }

  /** The latest clock seen. */
  get clockMs(): number {
    return this.#clockMs
  }

  get generationCount(): number {
    return this.#generations.size
  }

  get count(): number {
    let count = 0
    for (const filter of this.#generations.values()) count += filter.count
    return count
  }

  get sizeBytes(): number {
    let bytes = 0
    for (const filter of this.#generations.values()) bytes += filter.sizeBytes
    return bytes
  }

  /** True when a key written at `atMs` is past the window at the latest clock seen. */
  isExpired(atMs: number): boolean {
    return this.#clockMs - atMs >= this.#windowMs
  }

  /** Moves the clock forward (never back) and drops the generations wholly past the window. */
  advance(nowMs: number): void {
    if (nowMs <= this.#clockMs) return
    this.#clockMs = nowMs
    for (const index of this.#generations.keys()) {
      const newestMs = (index + 1) * this.#generationMs - 1
      if (this.isExpired(newestMs)) this.#generations.delete(index)
    }
  }

  /** Adds a key written at `atMs`; a key already past the window needs no entry. */
  add(key: string, atMs: number): void {
    if (this.isExpired(atMs)) return
    const index = Math.floor(atMs / this.#generationMs)
    let filter = this.#generations.get(index)
    if (filter === undefined) {
      filter = new KeyFilter(this.#nextGenerationBits())
      this.#generations.set(index, filter)
    }
    filter.add(key)
  }

  mightContain(key: string): boolean {
    for (const filter of this.#generations.values()) if (filter.mightContain(key)) return true
    return false
  }

  /** Sized for as many keys as the largest live generation holds, so steady traffic needs one layer each. */
  #nextGenerationBits(): number {
    let keys = 0
    for (const filter of this.#generations.values()) keys = Math.max(keys, filter.count)
    let bits = generationFilterBitsMin
    while (bits / bitsPerKey < keys && bits < accountFilterBits) bits *= 2
    return bits
  }

  snapshot(): WindowedKeyFilterSnapshot {
    return {
      windowMs: this.#windowMs,
      clockMs: this.#clockMs,
      generations: [...this.#generations].map(([index, filter]) => ({ index, filter: filter.snapshot() })),
    }
  }

  /** The filter a snapshot describes, or undefined if it was made for another window or is damaged. */
  static fromSnapshot(snapshot: WindowedKeyFilterSnapshot, windowMs: number): WindowedKeyFilter | undefined {
    if (snapshot.windowMs !== windowMs) return undefined
    const restored = new WindowedKeyFilter(windowMs)
    restored.#clockMs = snapshot.clockMs
    for (const { index, filter } of snapshot.generations) {
      const generation = KeyFilter.fromSnapshot(filter, generationFilterBitsMin)
      if (generation === undefined || restored.#generations.has(index)) return undefined
      restored.#generations.set(index, generation)
    }
    return restored
  }
}

export interface WindowedKeyFilterSnapshot {
  windowMs: number
  clockMs: number
  generations: { index: number; filter: KeyFilterSnapshot }[]
}

function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0
}

/** Two 32-bit FNV-1a hashes of the key, for double hashing: probe i is first + i * step. */
function hashesOf(key: string): [number, number] {
  let first = 0x811c9dc5
  let second = 0x01234567
  for (let index = 0; index < key.length; index++) {
    const code = key.charCodeAt(index)
    first = Math.imul(first ^ code, 0x01000193)
    second = Math.imul(second ^ code, 0x01000193)
  }
  return [first >>> 0, (second | 1) >>> 0]
}
