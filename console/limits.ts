// The console's bounds, in one place. The contract's ranges come from the ledger itself.
import { pageSizeMax } from '../src/ledger/limits.js'

export { amountMax, noteLengthMax } from '../src/ledger/limits.js'
export { credentialLengthMax, credentialLengthMin } from '../src/contract/syntax.js'

/** Rows per page of the History table. */
export const historyPageSize = 25
/** Entries per request when a whole range is read (chart, CSV): the server's largest page. */
export const rangePageSize = pageSizeMax
/** Entries the chart reads at most: the newest of the range. */
export const chartEntriesMax = 10_000
/** Points the chart draws at most; past this each bucket keeps its lowest and highest point. */
export const chartPointsMax = 2_000
/** Entries one CSV export reads at most; a larger range is refused, not cut short. */
export const exportEntriesMax = 100_000
/** Random bytes in a new account's credential. */
export const credentialBytes = 32
