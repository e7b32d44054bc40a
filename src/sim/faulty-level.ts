// A store that fails the way a disk and a process do, for the simulator. It is memory-level with
// its writes and reads intercepted: a write may fail (nothing applied, or applied but answered as
// failed), may be held back and completed later in any order, and is kept as "unsynced" until a
// synced write flushes it; a read may fail. A crash freezes the store: held writes never complete,
// nothing answers any more, and the next process starts from the synced state only (the Disk).
import { MemoryLevel } from 'memory-level'
import type { Prng } from './prng.js'

export interface FaultRates {
  /** A write fails and nothing of it is applied. */
  writeFailure: number
  /** A write is applied but answered with an error (e.g. the fsync after it failed). */
  writeFailureAfterApply: number
  /** A write is held back until the simulator releases it, so completions reorder. */
  writeHeld: number
  /** A read (get, getMany, an iterator's next page) fails. */
  readFailure: number
}

export const noFaults: FaultRates = { writeFailure: 0, writeFailureAfterApply: 0, writeHeld: 0, readFailure: 0 }

/** Keys and values as memory-level stores them: strings or bytes, depending on its store encoding. */
type Stored = string | Uint8Array
type Operation = { type: 'put'; key: Stored; value: Stored } | { type: 'del'; key: Stored }

/** Bytes compare by content, not identity: the disk's map is keyed by this. */
function identityOf(key: Stored): string {
  return typeof key === 'string' ? `s${key}` : `b${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64')}`
}

/** What survives a crash: the synced writes, in memory-level's own encoding. */
export class Disk {
  readonly #synced = new Map<string, { key: Stored; value: Stored }>()

  apply(operations: readonly Operation[]): void {
    for (const operation of operations) {
      if (operation.type === 'put') this.#synced.set(identityOf(operation.key), { key: operation.key, value: operation.value })
      else this.#synced.delete(identityOf(operation.key))
    }
  }

  get size(): number {
    return this.#synced.size
  }

  puts(): Operation[] {
    return [...this.#synced.values()].map(({ key, value }): Operation => ({ type: 'put', key, value }))
  }
}

interface HeldWrite {
  operations: Operation[]
  sync: boolean
  resolve: () => void
  reject: (error: Error) => void
}

export class InjectedFault extends Error {
  override readonly name = 'InjectedFault'
}

const never = new Promise<never>(() => {})

/** An iterator's page methods, which abstract-level's public next/nextv/all call. */
interface PagedIterator {
  _next: unknown
  _nextv: unknown
  _all: unknown
}

/** memory-level's implementation methods, which abstract-level calls and its types do not declare. */
interface MemoryInternals {
  _put(key: Stored, value: Stored, options: object): Promise<void>
  _del(key: Stored, options: object): Promise<void>
  _batch(operations: Operation[], options: object): Promise<void>
  _get(key: string, options: object): Promise<string | undefined>
  _getMany(keys: string[], options: object): Promise<(string | undefined)[]>
  _iterator(options: object): PagedIterator
  _keys(options: object): PagedIterator
  _values(options: object): PagedIterator
}

const MemoryBase = MemoryLevel as unknown as new (options: {
  keyEncoding: 'utf8'
  valueEncoding: 'utf8'
}) => MemoryLevel<string, string> & MemoryInternals
/** memory-level's own batch, to load a store from the disk without faults. */
function memoryBatch(db: FaultyLevel, operations: Operation[]): Promise<void> {
  const prototype = MemoryLevel.prototype as unknown as MemoryInternals
  return prototype._batch.call(db, operations, {})
}

export class FaultyLevel extends MemoryBase {
  readonly #disk: Disk
  readonly #random: Prng
  #rates: FaultRates = noFaults
  /** Completed writes a crash would lose. */
  #unsynced: Operation[][] = []
  #held: HeldWrite[] = []
  #crashed = false
  /** Counts of what was injected, for the report. */
  readonly injected = { writeFailures: 0, writeFailuresAfterApply: 0, writesHeld: 0, readFailures: 0 }

  private constructor(disk: Disk, random: Prng) {
    super({ keyEncoding: 'utf8', valueEncoding: 'utf8' })
    this.#disk = disk
    this.#random = random
  }

  /** A store as a process finds it at start: exactly the synced state of the disk. */
  static async fromDisk(disk: Disk, random: Prng): Promise<FaultyLevel> {
    const db = new FaultyLevel(disk, random)
    await db.open()
    const operations = disk.puts()
    if (operations.length > 0) await memoryBatch(db, operations)
    return db
  }

  /** Faults apply from now on; noFaults turns them off (the checker reads with them off). */
  setRates(rates: FaultRates): void {
    this.#rates = rates
  }

  get heldCount(): number {
    return this.#held.length
  }

  /** The process dies: held writes never complete and unsynced ones are lost with it. */
  crash(): void {
    this.#crashed = true
    this.#held = []
    this.#unsynced = []
  }

  /** Completes up to `count` held writes, in a random order. */
  release(count: number): void {
    const order = this.#random.shuffled(this.#held.map((_, index) => index)).slice(0, count)
    const chosen = new Set(order)
    const releasing = order.map((index) => this.#held[index] as HeldWrite)
    this.#held = this.#held.filter((_, index) => !chosen.has(index))
    for (const write of releasing) void this.#complete(write)
  }

  override async _put(key: Stored, value: Stored, options: { sync?: boolean }): Promise<void> {
    return this.#write([{ type: 'put', key, value }], options)
  }

  override async _del(key: Stored, options: { sync?: boolean }): Promise<void> {
    return this.#write([{ type: 'del', key }], options)
  }

  override async _batch(operations: Operation[], options: { sync?: boolean }): Promise<void> {
    return this.#write(
      operations.map((operation): Operation =>
        operation.type === 'put' ? { type: 'put', key: operation.key, value: operation.value } : { type: 'del', key: operation.key },
      ),
      options,
    )
  }

  #write(operations: Operation[], options: { sync?: boolean }): Promise<void> {
    if (this.#crashed) return never
    const sync = options.sync === true
    if (this.#random.chance(this.#rates.writeFailure)) {
      this.injected.writeFailures++
      return Promise.reject(new InjectedFault('injected write failure'))
    }
    return new Promise<void>((resolve, reject) => {
      const write = { operations, sync, resolve, reject }
      if (this.#random.chance(this.#rates.writeHeld)) {
        this.injected.writesHeld++
        this.#held.push(write)
      } else {
        void this.#complete(write)
      }
    })
  }

  async #complete(write: HeldWrite): Promise<void> {
    if (this.#crashed) return
    await super._batch(write.operations, {})
    this.#unsynced.push(write.operations)
    if (write.sync) {
      for (const operations of this.#unsynced) this.#disk.apply(operations)
      this.#unsynced = []
    }
    if (this.#random.chance(this.#rates.writeFailureAfterApply)) {
      this.injected.writeFailuresAfterApply++
      write.reject(new InjectedFault('injected failure after the write was applied'))
    } else {
      write.resolve()
    }
  }

  #readFault(): Promise<never> | undefined {
    if (this.#crashed) return never
    if (!this.#random.chance(this.#rates.readFailure)) return undefined
    this.injected.readFailures++
    return Promise.reject(new InjectedFault('injected read failure'))
  }

  override async _get(key: string, options: object): Promise<string | undefined> {
    return this.#readFault() ?? super._get(key, options)
  }

  override async _getMany(keys: string[], options: object): Promise<(string | undefined)[]> {
    return this.#readFault() ?? super._getMany(keys, options)
  }

  override _iterator(options: object) {
    return this.#faultyPages(super._iterator(options))
  }

  override _keys(options: object) {
    return this.#faultyPages(super._keys(options))
  }

  override _values(options: object) {
    return this.#faultyPages(super._values(options))
  }

  /** Each page an iterator reads may fail, like a read. */
  #faultyPages<I extends PagedIterator>(iterator: I): I {
    const wrap = (name: '_next' | '_nextv' | '_all') => {
      const original = iterator[name] as (...args: unknown[]) => Promise<unknown>
      iterator[name] = (...args: unknown[]) => this.#readFault() ?? original.apply(iterator, args)
    }
    wrap('_next')
    wrap('_nextv')
    wrap('_all')
    return iterator
  }
}
