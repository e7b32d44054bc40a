// The History table, paged by seq (newer/older), the date-range filter and the CSV export.
import { useEffect, useState } from 'preact/hooks'
import type { Api, Range } from './api.js'
import { csvOf, dayEndIso, dayStartIso, grouped, signedGrouped, type Entry } from './format.js'
import { exportEntriesMax, historyPageSize } from './limits.js'

interface RangeFilterProps {
  api: Api
  cred: string
  range: Range
  onChange: (range: Range) => void
  onStatus: (message: string) => void
  onError: (caught: unknown) => string
}

/** From and To are local calendar days; /past gets the instants that bound them. */
export function RangeFilter({ api, cred, range, onChange, onStatus, onError }: RangeFilterProps) {
  const [from, setFrom] = useState('')
  const [to, setTo] = useState('')
  const [error, setError] = useState<string | undefined>()
  const [exporting, setExporting] = useState(false)

  function apply(event: Event) {
    event.preventDefault()
    if (from !== '' && to !== '' && from > to) {
      setError('From must be on or before To.')
      return
    }
    setError(undefined)
    onChange({ ...(from === '' ? {} : { from: dayStartIso(from) }), ...(to === '' ? {} : { to: dayEndIso(to) }) })
  }

  function clear() {
    setFrom('')
    setTo('')
    setError(undefined)
    onChange({})
  }

  async function exportCsv() {
    setExporting(true)
    setError(undefined)
    try {
      const { entries, complete } = await api.newestOfRange(cred, range, exportEntriesMax)
      if (!complete) {
        setError(`This range holds more than ${grouped(BigInt(exportEntriesMax))} entries; narrow it to export.`)
        return
      }
      download('accman-history.csv', csvOf(entries))
      onStatus(`Exported ${grouped(BigInt(entries.length))} entries to accman-history.csv.`)
    } catch (caught) {
      setError(onError(caught))
    } finally {
      setExporting(false)
    }
  }

  return (
    <div class="tools">
      <form class="row range" onSubmit={apply} aria-label="Date range">
        <div class="field">
          <label for="range-from">From</label>
          <input id="range-from" type="date" value={from} onInput={(event) => setFrom(event.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="range-to">To</label>
          <input id="range-to" type="date" value={to} onInput={(event) => setTo(event.currentTarget.value)} />
        </div>
        <div class="buttons">
          <button type="submit">Apply</button>
          <button type="button" onClick={clear}>
            Clear
          </button>
          <button type="button" onClick={() => void exportCsv()} disabled={exporting}>
            Export CSV
          </button>
        </div>
      </form>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
    </div>
  )
}

function download(name: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }))
  const link = document.createElement('a')
  link.href = url
  link.download = name
  link.click()
  // The download has started from the URL by the time this runs.
  setTimeout(() => URL.revokeObjectURL(url), 0)
}

type Cursor = { kind: 'newest' } | { kind: 'older'; before: number } | { kind: 'newer'; after: number }

interface Page {
  /** Newest first. */
  entries: Entry[]
  hasNewer: boolean
  hasOlder: boolean
}

/**
 * One page of the range, newest first. A page asks for one entry more than it shows, so it
 * knows whether there is another page beyond it without a second request.
 */
async function loadPage(api: Api, cred: string, range: Range, cursor: Cursor): Promise<Page> {
  const limit = historyPageSize + 1
  switch (cursor.kind) {
    case 'newest': {
      const entries = await api.past(cred, { ...range, order: 'desc', limit })
      return { entries: entries.slice(0, historyPageSize), hasNewer: false, hasOlder: entries.length > historyPageSize }
    }
    case 'older': {
      const entries = await api.past(cred, { ...range, order: 'desc', limit, before: cursor.before })
      return { entries: entries.slice(0, historyPageSize), hasNewer: true, hasOlder: entries.length > historyPageSize }
    }
    case 'newer': {
      const entries = await api.past(cred, { ...range, order: 'asc', limit, after: cursor.after })
      return { entries: entries.slice(0, historyPageSize).reverse(), hasNewer: entries.length > historyPageSize, hasOlder: true }
    }
  }
}

const utcFormat = (at: string) => `${at.replace('T', ' ').replace('Z', '')} UTC`

interface HistoryProps {
  api: Api
  cred: string
  range: Range
  onError: (caught: unknown) => string
}

export function History({ api, cred, range, onError }: HistoryProps) {
  const [cursor, setCursor] = useState<Cursor>({ kind: 'newest' })
  const [page, setPage] = useState<Page | undefined>()
  const [loading, setLoading] = useState(true)
  const [error, setError] = useState<string | undefined>()

  useEffect(() => {
    let current = true
    setLoading(true)
    loadPage(api, cred, range, cursor)
      .then((loaded) => {
        if (!current) return
        setPage(loaded)
        setError(undefined)
      })
      .catch((caught: unknown) => {
        if (current) setError(onError(caught))
      })
      .finally(() => {
        if (current) setLoading(false)
      })
    return () => {
      current = false
    }
  }, [api, cred, range, cursor])

  const entries = page?.entries ?? []
  const newest = entries[0]
  const oldest = entries[entries.length - 1]
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' })

  return (
    <>
      <div class="table-wrap">
        <table aria-busy={loading}>
          <caption>History</caption>
          <thead>
            <tr>
              <th scope="col">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Kind</th>
              <th scope="col" class="num">
                Amount
              </th>
              <th scope="col" class="num">
                Balance after
              </th>
              <th scope="col">Note</th>
              <th scope="col">Key</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.seq}>
                <td data-label="Seq">{entry.seq}</td>
                <td data-label="Time">
                  <time dateTime={entry.at} title={utcFormat(entry.at)}>
                    {local.format(new Date(entry.at))}
                  </time>
                </td>
                <td data-label="Kind">mod</td>
                <td data-label="Amount" class={BigInt(entry.by) < 0n ? 'num debit' : 'num credit'}>
                  {signedGrouped(BigInt(entry.by))}
                </td>
                <td data-label="Balance after" class="num">
                  {grouped(BigInt(entry.tot))}
                </td>
                <td data-label="Note" class="text">
                  {entry.note ?? ''}
                </td>
                <td data-label="Key" class="text mono">
                  {entry.key ?? ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {!loading && error === undefined && entries.length === 0 && <p class="empty">No entries in this range.</p>}
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <nav class="pager" aria-label="Paging">
        <button type="button" disabled={page?.hasNewer !== true} onClick={() => !loading && newest !== undefined && setCursor({ kind: 'newer', after: newest.seq })}>
          Newer
        </button>
        <span class="muted">{newest !== undefined && oldest !== undefined ? `Seq ${oldest.seq} to ${newest.seq}` : ''}</span>
        <button type="button" disabled={page?.hasOlder !== true} onClick={() => !loading && oldest !== undefined && setCursor({ kind: 'older', before: oldest.seq })}>
          Older
        </button>
      </nav>
    </>
  )
}
