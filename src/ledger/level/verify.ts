// What verify checks on LevelDB beyond the tables' contents (see verify.ts): rows of the history
// table that belong to no account, and keys outside the ledger's tables. A walk of the tables
// account by account sees neither.
import { isAccountKey, tableNames } from '../codec.js'
import { limits } from '../../config.js'
import { tablesOf, type RootDb } from './store.js'

export async function levelStoreFaults(db: RootDb, fault: (message: string) => void): Promise<void> {
  const tables = tablesOf(db)
  // One seek per account with a history, not one read per entry.
  for (let after = ''; ; ) {
    const [key] = await tables.history.keys({ gt: after, limit: 1 }).all()
    if (key === undefined) break
    const owner = key.slice(0, Math.max(0, key.indexOf('!')))
    if (!isAccountKey(owner)) {
      fault(`${tableNames.history}: malformed key ${JSON.stringify(key.slice(0, 100))}`)
      after = key
      continue
    }
    if ((await tables.accounts.get(owner)) === undefined) {
      fault(`${tableNames.history}: ${JSON.stringify(key.slice(0, 100))} belongs to no account`)
    }
    after = `${owner}"` // '"' follows '!': past the account's entries
  }
  await checkForeignKeys(db, fault)
}

/** Keys outside the ledger's tables: nothing else belongs in a ledger's store. */
async function checkForeignKeys(db: RootDb, fault: (message: string) => void): Promise<void> {
  const names = Object.values(tableNames).sort()
  const gaps: { gte?: string; lt?: string }[] = []
  let lower: string | undefined
  for (const name of names) {
    gaps.push(lower === undefined ? { lt: `!${name}!` } : { gte: lower, lt: `!${name}!` })
    lower = `!${name}"` // '"' follows '!': the first key past the sublevel's range
  }
  gaps.push(lower === undefined ? {} : { gte: lower })
  for (const range of gaps) {
    const keys = await db.keys({ ...range, keyEncoding: 'utf8', limit: limits.verifyFaultsListedMax }).all()
    for (const key of keys) fault(`a key outside the ledger's tables: ${JSON.stringify(String(key).slice(0, 100))}`)
  }
}
