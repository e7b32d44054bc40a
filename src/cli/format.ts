// What the CLI prints, as text: the history table, verify's report, and one-line error messages.
// Pure functions of their input, so the commands only decide what to print and where.
import type { CommanderError } from 'commander'
import type { VerifyReport } from '../ledger/verify.js'

export interface PastEntry {
  seq: number
  at: string
  by: string
  tot: string
  note?: string
}

/** Control characters in a note would drive the terminal; show them as '?'. */
export const printable = (text: string) => text.replace(/[\p{Cc}\p{Cf}]/gu, '?')

/** One line whatever the message holds: a server's or a library's text may carry line breaks. */
export const oneLine = (text: string) => printable(text.replace(/\s*[\r\n]+\s*/g, ' '))

/** History entries as aligned columns, numbers right-aligned, the note last and as is. */
export function historyTable(entries: PastEntry[]): string {
  const rows = [['seq', 'at', 'by', 'tot', 'note'], ...entries.map((e) => [String(e.seq), e.at, e.by, e.tot, printable(e.note ?? '')])]
  const widths = [0, 1, 2, 3].map((column) => Math.max(...rows.map((row) => (row[column] ?? '').length)))
  const rightAligned = new Set([0, 2, 3])
  return rows
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0
          if (column === 4) return cell
          return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width)
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** verify's report: the faults it kept, how many more it counted, then one summary line. */
export function verifyReportText(report: VerifyReport, dbPath: string): string {
  const lines = report.faults.map((fault) => `fault: ${fault}\n`)
  if (report.faultCount > report.faults.length) lines.push(`… and ${report.faultCount - report.faults.length} more faults\n`)
  const counts = `${report.accounts} accounts, ${report.entries} entries, ${report.idempotencyKeys} idempotency keys`
  const verdict = report.faultCount === 0 ? 'ok' : `${report.faultCount} faults`
  lines.push(`verify ${dbPath}: ${counts}: ${verdict}\n`)
  return lines.join('')
}

const unknownOptionHint = "unknown option; put '--' before a credential or amount that starts with '-'"

/** Commander quotes what it did not understand, which may be a credential: say it without it. */
export function commanderMessage(error: CommanderError): string {
  if (error.code === 'commander.unknownOption') return unknownOptionHint
  if (error.code === 'commander.unknownCommand') return 'unknown command'
  return error.message.replace(/^error: /, '')
}
