// A one-line progress bar on stderr for long offline commands: counts and rate, redrawn at most
// ten times a second, and nothing at all when stderr is not a terminal (piped, CI, cron).

export interface Progress {
  update(done: number, detail?: string): void
  finish(): void
}

const barWidth = 24
const redrawEveryMs = 100

/** Where a bar is drawn: a terminal, or nothing is drawn. */
export interface ProgressStream {
  isTTY?: boolean
  write(text: string): unknown
}

export function progressBar(label: string, total: number | undefined, unit: string, stream: ProgressStream): Progress {
  if (!stream.isTTY) return { update: () => {}, finish: () => {} }
  const startedMs = Date.now()
  let drawnMs = 0
  let last = { done: 0, detail: '' }
  const draw = () => {
    const elapsedS = Math.max((Date.now() - startedMs) / 1000, 0.001)
    const rate = Math.round(last.done / elapsedS).toLocaleString('en-US')
    const count =
      total === undefined ? last.done.toLocaleString('en-US') : `${last.done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`
    const filled = total === undefined || total === 0 ? 0 : Math.min(barWidth, Math.round((last.done / total) * barWidth))
    const bar = total === undefined ? '' : `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] `
    const detail = last.detail === '' ? '' : `, ${last.detail}`
    stream.write(`\r${label} ${bar}${count} ${unit}${detail}, ${rate} ${unit}/s\x1b[K`)
  }
  return {
    update(done, detail = '') {
      last = { done, detail }
      const nowMs = Date.now()
      if (nowMs - drawnMs < redrawEveryMs) return
      drawnMs = nowMs
      draw()
    },
    finish() {
      draw()
      stream.write('\n')
    },
  }
}
