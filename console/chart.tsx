// "Balance over time": the balance after each entry of the range as a step line (uPlot), with a
// time axis, drag to zoom and a readout of the exact balance under the cursor. The chart reads
// at most chartEntriesMax entries (the newest of the range) and draws at most chartPointsMax.
import { useEffect, useRef, useState } from 'preact/hooks'
import uPlot from 'uplot'
import type { Api, Range } from './api.js'
import { grouped, sampleSteps, type Entry, type Point } from './format.js'
import { chartEntriesMax, chartPointsMax } from './limits.js'

interface ChartProps {
  api: Api
  cred: string
  range: Range
  /** Changes whenever the entries may have changed. */
  generation: number
  onError: (caught: unknown) => string
}

interface Loaded {
  entries: Entry[]
  complete: boolean
  points: Point[]
}

const heightPx = 260
const compact = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 2 })
const local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

const steppedPaths = uPlot.paths.stepped
// The full uPlot build has it; a trimmed build would draw a misleading line, so fail loudly.
if (steppedPaths === undefined) throw new Error('this uPlot build cannot draw step lines')
const stepAfter = steppedPaths({ align: 1 })

function pointsOf(entries: readonly Entry[]): Point[] {
  // Floats only for drawing: the readout and the table show the exact bigint.
  return entries.map((entry, index) => ({ atSeconds: Date.parse(entry.at) / 1000, tot: Number(entry.tot), index }))
}

function options(width: number, onCursor: (index: number | null | undefined) => void): uPlot.Options {
  return {
    width,
    height: heightPx,
    legend: { show: false },
    cursor: { drag: { x: true, y: false }, points: { size: 8 } },
    scales: {
      x: { time: true, range: (_plot, min, max) => (min === max ? [min - 3600, max + 3600] : [min, max]) },
      y: { range: (_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      { stroke: '#333', grid: { stroke: '#e3e6ea' }, ticks: { stroke: '#c9ced6' } },
      { stroke: '#333', size: 64, grid: { stroke: '#e3e6ea' }, ticks: { stroke: '#c9ced6' }, values: (_plot, splits) => splits.map((value) => compact.format(value)) },
    ],
    series: [
      {},
      {
        label: 'Balance',
        stroke: '#0b4f94',
        width: 2,
        fill: 'rgba(11, 79, 148, 0.10)',
        paths: stepAfter,
        points: { show: false },
      },
    ],
    hooks: { setCursor: [(plot) => onCursor(plot.cursor.idx)] },
  }
}

export function Chart({ api, cred, range, generation, onError }: ChartProps) {
  const container = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | undefined>(undefined)
  const [loaded, setLoaded] = useState<Loaded | undefined>()
  const [error, setError] = useState<string | undefined>()
  const [cursorIndex, setCursorIndex] = useState<number | undefined>()

  useEffect(() => {
    let current = true
    api
      .newestOfRange(cred, range, chartEntriesMax)
      .then(({ entries, complete }) => {
        if (!current) return
        setLoaded({ entries, complete, points: sampleSteps(pointsOf(entries), chartPointsMax) })
        setError(undefined)
      })
      .catch((caught: unknown) => {
        if (current) setError(onError(caught))
      })
    return () => {
      current = false
    }
  }, [api, cred, range, generation])

  useEffect(() => {
    const element = container.current
    if (element === null || loaded === undefined) return
    const data: uPlot.AlignedData = [loaded.points.map((point) => point.atSeconds), loaded.points.map((point) => point.tot)]
    if (plot.current === undefined) {
      plot.current = new uPlot(options(element.clientWidth, (index) => setCursorIndex(index ?? undefined)), data, element)
    } else {
      plot.current.setData(data)
    }
  }, [loaded])

  useEffect(() => {
    const element = container.current
    if (element === null) return
    const observer = new ResizeObserver(() => plot.current?.setSize({ width: element.clientWidth, height: heightPx }))
    observer.observe(element)
    return () => {
      observer.disconnect()
      plot.current?.destroy()
      plot.current = undefined
    }
  }, [])

  const points = loaded?.points ?? []
  const shown = cursorIndex === undefined ? undefined : points[cursorIndex]
  const entry = shown === undefined ? undefined : loaded?.entries[shown.index]
  const first = loaded?.entries[0]
  const last = loaded?.entries[loaded.entries.length - 1]

  function resetZoom() {
    const start = points[0]
    const end = points[points.length - 1]
    if (plot.current === undefined || start === undefined || end === undefined) return
    plot.current.setScale('x', start === end ? { min: start.atSeconds - 3600, max: end.atSeconds + 3600 } : { min: start.atSeconds, max: end.atSeconds })
  }

  return (
    <>
      <div class="chart-head">
        <h2>Balance over time</h2>
        <button type="button" class="quiet" onClick={resetZoom} disabled={points.length === 0}>
          Reset zoom
        </button>
      </div>
      <div ref={container} class="plot" />
      <p class="readout">
        {entry !== undefined ? `Seq ${entry.seq}, ${local.format(new Date(entry.at))}: balance ${grouped(BigInt(entry.tot))}` : 'Drag across the chart to zoom; double-click to zoom out.'}
      </p>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {loaded !== undefined && (
        <p class="muted summary">
          {loaded.entries.length === 0 || first === undefined || last === undefined
            ? 'No entries in this range.'
            : `${loaded.complete ? '' : 'The newest '}${grouped(BigInt(loaded.entries.length))} entries, ${local.format(new Date(first.at))} to ${local.format(new Date(last.at))}${
                points.length < loaded.entries.length ? `, drawn as ${grouped(BigInt(points.length))} sampled points` : ''
              }.`}
        </p>
      )}
    </>
  )
}
