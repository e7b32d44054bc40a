// The simulator's only source of randomness: sfc32, a small fast PRNG with a 128-bit state, seeded
// from one integer. Everything the simulator varies comes from here, so a seed replays exactly.
import assert from 'node:assert/strict'

export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor(seed: number) {
    assert.ok(Number.isSafeInteger(seed) && seed >= 0, 'the seed must be a non-negative integer')
    this.#a = 0x9e3779b9
    this.#b = 0x243f6a88
    this.#c = 0xb7e15162
    this.#d = (seed >>> 0) ^ Math.floor(seed / 2 ** 32)
    for (let round = 0; round < 16; round++) this.#next()
  }

  #next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0
    this.#d = (this.#d + 1) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#c = (this.#c + t) | 0
    return t >>> 0
  }

  /** A float in [0, 1). */
  fraction(): number {
    return this.#next() / 2 ** 32
  }

  /** An integer in [low, high], both included. */
  integer(low: number, high: number): number {
    assert.ok(Number.isSafeInteger(low) && Number.isSafeInteger(high) && low <= high)
    return low + Math.floor(this.fraction() * (high - low + 1))
  }

  chance(probability: number): boolean {
    return this.fraction() < probability
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0)
    const item = items[this.integer(0, items.length - 1)]
    assert.ok(item !== undefined)
    return item
  }

  /** The items in a random order (Fisher-Yates); the input is not changed. */
  shuffled<T>(items: readonly T[]): T[] {
    const copy = [...items]
    for (let index = copy.length - 1; index > 0; index--) {
      const other = this.integer(0, index)
      const held = copy[index] as T
      copy[index] = copy[other] as T
      copy[other] = held
    }
    return copy
  }
}
