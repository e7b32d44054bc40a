// The deterministic simulator on a fixed set of seeds: faults, crashes, restarts and retries, with
// every invariant checked after every tick. A failure names the seed and tick that replay it.
import { describe, expect, test } from 'vitest'
import { runSeed, SimFailure, type SimReport } from '../src/sim/simulator.js'

const seeds = [1, 2, 3, 4, 5]
const ticks = 200
const reports: SimReport[] = []

describe('the simulator', () => {
  test.each(seeds)('seed %i runs 200 ticks with every invariant holding', async (seed) => {
    const report = await runSeed(seed, ticks)
    reports.push(report)
    expect(report.ticks).toBe(ticks)
    // The run did something worth checking: mods were acknowledged and refused.
    expect(report.mods.acknowledged).toBeGreaterThan(100)
    expect(report.mods.refused).toBeGreaterThan(0)
    expect(report.entries).toBeGreaterThan(0)
  }, 60_000)

  test('a seed replays exactly: the same run gives the same report', async () => {
    expect(await runSeed(7, 100)).toEqual(await runSeed(7, 100))
  }, 60_000)

  test('across the fixed seeds, every kind of fault is injected and survived', () => {
    expect(reports).toHaveLength(seeds.length)
    const total = (pick: (report: SimReport) => number) => reports.reduce((sum, report) => sum + pick(report), 0)
    expect(total((report) => report.injected.writeFailures)).toBeGreaterThan(0)
    expect(total((report) => report.injected.writeFailuresAfterApply)).toBeGreaterThan(0)
    expect(total((report) => report.injected.writesHeld)).toBeGreaterThan(0)
    expect(total((report) => report.injected.readFailures)).toBeGreaterThan(0)
    expect(total((report) => report.crashes)).toBeGreaterThan(0)
    expect(total((report) => report.cleanRestarts)).toBeGreaterThan(0)
    expect(total((report) => report.mods.replayed)).toBeGreaterThan(0)
  })

  test('a failure carries the seed and tick that reproduce it', () => {
    const failure = new SimFailure(42, 17, 'm3 is in the store twice')
    expect(failure.message).toBe('seed 42 tick 17: m3 is in the store twice')
  })
})
