// npm run sim -- --seed N --ticks M: one seed, replayed exactly. Without --seed, seed after seed
// from seed 1 until stopped (ctrl-c). A failure prints the seed and tick that reproduce it.
import { parseArgs } from 'node:util'
import { runSeed, SimFailure, type SimReport } from './simulator.js'

const ticksDefault = 2000

function summary(report: SimReport, elapsedMs: number): string {
  const { mods, injected } = report
  return [
    `seed ${report.seed}: ${report.ticks} ticks ok in ${elapsedMs} ms;`,
    `mods sent ${mods.sent}, acknowledged ${mods.acknowledged} (${mods.replayed} replayed), refused ${mods.refused}, given up ${mods.unknown};`,
    `${report.entries} entries; crashes ${report.crashes}, clean restarts ${report.cleanRestarts}, fatal stops ${report.fatalStops};`,
    `injected: ${injected.writeFailures} write failures, ${injected.writeFailuresAfterApply} after apply, ${injected.writesHeld} held writes, ${injected.readFailures} read failures`,
  ].join(' ')
}

async function runOne(seed: number, ticks: number): Promise<boolean> {
  const startedMs = performance.now()
  try {
    const report = await runSeed(seed, ticks)
    process.stdout.write(`${summary(report, Math.round(performance.now() - startedMs))}\n`)
    return true
  } catch (error) {
    if (!(error instanceof SimFailure)) throw error
    process.stdout.write(`FAILED ${error.message}\nreproduce: npm run sim -- --seed ${error.seed} --ticks ${error.tick}\n`)
    return false
  }
}

const { values } = parseArgs({ options: { seed: { type: 'string' }, ticks: { type: 'string' } }, strict: true })
const ticks = values.ticks === undefined ? ticksDefault : Number(values.ticks)
if (!Number.isSafeInteger(ticks) || ticks < 1) {
  process.stderr.write('sim: --ticks must be a positive integer\n')
  process.exit(2)
}
if (values.seed !== undefined) {
  const seed = Number(values.seed)
  if (!/^[0-9]{1,15}$/.test(values.seed)) {
    process.stderr.write('sim: --seed must be a non-negative integer\n')
    process.exit(2)
  }
  process.exitCode = (await runOne(seed, ticks)) ? 0 : 1
} else {
  // Seed after seed from 1 until stopped; each seed it runs is printed.
  for (let seed = 1; ; seed++) {
    if (!(await runOne(seed, ticks))) {
      process.exitCode = 1
      break
    }
  }
}
