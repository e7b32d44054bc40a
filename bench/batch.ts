// The batched scenarios of npm run bench: mods through the client (which batches concurrent calls
// by itself) with 500 and 50 callers, and 100-operation batches sent directly over 50 connections.
// Each ends with the ledger check: acknowledged <= applied <= sent, per account.
import autocannon from 'autocannon'
import { AccManClient } from '../src/client/index.js'
import { benchCredential } from './bulk-load.js'

export const batchScenarioNames = ['batch client 500 callers', 'batch client 50 callers', 'batch 100 ops x 50 connections'] as const

const accounts = 1000

interface Tally {
  sent: Int32Array
  acknowledged: Int32Array
}

async function ledgerCheck(url: string, tally: Tally, credOf: (index: number) => string): Promise<string> {
  const client = new AccManClient({ url, batch: false })
  let violations = 0
  let sent = 0
  let acknowledged = 0
  let applied = 0
  for (let index = 0; index < accounts; index++) {
    const sentHere = tally.sent[index] ?? 0
    if (sentHere === 0) continue
    const appliedHere = Number((await client.tot(credOf(index))).tot)
    const acknowledgedHere = tally.acknowledged[index] ?? 0
    if (acknowledgedHere > appliedHere || appliedHere > sentHere) violations++
    sent += sentHere
    acknowledged += acknowledgedHere
    applied += appliedHere
  }
  return `${violations === 0 ? 'ok' : `FAILED on ${violations} accounts`}: acknowledged ${acknowledged} <= applied ${applied} <= sent ${sent}`
}

/** Callers each awaiting one +1 mod at a time, on their own accounts, for `seconds`. */
async function clientScenario(url: string, callers: number, seconds: number, run: number) {
  const client = new AccManClient({ url })
  const credOf = (index: number) => benchCredential(9_000_000 + run * accounts + index)
  const tally: Tally = { sent: new Int32Array(accounts), acknowledged: new Int32Array(accounts) }
  const deadlineMs = Date.now() + seconds * 1000
  let mods = 0
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let round = 0; Date.now() < deadlineMs; round++) {
        const account = (caller + round * callers) % accounts
        tally.sent[account] = (tally.sent[account] ?? 0) + 1
        await client.mod(credOf(account), 1n)
        tally.acknowledged[account] = (tally.acknowledged[account] ?? 0) + 1
        mods++
      }
    }),
  )
  return { modsPerS: Math.round(mods / seconds), ledgerCheck: await ledgerCheck(url, tally, credOf) }
}

/** 100-op batches of +1 mods sent directly, one request at a time on each of `connections`. */
async function directScenario(url: string, connections: number, seconds: number, run: number) {
  const credOf = (index: number) => benchCredential(9_500_000 + run * accounts + index)
  const tally: Tally = { sent: new Int32Array(accounts), acknowledged: new Int32Array(accounts) }
  const deadlineMs = Date.now() + seconds * 1000
  let mods = 0
  await Promise.all(
    Array.from({ length: connections }, async (_, connection) => {
      for (let round = 0; Date.now() < deadlineMs; round++) {
        const chosen = Array.from({ length: 100 }, (_, op) => (connection * 100 + round * 7 + op) % accounts)
        for (const account of chosen) tally.sent[account] = (tally.sent[account] ?? 0) + 1
        const body = JSON.stringify({ ops: chosen.map((account) => ({ op: 'mod', cred: credOf(account), by: '1' })) })
        const response = await fetch(`${url}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        if (response.status !== 200) continue
        const { results } = (await response.json()) as { results: { status: number }[] }
        for (const [index, account] of chosen.entries()) {
          if (results[index]?.status === 200) {
            tally.acknowledged[account] = (tally.acknowledged[account] ?? 0) + 1
            mods++
          }
        }
      }
    }),
  )
  return { modsPerS: Math.round(mods / seconds), ledgerCheck: await ledgerCheck(url, tally, credOf) }
}

async function helloReqPerS(helloUrl: string, seconds: number): Promise<number> {
  const result = await autocannon({ url: helloUrl, connections: 50, duration: seconds })
  return Math.round(result.requests.average)
}

/** Runs the selected batch scenarios against a running AccMan and hello world; prints and answers them. */
export async function batchBench(accmanUrl: string, helloUrl: string, seconds: number, selected: (name: string) => boolean) {
  const rows: { name: string; modsPerS: number; helloReqPerS: number; ratio: number; ledgerCheck: string }[] = []
  for (const [run, name] of batchScenarioNames.entries()) {
    if (!selected(name)) continue
    const hello = await helloReqPerS(helloUrl, seconds)
    const measured =
      name === 'batch 100 ops x 50 connections'
        ? await directScenario(accmanUrl, 50, seconds, run)
        : await clientScenario(accmanUrl, name.includes('500') ? 500 : 50, seconds, run)
    const row = { name, ...measured, helloReqPerS: hello, ratio: Number((measured.modsPerS / hello).toFixed(2)) }
    console.log(`${name}: ${row.modsPerS} mods/s, hello ${hello} req/s at 50 connections, ${row.ratio}x; ledger check ${row.ledgerCheck}`)
    rows.push(row)
  }
  return rows
}
